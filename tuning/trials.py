"""The search's record: ``trials.csv``, ``effects.csv``, ``search.png`` and the progress lines.

Everything is read from the oracle (the one object that knows every trial, also when workers
on other machines ran them) plus the chief's record of which tuner ran which trial.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

TRIALS_FILE = "trials.csv"
PLOT_FILE = "search.png"
VALUE_COLUMN = "val_ua"


def tuned_names(oracle) -> list[str]:
    """The hyperparameters that vary (KerasTuner's ``tuner/...`` bookkeeping and Fixed ones left out)."""
    names = []
    for item in oracle.hyperparameters.space:
        if item.name.startswith("tuner/") or type(item).__name__ == "Fixed" or item.name in names:
            continue
        names.append(item.name)
    return names


def _metric(trial, name):
    try:
        if trial.metrics.exists(name):
            return float(trial.metrics.get_last_value(name))
    except (KeyError, ValueError, TypeError):
        pass
    return math.nan


def trial_table(oracle, owners: dict) -> pd.DataFrame:
    """One row per trial: trial, status, every tuned hyperparameter, val_ua, epochs, seconds, worker."""
    names = tuned_names(oracle)
    rows = []
    for trial_id, trial in sorted(oracle.trials.items(), key=lambda item: _order(item[0])):
        values = trial.hyperparameters.values
        score = trial.score if trial.status == "COMPLETED" and trial.score is not None else math.nan
        rows.append({"trial": display_id(trial_id), "status": trial.status.lower(),
                     **{name: values.get(name) for name in names},
                     VALUE_COLUMN: float(score), "epochs": _metric(trial, "epochs"),
                     "seconds": _metric(trial, "seconds"), "worker": owners.get(trial_id, "")})
    return pd.DataFrame(rows, columns=["trial", "status", *names, VALUE_COLUMN, "epochs", "seconds", "worker"])


def display_id(trial_id) -> str:
    """KerasTuner pads trial ids with zeros to the width of max_trials: "0007" is shown as 7."""
    return str(int(trial_id)) if str(trial_id).isdigit() else str(trial_id)


def _order(trial_id):
    return (0, int(trial_id), "") if str(trial_id).isdigit() else (1, 0, str(trial_id))


def write_trials(search_dir: Path, oracle, owners: dict) -> pd.DataFrame:
    """(Re)write trials.csv, effects.csv and search.png; returns the table."""
    from ser_keras.reports import write_atomically

    table = trial_table(oracle, owners)
    write_atomically(Path(search_dir) / TRIALS_FILE, lambda tmp: table.to_csv(tmp, index=False))
    effects = hyperparameter_effects(table, tuned_names(oracle))
    write_atomically(Path(search_dir) / EFFECTS_FILE, lambda tmp: effects.to_csv(tmp, index=False))
    plot_search(Path(search_dir) / PLOT_FILE, table, tuned_names(oracle), _log_scaled(oracle))
    return table


def _log_scaled(oracle) -> set:
    return {item.name for item in oracle.hyperparameters.space if getattr(item, "sampling", None) == "log"}


def plot_search(path: Path, table: pd.DataFrame, names: list, log_names=frozenset()) -> Path:
    """Validation UA against each hyperparameter (the best trial ringed), one panel each."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    from ser_keras.reports import _save_figure

    done = table[table[VALUE_COLUMN].notna()]
    names = list(names) or ["trial"]
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows))
    best = done[VALUE_COLUMN].idxmax() if len(done) else None
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, columns, i + 1)
        values = done[name] if name in done else done["trial"]
        x, labels = _positions(values)
        ax.scatter(x, done[VALUE_COLUMN], s=28, alpha=0.8, color="tab:blue")
        if best is not None:
            j = list(done.index).index(best)
            ax.scatter([x[j]], [done[VALUE_COLUMN].iloc[j]], s=110, facecolors="none", edgecolors="tab:red",
                       linewidths=1.8, label="best")
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels)
        elif name in log_names:
            ax.set_xscale("log")  # 1, 2, 5 per decade: a search range is often under one decade
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%.0e"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        elif len(values) and all(float(v).is_integer() for v in x):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(name)
        ax.set_ylabel("val UA")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Validation UA per hyperparameter ({len(done)} finished trials)")
    fig.tight_layout()
    return _save_figure(fig, path)


def _positions(values: pd.Series):
    """Numeric x for numbers; category positions (and their labels) for anything else."""
    items = list(values)
    numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
                  for v in items)
    if numeric:
        return np.asarray(items, float), None
    labels = sorted({str(v) for v in items})
    return np.asarray([labels.index(str(v)) for v in items], float), labels


EFFECTS_FILE = "effects.csv"


def hyperparameter_effects(table: pd.DataFrame, names) -> pd.DataFrame:
    """How much each hyperparameter moved val UA over the finished trials, largest first.

    ``spread``: best minus worst mean val UA over the hyperparameter's levels (its distinct values,
    or the trials' tertiles of a hyperparameter with more than 6 values), levels of one trial left
    out; ``best_level``: the level with the highest mean; ``spearman``: rank correlation of a
    numeric hyperparameter with val UA. A random search's levels also differ in every other
    hyperparameter: with ~20 trials, a spread under a few points is noise.
    """
    from scipy.stats import spearmanr

    done = table[table[VALUE_COLUMN].notna()]
    rows = []
    for name in names:
        if name not in done or done[name].nunique() < 2:
            continue
        values = done[name]
        numeric, labels = _positions(values)
        levels = np.asarray([_short(v) for v in values])
        if labels is None and values.nunique() > 6:
            levels = np.asarray(pd.qcut(numeric, 3, duplicates="drop").astype(str))
        means = done[VALUE_COLUMN].groupby(levels).agg(["mean", "size"])
        means = means[means["size"] > 1]
        if len(means) < 2:
            continue
        rho = spearmanr(numeric, done[VALUE_COLUMN]).statistic if labels is None else math.nan
        rows.append({"hyperparameter": name, "spread": float(means["mean"].max() - means["mean"].min()),
                     "best_level": str(means["mean"].idxmax()), "spearman": float(rho), "trials": len(done)})
    effects = pd.DataFrame(rows, columns=["hyperparameter", "spread", "best_level", "spearman", "trials"])
    return effects.sort_values("spread", ascending=False, ignore_index=True)


def effects_lines(effects: pd.DataFrame) -> list[str]:
    """``what mattered`` lines for the log, one per hyperparameter."""
    lines = []
    for row in effects.itertuples():
        rho = "" if math.isnan(row.spearman) else f", Spearman {row.spearman:+.2f}"
        lines.append(f"  {row.hyperparameter}: mean val UA spread {row.spread:.3f} over its levels "
                     f"(best {row.best_level}{rho})")
    return lines


# ----------------------------------------------------------------------------- progress

def format_values(values: dict, names) -> str:
    return ",".join(f"{name}={_short(values[name])}" for name in names if name in values)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def progress_line(done: int, total, trial, names, best) -> str:
    """``trial n/N  id I  hp=...  val UA 0.xxx  best 0.yyy`` (or why the trial failed): n counts
    finished trials, I is the trial's row in trials.csv (KerasTuner's id, from 0)."""
    head = (f"trial {done}/{total if total else '?'}  id {display_id(trial.trial_id)}  "
            f"hp={format_values(trial.hyperparameters.values, names)}")
    if trial.status == "COMPLETED" and trial.score is not None:
        result = f"val UA {trial.score:.3f}"
    else:
        result = f"{trial.status.lower()}: {last_line(trial.message) or 'no result'}"
    best_text = f"best {best:.3f}" if best is not None else "best -"
    return f"{head}  {result}  {best_text}"


def last_line(message) -> str:
    lines = [line.strip() for line in str(message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
