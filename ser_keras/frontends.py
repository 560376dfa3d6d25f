"""In-graph feature front ends: waveform ``[batch, samples]`` -> features ``[batch, frames, feats]``.

Every layer reproduces a librosa computation the papers' notebooks ran per file (tests/test_frontends.py
states the tolerances). Filterbanks (mel, chroma), windows, DCT and delta kernels are numpy constants
rebuilt from the layer config, never weights, so saved models stay small and load with safe_mode.
Only ``keras.ops`` is used, so the layers run inside ``tf.data`` maps, inside Functional models, and
under the JAX backend.

librosa conventions reproduced exactly: frames centred by zero padding of ``n_fft // 2`` on each side
(librosa >= 0.10 ``pad_mode="constant"``; ``keras.ops.stft(center=True)`` reflect-pads instead, so we
pad ourselves), a ``win_length`` window zero-padded to ``n_fft`` in the middle, ``1 + samples // hop``
frames, ``power_to_db`` with ``amin=1e-10`` and its per-utterance ``top_db`` floor.
"""

import math

import keras
import librosa
import numpy as np
import scipy.fft
import scipy.signal
from keras import ops

_serializable = keras.saving.register_keras_serializable(package="ser_keras")


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


# ----------------------------------------------------------------------------- layers
class _FrontEnd(keras.layers.Layer):
    """Common plumbing: float32 compute, rank-1 inputs, config from the constructor arguments."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self._args = {}

    def _remember(self, **args):
        self._args.update(args)
        for name, value in args.items():
            setattr(self, name, value)

    def call(self, waveform):
        x, single = as_batch(waveform)
        y = self.features(x)
        return y[0] if single else y

    def get_config(self):
        return {**super().get_config(), **self._args}


@_serializable
class LogMelSpectrogram(_FrontEnd):
    """cldnn RAVDESS input: the authors' ``power_to_db(melspectrogram(|stft|^2), ref=np.max)``.

    16 kHz, Hamming 256 / hop 128 / FFT 512, 128 Slaney mel bands up to 4 kHz, dB relative to the
    utterance's loudest bin (ref="max", floor -80 dB) as the released code did -> ``[batch, frames, 128]``.
    """

    def __init__(self, sample_rate=16000, n_fft=512, win_length=256, hop_length=128, window="hamming",
                 n_mels=128, fmin=0.0, fmax=4000.0, ref="max", top_db=80.0, **kwargs):
        super().__init__(**kwargs)
        self._remember(sample_rate=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                       window=window, n_mels=n_mels, fmin=fmin, fmax=fmax, ref=ref, top_db=top_db)
        self._window = librosa_window(window, win_length, n_fft)
        self._mel_fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                           fmax=fmax).T.astype(np.float32)

    def features(self, x):
        mel = ops.matmul(stft_power(x, self.n_fft, self.hop_length, self._window), self._mel_fb)
        return power_to_db(mel, ref=self.ref, top_db=self.top_db)


@_serializable
class FrameWindows(keras.layers.Layer):
    """``[batch, frames, feats]`` -> ``[batch, windows, window, feats, 1]`` (cldnn's TimeDistributed input).

    ``1 + (frames - window) // hop`` windows, the released code's ``frame()``: 626 frames -> 8 windows.
    The authors' array was (mels, time) per window; here time comes first, matching ``[frames, feats]``.
    """

    def __init__(self, window=128, hop=64, **kwargs):
        super().__init__(**kwargs)
        self.window, self.hop = window, hop

    def call(self, x):
        frames = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
        count = (frames - self.window) // self.hop + 1
        index = ops.expand_dims(ops.arange(count) * self.hop, 1) + ops.expand_dims(ops.arange(self.window), 0)
        return ops.expand_dims(ops.take(x, index, axis=1), -1)

    def get_config(self):
        return {**super().get_config(), "window": self.window, "hop": self.hop}


@_serializable
class Deltas(keras.layers.Layer):
    """Append librosa.feature.delta of orders ``1..order`` (width 9, mode "interp") along time."""

    def __init__(self, order=1, width=9, **kwargs):
        super().__init__(**kwargs)
        self.order, self.width = order, width

    def call(self, x):
        return ops.concatenate([x] + [delta(x, o, self.width) for o in range(1, self.order + 1)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "order": self.order, "width": self.width}


@_serializable
class CLDNNFrameFeatures(_FrontEnd):
    """cldnn IEMOCAP input, 46 per frame, in the released code's order:

    centroid, contrast (first octave band, 0-200 Hz, only: the code keeps ``spectral_contrast(...)[0]``),
    bandwidth, roll-off, ZCR, RMS, 20 MFCC, 20 delta-MFCC = 6 + 20 + 20. librosa defaults otherwise:
    16 kHz, Hann 2048, hop 512, MFCC from 128 mels in dB (ref 1, top_db 80) -> ``[batch, frames, 46]``.
    """

    def __init__(self, sample_rate=16000, n_fft=2048, hop_length=512, n_mfcc=20, n_mels=128, **kwargs):
        super().__init__(**kwargs)
        self._remember(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mfcc=n_mfcc,
                       n_mels=n_mels)
        self._window = librosa_window("hann", n_fft, n_fft)
        self._freq = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft).astype(np.float32)
        self._mel_fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).T.astype(np.float32)
        self._dct = dct_matrix(n_mels, n_mfcc)
        self._bands = contrast_bands(sample_rate, n_fft)

    def features(self, x):
        power = stft_power(x, self.n_fft, self.hop_length, self._window)
        mag = ops.sqrt(power)
        centroid = spectral_centroid(mag, self._freq)
        mfcc = ops.matmul(power_to_db(ops.matmul(power, self._mel_fb)), self._dct)
        return ops.concatenate([
            centroid,
            spectral_contrast(mag, self._bands)[..., :1],
            spectral_bandwidth(mag, self._freq, centroid),
            spectral_rolloff(mag, self.sample_rate / self.n_fft),
            zero_crossing_rate(x, self.n_fft, self.hop_length),
            frame_rms(x, self.n_fft, self.hop_length),
            mfcc,
            delta(mfcc),
        ], axis=-1)


@_serializable
class LogPowerSpectrogram(_FrontEnd):
    """bigru_mha input: 16 kHz, Hamming 40 ms (640) / hop 10 ms (160), 1600-point DFT (10 Hz bins),
    bins 0-4 kHz (401), ``10 log10(power)`` = librosa.power_to_db(ref 1, amin 1e-10, top_db 80)
    -> ``[batch, frames, 401]``."""

    def __init__(self, sample_rate=16000, n_fft=1600, win_length=640, hop_length=160, window="hamming",
                 fmax=4000.0, top_db=80.0, **kwargs):
        super().__init__(**kwargs)
        self._remember(sample_rate=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                       window=window, fmax=fmax, top_db=top_db)
        self._window = librosa_window(window, win_length, n_fft)
        self.num_bins = int(np.floor(fmax * n_fft / sample_rate)) + 1

    def features(self, x):
        power = stft_power(x, self.n_fft, self.hop_length, self._window)[..., : self.num_bins]
        return power_to_db(power, top_db=self.top_db)


@_serializable
class MTLFeatures(_FrontEnd):
    """bilstm_att_mtl input, 205 per frame, fixed ``num_frames``:

    40 MFCC (from 128 mels) + delta + delta-delta (120), 64-band log-mel (64), spectral centroid (1),
    roll-off (1), contrast (7: six octave bands from 200 Hz + the rest), chroma (12, tuning fixed at 0).
    22.05 kHz, Hamming 25 ms = 551 samples, hop 10 ms = 220 samples, FFT 1024 (the smallest power of two
    that holds the window). dB = power_to_db(ref 1, top_db 80). Cropped / zero-padded to 600 frames (6 s).
    """

    def __init__(self, sample_rate=22050, n_fft=1024, win_length=551, hop_length=220, window="hamming",
                 n_mfcc=40, mfcc_mels=128, n_mels=64, n_chroma=12, num_frames=600, **kwargs):
        super().__init__(**kwargs)
        self._remember(sample_rate=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                       window=window, n_mfcc=n_mfcc, mfcc_mels=mfcc_mels, n_mels=n_mels, n_chroma=n_chroma,
                       num_frames=num_frames)
        self._window = librosa_window(window, win_length, n_fft)
        self._freq = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft).astype(np.float32)
        self._mfcc_fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=mfcc_mels).T.astype(np.float32)
        self._mel_fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).T.astype(np.float32)
        self._dct = dct_matrix(mfcc_mels, n_mfcc)
        self._chroma_fb = librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, n_chroma=n_chroma,
                                                 tuning=0.0).T.astype(np.float32)
        self._bands = contrast_bands(sample_rate, n_fft)

    def features(self, x):
        power = stft_power(x, self.n_fft, self.hop_length, self._window)
        mag = ops.sqrt(power)
        mfcc = ops.matmul(power_to_db(ops.matmul(power, self._mfcc_fb)), self._dct)
        frames = ops.concatenate([
            mfcc, delta(mfcc, 1), delta(mfcc, 2),
            power_to_db(ops.matmul(power, self._mel_fb)),
            spectral_centroid(mag, self._freq),
            spectral_rolloff(mag, self.sample_rate / self.n_fft),
            spectral_contrast(mag, self._bands),
            chroma_from_power(power, self._chroma_fb),
        ], axis=-1)
        return fix_frames(frames, self.num_frames)
