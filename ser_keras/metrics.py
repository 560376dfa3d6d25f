"""Classification metrics: WA, UA, precision / recall / F1, confusion matrices.

Definitions (SPEC §2 "Metrics", STRL-SER paper §5.2), with ``K`` classes and
integer labels ``0..K-1``:

- **WA** (weighted accuracy) is plain accuracy: correct / all. Every utterance counts
  once, so large classes dominate.
- **UA** (unweighted accuracy) is the mean per-class recall over the classes that
  occur in ``y_true`` -- scikit-learn's ``balanced_accuracy_score``. A class with no
  test utterances has no recall, so it is left out of the mean rather than counted
  as 0 (this matters for LOSO folds where a speaker lacks an emotion).
- **macro / weighted precision, recall, F1** are scikit-learn's
  ``precision_recall_fscore_support`` over ``labels=range(K)`` with
  ``zero_division=0``: macro is the unweighted mean over all ``K`` classes, weighted
  averages by support. Unlike UA, ``macro_recall`` does count an absent class as 0,
  so the two differ exactly when a class is missing from ``y_true``.
  (The STRL-SER paper writes macro F1 as the harmonic mean of macro precision and UA;
  we keep scikit-learn's mean of per-class F1, which is what its code reports.)

``UnweightedAccuracy`` is the same UA as a streaming Keras metric, so that early
stopping and KerasTuner can monitor ``val_unweighted_accuracy``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

AVERAGED_METRICS = (
    "wa",
    "ua",
    "macro_precision",
    "weighted_precision",
    "macro_recall",
    "weighted_recall",
    "macro_f1",
    "weighted_f1",
)


def _as_label_array(values, num_classes: int, what: str) -> np.ndarray:
    labels = np.asarray(values).reshape(-1)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(f"{what} must hold integer class indices")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{what} holds class indices outside 0..{num_classes - 1}")
    return labels


def recall_per_present_class(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class that has support (row sum > 0) in a confusion matrix."""
    support = confusion.sum(axis=1)
    present = support > 0
    return np.diag(confusion)[present] / support[present]


def _row_normalise(confusion: np.ndarray) -> np.ndarray:
    support = confusion.sum(axis=1, keepdims=True).astype(np.float64)
    # Rows without support stay zeros instead of 0/0.
    return np.divide(confusion, support, out=np.zeros(confusion.shape), where=support > 0)


def compute_metrics(y_true, y_pred, class_names) -> dict:
    """All SPEC metrics for integer class indices, as JSON-serialisable Python values."""
    class_names = [str(name) for name in class_names]
    num_classes = len(class_names)
    y_true = _as_label_array(y_true, num_classes, "y_true")
    y_pred = _as_label_array(y_pred, num_classes, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("cannot compute metrics on zero samples")

    labels = list(range(num_classes))
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    metrics = {
        "wa": float(np.trace(confusion) / confusion.sum()),
        "ua": float(np.mean(recall_per_present_class(confusion))),
    }
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        metrics[f"{average}_precision"] = float(precision)
        metrics[f"{average}_recall"] = float(recall)
        metrics[f"{average}_f1"] = float(f1)

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    metrics["classes"] = class_names
    metrics["per_class"] = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    metrics["confusion"] = confusion.astype(int).tolist()
    metrics["confusion_normalised"] = _row_normalise(confusion).tolist()
    metrics["n"] = int(y_true.size)
    return metrics


def format_metrics(metrics: dict, classes=None) -> str:
    """A short text block (headline figures and a per-class table) for the terminal;
    ``classes`` limits the table (cross-corpus: only the classes the test corpus has)."""
    lines = [
        f"WA {100 * metrics['wa']:6.2f} %   UA {100 * metrics['ua']:6.2f} %   "
        f"macro F1 {100 * metrics['macro_f1']:6.2f} %   weighted F1 "
        f"{100 * metrics['weighted_f1']:6.2f} %   (n = {metrics['n']})"
    ]
    shown = metrics["classes"] if classes is None else list(classes)
    if metrics.get("n_dropped"):
        lines.append(f"dropped: {metrics['n_dropped']} utterance(s) whose label the model does not know")
    width = max([len("class")] + [len(name) for name in shown])
    lines.append(f"{'class':<{width}}  precision  recall      f1  support")
    for name in shown:
        row = metrics["per_class"][name]
        lines.append(
            f"{name:<{width}}  {100 * row['precision']:9.2f}  {100 * row['recall']:6.2f}"
            f"  {100 * row['f1']:6.2f}  {row['support']:7d}"
        )
    return "\n".join(lines)


@keras.saving.register_keras_serializable(package="ser_keras")
class UnweightedAccuracy(keras.metrics.Metric):
    """Streaming UA: mean recall over the classes seen so far in ``y_true``.

    Accumulates a ``num_classes × num_classes`` confusion matrix (rows = true class)
    in a non-trainable variable, so the value over an epoch equals
    ``sklearn.metrics.balanced_accuracy_score`` on all its batches -- not a mean of
    per-batch values. Accepts sparse integer labels (``(batch,)`` or ``(batch, 1)``)
    or one-hot labels, and class probabilities (or logits) as predictions.
    """

    def __init__(self, num_classes: int, name: str = "unweighted_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if int(num_classes) < 2:
            raise ValueError("UnweightedAccuracy needs num_classes >= 2")
        self.num_classes = int(num_classes)
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="float32",
            name="confusion",
        )

    def _true_indices(self, y_true, y_pred):
        y_true = ops.convert_to_tensor(y_true)
        is_one_hot = (
            len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == self.num_classes
        )
        if is_one_hot:
            y_true = ops.argmax(y_true, axis=-1)
        return ops.reshape(ops.cast(y_true, "int32"), (-1,))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        true_index = self._true_indices(y_true, y_pred)
        pred_index = ops.reshape(ops.argmax(y_pred, axis=-1), (-1,))
        true_one_hot = ops.one_hot(true_index, self.num_classes, dtype="float32")
        pred_one_hot = ops.one_hot(pred_index, self.num_classes, dtype="float32")
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
            true_one_hot = true_one_hot * weight
        # (C, N) @ (N, C): entry [i, j] counts samples of true class i predicted as j.
        batch_confusion = ops.matmul(ops.transpose(true_one_hot), pred_one_hot)
        self.confusion.assign(self.confusion + batch_confusion)

    def result(self):
        support = ops.sum(self.confusion, axis=1)
        present = ops.cast(support > 0, "float32")
        recall = ops.diagonal(self.confusion) / ops.maximum(support, 1.0)
        # Classes with no support are left out of the mean, as in balanced accuracy.
        return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), "float32"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
