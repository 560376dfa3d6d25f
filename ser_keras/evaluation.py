"""Utterance-level evaluation helpers and cross-validation result tables.

``aggregate_segments`` is STRL-SER's segment-level multiplex decision (paper §4.3):
a model trained on fixed-length segments predicts an utterance from all of its
segments, by averaging their class probabilities (the paper's rule) or, as an option,
by majority vote. ``summarise_folds`` / ``format_fold_table`` turn per-fold metric
dicts (from ``metrics.compute_metrics``) into the ``mean ± std`` table of ``cv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AGGREGATION_METHODS = ("mean", "vote")

# Vote fractions differ by at least 1/segments, so adding this much of the mean
# probability only reorders classes with equal votes: argmax breaks ties by mean
# probability while the row still reads as vote fractions.
_VOTE_TIE_BREAK_WEIGHT = 1e-6

FOLD_TABLE_LABELS = {
    "wa": "WA",
    "ua": "UA",
    "macro_f1": "macro F1",
    "weighted_f1": "weighted F1",
    "macro_precision": "macro precision",
    "weighted_precision": "weighted precision",
    "macro_recall": "macro recall",
    "weighted_recall": "weighted recall",
}
FOLD_TABLE_COLUMNS = list(FOLD_TABLE_LABELS)


def _group_segments(utterance_ids, num_segments: int):
    ids = np.asarray(utterance_ids).reshape(-1)
    if ids.size != num_segments:
        raise ValueError(f"{num_segments} segment rows but {ids.size} utterance ids")
    # factorize keeps the order of first appearance (sort=False).
    codes, uniques = pd.factorize(ids, sort=False)
    return codes, list(uniques)


def aggregate_segments(probabilities, utterance_ids, method: str = "mean"):
    """Combine segment predictions into one probability row per utterance.

    ``probabilities`` is ``(segments, classes)``; ``utterance_ids`` names the utterance
    of each segment. Returns ``(ids, utterance_probs)`` with ids in order of first
    appearance. ``"mean"`` averages segment probabilities; ``"vote"`` returns the
    fraction of segments whose argmax is each class, ties broken by mean probability.
    """
    if method not in AGGREGATION_METHODS:
        raise ValueError(f"method must be one of {AGGREGATION_METHODS}, got {method!r}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0:
        raise ValueError("probabilities must be a non-empty (segments, classes) array")
    codes, ids = _group_segments(utterance_ids, probabilities.shape[0])
    num_utterances, num_classes = len(ids), probabilities.shape[1]
    counts = np.bincount(codes, minlength=num_utterances).astype(np.float64)[:, None]

    summed = np.zeros((num_utterances, num_classes))
    np.add.at(summed, codes, probabilities)
    mean_probs = summed / counts
    if method == "mean":
        return ids, mean_probs

    votes = np.zeros((num_utterances, num_classes))
    np.add.at(votes, (codes, probabilities.argmax(axis=1)), 1.0)
    fractions = votes / counts
    tie_broken = fractions + _VOTE_TIE_BREAK_WEIGHT * mean_probs
    return ids, tie_broken / tie_broken.sum(axis=1, keepdims=True)


def utterance_labels(segment_labels, utterance_ids):
    """One label per utterance (same order as ``aggregate_segments``).

    Raises ``ValueError`` if the segments of one utterance carry different labels,
    which would mean the segmentation mixed utterances up.
    """
    labels = np.asarray(segment_labels).reshape(-1)
    codes, ids = _group_segments(utterance_ids, labels.size)
    _, first_index = np.unique(codes, return_index=True)
    result = labels[first_index]
    if np.any(labels != result[codes]):
        raise ValueError("segments of the same utterance carry different labels")
    return ids, result


def summarise_folds(fold_metrics: list[dict], fold_names) -> pd.DataFrame:
    """Per-fold rows plus ``mean`` and ``std`` rows (sample std, ddof=1) of the averaged metrics.

    With a single fold the ``std`` row is NaN: one fold says nothing about spread.
    """
    fold_names = [str(name) for name in fold_names]
    if not fold_metrics:
        raise ValueError("summarise_folds needs at least one fold")
    if len(fold_metrics) != len(fold_names):
        raise ValueError(f"{len(fold_metrics)} fold results but {len(fold_names)} fold names")
    if {"mean", "std"} & set(fold_names):
        raise ValueError("fold names 'mean' and 'std' are reserved for the summary rows")
    rows = [[float(metrics[key]) for key in FOLD_TABLE_COLUMNS] for metrics in fold_metrics]
    folds = pd.DataFrame(rows, index=fold_names, columns=FOLD_TABLE_COLUMNS)
    summary = pd.DataFrame(
        [folds.mean(axis=0), folds.std(axis=0, ddof=1)], index=["mean", "std"]
    )
    table = pd.concat([folds, summary])
    table.index.name = "fold"
    return table


def format_fold_table(df: pd.DataFrame) -> str:
    """``mean ± std`` per metric in percent with 2 decimals, one metric per line."""
    num_folds = len(df.index) - 2
    width = max(len(label) for label in FOLD_TABLE_LABELS.values())
    lines = [f"{'metric':<{width}}  mean ± std (%) over {num_folds} fold(s)"]
    for key in FOLD_TABLE_COLUMNS:
        mean, std = 100 * df.loc["mean", key], 100 * df.loc["std", key]
        spread = "n/a" if np.isnan(std) else f"{std:.2f}"
        lines.append(f"{FOLD_TABLE_LABELS[key]:<{width}}  {mean:6.2f} ± {spread}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- runners

def evaluate_run(run_dir, dataset=None, data_dir=None, progress=True) -> tuple[dict, "Path"]:
    """Re-score a trained run: on its own test part, or on a whole other corpus whose labels
    are mapped onto the model's classes (cross-corpus evaluation; other labels are dropped)."""
    import time
    from pathlib import Path

    from . import reports
    from .export import load_run
    from .metrics import compute_metrics
    from .training import cross_corpus_data, load_data, make_datasets, make_targets, predict_part

    run = load_run(run_dir)
    config, classes, model = run.config, run.class_names, run.model
    if dataset is None:
        data = load_data(config, progress=progress)
        data.class_names = classes
        fold = data.folds[config.data.fold]
        name = "test"
    else:
        data, fold, dropped = cross_corpus_data(config, classes, dataset, data_dir, progress)
        name = dataset
    targets = make_targets(config, data, fold)
    datasets, owners = make_datasets(config, data, fold, targets, config.data.seed, parts=("test",))
    probs, _, _ = predict_part(model, config, datasets["test"], owners and owners["test"])
    lookup = {n: i for i, n in enumerate(classes)}
    y_true = data.manifest["label"].iloc[fold.test].map(lookup).to_numpy()
    metrics = compute_metrics(y_true, probs.argmax(axis=1), classes)
    out = Path(run_dir) / f"eval-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir()
    files = data.manifest["path"].iloc[fold.test].tolist()
    reports.write_predictions_csv(out, files, y_true, probs.argmax(axis=1), probs, classes)
    extra = {"dataset": dataset or config.data.dataset, "n_dropped": 0 if dataset is None else dropped}
    reports.write_metrics_json(out, metrics, **extra)
    reports.plot_confusion(out / "confusion.png", metrics["confusion"], classes)
    return metrics, out


def run_cv(config, runs_dir="runs", progress=True, verbose=1):
    """Train and test every fold of ``config.data.protocol``; returns (table, summary dir)."""
    import copy
    import time
    from pathlib import Path

    from .training import load_data, train

    data = load_data(config, progress=progress)
    fold_metrics, names = [], []
    for index, fold in enumerate(data.folds):
        fold_config = copy.deepcopy(config)
        fold_config.data.fold = index
        if verbose:
            print(f"fold {index + 1}/{len(data.folds)}: {fold.name} {fold.sizes()}")
        run_dir, metrics = train(fold_config, runs_dir=runs_dir, progress=progress, data=data, verbose=verbose)
        fold_metrics.append(metrics)
        names.append(fold.name)
    table = summarise_folds(fold_metrics, names)
    out = Path(runs_dir) / f"cv-{config.arch}-{config.data.dataset}-{config.data.protocol}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    table.to_csv(out / "folds.csv")
    (out / "config.json").write_text(config.to_json())
    (out / "summary.txt").write_text(format_fold_table(table) + "\n")
    return table, out
