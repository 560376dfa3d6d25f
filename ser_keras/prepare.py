"""Decode a corpus once into a fingerprinted cache (+ openSMILE IS10 features, speech measures).

Layout of ``<cache>/prepared/<fingerprint>/`` (written to a temporary folder, renamed
when complete, so an interrupted run never leaves a half-written cache):

- ``waveforms.npy`` int16, every kept utterance concatenated (memory-mapped when read);
  ``offsets.npy`` int64 [n + 1]; ``scales.npy`` float32 [n]: utterance i is
  ``waveforms[offsets[i]:offsets[i + 1]] * scales[i]`` (each utterance uses the full
  16-bit range, so quiet files keep their resolution).
- ``manifest.csv`` (kept rows: source_row, path, n_samples, duration, active_rms_db,
  syllable_rate), ``skipped.csv`` (path, reason), ``settings.json``.
- with IS10: ``is10_lld.npy`` float32 [frames, 76] + ``is10_offsets.npy``,
  ``is10_functionals.npy`` float32 [n, 1582].

The fingerprint covers the manifest's paths (in order) with their sizes and mtimes, the
sample rate, the IS10 flag and ``SETTINGS_VERSION``; any change gives a new cache. A cache
is checked before use (``cachefiles.check_arrays``: every array complete and sized as
settings.json says); a damaged one is rebuilt with a one-line note on stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

# Re-exported: data.segments, recipes, loading, inference and the tests import these from here.
from .acoustic import (  # noqa: F401
    IS10_FUNCTIONALS_DIM,
    IS10_HOP_MS,
    IS10_LLD_DIM,
    IS10_WINDOW_MS,
    is10_frame_count,
    pool_is10_frames,
    tertile_labels,
)
from .cachefiles import DamagedCache, check_arrays, publish
from .decoding import decoded
from .errors import DataError

SETTINGS_VERSION = "prepare-v1"
MEASURE_COLUMNS = ["n_samples", "duration", "active_rms_db", "syllable_rate"]


def cache_root() -> Path:
    """``$SER_KERAS_CACHE`` or ``~/.cache/ser_keras``."""
    return Path(os.environ.get("SER_KERAS_CACHE") or Path.home() / ".cache" / "ser_keras").expanduser()


def fingerprint(paths, sample_rate: int, is10: bool) -> str:
    """Identity of a prepared cache: files (path, size, mtime), rate, IS10, code version."""
    files = []
    for path in paths:
        try:
            st = os.stat(path)
            files.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([str(path), None, None])
    key = {"version": SETTINGS_VERSION, "sample_rate": int(sample_rate), "is10": bool(is10), "files": files}
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:20]


# --- the cache ---------------------------------------------------------------------------

class PreparedCorpus:
    """A prepared cache: manifest of kept rows, skipped files, waveforms, IS10 features."""

    def __init__(self, directory: Path, manifest: pd.DataFrame, skipped: pd.DataFrame, settings: dict):
        self.directory = Path(directory)
        self.manifest = manifest
        self.skipped = skipped
        self.settings = settings
        self.sample_rate = int(settings["sample_rate"])
        self.fingerprint = settings["fingerprint"]
        self.is10 = bool(settings["is10"])
        self._arrays = {}

    def __len__(self) -> int:
        return len(self.manifest)

    def _array(self, name: str, mmap: bool = True) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = np.load(self.directory / f"{name}.npy", mmap_mode="r" if mmap else None)
        return self._arrays[name]

    def waveform(self, i: int) -> np.ndarray:
        """Utterance i as float32 at ``sample_rate``."""
        offsets = self._array("offsets", mmap=False)
        q = self._array("waveforms")[offsets[i]:offsets[i + 1]]
        return q.astype(np.float32) * self._array("scales", mmap=False)[i]

    def is10_lld(self, i: int) -> np.ndarray:
        """Utterance i's IS10 LLDs + deltas pooled to 128 ms / 32 ms frames: [frames, 76]."""
        self._require_is10()
        offsets = self._array("is10_offsets", mmap=False)
        return np.array(self._array("is10_lld")[offsets[i]:offsets[i + 1]], dtype=np.float32)

    @property
    def is10_functionals(self) -> np.ndarray:
        """IS10 functionals of every kept utterance: [n, 1582]."""
        self._require_is10()
        return self._array("is10_functionals", mmap=False)

    def _require_is10(self):
        if not self.is10:
            raise DataError("this prepared corpus has no IS10 features; prepare it with is10=True")


def _quantise(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    scale = np.float32(max(float(np.max(np.abs(x))), 1e-12) / 32767.0)
    return np.round(x / scale).astype(np.int16), scale


def _write_npy_from_raw(raw_path: Path, npy_path: Path, dtype, count: int) -> None:
    """Wrap a raw stream of ``count`` items as an .npy file (streamed, never all in memory)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (count,)}
    with open(npy_path, "wb") as out, open(raw_path, "rb") as raw:
        np.lib.format.write_array_header_1_0(out, header)
        shutil.copyfileobj(raw, out, 1 << 22)
    raw_path.unlink()


@contextmanager
def _closing(generator):
    """Close ``generator`` on the way out: on Ctrl-C or an error its workers stop now, not
    whenever the traceback holding it is dropped."""
    try:
        yield generator
    finally:
        generator.close()


def _build(tmp: Path, paths: list, sample_rate: int, is10: bool, progress: bool) -> tuple[list, list]:
    """Decode every file into ``tmp``; returns (kept rows, skipped (path, reason))."""
    kept, skipped, offsets, scales, lld_parts, lld_offsets, functionals = [], [], [0], [], [], [0], []
    bar = tqdm(total=len(paths), desc="prepare", unit="file", disable=not progress)
    results = decoded(paths, sample_rate, is10)
    with open(tmp / "waveforms.raw", "wb") as raw, _closing(results):
        for row, (path, result) in enumerate(zip(paths, results)):
            bar.update(1)
            if isinstance(result, tuple):
                skipped.append(result)
                bar.set_postfix(skipped=len(skipped))
                continue
            x = result["x"]
            q, scale = _quantise(x)
            raw.write(q.tobytes())
            offsets.append(offsets[-1] + q.size)
            scales.append(scale)
            kept.append({"source_row": row, "path": str(path), "n_samples": int(x.size),
                         "duration": x.size / sample_rate, "active_rms_db": result["active_rms_db"],
                         "syllable_rate": result["syllable_rate"]})
            if is10:
                lld_parts.append(result["lld"])
                lld_offsets.append(lld_offsets[-1] + len(result["lld"]))
                functionals.append(result["func"])
    bar.close()
    _write_npy_from_raw(tmp / "waveforms.raw", tmp / "waveforms.npy", np.int16, offsets[-1])
    np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    np.save(tmp / "scales.npy", np.asarray(scales, dtype=np.float32))
    if is10:
        np.save(tmp / "is10_lld.npy", np.concatenate(lld_parts) if lld_parts else np.zeros((0, IS10_LLD_DIM), np.float32))
        np.save(tmp / "is10_offsets.npy", np.asarray(lld_offsets, dtype=np.int64))
        np.save(tmp / "is10_functionals.npy", np.stack(functionals) if functionals else np.zeros((0, IS10_FUNCTIONALS_DIM), np.float32))
    return kept, skipped


def _settings(fp: str, sample_rate: int, is10: bool, n_kept: int, n_skipped: int) -> dict:
    settings = {"fingerprint": fp, "version": SETTINGS_VERSION, "sample_rate": int(sample_rate), "is10": bool(is10),
                "kept": n_kept, "skipped": n_skipped, "waveform_dtype": "int16 x per-utterance scale"}
    if is10:
        settings["is10_frames"] = (f"openSMILE IS10 LLD + delta (10 ms), aligned on start time, "
                                   f"mean-pooled over {IS10_WINDOW_MS} ms windows every {IS10_HOP_MS} ms")
    return settings


def _create(final: Path, paths: list, sample_rate: int, is10: bool, progress: bool, fp: str) -> None:
    """Build the cache in a hidden folder beside ``final``, then publish it there."""
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        kept, skipped = _build(tmp, paths, sample_rate, is10, progress)
        if not kept:
            example = f" (e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
            raise DataError(f"none of the {len(paths)} audio files could be used{example}; check the corpus folder")
        pd.DataFrame(kept).to_csv(tmp / "manifest.csv", index=False)
        pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(tmp / "skipped.csv", index=False)
        settings = _settings(fp, sample_rate, is10, len(kept), len(skipped))
        (tmp / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        publish(tmp, final, _damage)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # ours, when a concurrent twin published first


def _read_cache(directory: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(settings, cached manifest, skipped) of a complete cache folder; DamagedCache otherwise."""
    try:
        settings = json.loads((directory / "settings.json").read_text())
        cached = pd.read_csv(directory / "manifest.csv")
        skipped = pd.read_csv(directory / "skipped.csv", dtype=str, keep_default_na=False)
        if len(cached) != settings["kept"] or len(skipped) != settings["skipped"]:
            raise ValueError("manifest.csv / skipped.csv rows disagree with settings.json")
        check_arrays(directory, len(cached), bool(settings["is10"]))
    except (OSError, ValueError, KeyError, TypeError) as error:  # JSON / CSV errors are ValueErrors
        raise DamagedCache(f"prepared cache '{directory}' is damaged ({error})") from error
    return settings, cached, skipped


def _damage(directory: Path) -> str | None:
    """Why the cache at ``directory`` cannot be used, or None when it is sound."""
    try:
        _read_cache(directory)
    except DamagedCache as error:
        return str(error)
    return None


def load_prepared(directory, manifest: pd.DataFrame) -> PreparedCorpus:
    """Open a prepared cache folder; ``manifest`` is the one it was prepared from.

    Raises DamagedCache (a DataError) when a file is missing, truncated or inconsistent.
    """
    directory = Path(directory)
    settings, cached, skipped = _read_cache(directory)
    rows = manifest.iloc[cached["source_row"].to_numpy()].reset_index(drop=True)
    rows = rows.drop(columns=[c for c in MEASURE_COLUMNS if c in rows.columns])
    prepared = pd.concat([rows, cached[MEASURE_COLUMNS]], axis=1)
    return PreparedCorpus(directory, prepared, skipped, settings)


def _note(message: str) -> None:
    # stderr, prefixed like the progress bar: stdout stays the command's result
    print(f"prepare: {message}", file=sys.stderr)


def prepare_corpus(manifest: pd.DataFrame, sample_rate: int, cache_dir=None, is10: bool = False,
                   progress: bool = True) -> PreparedCorpus:
    """Decode + resample every manifest file once (cached by fingerprint) -> PreparedCorpus.

    Files that cannot be used are skipped and listed in ``.skipped`` (path, reason); a
    DataError is raised when none is usable. ``is10`` also computes openSMILE IS10 features
    (from the waveform resampled to 16 kHz). A damaged cache is rebuilt, with a note.
    """
    if manifest is None or len(manifest) == 0:
        raise DataError("nothing to prepare: the manifest has no rows")
    paths = [str(p) for p in manifest["path"]]
    fp = fingerprint(paths, sample_rate, is10)
    final = Path(cache_dir or cache_root()).expanduser() / "prepared" / fp
    if os.path.lexists(final):
        try:
            return load_prepared(final, manifest)
        except DamagedCache as error:
            _note(f"{error}; rebuilding it")
    _create(final, paths, sample_rate, is10, progress, fp)
    return load_prepared(final, manifest)
