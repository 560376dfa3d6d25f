"""On-the-fly waveform augmentation (bilstm_att_mtl, SPEC §3): gain, noise at an SNR, time stretch,
pitch shift. Waveform in (``[batch, samples]`` or one ``[samples]`` tf.data element), waveform out.

Active only when called with ``training=True``; otherwise the input is returned untouched. Random draws
come from each layer's ``keras.random.SeedGenerator``, one value per example. Under the TensorFlow
backend the generator's state is a ``tf.Variable`` that a ``tf.data`` map function captures and
advances, as Keras' own preprocessing layers (e.g. RandomContrast) do: every element gets fresh draws and
a pipeline with the same seed replays the same draws, provided the map runs in element order (no
``num_parallel_calls``, or batch first and augment whole batches). Only ``keras.ops`` / ``keras.random``
are used, so under JAX the layers run at the head of a model (jit needs ``keep_length=True``).

Output length: gain, noise and pitch shift keep it. Time stretch changes it; ``keep_length=True`` crops or
zero-pads the stretched signal back to the input length (fixed shapes, batches, JAX), ``keep_length=False``
returns ``round(samples / rate)`` samples (per-example inside ``tf.data``; in a batch, the longest example
sets the length and shorter ones are zero-padded).
"""

import math

import keras
import numpy as np
from keras import ops

from ser_keras.frontends import as_batch

_serializable = keras.saving.register_keras_serializable(package="ser_keras")


def _gather_rows(x, index):
    """``x[b, index[b, t]]`` for ``x`` ``[batch, n, ...]`` and integer ``index`` ``[batch, t]``."""
    while len(index.shape) < len(x.shape):
        index = ops.expand_dims(index, -1)  # take_along_axis broadcasts the trailing axes
    return ops.take_along_axis(x, index, axis=1)


def interpolate(x, positions):
    """Linear interpolation of ``x`` ``[batch, n]`` at fractional ``positions`` ``[batch, m]``."""
    last = ops.shape(x)[1] - 1
    left = ops.clip(ops.floor(positions), 0, ops.cast(last, "float32"))
    frac = positions - left
    left = ops.cast(left, "int32")
    right = ops.minimum(left + 1, last)
    return (1.0 - frac) * _gather_rows(x, left) + frac * _gather_rows(x, right)


def phase_vocoder_stretch(x, rate, min_rate, n_fft=512, hop_length=128):
    """librosa.effects.time_stretch, batched with one ``rate`` per example (>1 = faster, shorter).

    Returns (``[batch, L]`` stretched signals zero beyond each one's end, lengths ``round(n / rate)``).
    The STFT frames are read at ``t * rate``: magnitudes interpolated between neighbours, phases
    accumulated from each frame's instantaneous-frequency advance, so pitch is kept.
    """
    samples = ops.shape(x)[1]
    real, imag = ops.stft(x, n_fft, hop_length, n_fft, window="hann", center=True)
    frames = ops.shape(real)[1]
    zeros = ops.zeros_like(real[:, :2])
    mag = ops.concatenate([ops.sqrt(real * real + imag * imag), zeros], axis=1)
    phase = ops.concatenate([ops.arctan2(imag, real), zeros], axis=1)

    if isinstance(frames, int):  # static under JAX / fixed-length inputs: keep shapes static
        out_frames = math.ceil(frames / min_rate) + 1
    else:
        out_frames = ops.cast(ops.ceil(ops.cast(frames, "float32") / min_rate), "int32") + 1
    steps = ops.expand_dims(ops.cast(ops.arange(out_frames), "float32"), 0) * ops.expand_dims(rate, 1)
    left = ops.cast(ops.minimum(ops.floor(steps), ops.cast(frames, "float32")), "int32")
    alpha = ops.expand_dims(steps - ops.cast(left, "float32"), -1)
    out_mag = (1.0 - alpha) * _gather_rows(mag, left) + alpha * _gather_rows(mag, left + 1)

    advance = np.pi * hop_length * np.arange(n_fft // 2 + 1) / (n_fft // 2)  # expected phase step per hop
    dphase = _gather_rows(phase, left + 1) - _gather_rows(phase, left) - advance.astype(np.float32)
    dphase = dphase - 2.0 * np.pi * ops.round(dphase / (2.0 * np.pi))
    # Advance modulo 2 pi keeps the float32 running sum small (same phases mod 2 pi as librosa).
    step = np.mod(advance, 2.0 * np.pi).astype(np.float32) + dphase
    out_phase = phase[:, :1] + ops.cumsum(step, axis=1) - step

    inside = ops.expand_dims(ops.cast(steps < ops.cast(frames, "float32"), "float32"), -1)
    spectrum = (out_mag * ops.cos(out_phase) * inside, out_mag * ops.sin(out_phase) * inside)
    y = ops.istft(spectrum, n_fft, hop_length, n_fft, window="hann", center=True)
    lengths = ops.cast(ops.round(ops.cast(samples, "float32") / rate), "int32")
    keep = ops.arange(ops.shape(y)[1])[None, :] < lengths[:, None]
    return ops.where(keep, y, 0.0), lengths


def fit_length(x, length):
    """Crop or zero-pad axis 1 to ``length``."""
    x = x[:, :length]
    return ops.concatenate([x, ops.zeros((ops.shape(x)[0], length), x.dtype)], axis=1)[:, :length]


class _WaveformAugmentation(keras.layers.Layer):
    """Plumbing: float32, rank-1 inputs, identity unless training, per-example apply probability."""

    def __init__(self, probability=1.0, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.probability, self.seed = probability, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, waveform, training=None):
        if not training:
            return waveform
        x, single = as_batch(waveform)
        y = self.augment(x, ops.shape(x)[0])
        return y[0] if single else y

    def uniform(self, batch, low, high):
        return keras.random.uniform((batch,), low, high, seed=self.seed_generator)

    def chosen(self, batch):
        """Per-example bool: apply this augmentation to that example?"""
        return self.uniform(batch, 0.0, 1.0) < self.probability

    def get_config(self):
        return {**super().get_config(), "probability": self.probability, "seed": self.seed}


@_serializable
class RandomGain(_WaveformAugmentation):
    """Multiply each example by a gain drawn uniformly from [min_gain, max_gain] (paper: 0.6-1.4)."""

    def __init__(self, min_gain=0.6, max_gain=1.4, **kwargs):
        super().__init__(**kwargs)
        self.min_gain, self.max_gain = min_gain, max_gain

    def augment(self, x, batch):
        gain = ops.where(self.chosen(batch), self.uniform(batch, self.min_gain, self.max_gain), 1.0)
        return x * gain[:, None]

    def get_config(self):
        return {**super().get_config(), "min_gain": self.min_gain, "max_gain": self.max_gain}


@_serializable
class RandomNoise(_WaveformAugmentation):
    """Add white Gaussian noise at an SNR (dB) drawn per example, relative to that example's own power.

    The noise is rescaled to its exact target power, so the achieved SNR equals the drawn one.
    """

    def __init__(self, snr_db=(10.0, 30.0), **kwargs):
        super().__init__(**kwargs)
        self.snr_db = tuple(float(v) for v in snr_db)

    def augment(self, x, batch):
        snr = self.uniform(batch, *self.snr_db)
        noise = keras.random.normal(ops.shape(x), seed=self.seed_generator)
        signal_power = ops.mean(ops.square(x), axis=1)
        noise_power = ops.maximum(ops.mean(ops.square(noise), axis=1), 1e-12)
        scale = ops.sqrt(signal_power / noise_power * ops.power(10.0, -snr / 10.0))
        scale = ops.where(self.chosen(batch), scale, 0.0)
        return x + noise * scale[:, None]

    def get_config(self):
        return {**super().get_config(), "snr_db": list(self.snr_db)}


@_serializable
class RandomTimeStretch(_WaveformAugmentation):
    """Phase-vocoder time stretch by a rate drawn from [min_rate, max_rate] (>1 faster); pitch kept."""

    def __init__(self, min_rate=0.7, max_rate=1.3, keep_length=True, n_fft=512, hop_length=128, **kwargs):
        super().__init__(**kwargs)
        self.min_rate, self.max_rate, self.keep_length = min_rate, max_rate, keep_length
        self.n_fft, self.hop_length = n_fft, hop_length

    def augment(self, x, batch):
        samples = ops.shape(x)[1]
        chosen = self.chosen(batch)
        rate = ops.where(chosen, self.uniform(batch, self.min_rate, self.max_rate), 1.0)
        stretched, lengths = phase_vocoder_stretch(x, rate, min(self.min_rate, 1.0), self.n_fft, self.hop_length)
        if self.keep_length:
            return ops.where(chosen[:, None], fit_length(stretched, samples), x)
        longest = ops.max(ops.where(chosen, lengths, samples))
        return ops.where(chosen[:, None], fit_length(stretched, longest), fit_length(x, longest))

    def get_config(self):
        return {**super().get_config(), "min_rate": self.min_rate, "max_rate": self.max_rate,
                "keep_length": self.keep_length, "n_fft": self.n_fft, "hop_length": self.hop_length}


@_serializable
class RandomPitchShift(_WaveformAugmentation):
    """Shift pitch by a number of semitones drawn from [-semitones, semitones] (or from a (low, high)
    pair); duration kept.

    As librosa.effects.pitch_shift: time-stretch by 2^(-n/12), then resample back to the input length
    (here by linear interpolation, without an anti-aliasing filter: shifting up folds the top
    ~(1 - 2^(-n/12)) of the band, where speech has little energy).
    """

    def __init__(self, semitones=4.0, n_fft=512, hop_length=128, **kwargs):
        super().__init__(**kwargs)
        pair = (-semitones, semitones) if np.isscalar(semitones) else semitones
        self.semitones = tuple(float(v) for v in pair)
        self.n_fft, self.hop_length = n_fft, hop_length

    def augment(self, x, batch):
        chosen = self.chosen(batch)
        shift = ops.where(chosen, self.uniform(batch, *self.semitones), 0.0)
        rate = ops.power(2.0, -shift / 12.0)
        slowest = min(2.0 ** (-self.semitones[1] / 12.0), 1.0)
        stretched, _ = phase_vocoder_stretch(x, rate, slowest, self.n_fft, self.hop_length)
        positions = ops.cast(ops.arange(ops.shape(x)[1]), "float32")[None, :] / rate[:, None]
        return ops.where(chosen[:, None], interpolate(stretched, positions), x)

    def get_config(self):
        return {**super().get_config(), "semitones": list(self.semitones), "n_fft": self.n_fft,
                "hop_length": self.hop_length}


@_serializable
class WaveformAugmentation(keras.layers.Layer):
    """The paper's recipe, each step applied to an example with its own probability, in this order:
    gain -> time stretch -> pitch shift -> noise (last, so the SNR refers to the final signal)."""

    def __init__(self, gain=(0.6, 1.4), stretch=(0.7, 1.3), semitones=4.0, snr_db=(10.0, 30.0),
                 probabilities=(0.5, 0.5, 0.5, 0.5), keep_length=True, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.gain, self.stretch, self.snr_db = tuple(gain), tuple(stretch), tuple(snr_db)
        self.semitones, self.probabilities = semitones, tuple(probabilities)
        self.keep_length, self.seed = keep_length, seed
        seeds = [None if seed is None else seed + k for k in range(4)]  # independent streams per step
        p_gain, p_stretch, p_pitch, p_noise = self.probabilities
        self.steps = [
            RandomGain(*self.gain, probability=p_gain, seed=seeds[0]),
            RandomTimeStretch(*self.stretch, keep_length=keep_length, probability=p_stretch, seed=seeds[1]),
            RandomPitchShift(semitones, probability=p_pitch, seed=seeds[2]),
            RandomNoise(self.snr_db, probability=p_noise, seed=seeds[3]),
        ]

    def build(self, input_shape):
        for step in self.steps:
            step.build(input_shape)

    def call(self, waveform, training=None):
        for step in self.steps:
            waveform = step(waveform, training=training)
        return waveform

    def get_config(self):
        return {**super().get_config(), "gain": list(self.gain), "stretch": list(self.stretch),
                "semitones": self.semitones, "snr_db": list(self.snr_db),
                "probabilities": list(self.probabilities), "keep_length": self.keep_length, "seed": self.seed}
