"""Training: load data for a config, build datasets and the model, compile with the paper's
optimiser and schedule, fit with honest checkpoint selection, and write the run directory.

Checkpoint selection and early stopping watch the *validation part of the training data*
(``Fold.val``); the test part is touched once, after training, to report metrics.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import RunConfig
from .errors import DataError

SPEED_NAMES = ("slow", "normal", "fast")
VOLUME_NAMES = ("quiet", "normal", "loud")


@dataclass
class DataBundle:
    """Everything a run needs from the corpus: prepared audio, classes, targets, folds."""

    prepared: object
    class_names: list
    targets: object          # pipeline.Targets, indexed by manifest position
    folds: list

    @property
    def manifest(self) -> pd.DataFrame:
        return self.prepared.manifest


def load_data(config: RunConfig, progress: bool = True) -> DataBundle:
    """Read, merge labels, prepare (cached) and split the corpus named in ``config``."""
    from .datasets import scan_dataset
    from .labels import class_names
    from .prepare import prepare_corpus
    from .splits import make_folds

    scan = scan_dataset(config.data.dataset, config.data.data_dir, merges=config.data.merges,
                        audio_dir=config.data.audio_dir)
    prepared = prepare_corpus(scan.manifest, config.features.sample_rate, cache_dir=config.data.cache_dir,
                              is10=config.features.frontend == "is10", progress=progress)
    manifest = prepared.manifest
    names = class_names(manifest["label"])
    if len(names) < 2:
        raise DataError(f"only one class ({names[0]}) in the corpus: nothing to recognise")
    folds = make_folds(manifest, config.data.protocol, config.arch, seed=config.data.seed,
                       test_size=config.data.test_size, val_size=config.data.val_size)
    return DataBundle(prepared, names, None, folds)


def cross_corpus_data(config: RunConfig, classes: list, dataset: str, data_dir, progress: bool = True):
    """A whole other corpus as one test part, its labels mapped onto the model's classes.

    The run's own label merges (e.g. calm -> neutral) apply; utterances whose label the model
    does not know are dropped and counted. Returns (data, fold, number dropped).
    """
    from .datasets import scan_dataset
    from .prepare import prepare_corpus
    from .splits import Fold

    scan = scan_dataset(dataset, data_dir, merges=config.data.merges)
    known = scan.manifest["label"].isin(classes)
    if not known.any():
        raise DataError(f"none of {dataset}'s labels ({', '.join(sorted(scan.manifest['label'].unique()))}) "
                        f"is one of the model's classes ({', '.join(classes)})")
    prepared = prepare_corpus(scan.manifest[known].reset_index(drop=True), config.features.sample_rate,
                              cache_dir=config.data.cache_dir, is10=config.features.frontend == "is10",
                              progress=progress)
    everything = np.arange(len(prepared.manifest))
    fold = Fold(f"all-{dataset}", np.array([], int), np.array([], int), everything)
    return DataBundle(prepared, list(classes), None, [fold]), fold, int((~known).sum())


def make_targets(config: RunConfig, data: DataBundle, fold):
    """Integer targets per manifest row; speed / volume for the multi-task model.

    Corpora without speed / volume labels get them from prepare's measures, cut into
    tertiles whose cut points come from this fold's training part only.
    """
    from .pipeline import Targets
    from .prepare import tertile_labels

    m = data.manifest
    emotion = m["label"].map({n: i for i, n in enumerate(data.class_names)}).to_numpy(np.int32)
    if config.arch != "bilstm_att_mtl":
        return Targets(emotion)
    extra = {}
    for column, measure, names in (("speed", "syllable_rate", SPEED_NAMES), ("volume", "active_rms_db", VOLUME_NAMES)):
        if column in m and m[column].isin(names).all():
            text = m[column].to_numpy()
        else:
            values = m[measure].to_numpy(float)
            # cut points from the training part (a cross-corpus test set has none: use its own)
            reference = values[fold.train] if len(fold.train) else values
            text = tertile_labels(values, reference, names)
        extra[column] = pd.Series(text).map({n: i for i, n in enumerate(names)}).to_numpy(np.int32)
    return Targets(emotion, extra["speed"], extra["volume"])


def make_datasets(config: RunConfig, data: DataBundle, fold, targets, seed: int, parts=("train", "val", "test")):
    """tf.data datasets for the three parts (+ strl_ser's segment owners for aggregation)."""
    from . import pipeline

    parts = {part: getattr(fold, part) for part in parts}
    if config.features.frontend == "is10":
        out, owners = {}, {}
        for part, positions in parts.items():
            out[part], owners[part] = pipeline.segment_dataset(config, data.prepared, positions, targets,
                                                               training=part == "train", seed=seed)
        return out, owners
    frontend = pipeline.build_frontend(config.features)
    augmentation = pipeline.build_augmentation(config.features, seed)
    out = {part: pipeline.waveform_dataset(config, data.prepared, positions, targets, training=part == "train",
                                           seed=seed, frontend=frontend, augmentation=augmentation)
           for part, positions in parts.items()}
    return out, None


def input_spec_of(dataset) -> dict:
    """Named input shapes (no batch dimension) read off a dataset's element spec."""
    spec = dataset.element_spec[0]
    if isinstance(spec, dict):
        return {name: tuple(s.shape[1:]) for name, s in spec.items()}
    return {"features": tuple(spec.shape[1:])}


def assemble_model(config: RunConfig, spec: dict, num_classes: int, normalizers: dict):
    """The network from the registry with training-set normalisation at its head."""
    import keras

    from .models import build_model

    net = build_model(config.arch, spec, num_classes, **config.model)
    inputs = {name: keras.Input(shape=shape, name=name) for name, shape in spec.items()}
    normalised = {name: normalizers[name](x) if name in normalizers else x for name, x in inputs.items()}
    outputs = net(normalised)  # the builders' models take a dict of named inputs
    if list(inputs) == ["features"]:
        return keras.Model(inputs["features"], outputs, name=f"{config.arch}_normalised")
    return keras.Model(inputs, outputs, name=f"{config.arch}_normalised")


def paper_hparams(config: RunConfig) -> dict:
    """The builder's per-dataset paper presets (heads, kernels...), where the dataset has one."""
    from .models.specs import DATASETS, default_hparams

    return default_hparams(config.arch, config.data.dataset) if config.data.dataset in DATASETS else {}


def compile_model(model, config: RunConfig, steps_per_epoch: int, num_classes: int):
    """Adam with the paper's schedule; sparse cross-entropy (weighted over the MTL heads); UA metric."""
    import keras

    from .metrics import UnweightedAccuracy

    t = config.train
    rate = t.learning_rate
    if t.schedule == "exponential":   # strl_ser: x0.95 per epoch
        rate = keras.optimizers.schedules.ExponentialDecay(rate, steps_per_epoch, t.decay_rate, staircase=True)
    elif t.schedule == "cosine":      # bilstm_att_mtl: cosine annealing over the run
        rate = keras.optimizers.schedules.CosineDecay(rate, max(1, steps_per_epoch * t.epochs))
    elif t.schedule != "constant":
        from .errors import ConfigError
        raise ConfigError(f"unknown train.schedule '{t.schedule}'; choose constant, exponential or cosine")
    if config.arch == "bilstm_att_mtl":
        weights = {"emotion": 1.0, "speed": 0.3, "volume": 0.3, **t.loss_weights}
        model.compile(
            optimizer=keras.optimizers.Adam(rate),
            loss={k: "sparse_categorical_crossentropy" for k in weights},
            loss_weights=weights,
            metrics={"emotion": ["accuracy", UnweightedAccuracy(num_classes)],
                     "speed": ["accuracy"], "volume": ["accuracy"]},
        )
    else:
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy", UnweightedAccuracy(num_classes)])
    return model


def monitor_name(config: RunConfig) -> str:
    """The validation quantity that drives early stopping and checkpoint selection."""
    monitor = config.train.monitor
    if config.arch == "bilstm_att_mtl" and monitor == "val_unweighted_accuracy":
        return "val_emotion_unweighted_accuracy"
    return monitor


def callbacks_for(run_dir: Path, config: RunConfig):
    """Early stopping + best checkpoint on validation, CSV history, TensorBoard, NaN guard, resume."""
    import keras

    monitor = monitor_name(config)
    mode = "max" if "acc" in monitor else "min"
    history = run_dir / "history.csv"
    best_so_far = _best_logged(history, monitor, mode)  # a resumed run keeps its earlier best
    return [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.weights.h5"), monitor=monitor, mode=mode,
                                        save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=best_so_far),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=config.train.patience),
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False),
        keras.callbacks.TerminateOnNaN(),
    ]


def _best_logged(history: Path, monitor: str, mode: str):
    if not history.exists() or history.stat().st_size == 0:
        return None
    values = pd.read_csv(history).get(monitor)
    if values is None or values.dropna().empty:
        return None
    return float(values.max() if mode == "max" else values.min())


def steps_in(n_items: int, batch_size: int) -> int:
    return max(1, math.ceil(n_items / batch_size))


# ----------------------------------------------------------------------------- run directory

def open_run_dir(runs_dir, config: RunConfig) -> tuple[Path, bool]:
    """A new run directory, or the unfinished one of an identical earlier command (resume)."""
    runs_dir = Path(runs_dir)
    resolved = config.to_dict()
    for candidate in sorted(runs_dir.glob(f"{config.arch}-{config.data.dataset}-*"), reverse=True):
        saved = candidate / "config.json"
        if (candidate / "backup").is_dir() and not (candidate / "metrics.json").exists() and saved.exists():
            if json.loads(saved.read_text()) == resolved:
                return candidate, True
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = runs_dir / f"{config.arch}-{config.data.dataset}-{stamp}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs_dir / f"{config.arch}-{config.data.dataset}-{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir, False


def write_run_header(run_dir: Path, config: RunConfig, command: str, data: DataBundle, fold) -> None:
    """config.json, command.txt, classes.json and split.csv (which file served which part)."""
    (run_dir / "config.json").write_text(config.to_json())
    (run_dir / "command.txt").write_text(command + "\n")
    (run_dir / "classes.json").write_text(json.dumps(data.class_names))
    rows = [(data.manifest["path"].iloc[p], part) for part in ("train", "val", "test")
            for p in getattr(fold, part)]
    pd.DataFrame(rows, columns=["path", "part"]).to_csv(run_dir / "split.csv", index=False)


def save_model_atomically(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".partial.keras")
    model.save(tmp)
    tmp.replace(path)


def current_command() -> str:
    return " ".join(["python"] + sys.argv)


# ----------------------------------------------------------------------------- fit and score

def train(config: RunConfig, runs_dir="runs", command: str | None = None, progress: bool = True,
          data: DataBundle | None = None, verbose: int = 1, extra_callbacks=()) -> tuple[Path, dict]:
    """Train one fold of ``config``; returns (run directory, test metrics).

    The run directory is created only once data and model are ready, so a bad setting leaves
    nothing behind; an interrupted fit leaves a ``backup/`` that the same command resumes from.
    """
    import keras

    from . import pipeline

    data = data or load_data(config, progress=progress)
    if not 0 <= config.data.fold < len(data.folds):
        from .errors import ConfigError
        raise ConfigError(f"data.fold must be 0..{len(data.folds) - 1} for this protocol, got {config.data.fold}")
    fold = data.folds[config.data.fold]
    config.model = {**paper_hparams(config), **config.model}
    seed = config.data.seed
    keras.utils.set_random_seed(seed)
    targets = make_targets(config, data, fold)
    datasets, owners = make_datasets(config, data, fold, targets, seed)
    spec = input_spec_of(datasets["val"])
    # Normalisation statistics come from the training part only, read without augmentation.
    plain = make_datasets_for_stats(config, data, fold, targets)
    normalizers = pipeline.adapt_normalizers(plain, [n for n in spec if n != "mask"])
    model = assemble_model(config, spec, len(data.class_names), normalizers)
    n_train = len(owners["train"]) if owners else len(fold.train)
    compile_model(model, config, steps_in(n_train, config.train.batch_size), len(data.class_names))

    run_dir, resumed = open_run_dir(runs_dir, config)
    if not resumed:
        write_run_header(run_dir, config, command or current_command(), data, fold)
    elif verbose:
        print(f"resuming unfinished run {run_dir}")
    model.fit(datasets["train"], validation_data=datasets["val"], epochs=config.train.epochs,
              callbacks=callbacks_for(run_dir, config) + list(extra_callbacks), verbose=verbose,
              shuffle=False)  # the training dataset shuffles itself (seeded)
    best = run_dir / "best.weights.h5"
    if best.exists():
        model.load_weights(best)  # the epoch with the best *validation* score
    save_model_atomically(model, run_dir / "model.keras")
    metrics = score_and_report(model, config, data, fold, datasets["test"], owners and owners["test"], run_dir)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)  # finished: nothing left to resume
    return run_dir, metrics


def make_datasets_for_stats(config: RunConfig, data: DataBundle, fold, targets):
    """The training part without augmentation or shuffling, for normalisation statistics."""
    from . import pipeline

    if config.features.frontend == "is10":
        ds, _ = pipeline.segment_dataset(config, data.prepared, fold.train, targets, training=False)
        return ds
    return pipeline.waveform_dataset(config, data.prepared, fold.train, targets, training=False, cache=False)


def predict_part(model, config: RunConfig, dataset, owners=None):
    """Utterance-level class probabilities, embeddings and input summaries, in manifest order."""
    from .evaluation import aggregate_segments

    scorer = scoring_model(model)  # one pass gives both the probabilities and the embedding
    probs, embeddings, inputs = [], [], []
    for x, _ in dataset:
        p, e = scorer(x, training=False)
        probs.append(np.asarray(p))
        embeddings.append(np.asarray(e))
        inputs.append(input_summary(x))
    probs, embeddings, inputs = (np.concatenate(a) for a in (probs, embeddings, inputs))
    if owners is not None:  # strl_ser: segment-level multiplex decision per utterance
        method = config.features.aggregate
        _, probs = aggregate_segments(probs, owners, method=method)
        _, embeddings = aggregate_segments(embeddings, owners, method="mean")
        _, inputs = aggregate_segments(inputs, owners, method="mean")
    return probs, embeddings, inputs


def scoring_model(model):
    """Inputs -> (emotion probabilities, the representation the emotion head sees) in one pass;
    the embedding feeds the t-SNE plot. Shares the trained layers of ``model``."""
    import keras

    net = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    head = net.get_layer("emotion")
    inner = keras.Model(net.input, head.input)
    names = [t.name for t in model.inputs]
    inputs = {n: keras.Input(shape=t.shape[1:], name=n) for n, t in zip(names, model.inputs)}
    normalised = {}
    for name, x in inputs.items():
        try:
            normalised[name] = model.get_layer(f"normalize_{name}")(x)
        except ValueError:
            normalised[name] = x
    embedding = inner(normalised)
    return keras.Model(inputs["features"] if names == ["features"] else inputs, [head(embedding), embedding])


def input_summary(x) -> np.ndarray:
    """Per-example time-averaged input features (what the t-SNE of inputs shows)."""
    if isinstance(x, dict):
        if "spectrogram" in x:
            mask = np.asarray(x["mask"])[..., None]
            return (np.asarray(x["spectrogram"]) * mask).sum(1) / np.maximum(mask.sum(1), 1)
        return np.asarray(x["lld_segments"]).mean(axis=(2, 3))
    x = np.asarray(x)
    if x.ndim == 5:   # cldnn windows (W, T, F, 1)
        return x.mean(axis=(1, 2, 4))
    return x.mean(axis=1)


def score_and_report(model, config: RunConfig, data: DataBundle, fold, test_ds, owners, run_dir: Path) -> dict:
    """Test metrics, predictions.csv, metrics.json and the plots."""
    from . import reports
    from .metrics import compute_metrics

    probs, embeddings, inputs = predict_part(model, config, test_ds, owners)
    names = data.class_names
    y_true = data.manifest["label"].iloc[fold.test].map({n: i for i, n in enumerate(names)}).to_numpy()
    y_pred = probs.argmax(axis=1)
    metrics = compute_metrics(y_true, y_pred, names)
    files = data.manifest["path"].iloc[fold.test].tolist()
    reports.write_predictions_csv(run_dir, files, y_true, y_pred, probs, names)
    reports.write_metrics_json(run_dir, metrics, protocol=config.data.protocol, fold=fold.name,
                               split_sizes=fold.sizes(), seed=config.data.seed, arch=config.arch,
                               dataset=config.data.dataset,
                               checkpoint_selection=f"{monitor_name(config)} on the validation part "
                                                    f"of the training data ({len(fold.val)} utterances)")
    reports.plot_confusion(run_dir / "confusion.png", metrics["confusion"], names)
    if (run_dir / "history.csv").exists():
        reports.plot_history(run_dir / "curves.png", run_dir / "history.csv")
    if len(y_true) >= 5:
        reports.plot_tsne(run_dir / "tsne.png", inputs, embeddings, y_true, names, seed=config.data.seed)
    return metrics
