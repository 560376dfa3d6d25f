"""Cross-validation: train and test every fold of a protocol; the mean ± std table."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd

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
    summary = pd.DataFrame([folds.mean(axis=0), folds.std(axis=0, ddof=1)], index=["mean", "std"])
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


def run_cv(config, runs_dir="runs", progress=True, verbose=1):
    """Train and test every fold of ``config.data.protocol``; returns (table, summary dir).

    A fold whose identical run finished earlier under ``runs_dir`` is not trained again: its
    scores are read back, so the same command goes on after an interruption (an unfinished fold
    resumes from its backup, as `train` does). ``folds.csv`` names each fold's run folder beside
    its metrics."""
    from .loading import load_data
    from .runs import FINISHED_MARKER, finished_run, split_table, unique_dir
    from .training import train

    data = load_data(config, progress=progress)
    fold_metrics, names, run_dirs = [], [], []
    for index, fold in enumerate(data.folds):
        fold_config = copy.deepcopy(config)
        fold_config.data.fold = index
        done = finished_run(runs_dir, fold_config, split_table(data.manifest, fold, {}))
        if verbose:
            print(f"fold {index + 1}/{len(data.folds)}: {fold.name} {fold.sizes()}"
                  + (f": finished earlier in {done}, its scores are reused" if done else ""))
        if done:
            run_dir, metrics = done, json.loads((done / FINISHED_MARKER).read_text())
        else:
            run_dir, metrics = train(fold_config, runs_dir=runs_dir, progress=progress, data=data, verbose=verbose)
        fold_metrics.append(metrics)
        names.append(fold.name)
        run_dirs.append(str(run_dir))
    table = summarise_folds(fold_metrics, names)
    out = unique_dir(Path(runs_dir), f"cv-{config.arch}-{config.data.dataset}-{config.data.protocol}")
    table.assign(run_dir=run_dirs + ["", ""]).to_csv(out / "folds.csv")
    (out / "config.json").write_text(config.to_json())
    (out / "summary.txt").write_text(format_fold_table(table) + "\n")
    return table, out
