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
sample rate, the IS10 flag and ``SETTINGS_VERSION``; any change gives a new cache.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import butter, find_peaks, sosfilt
from tqdm.auto import tqdm

from . import audio
from .errors import AudioError, DataError

SETTINGS_VERSION = "prepare-v1"
IS10_SAMPLE_RATE = 16000
PARALLEL_FROM = 64  # files; below this, decoding in-process is quicker than starting workers
IS10_WINDOW_MS = 128   # STRL-SER's frame length ...
IS10_HOP_MS = 32       # ... and shift; openSMILE's IS10 LLDs come every 10 ms
IS10_LLD_DIM = 76
IS10_FUNCTIONALS_DIM = 1582
ACTIVE_RANGE_DB = 30.0  # frames within this many dB of the loudest frame count as speech
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


# --- speech measures (bilstm_att_mtl's derived speed / volume) ---------------------------

def _frame_rms(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS of 25 ms frames every 10 ms."""
    import librosa

    win, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    return librosa.feature.rms(y=x, frame_length=win, hop_length=hop, center=True)[0]


def speech_measures(x: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(active_rms_db, syllable_rate) of one utterance.

    active_rms_db: RMS level (dBFS) over the 10 ms frames within ACTIVE_RANGE_DB of the
    loudest frame. syllable_rate: peaks per second of the 300-3000 Hz energy envelope
    (smoothed over 50 ms; peaks >= 100 ms apart, >= 3 dB prominent, within 20 dB of the
    loudest frame) over the span from the first to the last active frame.
    """
    rms = _frame_rms(x, sample_rate)
    db = 20 * np.log10(rms + 1e-10)
    active = db > db.max() - ACTIVE_RANGE_DB
    active_rms_db = float(10 * np.log10(np.mean(rms[active] ** 2) + 1e-20))
    band = sosfilt(butter(4, [300, min(3000, 0.45 * sample_rate)], btype="band", fs=sample_rate, output="sos"), x)
    env = np.convolve(_frame_rms(band.astype(np.float32), sample_rate), np.ones(5) / 5, mode="same")
    env_db = 20 * np.log10(env + 1e-10)
    peaks, _ = find_peaks(env_db, distance=10, prominence=3.0, height=env_db.max() - 20)
    idx = np.flatnonzero(active)
    span = max(0.1, (idx[-1] - idx[0] + 1) * 0.010)
    return active_rms_db, float(len(peaks) / span)


def tertile_labels(values, train_values, names) -> np.ndarray:
    """Cut ``values`` at the 1/3 and 2/3 quantiles of ``train_values`` -> one of 3 names."""
    names = np.asarray(list(names), dtype=object)
    if names.size != 3:
        raise ValueError("tertile_labels needs exactly three names, low to high")
    train = np.asarray(train_values, dtype=float)
    if train.size == 0 or not np.all(np.isfinite(train)):
        raise ValueError("tertile_labels needs finite training values")
    cuts = np.quantile(train, [1 / 3, 2 / 3])
    return names[np.digitize(np.asarray(values, dtype=float), cuts)]


# --- openSMILE IS10 ----------------------------------------------------------------------

def is10_frame_count(seconds: float) -> int:
    """Pooled IS10 frames for ``seconds`` of audio: 128 ms windows every 32 ms (>= 1)."""
    ms = int(round(seconds * 1000))
    return max(1, (ms - IS10_WINDOW_MS) // IS10_HOP_MS + 1)


def pool_is10_frames(values: np.ndarray, starts_ms: np.ndarray, duration: float) -> np.ndarray:
    """Mean of the 10 ms LLD frames whose start lies in [32k, 32k + 128) ms, k = 0..T-1.

    T = is10_frame_count(duration): 1.4 s -> 40 frames, 2.0 s -> 59, as in STRL-SER.
    A window with no frame (only possible for very short audio) takes the nearest one.
    """
    count = is10_frame_count(duration)
    begin = np.arange(count) * IS10_HOP_MS
    lo = np.searchsorted(starts_ms, begin, side="left")
    hi = np.searchsorted(starts_ms, begin + IS10_WINDOW_MS, side="left")
    lo = np.minimum(lo, len(starts_ms) - 1)
    hi = np.maximum(hi, lo + 1)
    sums = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0, dtype=np.float64)])
    return ((sums[hi] - sums[lo]) / (hi - lo)[:, None]).astype(np.float32)


def is10_extractors() -> dict:
    """openSMILE IS10 extractors: 38 LLDs, their 38 deltas, 1582 functionals."""
    import opensmile

    level = opensmile.FeatureLevel
    make = lambda lvl: opensmile.Smile(feature_set=opensmile.FeatureSet.IS10, feature_level=lvl)  # noqa: E731
    return {"lld": make(level.LowLevelDescriptors), "delta": make(level.LowLevelDescriptors_Deltas),
            "functionals": make(level.Functionals)}


def _by_start_ms(frame: pd.DataFrame) -> pd.DataFrame:
    starts = np.round(frame.index.get_level_values("start").total_seconds() * 1000).astype(np.int64)
    out = pd.DataFrame(frame.to_numpy(), index=starts)
    return out[~out.index.duplicated()]  # the delta stream repeats its last start time


def is10_features(x: np.ndarray, extractors: dict) -> tuple[np.ndarray, np.ndarray]:
    """(pooled LLD+delta frames [T, 76], functionals [1582]) of 16 kHz audio.

    openSMILE gives the delta stream a frame or two more than the LLD stream; they are
    aligned on frame start time (inner join) before pooling.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Segment too short": NaN, zeroed below
        lld = _by_start_ms(extractors["lld"].process_signal(x, IS10_SAMPLE_RATE))
        delta = _by_start_ms(extractors["delta"].process_signal(x, IS10_SAMPLE_RATE))
        functionals = extractors["functionals"].process_signal(x, IS10_SAMPLE_RATE).to_numpy()[0]
    frames = lld.join(delta, how="inner", lsuffix="_lld", rsuffix="_delta").sort_index()
    values = np.nan_to_num(frames.to_numpy(dtype=np.float64))
    pooled = pool_is10_frames(values, frames.index.to_numpy(), x.size / IS10_SAMPLE_RATE)
    return pooled, np.nan_to_num(functionals).astype(np.float32)


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


def decode_one(path, sample_rate: int, is10: bool):
    """Decode one file and measure it -> dict of results, or (path, reason) when unusable."""
    try:
        x = audio.load_audio(path, sample_rate)
    except AudioError as error:
        return str(path), getattr(error, "reason", str(error))
    rms_db, rate = speech_measures(x, sample_rate)
    result = {"x": x, "active_rms_db": rms_db, "syllable_rate": rate}
    if is10:
        global _EXTRACTORS
        _EXTRACTORS = _EXTRACTORS or is10_extractors()
        result["lld"], result["func"] = is10_features(audio.resample(x, sample_rate, IS10_SAMPLE_RATE), _EXTRACTORS)
    return result


_EXTRACTORS = None  # openSMILE extractors, created once per worker process


def decoded(paths: list, sample_rate: int, is10: bool):
    """Results of ``decode_one`` in order. openSMILE corrupts the heap when TensorFlow is loaded
    in the same process, so IS10 (and any large corpus, for speed) runs in fresh worker processes."""
    if not is10 and len(paths) < PARALLEL_FROM:
        yield from (decode_one(p, sample_rate, is10) for p in paths)
        return
    workers = max(1, min(os.cpu_count() or 1, len(paths)))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(decode_one, paths, repeat(sample_rate), repeat(is10), chunksize=4)


def _build(tmp: Path, paths: list, sample_rate: int, is10: bool, progress: bool) -> tuple[list, list]:
    """Decode every file into ``tmp``; returns (kept rows, skipped (path, reason))."""
    kept, skipped, offsets, scales, lld_parts, lld_offsets, functionals = [], [], [0], [], [], [0], []
    bar = tqdm(total=len(paths), desc="prepare", unit="file", disable=not progress)
    with open(tmp / "waveforms.raw", "wb") as raw:
        for row, (path, result) in enumerate(zip(paths, decoded(paths, sample_rate, is10))):
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
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "settings.json").is_file():  # not a concurrent twin: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_prepared(directory, manifest: pd.DataFrame) -> PreparedCorpus:
    """Open a prepared cache folder; ``manifest`` is the one it was prepared from."""
    directory = Path(directory)
    settings = json.loads((directory / "settings.json").read_text())
    cached = pd.read_csv(directory / "manifest.csv")
    skipped = pd.read_csv(directory / "skipped.csv", dtype=str, keep_default_na=False)
    rows = manifest.iloc[cached["source_row"].to_numpy()].reset_index(drop=True)
    rows = rows.drop(columns=[c for c in MEASURE_COLUMNS if c in rows.columns])
    prepared = pd.concat([rows, cached[MEASURE_COLUMNS]], axis=1)
    return PreparedCorpus(directory, prepared, skipped, settings)


def prepare_corpus(manifest: pd.DataFrame, sample_rate: int, cache_dir=None, is10: bool = False,
                   progress: bool = True) -> PreparedCorpus:
    """Decode + resample every manifest file once (cached by fingerprint) -> PreparedCorpus.

    Files that cannot be used are skipped and listed in ``.skipped`` (path, reason); a
    DataError is raised when none is usable. ``is10`` also computes openSMILE IS10 features
    (from the waveform resampled to 16 kHz).
    """
    if manifest is None or len(manifest) == 0:
        raise DataError("nothing to prepare: the manifest has no rows")
    paths = [str(p) for p in manifest["path"]]
    fp = fingerprint(paths, sample_rate, is10)
    final = Path(cache_dir or cache_root()).expanduser() / "prepared" / fp
    if not (final / "settings.json").is_file():
        if final.exists():  # a foreign or damaged folder under our name: rebuild it
            shutil.rmtree(final)
        _create(final, paths, sample_rate, is10, progress, fp)
    return load_prepared(final, manifest)
