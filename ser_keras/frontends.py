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

import keras
import librosa
import numpy as np
from keras import ops

from .spectral import (  # noqa: F401  (re-exported: the layers' building blocks)
    librosa_window,
    dct_matrix,
    delta_kernel,
    contrast_bands,
    as_batch,
    stft_power,
    power_to_db,
    delta,
    spectral_centroid,
    spectral_bandwidth,
    spectral_rolloff,
    spectral_contrast,
    frame_rms,
    zero_crossing_rate,
    chroma_from_power,
    fix_frames,
)

_serializable = keras.saving.register_keras_serializable(package="ser_keras")


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

    def compute_output_spec(self, waveform):
        """Symbolic output for any input; with an unknown number of samples (bigru_mha's model
        input) the layer is traced at two concrete lengths and the axes that differ are unknown.
        (JAX traces unknown axes symbolically, which ``jax.scipy.signal.stft`` cannot take.)"""
        if waveform.shape[-1] is not None:
            return super().compute_output_spec(waveform)
        base = self.n_fft + 16 * self.hop_length  # enough frames for every delta / contrast window
        probes = [super(_FrontEnd, self).compute_output_spec(
            keras.KerasTensor((*waveform.shape[:-1], samples), dtype=waveform.dtype))
            for samples in (base, base + self.hop_length)]
        shape = tuple(a if a == b else None for a, b in zip(probes[0].shape, probes[1].shape))
        return keras.KerasTensor(shape, dtype=probes[0].dtype)

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


# ----------------------------------------------------------------------------- run-model plumbing
@_serializable
class PadOrCrop(keras.layers.Layer):
    """``[batch, samples]`` -> ``[batch, length]``: the first ``length`` samples, zero-padded.

    The documented rule for fixed-length models: audio longer than the training length is scored
    on its first ``length`` samples, shorter audio is zero-padded, exactly as in training."""

    def __init__(self, length, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.length = int(length)

    def call(self, audio):
        audio = ops.cast(audio, "float32")[:, : self.length]
        padding = ops.zeros((ops.shape(audio)[0], self.length), "float32")
        return ops.concatenate([audio, padding], axis=1)[:, : self.length]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.length)

    def get_config(self):
        return {**super().get_config(), "length": self.length}


@_serializable
class FrameMask(keras.layers.Layer):
    """(length [batch], features [batch, frames, ...]) -> mask [batch, frames]: 1.0 on the
    ``1 + length // hop`` frames a clip has alone (centred frames), 0.0 on batch padding."""

    def __init__(self, hop_length, **kwargs):
        super().__init__(**kwargs)
        self.hop_length = int(hop_length)

    def call(self, length, features):
        frames = ops.arange(ops.shape(features)[1])
        valid = 1 + ops.cast(length, "int32") // self.hop_length
        return ops.cast(ops.expand_dims(frames, 0) < ops.expand_dims(valid, 1), "float32")

    def compute_output_shape(self, length_shape, features_shape):
        return (features_shape[0], features_shape[1])

    def get_config(self):
        return {**super().get_config(), "hop_length": self.hop_length}
