"""The prepared cache on disk: publishing a finished folder safely, and checking its arrays.

Two ``prepare`` runs of one corpus may race (two terminals, two training jobs): each builds
its own hidden folder and publishes it with ``publish``; a cache whose ``.npy`` files were
cut short (full disk, killed copy) is caught by ``check_arrays`` and rebuilt, never read.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from .acoustic import IS10_FUNCTIONALS_DIM, IS10_LLD_DIM
from .errors import DataError

PUBLISH_ATTEMPTS = 3  # rename tries when concurrent runs keep replacing a damaged cache


class DamagedCache(DataError):
    """A prepared cache folder whose files are missing, unreadable or disagree with each other."""


def publish(tmp: Path, final: Path, damage) -> None:
    """Rename the finished folder ``tmp`` to ``final`` without ever deleting a good cache.

    Renaming a folder onto a non-empty one fails, so a twin run that published first wins
    (the caller discards ``tmp``). ``damage(final)`` says why the folder in the way cannot be
    used, or None when it is sound; a damaged one is renamed aside (atomically, so a good
    twin that replaced it meanwhile is not the one removed) and the rename is tried again.
    """
    for _ in range(PUBLISH_ATTEMPTS):
        try:
            os.rename(tmp, final)
            return
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise  # permissions, disk ...: not a folder in the way
        if damage(final) is None:
            return
        _move_aside(final)
    raise DataError(f"could not publish the prepared cache '{final}': another prepare keeps replacing it; try again")


def _move_aside(path: Path) -> None:
    trash = path.parent / f".trash-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return  # a twin moved it already
    if trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


def npy_layout(path: Path) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from an .npy header, after checking the file holds exactly that much data:
    a truncated array would otherwise load as garbage or fail deep inside training."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version not in readers:
            raise ValueError(f"{path.name}: unsupported .npy version {version}")
        shape, _, dtype = readers[version](handle)
        expected = handle.tell() + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{path.name} holds {size} bytes, its header promises {expected}")
    return tuple(shape), dtype


def check_arrays(directory: Path, n: int, is10: bool) -> None:
    """ValueError unless every array of a cache is complete and sized for ``n`` utterances."""
    def check(name, shape, dtype):
        found = npy_layout(directory / f"{name}.npy")
        if found != (shape, np.dtype(dtype)):
            raise ValueError(f"{name}.npy is {found[1]} {found[0]}, expected {np.dtype(dtype)} {shape}")

    def end_of(name) -> int:
        check(name, (n + 1,), np.int64)
        offsets = np.load(directory / f"{name}.npy")
        if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise ValueError(f"{name}.npy does not hold increasing offsets")
        return int(offsets[-1])

    check("waveforms", (end_of("offsets"),), np.int16)
    check("scales", (n,), np.float32)
    if is10:
        check("is10_lld", (end_of("is10_offsets"), IS10_LLD_DIM), np.float32)
        check("is10_functionals", (n, IS10_FUNCTIONALS_DIM), np.float32)
