#!/usr/bin/env python
"""How steady a run's validation curve is, read from its history.csv (no training, no test data).

    python benchmarks/validation_curves.py RUN_DIR [RUN_DIR ...] [--skip 3]

Per run: epochs, best validation loss and UA (with their epochs, 1-based), then, from epoch
``--skip + 1`` on (the first epochs move fast in any run), the mean and largest epoch-to-epoch
change of validation accuracy, and the epochs where validation UA is at most 1 / classes + 0.005:
the network gave (almost) every validation clip one label. Used to compare settings meant to
steady training, such as cldnn's ``model.bn_momentum``. Multi-task runs are read on their
emotion head for accuracy and UA; their validation loss is the weighted sum over heads, the
figure their checkpoint selection monitors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def emotion_column(history: pd.DataFrame, metric: str) -> str:
    """``val_<metric>`` of a one-output model, ``val_emotion_<metric>`` of a multi-task one."""
    for name in (f"val_{metric}", f"val_emotion_{metric}"):
        if name in history:
            return name
    raise ValueError(f"history has no val_{metric} or val_emotion_{metric} column")


def curve_summary(history: pd.DataFrame, num_classes: int, skip: int = 3) -> dict:
    if history.empty or "val_loss" not in history:
        raise ValueError("history has no validated epochs (no rows, or no val_loss column)")
    val_loss = history["val_loss"].to_numpy()
    val_ua = history[emotion_column(history, "unweighted_accuracy")].to_numpy()
    val_acc = history[emotion_column(history, "accuracy")].to_numpy()
    steps = np.diff(val_acc[skip:])
    collapsed = np.flatnonzero(val_ua <= 1.0 / num_classes + 0.005) + 1
    return {
        "epochs": len(history),
        "best_val_loss": float(val_loss.min()), "best_val_loss_epoch": int(val_loss.argmin()) + 1,
        "best_val_ua": float(val_ua.max()), "best_val_ua_epoch": int(val_ua.argmax()) + 1,
        "mean_abs_change": float(np.abs(steps).mean()) if steps.size else float("nan"),
        "largest_drop": float(max(0.0, -steps.min())) if steps.size else float("nan"),
        "one_label_epochs": [int(epoch) for epoch in collapsed],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--skip", type=int, default=3, help="first epochs left out of the change figures")
    args = parser.parse_args(argv)
    if args.skip < 0:
        parser.error(f"--skip must be 0 or more, got {args.skip}")
    print(f"{'run':<40} {'epochs':>6} {'best val loss (ep)':>18} {'best val UA (ep)':>16} "
          f"{'mean |Δ val acc|':>16} {'largest drop':>12}  one-label epochs")
    for run in args.runs:
        history_path, classes_path = run / "history.csv", run / "classes.json"
        if not (history_path.is_file() and classes_path.is_file()):
            print(f"error: {run} is not a run directory (no history.csv / classes.json)", file=sys.stderr)
            return 2
        try:
            s = curve_summary(pd.read_csv(history_path), len(json.loads(classes_path.read_text())), args.skip)
        except ValueError as err:  # a history without validation columns, or with no epochs
            print(f"error: {history_path}: {err}", file=sys.stderr)
            return 2
        print(f"{run.name:<40} {s['epochs']:>6} {s['best_val_loss']:>13.3f} ({s['best_val_loss_epoch']:>2}) "
              f"{s['best_val_ua']:>11.3f} ({s['best_val_ua_epoch']:>2}) {s['mean_abs_change']:>16.3f} "
              f"{s['largest_drop']:>12.3f}  {s['one_label_epochs'] or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
