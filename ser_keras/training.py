"""Training: compile with the paper's optimiser and schedule, fit with honest checkpoint selection.

Checkpoint selection and early stopping watch the *validation part of the training data*
(``Fold.val``); the test part is touched once, after training, by ``evaluation.report_run``.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import runs, warmstart
from .errors import ConfigError
from .recipes.base import SEGMENTS


@dataclass
class FitPlan:
    """What ``fit`` needs: the run model, which part of it trains, and the batches."""

    run_model: object       # assembly.RunModel
    target: object          # the keras.Model that fit trains (whole model, or classifier on cached features)
    train: object           # data.batches.Batches
    val: object


@dataclass
class FitInputs:
    """The batches a fold trains on, the training part's statistics, and what they feed."""

    train: object           # data.batches.Batches
    val: object
    stats: dict             # {input name: (mean, variance)} of the training part
    whole_model: bool       # batches feed the whole run model (waveforms / segments), else its classifier
    frontend: object        # the front end that computed the statistics (None: SEGMENTS)


def fit_inputs(recipe, features, prepared, fold, targets: dict, batch: int, seed: int, devices: int = 1,
               stats: dict | None = None, segment_weighting: str = "segment",
               class_weighting: str = "none") -> FitInputs:
    """One of three ways, by the recipe's input and ``features.augment``: strl_ser's segments;
    waveform batches when augmentation and the front end run inside the model (every batch);
    otherwise the model's own front end once over each part, and batches of its cached output for
    the classifier. ``stats`` given (a search's earlier trial): not computed again. The two
    weightings are train.segment_weighting and train.class_weighting (``parts.sample_weights``)."""
    from .assembly import build_frontend
    from .data import parts

    train_part, val_part = (parts.PartInputs(recipe, features, prepared, getattr(fold, p), targets)
                            for p in ("train", "val"))
    axes = recipe.normalization_axes(features)
    if recipe.input_kind == SEGMENTS:
        train_batches, table = parts.segment_batches(train_part, batch, True, seed, devices,
                                                     segment_weighting, class_weighting)
        val_batches, _ = parts.segment_batches(val_part, batch, False, seed, devices)
        return FitInputs(train_batches, val_batches, stats or parts.statistics(table, axes), True, None)
    frontend = build_frontend(recipe, features)
    weights = parts.sample_weights(train_part.targets["emotion"], class_weighting=class_weighting)
    if features.augment:
        return FitInputs(parts.waveform_batches(train_part, batch, True, seed, devices, weights),
                         parts.waveform_batches(val_part, batch, False, seed, devices),
                         stats or parts.streamed_statistics(frontend, train_part, axes), True, frontend)
    cached = {name: parts.compute_features(frontend, part) for name, part in (("train", train_part), ("val", val_part))}
    return FitInputs(parts.feature_batches(cached["train"], train_part, batch, True, seed, devices, weights),
                     parts.feature_batches(cached["val"], val_part, batch, False, seed, devices),
                     stats or parts.statistics(cached["train"], axes), False, frontend)


def plan_fit(config, data, fold, targets: dict) -> FitPlan:
    """Statistics, (cached features,) the run model and the train / val batches for one fold.
    Within ``distribute.scope`` over several devices, batches split evenly over them
    (``data.batches.Batches``) and the model's variables are laid out over them."""
    from .assembly import build_run_model
    from .distribute import batch_share

    devices = batch_share()
    recipe, batch = config.recipe, config.train.batch_size
    if batch % devices:
        raise ConfigError(f"train.batch_size={batch} must be a multiple of the {devices} devices of "
                          f"train.devices={config.train.devices}: each takes an equal share of every batch")
    inputs = fit_inputs(recipe, config.features, data.prepared, fold, targets, batch, config.data.seed, devices,
                        segment_weighting=config.train.segment_weighting,
                        class_weighting=config.train.class_weighting)
    run_model = build_run_model(recipe, config, len(data.class_names), inputs.stats, inputs.frontend)
    target = run_model.model if inputs.whole_model else run_model.classifier
    return FitPlan(run_model, target, inputs.train, inputs.val)


def compile_model(model, recipe, config, steps_per_epoch: int, num_classes: int):
    """Adam with the paper's schedule; sparse cross-entropy (weighted over heads); the UA metric."""
    import keras

    from .metrics import UnweightedAccuracy

    t = config.train
    rate = t.learning_rate
    if t.schedule == "exponential":   # strl_ser: x0.95 per epoch
        rate = keras.optimizers.schedules.ExponentialDecay(rate, steps_per_epoch, t.decay_rate, staircase=True)
    elif t.schedule == "cosine":      # bilstm_att_mtl: cosine annealing over the run
        rate = keras.optimizers.schedules.CosineDecay(rate, max(1, steps_per_epoch * t.epochs))
    emotion_metrics = ["accuracy", UnweightedAccuracy(num_classes)]
    # weighted_metrics: the same names and values as `metrics` without sample weights; rows of
    # weight 0 (validation padding over several devices, data.batches.Batches) do not count.
    if not recipe.heads:
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy",
                      weighted_metrics=emotion_metrics)
        return model
    weights = {"emotion": 1.0, **{head: 1.0 for head in recipe.heads}, **t.loss_weights}
    model.compile(optimizer=keras.optimizers.Adam(rate),
                  loss={head: "sparse_categorical_crossentropy" for head in weights},
                  loss_weights=weights,
                  weighted_metrics={"emotion": emotion_metrics, **{head: ["accuracy"] for head in recipe.heads}})
    return model


def monitor_name(recipe, config) -> str:
    return recipe.monitor(config)


def callbacks_for(run_dir: Path, recipe, config, sources, verbose: int):
    """Epoch order, (utterance-level validation when the monitor asks for it,) backup (resume),
    best checkpoint and early stopping on validation, history, NaN guard."""
    import keras

    from .callbacks import (early_stopping_callback, logged_best, monitor_mode,
                            recompute_batch_norm_callback, time_limit_callback,
                            utterance_validation_callback)
    from .data.batches import epoch_order_callback

    monitor = monitor_name(recipe, config)
    mode = monitor_mode(monitor)
    history = run_dir / "history.csv"
    logged = logged_best(history, monitor, mode)  # a resumed run keeps its earlier best
    val = sources[1]
    per_utterance = val.utterance_of is not None and monitor.startswith("val_utterance_")  # else not worth a pass
    callbacks = [
        epoch_order_callback(*sources),
        *([utterance_validation_callback(val, config.features.aggregate)] if per_utterance else []),
        # kept when fit ends (train removes it), so that a run its time limit stopped can go on
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(run_dir / "best.weights.h5"), monitor=monitor, mode=mode,
                                        save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=logged[0] if logged else None),
        early_stopping_callback(monitor, mode, config.train.patience, logged),
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.train.bn_recompute_batches:
        callbacks.insert(0, recompute_batch_norm_callback(sources[0], config.train.bn_recompute_batches))
    if config.train.time_limit_minutes:
        callbacks.append(time_limit_callback(config.train.time_limit_minutes * 60, verbose))
    if keras.backend.backend() == "tensorflow":
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False))
    elif verbose:
        print("note: TensorBoard logs need TensorFlow; skipped on this backend")
    return callbacks


def train(config, runs_dir="runs", command: str | None = None, progress: bool = True,
          data=None, verbose: int = 1, extra_callbacks=()) -> tuple[Path, dict]:
    """Train one fold of ``config``; returns (run directory, test metrics).

    The run directory is created only once data and model are ready, so a bad setting leaves
    nothing behind; an interrupted fit, or one that ``train.time_limit_minutes`` cut (scored all
    the same), leaves a ``backup/`` that the same command resumes from, and a run has
    ``metrics.json`` only once everything else is written.
    """
    import keras

    from . import distribute
    from .evaluation import report_run
    from .loading import head_label_columns, load_data, make_targets

    recipe = config.recipe
    data = data or load_data(config, progress=progress)
    if not 0 <= config.data.fold < len(data.folds):
        raise ConfigError(f"data.fold must be 0..{len(data.folds) - 1} for this protocol, got {config.data.fold}")
    fold = data.folds[config.data.fold]
    keras.utils.set_random_seed(config.data.seed)
    targets = make_targets(recipe, data.manifest, data.class_names, fold.train)
    from .data import as_loader

    # Model building, fit and the test report all run under the distribution (DataParallel with
    # train.devices > 1): variables and batches are laid out over the devices the same way.
    with distribute.scope(config.train.devices) as devices:
        plan = plan_fit(config, data, fold, targets)
        if not plan.train.order(0):
            raise ConfigError(f"{len(fold.train)} training utterances are too few to split over {devices} devices")
        compile_model(plan.target, recipe, config, len(plan.train), len(data.class_names))
        if config.train.init_from and not runs.resumable_run(runs_dir, config):  # else: from its backup
            warmstart.start_from(plan.run_model.model, config, data.manifest, fold, data.class_names)

        run_dir, resumed = runs.open_run_dir(runs_dir, config)
        if not resumed:
            split = runs.split_table(data.manifest, fold, head_label_columns(recipe, targets))
            runs.write_header(run_dir, config, command or runs.current_command(), data.class_names, split)
        elif verbose:
            print(f"resuming run {run_dir} from its backup")
        if not (resumed or config.train.init_from):  # else the statistics come from the backup / source run
            start_batch_norm_from(plan.target, plan.train)
        fit_callbacks = callbacks_for(run_dir, recipe, config, (plan.train, plan.val), verbose)
        plan.target.fit(as_loader(plan.train), validation_data=as_loader(plan.val), epochs=config.train.epochs,
                        callbacks=fit_callbacks + list(extra_callbacks), verbose=verbose,
                        shuffle=False)  # Batches shuffle (seeded)
        best = run_dir / "best.weights.h5"
        if best.exists():
            plan.target.load_weights(best)  # the epoch with the best *validation* score
        runs.save_model(plan.run_model.model, run_dir)
        metrics = report_run(run_dir, plan.run_model.model, config, data, fold)
    cut_at = next((c.stopped_after for c in fit_callbacks if getattr(c, "stopped_after", None)), None)
    if cut_at:  # by train.time_limit_minutes: the backup stays for the same command to go on
        if verbose:
            print(f"note: the time limit cut this run at epoch {cut_at} of {config.train.epochs}; "
                  f"the same command continues it")
    else:
        shutil.rmtree(run_dir / "backup", ignore_errors=True)  # finished: nothing left to resume
    return run_dir, metrics


def start_batch_norm_from(target, batches) -> None:
    """Start ``target``'s BatchNormalization moving statistics from epoch 0's first full-size batch
    of ``batches`` (models/batchnorm.py says why); train and every search trial call this."""
    from .models.batchnorm import start_moving_statistics

    start_moving_statistics(target, first_full_batch(batches))


def first_full_batch(batches):
    """The inputs of epoch 0's first full-size batch (else of its first batch). A full batch is the
    same on any number of devices (a shorter one is cut to a multiple of them), so a run on one
    and on N devices start BatchNormalization from the same statistics."""
    order = batches.order(0)
    index = next((i for i, items in enumerate(order) if len(items) == batches.batch_size), 0)
    return batches.batch(index, epoch=0)[0]


def steps_in(n_items: int, batch_size: int) -> int:
    return max(1, math.ceil(n_items / batch_size))
