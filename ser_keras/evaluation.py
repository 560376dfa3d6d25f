"""Evaluation: score a part of a corpus with a run's model and write its reports.

``report_run`` is what `train` calls once, on the test part; ``evaluate_run`` re-scores a
finished run, either on its own test part (read from its ``split.csv``, never re-split) or on a
whole other corpus. Both score through ``scoring.score_utterances``, as `predict` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import reports, runs
from .errors import DataError
from .recipes.base import SEGMENTS


def utterance_items(recipe, prepared, positions) -> list:
    """What ``score_utterances`` takes for these manifest rows (waveforms or IS10 pairs)."""
    if recipe.input_kind == SEGMENTS:
        return [(prepared.is10_lld(int(p)), prepared.is10_functionals[int(p)]) for p in positions]
    return [prepared.waveform(int(p)) for p in positions]


def score_and_report(out_dir: Path, model, config, prepared, positions, class_names, head_targets=None,
                     tsne: bool = True, **extra) -> dict:
    """Score the rows ``positions`` and write predictions.csv, the plots and, last, metrics.json."""
    from .metrics import compute_metrics
    from .scoring import score_utterances

    recipe = config.recipe
    items = utterance_items(recipe, prepared, positions)
    scores = score_utterances(model, recipe, config.features, items)
    probs = scores["emotion"]
    lookup = {n: i for i, n in enumerate(class_names)}
    y_true = prepared.manifest["label"].iloc[positions].map(lookup).to_numpy()
    y_pred = probs.argmax(axis=1)
    metrics = compute_metrics(y_true, y_pred, class_names)
    for head, names in recipe.heads.items():  # the auxiliary heads, where their labels are known
        if head_targets is not None and head in head_targets and head in scores:
            metrics.setdefault("heads", {})[head] = compute_metrics(
                head_targets[head], scores[head].argmax(axis=1), list(names))
    files = prepared.manifest["path"].iloc[positions].tolist()
    reports.write_predictions_csv(out_dir, files, y_true, y_pred, probs, class_names)
    reports.plot_confusion(out_dir / "confusion.png", metrics["confusion"], class_names)
    if (out_dir / "history.csv").exists():
        reports.plot_history(out_dir / "curves.png", out_dir / "history.csv")
    if tsne and len(y_true) >= 5:
        inputs, embedded = embeddings(model, recipe, config.features, items)
        reports.plot_tsne(out_dir / "tsne.png", inputs, embedded, y_true, class_names, seed=config.data.seed)
    reports.write_metrics_json(out_dir, metrics, **extra)  # last: the run is finished now
    return metrics


def report_run(run_dir: Path, model, config, data, fold) -> dict:
    """The test part of a freshly trained run: the one and only time `train` touches it."""
    from .loading import make_targets

    targets = make_targets(config.recipe, data.manifest, data.class_names, fold.train)
    heads = {head: values[fold.test] for head, values in targets.items() if head != "emotion"}
    selection = (f"{config.recipe.monitor(config)} on the validation part of the training data "
                 f"({len(fold.val)} utterances)")
    return score_and_report(run_dir, model, config, data.prepared, fold.test, data.class_names, heads,
                            protocol=config.data.protocol, fold=fold.name, split_sizes=fold.sizes(),
                            seed=config.data.seed, arch=config.arch, dataset=config.data.dataset,
                            checkpoint_selection=selection)


# ----------------------------------------------------------------------------- embeddings

def embeddings(model, recipe, features, items, batch_size: int = 16):
    """(time-averaged input features, the representation the emotion head sees) per utterance."""
    import keras

    from .distribute import predict_on_batch
    from .scoring import aggregate_segments, model_inputs

    frontend = _sub_model(model, "frontend")
    classifier = model.get_layer("classifier")
    network = classifier.get_layer("network")
    embed = keras.Model(network.input, network.get_layer("emotion").input)
    inputs_out, embedded_out = [], []
    for start in range(0, len(items), batch_size):
        x, owners = model_inputs(recipe, features, items[start:start + batch_size])
        feats = {k: np.asarray(v) for k, v in (predict_on_batch(frontend, x) if frontend else x).items()}
        normalised = {name: _normalise(classifier, name, value) for name, value in feats.items()}
        e = np.asarray(predict_on_batch(embed, normalised))
        s = _summary(feats)
        inputs_out.append(aggregate_segments(s, owners)[1])
        embedded_out.append(aggregate_segments(e, owners)[1])
    return np.concatenate(inputs_out), np.concatenate(embedded_out)


def _sub_model(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _normalise(classifier, name, value):
    try:
        return np.asarray(classifier.get_layer(f"normalize_{name}")(value))
    except ValueError:
        return value


def _summary(features: dict) -> np.ndarray:
    """Per-example time-averaged features (what the t-SNE of inputs shows)."""
    if "spectrogram" in features:
        mask = features["mask"][..., None]
        return (features["spectrogram"] * mask).sum(1) / np.maximum(mask.sum(1), 1)
    if "lld_segments" in features:
        return features["lld_segments"].mean(axis=(2, 3))
    x = features["features"]
    return x.mean(axis=(1, 2, 4)) if x.ndim == 5 else x.mean(axis=1)


# ----------------------------------------------------------------------------- re-evaluation

def own_test_part(run_dir: Path, config, progress: bool):
    """The run's test files from its split.csv, prepared; one line on files missing or changed."""
    from .loading import prepare_for

    split = runs.read_split(run_dir)
    test = split[split["part"] == "test"].reset_index(drop=True)
    present = test["path"].map(lambda p: Path(p).is_file())
    sizes = test["path"].map(lambda p: Path(p).stat().st_size if Path(p).is_file() else -1)
    changed = present & ("bytes" in test) & (sizes != test.get("bytes", sizes))
    if not present.all() or changed.any():
        print(f"note: {int((~present).sum())} of the run's {len(test)} test files are missing and "
              f"{int(changed.sum())} changed since training (e.g. {test['path'][~present | changed].iloc[0]}); "
              f"scoring the {int((present & ~changed).sum())} unchanged ones")
        test = test[present & ~changed].reset_index(drop=True)
    if test.empty:
        raise DataError(f"none of the run's test files (split.csv) is readable any more; is {config.data.data_dir} moved?")
    manifest = test.assign(corpus=config.data.dataset)
    prepared = prepare_for(config, manifest, progress)
    kept = prepared.manifest["path"]
    heads = {h: test.set_index("path").loc[kept, h].map({n: i for i, n in enumerate(names)}).to_numpy()
             for h, names in config.recipe.heads.items() if h in test}
    return prepared, heads


def other_corpus(config, classes: list, dataset: str, data_dir, progress: bool):
    """A whole other corpus, labels mapped onto the model's classes; returns (prepared, n dropped)."""
    from .loading import prepare_for, scan_for

    scan = scan_for(config, dataset, data_dir)
    known = scan.manifest["label"].isin(classes)
    if not known.any():
        raise DataError(f"none of {dataset}'s labels ({', '.join(sorted(scan.manifest['label'].unique()))}) "
                        f"is one of the model's classes ({', '.join(classes)})")
    return prepare_for(config, scan.manifest[known].reset_index(drop=True), progress), int((~known).sum())


def with_target_statistics(model, config, items, num_classes: int):
    """The run model with its Normalization statistics taken from ``items`` (a target corpus,
    labels unused): the standard cross-corpus remedy for a shift in level or channel."""
    from .assembly import build_run_model, moments_of
    from .scoring import model_inputs

    recipe = config.recipe
    frontend = _sub_model(model, "frontend")

    def chunks():
        for start in range(0, len(items), 16):
            x, _ = model_inputs(recipe, config.features, items[start:start + 16])
            yield {k: np.asarray(v) for k, v in (frontend.predict_on_batch(x) if frontend else x).items()}

    stats = moments_of(chunks(), recipe.normalization_axes(config.features))
    adapted = build_run_model(recipe, config, num_classes, stats).model
    adapted.set_weights(model.get_weights())  # Normalization holds constants, not weights: same list
    return adapted


def evaluate_run(run_dir, dataset=None, data_dir=None, progress=True, target_norm=False) -> tuple[dict, Path]:
    """Re-score a finished run: its own test part, or another corpus (cross-corpus); with
    ``target_norm`` the normalisation statistics come from the evaluated audio itself."""
    run_dir = runs.check_run_dir(run_dir)
    config, classes = runs.read_config(run_dir), runs.read_classes(run_dir)
    if dataset is None:
        prepared, heads = own_test_part(run_dir, config, progress)
        extra = {"dataset": config.data.dataset, "n_dropped": 0}
    else:
        prepared, dropped = other_corpus(config, classes, dataset, data_dir, progress)
        heads, extra = None, {"dataset": dataset, "n_dropped": dropped}
        if dropped:
            print(f"note: {dropped} utterance(s) of {dataset} have labels the model does not know; dropped")
    model = runs.load_model(run_dir)
    positions = np.arange(len(prepared.manifest))
    if target_norm:
        items = utterance_items(config.recipe, prepared, positions)
        model = with_target_statistics(model, config, items, len(classes))
        extra["normalisation"] = "statistics of the evaluated corpus (labels unused)"
    out = runs.unique_dir(run_dir, f"eval-{extra['dataset']}" + ("-target-norm" if target_norm else ""))
    metrics = score_and_report(out, model, config, prepared, positions, classes, heads, tsne=False, **extra)
    return metrics, out


def present_classes(metrics: dict) -> list:
    """Class names with test support (rows for absent classes are noise in a cross-corpus report)."""
    return [n for n in metrics["classes"] if metrics["per_class"][n]["support"] > 0]

