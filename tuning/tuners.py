"""KerasTuner's tuners with the search's hooks: per-trial history, worker heartbeat, progress.

``make_tuner`` mixes ``_TunerHooks`` into KerasTuner's RandomSearch / BayesianOptimization /
Hyperband; ``hook_oracle`` wraps the oracle (the one object that sees every trial, local or from
workers) so that each ended trial prints one progress line and rewrites trials.csv / search.png.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from pathlib import Path

from .searchdir import OWNERS_FILE, PROJECT


class _TunerHooks:
    """Mixed into KerasTuner's tuner class: per-trial folder for history.csv, heartbeat, report."""

    heartbeat = None
    announce = None

    def run_trial(self, trial, *args, **kwargs):
        kwargs["trial_dir"] = self.get_trial_dir(trial.trial_id)
        return super().run_trial(trial, *args, **kwargs)

    def on_trial_begin(self, trial):
        if self.heartbeat is not None:
            self.heartbeat.trial_id = trial.trial_id
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self.heartbeat is not None:
            self.heartbeat.trial_id = None
        if self.announce is not None:
            self.announce(trial)


def make_tuner(kind: str, hypermodel, objective, max_trials, epochs: int, search_dir: Path, seed: int,
               hyperparameters):
    """KerasTuner's tuner of ``kind`` over ``search_dir/kt`` (continued when it exists)."""
    import keras_tuner as kt

    base = {"random": kt.RandomSearch, "bayesian": kt.BayesianOptimization, "hyperband": kt.Hyperband}[kind]
    cls = type(f"SER{base.__name__}", (_TunerHooks, base), {})
    common = dict(hypermodel=hypermodel, objective=objective, directory=str(search_dir), project_name=PROJECT,
                  overwrite=False, seed=seed, hyperparameters=hyperparameters, max_consecutive_failed_trials=3)
    with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner's "Reloading Tuner from ..." line
        if kind == "hyperband":
            tuner = cls(max_epochs=epochs, factor=3, **common)
        else:
            tuner = cls(max_trials=max_trials, **common)
    return tuner


def planned_trials(oracle, max_trials):
    """How many trials the search will run (Hyperband: its schedule, capped by --max-trials)."""
    if hasattr(oracle, "_get_num_brackets"):
        try:
            per_iteration = sum(oracle._get_size(b, r) for b in range(oracle._get_num_brackets())
                                for r in range(oracle._get_num_rounds(b)))
            total = int(per_iteration * oracle.hyperband_iterations)
        except (AttributeError, TypeError, ValueError, OverflowError):
            total = None
        return min(total, max_trials) if total and max_trials else (total or max_trials)
    return max_trials


def hook_oracle(oracle, search_dir: Path, owners: dict, total, out) -> None:
    """Record who runs each trial, and after each ends: one progress line and trials.csv / search.png."""
    from ser_keras.reports import write_atomically

    from . import trials as trial_report

    lock = threading.RLock()
    create, end = oracle.create_trial, oracle.end_trial

    def create_trial(tuner_id):
        trial = create(tuner_id)
        if trial.status == "RUNNING":
            with lock:
                owners[trial.trial_id] = tuner_id
                text = json.dumps(owners, indent=1, sort_keys=True)
                write_atomically(search_dir / OWNERS_FILE, lambda tmp: Path(tmp).write_text(text))
        return trial

    def end_trial(trial, *args, **kwargs):
        try:
            return end(trial, *args, **kwargs)
        finally:
            with lock:
                ended = oracle.trials.get(getattr(trial, "trial_id", None))
                if ended is not None:
                    best = best_trial(oracle)
                    out(trial_report.progress_line(len(set(oracle.end_order)), total, ended,
                                                   trial_report.tuned_names(oracle), best and best.score))
                    trial_report.write_trials(search_dir, oracle, owners)

    oracle.create_trial, oracle.end_trial = create_trial, end_trial


def best_trial(oracle):
    best = [t for t in oracle.get_best_trials(1) if t.status == "COMPLETED" and t.score is not None]
    return best[0] if best else None
