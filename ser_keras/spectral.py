"""Spectral building blocks of the front ends: librosa's constants (windows, filterbanks, DCT,
delta kernels, contrast bands) as numpy arrays, and librosa's per-frame computations written
with ``keras.ops`` (STFT power, dB, deltas, spectral shape, RMS, ZCR, chroma), so that the layers
in ``frontends.py`` run in graphs on every backend. tests/test_frontends.py states the tolerances.
"""

import math

import librosa
import numpy as np
import scipy.fft
import scipy.signal
from keras import ops

# ----------------------------------------------------------------------------- numpy constants
def librosa_window(window, win_length, n_fft):
    """The analysis window librosa.stft uses: periodic, centred in ``n_fft`` samples."""
    win = librosa.filters.get_window(window, win_length, fftbins=True)
    return librosa.util.pad_center(win, size=n_fft).astype(np.float32)


def dct_matrix(n_mels, n_mfcc):
    """``[n_mels, n_mfcc]`` orthonormal DCT-II, as librosa.feature.mfcc applies it."""
    return scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc].T.astype(np.float32)


def delta_kernel(order, width=9):
    """Savitzky-Golay derivative weights: librosa.feature.delta is savgol_filter(polyorder=order)."""
    return scipy.signal.savgol_coeffs(width, polyorder=order, deriv=order, use="dot").astype(np.float32)


def contrast_bands(sr, n_fft, n_bands=6, fmin=200.0, quantile=0.02):
    """(first_bin, stop_bin, k) per octave band, exactly as librosa.feature.spectral_contrast slices."""
    freq = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
    bands = []
    for k, (f_low, f_high) in enumerate(zip(edges[:-1], edges[1:])):
        band = (freq >= f_low) & (freq <= f_high)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True
        if k == n_bands:
            band[idx[-1] + 1:] = True
        chosen = np.flatnonzero(band)
        stop = chosen[-1] + (0 if k < n_bands else 1)  # librosa drops a band's top bin except the last
        bands.append((int(chosen[0]), int(stop), int(max(np.rint(quantile * band.sum()), 1))))
    return bands


# ----------------------------------------------------------------------------- in-graph helpers
def as_batch(x):
    """Accept ``[samples]`` (a tf.data element) as well as ``[batch, samples]``."""
    x = ops.cast(x, "float32")
    return (ops.expand_dims(x, 0), True) if len(x.shape) == 1 else (x, False)


def stft_power(x, n_fft, hop_length, window):
    """``|STFT|^2`` as ``[batch, frames, n_fft // 2 + 1]``, framed like librosa.stft(center=True)."""
    x = ops.pad(x, [[0, 0], [n_fft // 2, n_fft // 2]])
    real, imag = ops.stft(x, n_fft, hop_length, n_fft, window=window, center=False)
    return real * real + imag * imag


def power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0):
    """librosa.power_to_db per example (axes 1, 2); ``ref="max"`` is librosa's ``ref=np.max``."""
    log = 10.0 * ops.log(ops.maximum(power, amin)) / math.log(10.0)
    if ref == "max":
        log = log - ops.max(log, axis=(1, 2), keepdims=True)
    else:
        log = log - 10.0 * math.log10(max(amin, ref))
    if top_db is not None:
        log = ops.maximum(log, ops.max(log, axis=(1, 2), keepdims=True) - top_db)
    return log


def delta(x, order=1, width=9):
    """librosa.feature.delta(x, width, order, mode="interp") along axis 1 of ``[batch, time, feats]``.

    A fixed convolution over the valid part; in "interp" mode librosa fits one polynomial of degree
    ``order`` to the first / last ``width`` frames, whose ``order``-th derivative is constant, so the
    edge frames repeat the first / last valid value. Needs at least ``width`` frames, like librosa.
    """
    kernel = delta_kernel(order, width)
    last = width - 1
    valid = sum(float(c) * (x[:, k: k - last] if k < last else x[:, k:]) for k, c in enumerate(kernel) if c != 0.0)
    half = width // 2
    head = ops.repeat(valid[:, :1], half, axis=1)
    tail = ops.repeat(valid[:, -1:], half, axis=1)
    return ops.concatenate([head, valid, tail], axis=1)


def _normalise_l1(mag):
    """librosa.util.normalize(norm=1) over bins: silent frames (sum < tiny) are left as they are."""
    total = ops.sum(mag, axis=-1, keepdims=True)
    return mag / ops.where(total < np.finfo(np.float32).tiny, 1.0, total)


def spectral_centroid(mag, freq):
    return ops.sum(_normalise_l1(mag) * freq, axis=-1, keepdims=True)


def spectral_bandwidth(mag, freq, centroid):
    """librosa.feature.spectral_bandwidth with p=2."""
    return ops.sqrt(ops.sum(_normalise_l1(mag) * ops.square(freq - centroid), axis=-1, keepdims=True))


def spectral_rolloff(mag, bin_hz, roll_percent=0.85):
    """Frequency of the first bin whose cumulative magnitude reaches ``roll_percent`` of the total."""
    cumulative = ops.cumsum(mag, axis=-1)
    below = ops.cast(cumulative < roll_percent * cumulative[..., -1:], "float32")
    return ops.sum(below, axis=-1, keepdims=True) * bin_hz


def spectral_contrast(mag, bands):
    """librosa.feature.spectral_contrast (dB, per-utterance top_db floor on peaks and valleys)."""
    peaks, valleys = [], []
    for start, stop, k in bands:
        band = mag[..., start:stop]
        peaks.append(ops.mean(ops.top_k(band, k, sorted=False)[0], axis=-1, keepdims=True))
        valleys.append(-ops.mean(ops.top_k(-band, k, sorted=False)[0], axis=-1, keepdims=True))
    peak, valley = ops.concatenate(peaks, axis=-1), ops.concatenate(valleys, axis=-1)
    return power_to_db(peak) - power_to_db(valley)


def frame_rms(x, frame_length, hop_length):
    """librosa.feature.rms(y=...) with center=True: unwindowed RMS of zero-padded frames.

    The cldnn code called ``rms(y=y, S=S)``; librosa then ignores ``S`` and uses the waveform. Frames
    are summed from hop-sized blocks of squares (frame_length must be a multiple of hop_length).
    """
    if frame_length % hop_length:
        raise ValueError("frame_rms needs frame_length to be a multiple of hop_length")
    half, per_frame = frame_length // 2, frame_length // hop_length
    squares = ops.square(ops.pad(x, [[0, 0], [half, half]]))
    frames = (ops.shape(x)[1]) // hop_length + 1
    blocks = ops.reshape(squares[:, : (frames + per_frame - 1) * hop_length], (ops.shape(x)[0], -1, hop_length))
    block_sums = ops.sum(blocks, axis=-1)
    total = sum(block_sums[:, k: k - per_frame + 1] if k < per_frame - 1 else block_sums[:, k:]
                for k in range(per_frame))
    return ops.expand_dims(ops.sqrt(total / frame_length), -1)


def zero_crossing_rate(x, frame_length, hop_length, threshold=1e-10):
    """librosa.feature.zero_crossing_rate(center=True): edge padding, |x| <= threshold counts as +0.

    Counted with a cumulative sum of per-sample sign changes instead of materialising frames.
    """
    half = frame_length // 2
    x = ops.concatenate([ops.repeat(x[:, :1], half, 1), x, ops.repeat(x[:, -1:], half, 1)], axis=1)
    negative = x < -threshold
    change = ops.cast(ops.not_equal(negative[:, 1:], negative[:, :-1]), "int32")
    cumulative = ops.pad(ops.cumsum(change, axis=1), [[0, 0], [1, 0]])  # cumulative[n]: changes up to n
    frames = (ops.shape(x)[1] - frame_length) // hop_length + 1
    starts = ops.arange(frames) * hop_length
    count = ops.take(cumulative, starts + frame_length - 1, axis=1) - ops.take(cumulative, starts, axis=1)
    return ops.expand_dims(ops.cast(count, "float32") / frame_length, -1)


def chroma_from_power(power, chroma_fb):
    """librosa.feature.chroma_stft(S=power, tuning=0): filterbank, then each frame divided by its max."""
    raw = ops.matmul(power, chroma_fb)
    peak = ops.max(raw, axis=-1, keepdims=True)
    return raw / ops.where(peak < np.finfo(np.float32).tiny, 1.0, peak)


def fix_frames(x, num_frames):
    """Crop or zero-pad axis 1 to ``num_frames`` (static result shape under every backend)."""
    x = x[:, :num_frames]
    pad = ops.zeros((ops.shape(x)[0], num_frames, x.shape[-1]), dtype=x.dtype)
    fixed = ops.concatenate([x, pad], axis=1)[:, :num_frames]
    return ops.reshape(fixed, (-1, num_frames, x.shape[-1]))  # make the frame count static
