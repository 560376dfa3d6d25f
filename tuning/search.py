"""`tune`: a KerasTuner search over an architecture's hyperparameters, resumable and distributable.

    runs/tune-<arch>-<dataset>-<time>/      (or --search-dir)
      search.json    arch, tuner, objective, max trials and the resolved base config
      workers.json   which tuner (local / worker name) ran each trial
      trials.csv     trial, status, every tuned hyperparameter, val_ua, epochs, seconds, worker
      search.png     validation UA against each hyperparameter
      kt/            KerasTuner's project: oracle state, trial_*/ (trial.json, best-epoch weights, history.csv)
      best/          the best trial as a normal run directory (model.keras, metrics.json, ...)

The corpus is read, prepared and split once per search; normalisation statistics and cached
features once per distinct data setting (``RecipeHyperModel``). Trials are scored on the
validation part of the training data (objective ``val_unweighted_accuracy``); the test part is
scored once, for the best trial, when the search ends. Running the same command again continues
the newest search directory made with the same settings (a raised ``--max-trials`` adds trials).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ser_keras.errors import ConfigError

from .best import build_best_run
from .cluster import Role, TuneError
from .hypermodels import OBJECTIVE
from .searchdir import (META_FILE, PROJECT, WORKER_MAY_DIFFER, check_matches, locate, read_meta, read_owners,
                        write_meta)
from .tuners import best_trial, hook_oracle, make_tuner, planned_trials

TUNERS = ("hyperband", "bayesian", "random")
DEFAULT_TUNER = "hyperband"
DEFAULT_MAX_TRIALS = 20          # random / bayesian; Hyperband's own schedule decides otherwise
DEFAULT_TIMEOUT = 1800.0         # seconds of silence after which a worker (or the chief) is given up
DEFAULT_CONNECT_TIMEOUT = 60.0   # seconds a worker waits for the chief to answer at start


@dataclass
class SearchOptions:
    tuner: str = DEFAULT_TUNER
    max_trials: int | None = None
    runs_dir: str = "runs"
    search_dir: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    verbose: int = 0                 # Keras' output per trial fit
    progress: bool = True            # preparation progress bar
    command: str | None = None


@dataclass
class SearchResult:
    search_dir: Path
    role: str
    trials: object = None            # pandas DataFrame (trials.csv), local / chief only
    best_trial: str | None = None
    best_value: float | None = None
    best_values: dict = field(default_factory=dict)
    run_dir: Path | None = None      # the best trial as a run directory
    metrics: dict | None = None      # its test-part metrics
    trials_run: int = 0              # worker: trials this worker ran


def check_options(options: SearchOptions) -> None:
    if options.tuner not in TUNERS:
        raise ConfigError(f"--tuner must be one of {', '.join(TUNERS)}, got '{options.tuner}'")
    if options.max_trials is not None and options.max_trials < 1:
        raise ConfigError(f"--max-trials must be at least 1, got {options.max_trials}")
    for name, value in (("--timeout", options.timeout), ("--connect-timeout", options.connect_timeout)):
        if not value > 0:
            raise ConfigError(f"{name} must be a positive number of seconds, got {value}")


def tuning_config(config):
    """The search's base config: ``config`` with validation UA as the monitored quantity."""
    from ser_keras.config import validate

    base = copy.deepcopy(config)
    base.train.monitor = OBJECTIVE
    validate(base)
    return base


# ----------------------------------------------------------------------------- the search

def run_search(config, options: SearchOptions, role: Role, fixed_keys=(), out=print) -> SearchResult:
    """Search ``config``'s architecture; the best trial becomes ``<search dir>/best`` (local / chief)."""
    from ser_keras import runs
    from ser_keras.loading import load_data

    from . import cluster
    from .hypermodels import RecipeHyperModel, fixed_hyperparameters, objective_for

    check_options(options)
    # Each trial builds new models in one process: TensorFlow's "retracing" warning is expected.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Hyperband and the best run load best-epoch weights into freshly compiled models.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    base = tuning_config(config)
    if str(base.train.devices) != "1":  # trials would build their batches outside the device scope
        raise ConfigError("tune runs each trial on one device (train.devices=1); spread a search over "
                          "devices or machines with --chief / --worker instead")
    if base.train.init_from:  # trials build models of their own shapes, each from scratch
        raise ConfigError("train.init_from applies to train and cv, not to tune: every trial starts from scratch")
    recipe = base.recipe
    fixed_hp, pinned = fixed_hyperparameters(recipe, base, fixed_keys)
    path, meta = locate(options, base, role)
    command = options.command or runs.current_command()

    data = load_data(base, progress=options.progress)
    if not 0 <= base.data.fold < len(data.folds):
        raise ConfigError(f"data.fold must be 0..{len(data.folds) - 1} for this protocol, got {base.data.fold}")
    fold = data.folds[base.data.fold]
    objective = objective_for(recipe, base)

    if role.kind == "worker":
        cluster.set_client_timeout(options.timeout)
        cluster.wait_for_chief(role, options.connect_timeout)
        meta = read_meta(path)
        if meta is None:
            raise TuneError(f"'{path}' has no {META_FILE}: pass the --search-dir the chief uses (a folder "
                            f"on a file system the chief and every worker see)")
        check_matches(path, meta, base, options.tuner, WORKER_MAY_DIFFER)
        max_trials = meta.get("max_trials")
    else:
        if path is None:
            path = runs.unique_dir(Path(options.runs_dir), f"tune-{base.arch}-{base.data.dataset}")
        path.mkdir(parents=True, exist_ok=True)
        if options.max_trials is None and meta is None and options.tuner != "hyperband":
            options = copy.copy(options)
            options.max_trials = DEFAULT_MAX_TRIALS
        meta = write_meta(path, base, options, objective.name, command, meta)
        max_trials = meta.get("max_trials")

    hypermodel = RecipeHyperModel(recipe, base, data, fold, fixed_keys=pinned)
    seed = base.data.seed + 1  # KerasTuner draws a random seed for 0
    with cluster.role_environment(role):
        tuner = make_tuner(options.tuner, hypermodel, objective, max_trials, base.train.epochs, path, seed,
                           fixed_hp)
        if role.kind == "worker":
            return _work(tuner, hypermodel, role, path, options, out)
        oracle = tuner.oracle
        _adopt_saved_oracle(tuner, path, role)
        oracle.max_trials = max_trials
        oracle.verbose = 0
        owners = read_owners(path)
        total = planned_trials(oracle, max_trials)
        finished = len(set(oracle.end_order))
        names = ", ".join(n for n in _space_names(oracle)) or "nothing (every setting is pinned by --set)"
        state = f"continuing: {finished} trial{'' if finished == 1 else 's'} done" if finished else "new"
        out(f"search directory: {path} ({state})")
        out(f"{options.tuner} search, {total or '?'} trials of up to {base.train.epochs} epochs over: {names}; "
            f"objective {objective.name} on the validation part")
        hook_oracle(oracle, path, owners, total, out)
        if role.kind == "chief":
            tuner.save()
            out(f"chief: serving the oracle on {role.address}; start workers with the same options plus "
                f"--worker NAME --oracle HOST:{role.port} --search-dir {path}")
            watch = cluster.Watch(owners)
            cluster.serve(oracle, role, watch, options.timeout, on_dead=out)
        else:
            try:
                tuner.search(fit_verbose=options.verbose)
            except RuntimeError as error:  # KerasTuner: too many failed trials in a row
                raise TuneError(f"the search stopped: {_one_line(error)}") from None
    return _finish(tuner, hypermodel, data, fold, path, role, owners, command, out)


def _space_names(oracle):
    from .trials import tuned_names

    return tuned_names(oracle)


def _one_line(error) -> str:
    from .trials import last_line

    lines = [line for line in str(error).splitlines() if line.strip()]
    return (lines[0] + (f" (last: {last_line(str(error))})" if len(lines) > 1 else "")) if lines else repr(error)


def _adopt_saved_oracle(tuner, path: Path, role: Role) -> None:
    """Continue the oracle a different role saved (a local search continued by a chief, say)."""
    project = path / PROJECT
    mine = project / f"{role.tuner_id}.json"
    if (project / "oracle.json").exists() and not mine.exists():
        with contextlib.redirect_stdout(io.StringIO()):
            tuner.oracle.reload()


def _work(tuner, hypermodel, role: Role, path: Path, options: SearchOptions, out) -> SearchResult:
    """A worker: ask the chief for trials, run them, report them, until told to stop."""
    import grpc

    from . import cluster
    from .trials import display_id, format_values, last_line

    ran = []

    def announce(trial):
        ran.append(trial.trial_id)
        result = hypermodel.last_result or {}
        value = next((v for k, v in result.items() if k.startswith("val_")), None)
        shown = (f"val UA {value:.3f}" if trial.status == "COMPLETED" and value is not None
                 else f"{str(trial.status).lower()}: {last_line(trial.message) or 'no result'}")
        names = [h.name for h in trial.hyperparameters.space
                 if type(h).__name__ != "Fixed" and not h.name.startswith("tuner/")]
        out(f"worker {role.tuner_id}: trial {display_id(trial.trial_id)}  "
            f"hp={format_values(trial.hyperparameters.values, names)}  {shown}")

    client = tuner.oracle
    create = client.create_trial

    def create_trial(tuner_id):
        trial = create(tuner_id)
        if trial.status == "IDLE":  # Hyperband waits for other workers' trials: don't spin
            time.sleep(1.0)
        return trial

    client.create_trial = create_trial
    tuner.announce = announce
    tuner.heartbeat = cluster.Heartbeat(client, cluster.heartbeat_every(options.timeout)).start()
    out(f"worker {role.tuner_id}: connected to the chief at {role.address}; search directory {path}")
    try:
        tuner.search(fit_verbose=options.verbose)
    except grpc.RpcError as error:
        code = error.code() if hasattr(error, "code") else None
        raise TuneError(f"the chief at {role.address} stopped answering ({getattr(code, 'name', code)}, "
                        f"waited up to {options.timeout:g} s); {len(ran)} trial(s) of this worker were "
                        f"reported") from None
    finally:
        tuner.heartbeat.stop()
    out(f"worker {role.tuner_id}: the chief has no more trials; this worker ran {len(ran)}")
    return SearchResult(path, "worker", trials_run=len(ran))


def _finish(tuner, hypermodel, data, fold, path: Path, role: Role, owners: dict, command: str, out) -> SearchResult:
    from . import trials as trial_report

    oracle = tuner.oracle
    table = trial_report.write_trials(path, oracle, owners)
    best = best_trial(oracle)
    if best is None:
        failed = [t for t in oracle.trials.values() if t.message]
        reason = trial_report.last_line(failed[-1].message) if failed else "no trial finished"
        raise TuneError(f"no trial of {path} finished with a validation score ({reason}); see "
                        f"{path / PROJECT}/trial_*/trial.json")
    names = trial_report.tuned_names(oracle)
    shown = trial_report.format_values(best.hyperparameters.values, names)
    effects = trial_report.hyperparameter_effects(table, names)
    if len(effects):
        out(f"what mattered ({trial_report.EFFECTS_FILE}, {effects['trials'].iloc[0]} finished trials):")
        for line in trial_report.effects_lines(effects):
            out(line)
    out(f"best: trial {trial_report.display_id(best.trial_id)} of trials.csv, val UA {best.score:.3f}  hp={shown}")
    run_dir, metrics = build_best_run(tuner, hypermodel, data, fold, path, best, command, out)
    return SearchResult(path, role.kind, table, trial_report.display_id(best.trial_id), float(best.score),
                        {n: best.hyperparameters.values.get(n) for n in names}, run_dir, metrics)
