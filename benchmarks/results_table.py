#!/usr/bin/env python
"""Regenerate the README results table from run directories, so no figure is typed by hand.

    python benchmarks/results_table.py RUN_DIR... [--record-to results] [--readme README.md]
    python benchmarks/results_table.py results --readme README.md

One row per finished run (a folder with metrics.json): architecture, protocol, split, epochs
trained (best), device, test WA / UA / macro F1 (and WA / UA of auxiliary heads such as
bilstm_att_mtl's speed and volume), the SVM baseline on the same split (from
``python cli.py baseline RUN_DIR``), the paper's figure where the paper used that corpus and
protocol, the run (its directory, whose name holds its start time, and the git commit of the
code that trained it where recorded), and the command that made the run. With ``--readme`` the
table replaces the text between ``<!-- results:begin -->`` and ``<!-- results:end -->``.

A run directory holds weights and lives in the ignored ``runs/``, so it stays on the machine that
trained it. ``--record-to results`` copies the small files every figure comes from (RECORD_FILES)
into ``results/<run>/``, which is committed, and makes the table from every record there: so the
table is regenerated from ``results`` on any clone, and a test checks that the README's table is
exactly that. A folder that is not a run stands for every run folder beneath it.

A second table, between ``<!-- spread:begin -->`` and ``<!-- spread:end -->``, gathers the runs
of one command on several seeds (the seed also draws a protocol's split: other test speakers under
``speaker``): per command, the mean and spread of test UA beside the SVM's on the same splits, and
on how many splits the model is at or above the SVM. One split can flatter or wrong a model by
several points; this says whether a row's margin over the SVM holds on other speakers.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ser_keras.reports import write_atomically  # noqa: E402

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SPREAD_BEGIN, SPREAD_END = "<!-- spread:begin -->", "<!-- spread:end -->"
# (arch, dataset, protocol) -> the paper's reported figure on that setting.
PAPER = {
    ("cldnn", "ravdess", "paper"): "80 % WA (7 cl.; checkpoint chosen on test)",
    ("strl_ser", "ravdess", "paper"): "88.88 / 87.85",
}
# What a row is made of; weights, logs and split.csv (file paths, ~150 kB) stay in the run folder.
RECORD_FILES = ("command.txt", "config.json", "classes.json", "metrics.json", "history.csv",
                "baseline-svm/metrics.json")


def is_run(folder: Path) -> bool:
    return (folder / "metrics.json").is_file() and (folder / "config.json").is_file()


def run_folders(paths: list[Path]) -> list[Path]:
    """Each path that is a run, and for any other folder every run beneath it (a search's ``best``)."""
    found = []
    for path in paths:
        if is_run(path):
            found.append(path)
        elif path.is_dir():
            found += sorted(m.parent for m in path.rglob("metrics.json")
                            if is_run(m.parent))  # a run's baseline-svm/ has no config.json
    return found


def record(run_dir: Path, to: Path) -> Path:
    """Copy the run's RECORD_FILES to ``to/<run name>/`` (replacing an earlier copy of the same
    run); returns that folder. Two runs started in the same second in different runs folders
    share a name: the second is recorded as ``<run name>-2``, never over the first."""
    target = _record_folder(run_dir, to)
    if target.resolve() == run_dir.resolve():  # already the record (``results --record-to results``)
        return target
    if target.exists():
        shutil.rmtree(target)
    for name in RECORD_FILES:
        if (run_dir / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / name, target / name)
    return target


def _record_folder(run_dir: Path, to: Path) -> Path:
    """``to/<run name>``, or the first ``-N`` suffix that is free or already this run's record
    (the same command.txt and config.json: the run recorded before)."""
    name = run_name(run_dir)
    for suffix in range(1, 1000):
        target = to / (name if suffix == 1 else f"{name}-{suffix}")
        if not target.exists() or target.resolve() == run_dir.resolve() or all(
                (target / f).is_file() and (target / f).read_bytes() == (run_dir / f).read_bytes()
                for f in ("command.txt", "config.json")):
            return target
    raise SystemExit(f"error: no free record name for {run_dir} under {to}")


def row(run_dir: Path) -> dict | None:
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        return None
    metrics = json.loads(metrics_path.read_text())
    config = json.loads((run_dir / "config.json").read_text())
    env = config.get("environment", {})
    epochs = epochs_column(run_dir, metrics, config)
    baseline = run_dir / "baseline-svm" / "metrics.json"
    svm = "—"
    if baseline.is_file():
        b = json.loads(baseline.read_text())
        svm = f"{100 * b['wa']:.1f} / {100 * b['ua']:.1f}"
    sizes = metrics.get("split_sizes", {})
    command = (run_dir / "command.txt").read_text().strip() if (run_dir / "command.txt").is_file() else ""
    key = (config["arch"], config["data"]["dataset"], config["data"]["protocol"])
    return {
        "arch": config["arch"], "dataset": dataset_name(config), "protocol": config["data"]["protocol"],
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


def trained_and_best(run_dir: Path, metrics: dict) -> tuple[int, int] | None:
    """(epochs in history.csv, the 1-based epoch that selected the checkpoint), or None."""
    history = run_dir / "history.csv"
    if not (history.is_file() and history.stat().st_size):
        return None
    h = pd.read_csv(history)
    monitor = metrics.get("checkpoint_selection", "val_loss").split()[0]  # what selected the checkpoint
    monitor = monitor if monitor in h else "val_loss"
    best = h[monitor].idxmax() if "acc" in monitor else h[monitor].idxmin()
    return len(h), int(best) + 1


def epochs_column(run_dir: Path, metrics: dict, config: dict) -> str:
    """"trained (best)"; a run warm-started from another (train.init_from) counts on from the
    source's best epoch, whose weights it started from: "120 + 48 (120 + 30)" when the source's
    record sits beside it, else "48 (30) after <source>"."""
    own = trained_and_best(run_dir, metrics)
    if own is None:
        return "—"
    source = (config.get("train") or {}).get("init_from")
    if not source:
        return f"{own[0]} ({own[1]})"
    record = run_dir.parent / Path(source).name
    before = (trained_and_best(record, json.loads((record / "metrics.json").read_text()))
              if (record / "metrics.json").is_file() else None)
    if before is None:
        return f"{own[0]} ({own[1]}) after {Path(source).name}"
    return f"{before[1]} + {own[0]} ({before[1]} + {own[1]})"


def dataset_name(config: dict) -> str:
    """The corpus reader, and for ``csv`` (any corpus) which manifest: ``csv (ravdess10.csv)``."""
    data = config["data"]
    if data["dataset"] != "csv" or not data.get("data_dir"):
        return data["dataset"]
    return f"csv ({Path(data['data_dir']).name})"


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


def results_markdown(runs: list[Path]) -> str:
    """The table for these run folders: one row each, by architecture, dataset, protocol and split."""
    rows = [r for r in (row(d) for d in sorted(runs)) if r]
    rows.sort(key=lambda r: (r["arch"], r["dataset"], r["protocol"], r["split"]))
    return markdown(rows)


def command_key(command: str) -> str:
    """What runs of one command on several seeds share: the command without ``--seed N`` or
    ``--seed=N`` (seed 0 is the default, written without it) and without ``--runs-dir DIR``
    (where the run folder was written, which changes nothing it trains)."""
    return re.sub(r" --(?:seed[ =]\d+|runs-dir[ =]\S+)", "", command)


def seed_groups(runs: list[Path]) -> dict[str, dict[int, Path]]:
    """Runs by ``command_key`` (the command without seed and output folder), then by seed; of two
    runs with the same command and seed (a rerun after a fix), the later one, since run names
    hold their start time."""
    groups: dict[str, dict[int, Path]] = {}
    for run in sorted(runs, key=lambda r: r.name):
        command_file, baseline = run / "command.txt", run / "baseline-svm" / "metrics.json"
        if not (command_file.is_file() and baseline.is_file()):
            continue
        seed = int(json.loads((run / "config.json").read_text())["data"].get("seed", 0))
        groups.setdefault(command_key(command_file.read_text().strip()), {})[seed] = run
    return groups


def spread_markdown(runs: list[Path]) -> str:
    """One line per command run on two or more seeds: UA and the SVM's UA on the same splits."""
    def ua(path: Path) -> float:
        return 100 * json.loads(path.read_text())["ua"]

    rows = []
    for command, by_seed in seed_groups(runs).items():
        if len(by_seed) < 2:
            continue
        model = pd.Series([ua(r / "metrics.json") for r in by_seed.values()])
        svm = pd.Series([ua(r / "baseline-svm" / "metrics.json") for r in by_seed.values()])
        gap = model - svm
        config = json.loads((next(iter(by_seed.values())) / "config.json").read_text())
        rows.append({
            "arch": config["arch"], "dataset": dataset_name(config), "protocol": config["data"]["protocol"],
            "seeds (splits)": ", ".join(str(s) for s in sorted(by_seed)),
            "UA %, mean ± sd": f"{model.mean():.1f} ± {model.std():.1f}",
            "SVM UA %, mean ± sd": f"{svm.mean():.1f} ± {svm.std():.1f}",
            "UA − SVM UA, mean (min … max)": f"{gap.mean():+.1f} ({gap.min():+.1f} … {gap.max():+.1f})",
            "splits at or above the SVM": f"{int((gap >= 0).sum())} of {len(gap)}",
            "command (add `--seed N`)": f"`{command}`",
        })
    rows.sort(key=lambda r: (r["arch"], r["dataset"], r["protocol"]))
    return markdown(rows) if rows else "(no command run on two or more seeds)"


def replace_between(text: str, begin: str, end: str, block: str) -> str:
    head, rest = text.split(begin, 1)
    return head + begin + "\n" + block + "\n" + end + rest.split(end, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders, or folders holding them")
    parser.add_argument("--record-to", type=Path, metavar="DIR",
                        help="copy each run's record files to DIR/<run>/ and make the table from every record in DIR")
    parser.add_argument("--readme", type=Path, help="replace the table between the results markers in this file")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.run_dirs if not p.is_dir()]
    if missing:
        print(f"error: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    runs = run_folders(args.run_dirs)
    if args.record_to:  # the table is then every record there, the runs just copied among them
        for run in runs:
            record(run, args.record_to)
        runs = run_folders([args.record_to])
    table, spread = results_markdown(runs), spread_markdown(runs)
    print(table + "\n\n" + spread)
    if args.readme:
        text = args.readme.read_text()
        if BEGIN not in text or END not in text:
            print(f"error: {args.readme} has no {BEGIN} ... {END} markers", file=sys.stderr)
            return 1
        text = replace_between(text, BEGIN, END, table)
        if SPREAD_BEGIN in text and SPREAD_END in text:  # the seed table is optional in a README
            text = replace_between(text, SPREAD_BEGIN, SPREAD_END, spread)
        write_atomically(args.readme, lambda tmp: Path(tmp).write_text(text))  # never a half-written README
    return 0


if __name__ == "__main__":
    sys.exit(main())
