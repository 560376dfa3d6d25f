"""The run directory: create, resume, read (config, split, model), write.

    runs/<arch>-<dataset>-<time>/
      config.json     resolved settings + "environment" (python, numpy, keras, backend, TF / JAX,
                      device, and "code": this checkout's git commit)
      command.txt     the command that made it
      classes.json    emotion class names, in the model's output order
      split.csv       path, part (train / val / test), label, speaker, bytes (+ derived head labels)
      model.keras     the whole waveform-in model (best validation epoch)
      history.csv  predictions.csv  confusion.png  curves.png  tsne.png
      metrics.json    written LAST: a run is finished exactly when it has one

An unfinished run (no metrics.json) is resumed by the same `train` command and refused by
`evaluate`, `export` and `predict`. A run its time limit cut has metrics.json and keeps backup/:
the same command continues it, and it is unfinished again until it ends.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from .errors import DataError, RunDirError

REQUIRED = ("config.json", "classes.json", "model.keras")
FINISHED_MARKER = "metrics.json"


def environment() -> dict:
    """Library versions and backend, recorded with every run."""
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    import keras
    import numpy

    return {"python": platform.python_version(), "numpy": numpy.__version__, "keras": keras.__version__,
            "backend": keras.backend.backend(), "tensorflow": version("tensorflow"), "jax": version("jax"),
            "jaxlib": version("jaxlib"), "device": device_name(), "code": code_version()}


def code_version(root: Path = Path(__file__).resolve().parents[1]) -> str | None:
    """The git commit the code at ``root`` was checked out at, with "+changes" when tracked files
    differ from it; None unless ``root`` is the top of a git checkout (an installed package inside
    some other repository must not report that repository's commit). Two runs of one command from
    different code (e.g. before and after a fix) are then told apart in the results table.
    A copy without git (a working tree carried to an offline GPU machine) can name its commit in
    SER_KERAS_CODE (benchmarks/offline_gpu_runs.sh sets it from git before the copy is made)."""
    if not (root / ".git").exists():  # a folder in a clone, or a file in a worktree
        return os.environ.get("SER_KERAS_CODE") or None

    def git(*args):
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else None

    try:
        commit = git("rev-parse", "--short", "HEAD")
        if commit is None:
            return None
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.TimeoutExpired):  # no git here: the rest of the record still stands
        return None


def device_name() -> str:
    """The accelerator the backend trains on, else the CPU model (for the results table)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return f"{device.device_kind} x{jax.device_count()}"
        elif backend == "tensorflow":
            from .data.tf_data import gpu_names

            gpus = gpu_names()
            if gpus:
                return f"{gpus[0]} x{len(gpus)}"
    except Exception:  # a device query must never fail a run
        pass
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"CPU {line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return f"CPU {platform.processor() or platform.machine()}"


def settings_of(saved: dict) -> dict:
    """The resolved config part of a saved config.json (without the environment)."""
    return {k: v for k, v in saved.items() if k != "environment"}


def run_identity(settings: dict) -> dict:
    """The settings that make two runs the same run: all but train.time_limit_minutes, which is
    one invocation's budget, so a cut run may be continued with another limit or none."""
    train = {k: v for k, v in settings.get("train", {}).items() if k != "time_limit_minutes"}
    return {**settings, "train": train}


def same_config_runs(runs_dir, config):
    """Earlier run folders of this resolved config (environment and time limit aside), newest
    first; a folder whose config.json is missing or unreadable (killed as it was written) is none."""
    wanted = run_identity(config.to_dict())
    for candidate in sorted(Path(runs_dir).glob(f"{config.arch}-{config.data.dataset}-*"), reverse=True):
        try:
            saved = json.loads((candidate / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and run_identity(in_current_shape(settings_of(saved))) == wanted:
            yield candidate


def in_current_shape(settings: dict) -> dict:
    """Saved settings as this code writes them: a key added since the run was made takes its
    default (which does what the code did before it), a removed key is dropped; so adding a
    setting does not stop earlier runs from being continued. Malformed settings: as they are."""
    from .config import RunConfig

    try:
        return RunConfig.from_dict(settings).to_dict()
    except (KeyError, TypeError, AttributeError):
        return settings


def resumable_run(runs_dir, config) -> Path | None:
    """The run of the same settings (time limit aside) that has a backup to go on from, if any."""
    return next((d for d in same_config_runs(runs_dir, config) if (d / "backup").is_dir()), None)


def open_run_dir(runs_dir, config) -> tuple[Path, bool]:
    """A new run directory, or the resumable one (unfinished, or cut by its time limit: it has a
    backup) of the same settings (time limit aside), reopened: no metrics.json until it ends again."""
    candidate = resumable_run(runs_dir, config)
    if candidate is not None:
        (candidate / FINISHED_MARKER).unlink(missing_ok=True)
        return candidate, True
    return unique_dir(Path(runs_dir), f"{config.arch}-{config.data.dataset}"), False


def finished_run(runs_dir, config, split: pd.DataFrame) -> Path | None:
    """The newest finished run of this config on exactly this ``split`` (path, part, label and
    size of every file) that trained to its end and that nothing will continue (no backup/), else
    None. `cv` reuses it, so a cross-validation that was stopped goes on from its first unfinished
    fold."""
    columns = ["path", "part", "label", "bytes"]
    wanted = split[columns].astype(str).reset_index(drop=True)
    for candidate in same_config_runs(runs_dir, config):
        if not (is_finished(candidate) and is_run_dir(candidate)) or (candidate / "backup").is_dir():
            continue
        if not ran_its_course(candidate, config):
            continue
        try:
            saved = pd.read_csv(candidate / "split.csv")
        except (OSError, ValueError):  # missing or empty
            continue
        if set(columns) <= set(saved.columns) and saved[columns].astype(str).equals(wanted):
            return candidate  # (a split.csv from before its bytes column is not trusted)
    return None


def ran_its_course(run_dir: Path, config) -> bool:
    """Whether a run's history reaches its end: all ``train.epochs``, or early stopping's patience
    spent after the best epoch. A run cut by a time limit before backups were kept (it has
    metrics.json and no backup/) does not, and `cv` must not take it for a finished fold."""
    from .callbacks import logged_best, monitor_mode

    monitor = config.recipe.monitor(config)
    try:
        logged = logged_best(Path(run_dir) / "history.csv", monitor, monitor_mode(monitor))
    except (OSError, ValueError, KeyError):  # unreadable, or written by something else
        return False
    if logged is None:
        return False
    _, best_epoch, last_epoch = logged
    return last_epoch + 1 >= config.train.epochs or last_epoch - best_epoch >= config.train.patience


def unique_dir(parent: Path, stem: str) -> Path:
    """``parent/<stem>-<time>`` created now; a suffix when that name is taken (same second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent.mkdir(parents=True, exist_ok=True)
    for suffix in range(1, 1000):
        path = parent / (f"{stem}-{stamp}" + ("" if suffix == 1 else f"-{suffix}"))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunDirError(f"could not create a new folder under {parent}")


def write_header(run_dir: Path, config, command: str, class_names: list, split: pd.DataFrame) -> None:
    """config.json (+ environment), command.txt, classes.json and split.csv."""
    saved = {**config.to_dict(), "environment": environment()}
    (run_dir / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True))
    (run_dir / "command.txt").write_text(command + "\n")
    (run_dir / "classes.json").write_text(json.dumps(class_names))
    split.to_csv(run_dir / "split.csv", index=False)


def split_table(manifest: pd.DataFrame, fold, extra_columns: dict) -> pd.DataFrame:
    """One row per file of the fold: what `evaluate` needs to re-score without re-splitting."""
    rows = []
    for part in ("train", "val", "test"):
        for p in getattr(fold, part):
            row = manifest.iloc[int(p)]
            path = row["path"]
            rows.append({"path": path, "part": part, "label": row["label"], "speaker": row.get("speaker"),
                         "bytes": os.path.getsize(path) if os.path.exists(path) else -1,
                         **{c: values[int(p)] for c, values in extra_columns.items()}})
    return pd.DataFrame(rows)


def save_model(model, run_dir: Path) -> None:
    tmp = run_dir / "model.partial.keras"
    model.save(tmp)
    tmp.replace(run_dir / "model.keras")


def current_command() -> str:
    return " ".join(["python"] + sys.argv)


# ----------------------------------------------------------------------------- reading

def is_run_dir(path) -> bool:
    return all((Path(path) / name).is_file() for name in REQUIRED)


def is_finished(path) -> bool:
    return (Path(path) / FINISHED_MARKER).is_file()


def check_run_dir(run_dir) -> Path:
    """A finished run directory, or one RunDirError line saying what it is instead."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"'{run_dir}' does not exist; pass the run folder `train` printed")
    if not (run_dir / "config.json").is_file():
        raise RunDirError(f"'{run_dir}' is not a run directory (no config.json); pass the folder `train` printed")
    if not is_finished(run_dir) or not is_run_dir(run_dir):
        raise RunDirError(f"'{run_dir}' is an unfinished run (no metrics.json): it crashed or is still "
                          f"training; run the same `train` command again to resume it")
    return run_dir


def read_config(run_dir):
    from .config import RunConfig

    saved = json.loads((check_run_dir(run_dir) / "config.json").read_text())
    return RunConfig.from_dict(settings_of(saved))


def read_classes(run_dir) -> list:
    return list(json.loads((Path(run_dir) / "classes.json").read_text()))


def read_split(run_dir, data_dir=None) -> pd.DataFrame:
    """The run's split.csv; with ``data_dir``, its file paths re-rooted there (``relocate``)."""
    path = Path(run_dir) / "split.csv"
    if not path.is_file():
        raise RunDirError(f"'{run_dir}' has no split.csv; re-train it to evaluate its test part")
    split = pd.read_csv(path)
    return split if data_dir is None else split.assign(path=relocate(split["path"], data_dir))


def relocate(paths: pd.Series, data_dir) -> pd.Series:
    """The recorded files of a run trained on another machine, found under ``data_dir`` (the
    corpus' folder here): every path loses the same leading folders (that machine's corpus root),
    as many as the longest tail of the first path that exists under ``data_dir`` shows."""
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"--data-dir '{data_dir}' is not a folder")
    first = Path(paths.iloc[0]).parts
    drop = next((k for k in range(1, len(first)) if root.joinpath(*first[k:]).is_file()), None)
    if drop is None:
        raise DataError(f"the run's file '{paths.iloc[0]}' is not under --data-dir '{data_dir}' "
                        f"(looked for '{first[-1]}' and the folders above it)")
    return paths.map(lambda p: str(root.joinpath(*Path(p).parts[drop:])))


def load_model(run_dir):
    """The run's whole model, loaded with safe_mode=True (custom layers registered first)."""
    import keras

    import ser_keras.augment  # noqa: F401  (registers the custom objects for safe loading)
    import ser_keras.frontends  # noqa: F401
    import ser_keras.metrics  # noqa: F401
    import ser_keras.models.batchnorm  # noqa: F401
    import ser_keras.models.layers  # noqa: F401

    return keras.saving.load_model(Path(run_dir) / "model.keras", safe_mode=True, compile=False)
