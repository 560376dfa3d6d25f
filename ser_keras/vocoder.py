"""The DSP behind time stretch and pitch shift, in ``keras.ops`` (every backend, in graphs):
a phase vocoder that synthesises only the frames it needs, linear-interpolation resampling, and
``stretch_and_shift``, which does a stretch and a pitch shift in ONE vocoder pass (stretch by
``rate / ratio``, then resample by ``ratio``). Used by the layers in ``augment.py``.
"""

import math

import numpy as np
from keras import ops


def _take_rows(table, index):
    """``table[b, index[b, t]]`` for ``table`` ``[batch, n, channels]`` and integer ``index`` ``[batch, t]``.

    A gather of whole rows from the flattened ``[batch * n, channels]`` table (``take_along_axis`` would
    broadcast the index to every channel and transpose the table: several times slower on CPU).
    """
    shape = ops.shape(table)
    flat = ops.reshape(table, (-1, table.shape[-1]))
    offset = ops.expand_dims(ops.arange(shape[0], dtype="int32") * ops.cast(shape[1], "int32"), 1)
    return ops.take(flat, index + offset, axis=0)


def interpolate(x, positions):
    """Linear interpolation of ``x`` ``[batch, n]`` at fractional ``positions`` ``[batch, m]`` (clipped
    to ``[0, n - 1]``)."""
    shape = ops.shape(x)
    last = shape[1] - 1
    positions = ops.clip(positions, 0.0, ops.cast(last, "float32"))
    left = ops.cast(ops.floor(positions), "int32")
    frac = positions - ops.cast(left, "float32")
    flat = ops.reshape(x, (-1,))
    offset = ops.expand_dims(ops.arange(shape[0], dtype="int32") * ops.cast(shape[1], "int32"), 1)
    at_left = ops.take(flat, left + offset)
    at_right = ops.take(flat, ops.minimum(left + 1, last) + offset)
    return at_left + frac * (at_right - at_left)


def _cumsum_frames(x, block=32):
    """``cumsum(x, axis=1)`` for ``x`` ``[batch, frames, bins]`` with ``frames`` a multiple of ``block``:
    within blocks as a matmul with a lower-triangular matrix, then across block totals (several times
    faster than a scan along the middle axis on CPU)."""
    shape = ops.shape(x)
    blocks = ops.reshape(x, (shape[0], -1, block, x.shape[-1]))
    inner = ops.matmul(np.tril(np.ones((block, block), np.float32)), blocks)
    totals = ops.cumsum(inner[:, :, -1], axis=1) - inner[:, :, -1]
    return ops.reshape(inner + ops.expand_dims(totals, 2), shape)


def _frames_for(samples, hop_length):
    """STFT frames (center=True) whose inverse covers ``samples`` samples: ``ceil(samples / hop) + 1``."""
    if isinstance(samples, (int, float)):
        return math.ceil(samples / hop_length) + 1
    return ops.cast(ops.ceil(ops.cast(samples, "float32") / hop_length), "int32") + 1


def phase_vocoder_stretch(x, rate, min_rate, n_fft=512, hop_length=128, max_samples=None):
    """librosa.effects.time_stretch, batched with one ``rate`` per example (>1 = faster, shorter).

    Returns (``[batch, L]`` stretched signals zero beyond each one's end, lengths ``round(n / rate)``).
    ``L`` covers ``n / min_rate`` samples, or only ``max_samples`` when given (the caller needs no more:
    the vocoder's cost is proportional to it). The STFT frames are read at ``t * rate``: magnitudes
    interpolated between neighbours, phases accumulated from each frame's instantaneous-frequency
    advance, so pitch is kept.
    """
    samples = ops.shape(x)[1]
    # Centred frames with ZERO padding, as librosa: the first frame's phases seed every output frame, and
    # a reflect-padded edge frame (ops.stft's centring) is not coherent with the signal, which made each
    # slowed-down (rate < 1) example lose most of its level.
    x = ops.pad(x, [[0, 0], [n_fft // 2, n_fft // 2]])
    real, imag = ops.stft(x, n_fft, hop_length, n_fft, window="hann", center=False)
    frames = ops.shape(real)[1]
    mag = ops.sqrt(real * real + imag * imag)
    phase = ops.arctan2(imag, real)

    # Per input frame t: the phase advance t -> t+1 (librosa pads two zero frames after the last).
    pad = [[0, 0], [0, 1], [0, 0]]
    advance = np.pi * hop_length * np.arange(n_fft // 2 + 1) / (n_fft // 2)  # expected phase step per hop
    dphase = ops.pad(phase[:, 1:], pad) - phase - advance.astype(np.float32)
    dphase = dphase - 2.0 * np.pi * ops.round(dphase / (2.0 * np.pi))
    # Advance modulo 2 pi keeps the float32 running sum small (same phases mod 2 pi as librosa).
    advances = np.mod(advance, 2.0 * np.pi).astype(np.float32) + dphase
    mag = ops.pad(mag, pad)  # row `frames`: silence

    block = 32  # output frames come in whole blocks of the cumulative phase sum
    if isinstance(frames, int) and isinstance(samples, int):  # static shapes (JAX, fixed-length inputs)
        wanted = samples / min_rate if max_samples is None else min(max_samples, samples / min_rate)
        out_frames = min(_frames_for(wanted, hop_length), math.ceil(frames / min_rate) + 1)
        out_frames = -(-out_frames // block) * block
    else:
        out_frames = ops.cast(ops.ceil(ops.cast(frames, "float32") / min_rate), "int32") + 1
        if max_samples is not None:
            out_frames = ops.minimum(out_frames, _frames_for(max_samples, hop_length))
        out_frames = (out_frames + block - 1) // block * block
    steps = ops.expand_dims(ops.cast(ops.arange(out_frames), "float32"), 0) * ops.expand_dims(rate, 1)
    left = ops.minimum(ops.floor(steps), ops.cast(frames, "float32"))
    alpha = ops.expand_dims(steps - left, -1)
    left = ops.cast(left, "int32")
    # Three row gathers with one index (no table to assemble, no slices of one: both are copies).
    mag0 = _take_rows(mag, left)
    mag1 = _take_rows(mag, ops.minimum(left + 1, frames))
    step = _take_rows(advances, ops.minimum(left, frames - 1))  # beyond the end the magnitude is 0
    out_mag = mag0 + alpha * (mag1 - mag0)
    out_phase = phase[:, :1] + _cumsum_frames(step, block) - step

    y = ops.istft((out_mag * ops.cos(out_phase), out_mag * ops.sin(out_phase)), n_fft, hop_length, n_fft,
                  window="hann", center=True)
    lengths = ops.cast(ops.round(ops.cast(samples, "float32") / rate), "int32")
    keep = ops.arange(ops.shape(y)[1])[None, :] < lengths[:, None]
    return ops.where(keep, y, 0.0), lengths


def fit_length(x, length):
    """Crop or zero-pad axis 1 to ``length``."""
    x = x[:, :length]
    return ops.concatenate([x, ops.zeros((ops.shape(x)[0], length), x.dtype)], axis=1)[:, :length]


def stretch_and_shift(x, chosen, rate=None, ratio=None, min_rate=1.0, max_ratio=1.0, keep_length=True,
                      n_fft=512, hop_length=128):
    """Time-stretch each example by ``rate`` (>1 faster, shorter; pitch kept) and raise its pitch by the
    frequency ``ratio`` (2^(semitones/12); duration kept), with ONE phase vocoder pass.

    librosa's pitch shift is a stretch by 1 / ratio followed by resampling by ratio; after a stretch by
    ``rate`` that is one stretch by ``rate / ratio`` and one resampling (linear interpolation, no
    anti-aliasing filter: shifting up folds the top ~(1 - 1 / ratio) of the band, where speech has
    little energy). ``rate`` / ``ratio``: ``[batch]`` or None (1); examples not ``chosen`` come back
    untouched. ``min_rate`` / ``max_ratio`` bound the draws (they size the output statically).
    Output length: the input's with ``keep_length`` (crop / zero-pad), else the longest ``round(n / rate)``
    of the chosen examples (others zero-padded).
    """
    samples = ops.shape(x)[1]
    rate = ops.ones_like(x[:, 0]) if rate is None else rate
    min_rate, max_ratio = min(min_rate, 1.0), max(max_ratio, 1.0)
    lengths = ops.cast(ops.round(ops.cast(samples, "float32") / rate), "int32")
    if keep_length:
        out_len = samples
    else:
        out_len = ops.max(ops.where(chosen, lengths, samples))
    # The resampling reads the vocoder output up to out_len * ratio (and it ends at n * ratio / rate).
    limit = samples if isinstance(samples, int) else ops.cast(samples, "float32")
    limit = limit if keep_length else limit / min_rate
    pv_rate = rate if ratio is None else rate / ratio
    y, _ = phase_vocoder_stretch(x, pv_rate, min_rate / max_ratio, n_fft, hop_length,
                                 max_samples=limit * max_ratio + 2)
    if ratio is None:
        y = fit_length(y, out_len)
    else:
        t = ops.cast(ops.arange(out_len), "float32")[None, :]
        y = interpolate(y, t * ops.expand_dims(ratio, 1))
        y = ops.where(ops.cast(t, "int32") < lengths[:, None], y, 0.0)
    return ops.where(chosen[:, None], y, fit_length(x, out_len))
