"""The callbacks that ``train`` adds to fit beyond Keras' own (``training.callbacks_for``):
utterance-level validation for segment models, BatchNormalization statistics recomputed before
validation, a wall-clock limit, and early stopping that a resumed run continues."""

from __future__ import annotations

from pathlib import Path


def monitor_mode(monitor: str) -> str:
    """How checkpoints and early stopping read ``monitor``: an accuracy up ("max"), a loss down ("min")."""
    return "max" if "acc" in monitor else "min"


def logged_best(history: Path, monitor: str, mode: str):
    """(best value of ``monitor`` in a run's history.csv, its epoch, the last epoch logged), or
    None when nothing is logged yet (a new run)."""
    import pandas as pd

    if not history.exists() or history.stat().st_size == 0:
        return None
    logged = pd.read_csv(history)
    values = logged.get(monitor)
    if values is None or values.dropna().empty:
        return None
    best_row = values.idxmax() if mode == "max" else values.idxmin()
    return float(values[best_row]), int(logged["epoch"][best_row]), int(logged["epoch"].iloc[-1])


def early_stopping_callback(monitor: str, mode: str, patience: int, logged=None):
    """Keras' EarlyStopping that, in a resumed run, starts from the best value and the epochs
    since it in the run's history (``logged``: ``logged_best`` of it), so the run stops where an
    uninterrupted one would (Keras' own starts counting afresh at every fit)."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if logged is not None:
                self.best, self.best_epoch, last_epoch = logged
                self.wait = last_epoch - self.best_epoch

    return ResumableEarlyStopping(monitor=monitor, mode=mode, patience=patience)


def utterance_validation_callback(batches, aggregate: str):
    """Segment models validate per segment inside fit; the test report scores utterances (their
    segments' predictions combined by ``features.aggregate``). This callback scores the
    validation part the test report's way after each epoch and logs it beside fit's own figures
    as ``val_utterance_accuracy`` and ``val_utterance_unweighted_accuracy``, so that checkpoints
    can be selected on what is reported (``train.monitor=val_utterance_unweighted_accuracy``;
    only then is it added: it predicts the validation part a second time). It comes before the
    checkpoint, early stopping and history callbacks, which read its logs."""
    import keras
    import numpy as np

    from .distribute import predict_on_batch
    from .metrics import compute_metrics
    from .scoring import aggregate_segments, utterance_labels

    class UtteranceValidation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            probabilities, labels = [], []
            for indices in batches.order(0):  # an evaluation part: the same order every epoch
                inputs, targets = batches.make_batch(indices)[:2]
                probabilities.append(np.asarray(predict_on_batch(self.model, inputs)))
                labels.append(np.asarray(targets))
            _, utterance_probs = aggregate_segments(np.concatenate(probabilities), batches.utterance_of, aggregate)
            _, truth = utterance_labels(np.concatenate(labels), batches.utterance_of)
            classes = list(range(utterance_probs.shape[1]))
            scores = compute_metrics(truth, utterance_probs.argmax(axis=1), classes)
            if logs is not None:
                logs["val_utterance_accuracy"] = scores["wa"]
                logs["val_utterance_unweighted_accuracy"] = scores["ua"]

    return UtteranceValidation()


def recompute_batch_norm_callback(batches, count: int):
    """Before each validation inside fit, BatchNormalization's moving statistics are recomputed
    as the average over the first ``count`` batches of the epoch just trained, with the weights
    as they are now (models/batchnorm.py: recompute_moving_statistics says why). Validation,
    the best checkpoint and the saved model then all use those statistics."""
    import keras

    from .models.batchnorm import recompute_moving_statistics

    class RecomputeBatchNorm(keras.callbacks.Callback):
        fitting, epoch = False, 0

        def on_train_begin(self, logs=None):
            self.fitting = True

        def on_train_end(self, logs=None):
            self.fitting = False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_test_begin(self, logs=None):
            if self.fitting:  # fit's own validation; the variables are synced with the trainer here
                n = min(count, len(batches.order(self.epoch)))
                recompute_moving_statistics(self.model, (batches.batch(i, epoch=self.epoch)[0] for i in range(n)))

    return RecomputeBatchNorm()


def time_limit_callback(seconds: float, verbose: int, clock=None):
    """Stops fitting at the end of the epoch after which the next one would not finish within
    ``seconds`` of the start of fit (its length taken as the longest epoch so far). The run then
    ends as any early-stopped one does (best validation checkpoint, test report, metrics) but
    keeps its backup, so the same command continues it (``stopped_after``: the epochs run, if so)."""
    import time

    import keras

    clock = clock or time.monotonic

    class TimeLimit(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = self.epoch_started = clock()
            self.longest = 0.0
            self.stopped_after = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = clock()

        def on_epoch_end(self, epoch, logs=None):
            now = clock()
            self.longest = max(self.longest, now - self.epoch_started)
            last = epoch + 1 >= (self.params or {}).get("epochs", epoch + 2)
            if self.model.stop_training or last:  # fit ends anyway (early stopping, NaN, last epoch)
                return
            if now - self.started + self.longest > seconds:
                self.model.stop_training = True
                self.stopped_after = epoch + 1
                if verbose:
                    print(f"note: stopping after epoch {epoch + 1}: train.time_limit_minutes "
                          f"({seconds / 60:g}) leaves no time for another epoch")

    return TimeLimit()
