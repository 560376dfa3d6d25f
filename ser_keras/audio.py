"""Audio decoding: the only module that reads audio files.

``load_audio`` decodes anything libsndfile reads (whatever the suffix claims: a real
AIFF named ``.wav`` loads), downmixes to mono by averaging the channels, resamples with
soxr's high-quality filter and guarantees a float32 waveform within [-1, 1]. Files that
cannot give a usable waveform raise ``AudioError`` whose ``reason`` attribute is a short
phrase ("empty file", "silent", ...) suitable for a skipped-files log.

Truncated WAV files (a header announcing more data than the file holds) are *accepted*:
libsndfile 1.2 clamps the frame count to the data actually present and returns the
shorter waveform without an error (``tests/test_audio.py`` pins this down).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError

# Peak below this (about -80 dBFS) means there is nothing to learn from: digital silence
# or a disconnected microphone.
SILENCE_PEAK = 1e-4


def audio_error(path, reason: str) -> AudioError:
    """An AudioError for ``path`` that also carries the bare ``reason``."""
    error = AudioError(f"cannot use audio file '{path}': {reason}; fix or remove it")
    error.reason = reason
    error.path = str(path)
    return error


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise audio_error(path, "file not found")
    if not path.is_file():
        raise audio_error(path, "not a file")
    if path.stat().st_size == 0:
        raise audio_error(path, "empty file")


def probe(path) -> tuple[int, int, int]:
    """(sample_rate, channels, frames) of an audio file, without decoding it."""
    path = Path(path)
    _check_readable(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise audio_error(path, "not audio libsndfile can read") from exc
    return int(info.samplerate), int(info.channels), int(info.frames)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        # libsndfile says "Format not recognised" for text, "unspecified internal
        # error" for garbage after a valid header, etc.; all mean the same to the user.
        raise audio_error(path, "not audio libsndfile can read") from exc
    return data, int(rate)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Mono float32 resampling with soxr HQ (a no-op when the rates agree)."""
    if from_rate == to_rate:
        return np.asarray(x, dtype=np.float32)
    return soxr.resample(np.asarray(x, dtype=np.float32), from_rate, to_rate, quality="HQ").astype(np.float32)


def load_audio(path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` -> mono float32 waveform at ``sample_rate``, peak within [-1, 1].

    Raises AudioError (``.reason``: "file not found", "empty file", "not audio
    libsndfile can read", "no samples", "silent").
    """
    path = Path(path)
    _check_readable(path)
    data, rate = _decode(path)
    if data.shape[0] == 0:
        raise audio_error(path, "no samples")
    mono = data.mean(axis=1, dtype=np.float32)
    x = resample(mono, rate, int(sample_rate))
    if not np.all(np.isfinite(x)):
        raise audio_error(path, "non-finite samples")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if x.size == 0:
        raise audio_error(path, "no samples")
    if peak < SILENCE_PEAK:
        raise audio_error(path, "silent")
    if peak > 1.0:
        # Resampling overshoot (or a float file beyond full scale): scale, never clip.
        x = x / np.float32(peak)
    return x.astype(np.float32, copy=False)


def pad_or_trim(x: np.ndarray, length: int) -> np.ndarray:
    """First ``length`` samples of ``x``, zero-padded at the end when shorter."""
    x = np.asarray(x)
    if x.shape[0] >= length:
        return x[:length].copy()
    return np.pad(x, (0, length - x.shape[0]))


def segment_count(n_samples: int, length: int, hop: int) -> int:
    """How many segments ``segment`` makes from ``n_samples`` (at least one)."""
    if length <= 0 or hop <= 0:
        raise ValueError("segment length and hop must be positive")
    if n_samples <= length:
        return 1
    return 1 + int(np.ceil((n_samples - length) / hop))


def segment(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Overlapping segments ``[n, length]`` covering all of ``x``; the last is zero-padded."""
    x = np.asarray(x)
    n = segment_count(x.shape[0], length, hop)
    padded = pad_or_trim(x, (n - 1) * hop + length)
    starts = np.arange(n) * hop
    return np.stack([padded[s:s + length] for s in starts])
