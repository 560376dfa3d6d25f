"""Per-utterance acoustic measures that ``prepare`` computes once and caches: the speech
measures behind bilstm_att_mtl's derived speed / volume labels, and openSMILE IS10 features
pooled to STRL-SER's frames. Pure functions of a waveform; no files, no cache.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, find_peaks, sosfilt

from .is10 import IS10Extractor

IS10_SAMPLE_RATE = 16000
IS10_WINDOW_MS = 128   # STRL-SER's frame length ...
IS10_HOP_MS = 32       # ... and shift; openSMILE's IS10 LLDs come every 10 ms
IS10_LLD_DIM = 76
IS10_FUNCTIONALS_DIM = 1582
ACTIVE_RANGE_DB = 30.0  # frames within this many dB of the loudest frame count as speech


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


def is10_extractors() -> IS10Extractor:
    """openSMILE IS10 (38 LLDs, their 38 deltas, 1582 functionals), ONE openSMILE run per clip
    (see is10.py). Create once per process: it reads the configuration's stream sizes."""
    return IS10Extractor()


def _first_per_start(starts_ms: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each start time once, sorted, with its first frame: the delta stream repeats its last start."""
    starts, first = np.unique(starts_ms, return_index=True)
    return starts, values[first]


def is10_features(x: np.ndarray, extractors: IS10Extractor) -> tuple[np.ndarray, np.ndarray]:
    """(pooled LLD+delta frames [T, 76], functionals [1582]) of 16 kHz audio.

    openSMILE gives the delta stream a frame or two more than the LLD stream; they are
    aligned on frame start time (the starts both streams have) before pooling. A clip too
    short for any frame gives NaN ("Segment too short"), zeroed here.
    """
    streams = extractors.run(x, IS10_SAMPLE_RATE)
    lld_ms, lld = _first_per_start(*streams["lld"])
    delta_ms, delta = _first_per_start(*streams["delta"])
    starts, in_lld, in_delta = np.intersect1d(lld_ms, delta_ms, assume_unique=True, return_indices=True)
    values = np.nan_to_num(np.concatenate([lld[in_lld], delta[in_delta]], axis=1, dtype=np.float64))
    pooled = pool_is10_frames(values, starts, x.size / IS10_SAMPLE_RATE)
    return pooled, np.nan_to_num(streams["functionals"][1][0]).astype(np.float32)
