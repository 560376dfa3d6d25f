"""Audio decoding: the only module that reads audio files.

``load_audio`` decodes anything libsndfile reads (whatever the suffix claims: a real
AIFF named ``.wav`` loads), downmixes to mono by averaging the channels, resamples with
soxr's high-quality filter and guarantees a float32 waveform within [-1, 1]. Files that
cannot give a usable waveform raise ``AudioError`` whose ``reason`` attribute is a short
phrase ("empty file", "silent", ...) suitable for a skipped-files log.

Truncated files (a header announcing more frames than the file holds, e.g. an interrupted
copy) are rejected with reason "truncated". libsndfile 1.2 silently clamps a WAV / AIFF
frame count to the data present (``sf.info`` reports the clamped count too), so the
announced count is read from the header itself (``header_frames``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError

# Peak below this (about -80 dBFS) means there is nothing to learn from: digital silence
# or a disconnected microphone.
SILENCE_PEAK = 1e-4

# WAV format tags whose data chunk holds block_align bytes per frame (PCM, IEEE float,
# A-law, mu-law, extensible); compressed formats (ADPCM, GSM ...) pack several frames a block.
_FIXED_FRAME_TAGS = (0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE)
# Data sizes streaming writers leave in the header when the length was unknown.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 64  # header chunks walked before giving up on finding the data chunk


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


def _chunks(handle, byteorder: str):
    """(id, size) of the RIFF / IFF chunks after the 12-byte file header; the caller may read
    from the chunk's data before asking for the next one."""
    for _ in range(_MAX_CHUNKS):
        head = handle.read(8)
        if len(head) < 8:
            return
        chunk_id, size = struct.unpack(byteorder + "4sI", head)
        start = handle.tell()
        yield chunk_id, size
        handle.seek(start + size + (size & 1))  # chunks are padded to an even length


def _wav_frames(handle) -> int | None:
    block_align = None
    for chunk_id, size in _chunks(handle, "<"):
        if chunk_id == b"fmt " and size >= 16:
            tag, _, _, _, block_align = struct.unpack("<HHIIH", handle.read(14))
            if tag not in _FIXED_FRAME_TAGS or not block_align:
                return None
        elif chunk_id == b"data":
            return None if block_align is None or size in _UNKNOWN_SIZES else size // block_align
    return None


def _aiff_frames(handle) -> int | None:
    for chunk_id, size in _chunks(handle, ">"):
        if chunk_id == b"COMM" and size >= 6:
            return struct.unpack(">hI", handle.read(6))[1]
    return None


def header_frames(path) -> int | None:
    """Frames a WAV / AIFF header announces (None for other formats, an unknown length or a
    header too damaged to say). Parsed here because libsndfile clamps its count to the data
    present, which hides truncation."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(12)
            if magic[:4] == b"RIFF" and magic[8:12] == b"WAVE":
                return _wav_frames(handle)
            if magic[:4] == b"FORM" and magic[8:12] in (b"AIFF", b"AIFC"):
                return _aiff_frames(handle)
    except (OSError, struct.error):
        return None
    return None


def _announced_frames(path: Path, info) -> int | None:
    """The frame count the file promises: its WAV / AIFF header's, or FLAC's STREAMINFO count
    (exact, and not clamped by libsndfile). None where only an estimate exists (MP3 ...)."""
    frames = header_frames(path)
    if frames is None and info.format == "FLAC" and info.frames > 0:
        frames = int(info.frames)
    return frames


def probe(path) -> tuple[int, int, int]:
    """(sample_rate, channels, frames) of an audio file, without decoding it.

    A file shorter than its header says raises AudioError with reason "truncated".
    """
    path = Path(path)
    _check_readable(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise audio_error(path, "not audio libsndfile can read") from exc
    if (_announced_frames(path, info) or 0) > info.frames:
        raise audio_error(path, "truncated")
    return int(info.samplerate), int(info.channels), int(info.frames)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(str(path)) as handle:
            expected = _announced_frames(path, handle) or 0
            data = handle.read(dtype="float32", always_2d=True)
            rate = handle.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        # libsndfile says "Format not recognised" for text, "unspecified internal
        # error" for garbage after a valid header, etc.; all mean the same to the user.
        raise audio_error(path, "not audio libsndfile can read") from exc
    if data.shape[0] < expected:
        raise audio_error(path, "truncated")
    return data, int(rate)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Mono float32 resampling with soxr HQ (a no-op when the rates agree)."""
    if from_rate == to_rate:
        return np.asarray(x, dtype=np.float32)
    return soxr.resample(np.asarray(x, dtype=np.float32), from_rate, to_rate, quality="HQ").astype(np.float32)


def load_audio(path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` -> mono float32 waveform at ``sample_rate``, peak within [-1, 1].

    Raises AudioError (``.reason``: "file not found", "empty file", "not audio
    libsndfile can read", "truncated", "no samples", "non-finite samples", "silent").
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
