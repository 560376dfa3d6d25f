"""Tiny audio files for tests, written with soundfile (no corpus needed)."""

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds=0.5, sample_rate=16000, freq=220.0, amplitude=0.3, seed=0):
    """A harmonic tone with a little noise: enough to look like voiced speech."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(seed)
    x = sum(amplitude / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 6))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_tone(path, seconds=0.5, sample_rate=16000, channels=1, freq=220.0, fmt=None, subtype="PCM_16", seed=0):
    """Write a tone to ``path`` (parents created); ``fmt`` e.g. 'AIFF' to lie about the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = tone(seconds, sample_rate, freq, seed=seed)
    if channels > 1:
        x = np.stack([x * (1 - 0.1 * c) for c in range(channels)], axis=1)
    sf.write(str(path), x, sample_rate, format=fmt or ("FLAC" if path.suffix.lower() == ".flac" else "WAV"), subtype=subtype)
    return path
