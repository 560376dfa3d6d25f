#!/usr/bin/env python
"""Regenerate the README results table from run directories, so no figure is typed by hand.

    python benchmarks/results_table.py runs/*/ [--readme README.md]

One row per finished run (a folder with metrics.json): architecture, protocol, split, epochs
trained (best), device, test WA / UA / macro F1 (and WA / UA of auxiliary heads such as
bilstm_att_mtl's speed and volume), the SVM baseline on the same split (from
``python cli.py baseline RUN_DIR``), the paper's figure where the paper used that corpus and
protocol, the run (its directory, whose name holds its start time, and the git commit of the
code that trained it where recorded), and the command that made the run. With ``--readme`` the
table replaces the text between ``<!-- results:begin -->`` and ``<!-- results:end -->``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
# (arch, dataset, protocol) -> the paper's reported figure on that setting.
PAPER = {
    ("cldnn", "ravdess", "paper"): "80 % WA (7 cl.; checkpoint chosen on test)",
    ("strl_ser", "ravdess", "paper"): "88.88 / 87.85",
}


def row(run_dir: Path) -> dict | None:
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        return None
    metrics = json.loads(metrics_path.read_text())
    config = json.loads((run_dir / "config.json").read_text())
    env = config.get("environment", {})
    history = run_dir / "history.csv"
    epochs = "—"
    if history.is_file() and history.stat().st_size:
        h = pd.read_csv(history)
        monitor = metrics.get("checkpoint_selection", "val_loss").split()[0]  # what selected the checkpoint
        monitor = monitor if monitor in h else "val_loss"
        best = h[monitor].idxmax() if "acc" in monitor else h[monitor].idxmin()
        epochs = f"{len(h)} ({int(best) + 1})"
    baseline = run_dir / "baseline-svm" / "metrics.json"
    svm = "—"
    if baseline.is_file():
        b = json.loads(baseline.read_text())
        svm = f"{100 * b['wa']:.1f} / {100 * b['ua']:.1f}"
    sizes = metrics.get("split_sizes", {})
    command = (run_dir / "command.txt").read_text().strip() if (run_dir / "command.txt").is_file() else ""
    key = (config["arch"], config["data"]["dataset"], config["data"]["protocol"])
    return {
        "arch": config["arch"], "dataset": config["data"]["dataset"], "protocol": config["data"]["protocol"],
        "split": f"{metrics.get('fold', '')} {sizes.get('train', '?')}/{sizes.get('val', '?')}/{sizes.get('test', '?')}",
        "epochs (best)": epochs,
        "device": f"{env.get('device', '?')}, {env.get('backend', '?')}",
        "WA / UA %": f"{100 * metrics['wa']:.1f} / {100 * metrics['ua']:.1f}",
        "macro F1 %": f"{100 * metrics['macro_f1']:.1f}",
        "other heads WA / UA %": "; ".join(f"{head} {100 * m['wa']:.1f} / {100 * m['ua']:.1f}"
                                           for head, m in metrics.get("heads", {}).items()) or "—",
        "SVM WA / UA % (same split)": svm,
        "paper": PAPER.get(key, "—"),
        "run": run_name(run_dir) + (f" ({env['code']})" if env.get("code") else ""),
        "command": f"`{command}`",
    }


def run_name(run_dir: Path) -> str:
    """The run directory's name; a search's ``best/`` keeps its search directory's name."""
    return "/".join(run_dir.parts[-2:]) if run_dir.name == "best" else run_dir.name


def markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no finished runs)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--readme", type=Path, help="replace the table between the results markers in this file")
    args = parser.parse_args(argv)
    rows = [r for r in (row(d) for d in sorted(args.run_dirs)) if r]
    rows.sort(key=lambda r: (r["arch"], r["protocol"], r["split"]))
    table = markdown(rows)
    print(table)
    if args.readme:
        text = args.readme.read_text()
        if BEGIN not in text or END not in text:
            print(f"error: {args.readme} has no {BEGIN} ... {END} markers", file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        args.readme.write_text(head + BEGIN + "\n" + table + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
