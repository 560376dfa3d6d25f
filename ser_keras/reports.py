"""Run reports: metrics.json, predictions.csv and PNG plots.

Plots use matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``),
never ``pyplot``: nothing depends on a display, no global figure state leaks between
runs, and a GUI backend chosen elsewhere is left alone. Every file is written to a
temporary name in the destination folder and renamed when complete, so a crash never
leaves a half-written report behind. The temporary file is created with ``os.open`` (not
``tempfile.mkstemp``, whose 0600 would survive the rename) so reports get the umask's mode
like any other file.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
TSNE_MAX_POINTS = 2000  # t-SNE is O(n^2) in memory; a seeded subsample keeps plots quick
TSNE_PCA_DIMS = 50  # the usual PCA pre-reduction before t-SNE on high-dimensional inputs
TSNE_EXACT_MAX_POINTS = 300  # below this, exact t-SNE is faster than Barnes-Hut's tree overhead


# ---------------------------------------------------------------------------- writing
def write_atomically(path, write) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    # O_EXCL: a unique name we own; mode 0o666 is filtered by the umask (0644 under 022).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def to_jsonable(value):
    """numpy scalars / arrays and paths to plain Python; NaN and inf become ``None``."""
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN
    return value


def write_metrics_json(run_dir, metrics: dict, **extra) -> Path:
    """``run_dir/metrics.json``: the keys of ``compute_metrics`` plus ``extra``
    (protocol, split sizes, seed, ...)."""
    clashes = set(metrics) & set(extra)
    if clashes:
        raise ValueError(f"extra keys would overwrite metrics: {sorted(clashes)}")
    payload = to_jsonable({**metrics, **extra})
    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    return write_atomically(
        Path(run_dir) / METRICS_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8")
    )


def write_predictions_csv(
    run_dir, files, y_true, y_pred, probabilities, class_names
) -> Path:
    """``run_dir/predictions.csv``: file, true, predicted (class names), ``p_<class>``...

    ``y_true`` may be ``None`` for unlabelled files; the ``true`` column is then empty.
    """
    class_names = [str(name) for name in class_names]
    probabilities = np.asarray(probabilities, dtype=np.float64)
    files = [str(f) for f in files]
    y_pred = np.asarray(y_pred).reshape(-1)
    if probabilities.shape != (len(files), len(class_names)) or y_pred.size != len(files):
        raise ValueError(
            f"{len(files)} files need y_pred of that length and probabilities of shape "
            f"({len(files)}, {len(class_names)}); got {y_pred.size} and {probabilities.shape}"
        )
    names = np.asarray(class_names, dtype=object)
    true = [""] * len(files) if y_true is None else names[np.asarray(y_true).reshape(-1)]
    table = pd.DataFrame({"file": files, "true": true, "predicted": names[y_pred]})
    for i, name in enumerate(class_names):
        table[f"p_{name}"] = probabilities[:, i]
    return write_atomically(
        Path(run_dir) / PREDICTIONS_FILE, lambda tmp: table.to_csv(tmp, index=False)
    )


def _save_figure(fig: Figure, path) -> Path:
    FigureCanvasAgg(fig)  # attaches the Agg canvas; no pyplot, no display
    return write_atomically(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    )


# -------------------------------------------------------------------------- confusion
def plot_confusion(path, confusion, class_names, title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix (rows = true class); cells show % and count."""
    counts = np.asarray(confusion, dtype=np.float64)
    support = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)
    num_classes = len(class_names)
    size = max(4.0, 0.7 * num_classes + 2.0)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.add_subplot()
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(num_classes), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(num_classes), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(num_classes):
        for j in range(num_classes):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            text = f"{100 * normalised[i, j]:.0f}%\n({counts[i, j]:.0f})"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    return _save_figure(fig, path)


# ---------------------------------------------------------------------------- history
def _history_panels(history: pd.DataFrame) -> dict[str, list[str]]:
    """Training-side metric names per panel; ``val_`` twins are drawn next to them."""
    names = [c for c in history.columns if not str(c).startswith("val_") and c != "epoch"]
    val_only = [c[4:] for c in history.columns if str(c).startswith("val_")]
    names += [name for name in val_only if name not in names]
    return {
        "loss": [n for n in names if str(n).endswith("loss")],
        "accuracy": [n for n in names if str(n).endswith("accuracy")],
    }


def plot_history(path, history) -> Path:
    """Loss and accuracy / UA curves, train solid vs. validation dashed.

    ``history`` is Keras' ``history.csv`` (CSVLogger) or a DataFrame. Any columns that
    exist are drawn, so multi-output runs show ``emotion_loss``, ``speed_loss``, ...
    """
    if not isinstance(history, pd.DataFrame):
        history = pd.read_csv(history)
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    panels = _history_panels(history)
    fig = Figure(figsize=(11, 4))
    for position, (panel, names) in enumerate(panels.items(), start=1):
        ax = fig.add_subplot(1, 2, position)
        for k, name in enumerate(names):
            colour = f"C{k % 10}"
            if name in history:
                ax.plot(epochs, history[name], color=colour, label=f"train {name}")
            if f"val_{name}" in history:
                ax.plot(epochs, history[f"val_{name}"], "--", color=colour, label=f"val {name}")
        if names:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, f"no {panel} logged", ha="center", va="center",
                    transform=ax.transAxes)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
    return _save_figure(fig, path)


# ------------------------------------------------------------------------------ t-SNE
def _tsne_2d(features: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n, dims = features.shape
    if dims > TSNE_PCA_DIMS and n > TSNE_PCA_DIMS:
        features = PCA(n_components=TSNE_PCA_DIMS, random_state=seed).fit_transform(features)
    # sklearn requires perplexity < n; (n - 1) / 3 is the usual small-sample ceiling.
    perplexity = min(30.0, max(1.0, (n - 1) / 3.0))
    method = "exact" if n <= TSNE_EXACT_MAX_POINTS else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", method=method,
                random_state=seed)
    return tsne.fit_transform(features)


def _class_colour(index: int, num_classes: int):
    if num_classes <= 10:
        return f"C{index}"
    return colormaps["tab20"](index % 20)


def _scatter_by_class(ax, points, labels, class_names, title):
    for index, name in enumerate(class_names):
        chosen = labels == index
        if chosen.any():
            colour = _class_colour(index, len(class_names))
            ax.scatter(points[chosen, 0], points[chosen, 1], s=12, label=name, color=colour)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_tsne(path, input_features, embeddings, labels, class_names, seed: int = 0) -> Path:
    """t-SNE of the input features beside t-SNE of the learned embedding (CLDNN Fig. 4).

    Inputs of any shape are flattened per sample; more than ``TSNE_MAX_POINTS`` samples
    are subsampled with ``seed``. Copes with as few as a handful of points.
    """
    # float32 halves memory for large spectrogram inputs; t-SNE does not need more.
    inputs = np.asarray(input_features, dtype=np.float32)
    learned = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels).reshape(-1)
    n = labels.size
    if inputs.shape[0] != n or learned.shape[0] != n:
        raise ValueError("input_features, embeddings and labels need the same length")
    if n < 3:
        raise ValueError("t-SNE needs at least 3 samples")
    rng = np.random.default_rng(seed)
    keep = np.arange(n)
    if n > TSNE_MAX_POINTS:
        keep = np.sort(rng.choice(n, TSNE_MAX_POINTS, replace=False))
    inputs, learned, labels = inputs[keep], learned[keep], labels[keep]

    fig = Figure(figsize=(11, 5))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _scatter_by_class(left, _tsne_2d(inputs.reshape(len(labels), -1), seed), labels,
                      class_names, "t-SNE of input features")
    _scatter_by_class(right, _tsne_2d(learned.reshape(len(labels), -1), seed), labels,
                      class_names, "t-SNE of learned embedding")
    right.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save_figure(fig, path)
