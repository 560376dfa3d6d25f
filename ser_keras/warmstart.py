"""Warm start (``--set train.init_from=RUN_DIR``): a run that begins from another run's weights.

For going on from a finished run whose backup is gone (a longer schedule), or for fine-tuning a
model trained on one corpus on another. The source run's whole model (front-end normalisation
statistics, BatchNorm moving statistics and network) is loaded before the first epoch; the
optimiser starts afresh, and checkpoint selection and early stopping start from this run's first
epoch. Refused, with one line, when the source is not a finished run of the same architecture and
classes, or when its training or validation part (or that of a run it was itself warm-started
from) holds any file this run tests on: a warm start must not carry test data into the model.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from . import runs
from .errors import ConfigError


def start_from(model, config, manifest: pd.DataFrame, fold, class_names: list) -> Path:
    """Load ``config.train.init_from``'s weights into ``model`` after the checks; returns its folder."""
    source = runs.check_run_dir(config.train.init_from)
    source_arch = runs.read_config(source).arch
    if source_arch != config.arch:
        raise ConfigError(f"train.init_from: '{source}' is a {source_arch} run; this run trains {config.arch}")
    source_classes = runs.read_classes(source)
    if source_classes != list(class_names):
        raise ConfigError(f"train.init_from: '{source}' has the classes {source_classes}; "
                          f"this run has {list(class_names)}")
    for ancestor in lineage(source):  # the source, and the runs it was itself warm-started from
        shared = leaked_files(source_split(ancestor), manifest, fold)
        if shared:
            raise ConfigError(f"train.init_from: '{ancestor}' trained or validated on {len(shared)} file(s) of "
                              f"this run's test part (e.g. {sorted(shared)[0]}); start from a run of the same split")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(source / "model.keras")
        except ValueError as error:  # layer shapes differ (another front end, model size, clip length)
            raise ConfigError(f"train.init_from: '{source}''s model does not fit this run's: "
                              f"{shape_difference(str(error))}") from None
    for warning in caught:  # model.keras also holds the source's optimiser; it starts afresh here
        if "Skipping variable loading for optimizer" not in str(warning.message):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return source


def lineage(source: Path) -> list:
    """``source`` and every run it was warm-started from in turn: their weights all carry what
    those runs trained on. An ancestor that is not here cannot be checked, so it is refused."""
    chain = [source]
    while parent := runs.read_config(chain[-1]).train.init_from:
        if not runs.is_run_dir(parent) or not runs.is_finished(parent):
            raise ConfigError(f"train.init_from: '{chain[-1]}' started from '{parent}', which is not a finished "
                              f"run folder here, so its training files cannot be checked against this run's test part")
        if Path(parent).resolve() in {run.resolve() for run in chain}:
            break  # (a cycle cannot be made by train; a hand-edited config could)
        chain.append(Path(parent))
    return chain


def source_split(run_dir: Path) -> pd.DataFrame:
    try:
        split = runs.read_split(run_dir)
    except ValueError:  # pandas: empty or unparsable
        split = pd.DataFrame()
    if not {"path", "part"} <= set(split.columns):
        raise ConfigError(f"train.init_from: '{run_dir}/split.csv' does not list its files' parts; it cannot be "
                          f"checked against this run's test part")
    return split


def shape_difference(message: str) -> str:
    """Keras' load error (which prints whole weight arrays) cut to the first mismatched variable."""
    here = re.search(r"path=([^,]+), shape=(\([^)]*\))", message)
    there = re.search(r"value\.shape=(\([^)]*\))", message)
    if not (here and there):
        return message.splitlines()[0]
    return f"{here.group(1)} has the shape {here.group(2)} here and {there.group(1)} in the source"


def leaked_files(source_split: pd.DataFrame, manifest: pd.DataFrame, fold) -> set:
    """Names of this fold's test files that the source run trained or validated on. A file is
    known by its name and size, not its full path: the source may have been trained on another
    machine, under another corpus root (a split.csv from before its bytes column: by name alone,
    which can only refuse more)."""
    seen = source_split[source_split["part"].isin(["train", "val"])]
    tested = manifest.iloc[[int(p) for p in fold.test]]["path"].map(str)
    with_sizes = "bytes" in seen
    sizes = pd.to_numeric(seen["bytes"], errors="coerce").fillna(-1).astype(int) if with_sizes else [0] * len(seen)
    seen_keys = set(zip(seen["path"].map(file_name), sizes))
    return {file_name(p) for p in tested if (file_name(p), size_of(p) if with_sizes else 0) in seen_keys}


def file_name(path) -> str:
    return Path(str(path)).name


def size_of(path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return -1  # as split.csv records a missing file
