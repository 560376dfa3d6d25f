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

Cost: the augmentation runs inside the training model, so it is paid in every step. The phase vocoder is
most of it: ``WaveformAugmentation`` does the stretch and the pitch shift in ONE vocoder pass (a stretch by
``rate / ratio`` then one resampling by ``ratio``), synthesises only the frames the output needs, and
gathers whole STFT rows and sums phases blockwise: about 4x cheaper than one vocoder per step was, and a
bilstm_att_mtl training step with augmentation takes ~1.25x one without (``benchmarks/augmentation_cost.py``).
"""


import keras
import numpy as np
from keras import ops

from ser_keras.frontends import as_batch

_serializable = keras.saving.register_keras_serializable(package="ser_keras")


from ser_keras.vocoder import (  # noqa: F401  (the layers' DSP; re-exported)
    _take_rows,
    interpolate,
    _cumsum_frames,
    _frames_for,
    phase_vocoder_stretch,
    fit_length,
    stretch_and_shift,
)


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

    def draw(self, batch):
        """(chosen, rate) per example."""
        chosen = self.chosen(batch)
        return chosen, ops.where(chosen, self.uniform(batch, self.min_rate, self.max_rate), 1.0)

    def augment(self, x, batch):
        chosen, rate = self.draw(batch)
        return stretch_and_shift(x, chosen, rate=rate, min_rate=self.min_rate, keep_length=self.keep_length,
                                 n_fft=self.n_fft, hop_length=self.hop_length)

    def get_config(self):
        return {**super().get_config(), "min_rate": self.min_rate, "max_rate": self.max_rate,
                "keep_length": self.keep_length, "n_fft": self.n_fft, "hop_length": self.hop_length}


@_serializable
class RandomPitchShift(_WaveformAugmentation):
    """Shift pitch by a number of semitones drawn from [-semitones, semitones] (or from a (low, high)
    pair); duration kept.

    As librosa.effects.pitch_shift: phase-vocoder time-stretch by 2^(-n/12), then resample back to the
    input length (here by linear interpolation, without an anti-aliasing filter: shifting up folds the
    top ~(1 - 2^(-n/12)) of the band, where speech has little energy). See ``stretch_and_shift``.
    """

    def __init__(self, semitones=4.0, n_fft=512, hop_length=128, **kwargs):
        super().__init__(**kwargs)
        pair = (-semitones, semitones) if np.isscalar(semitones) else semitones
        self.semitones = tuple(float(v) for v in pair)
        self.n_fft, self.hop_length = n_fft, hop_length

    @property
    def max_ratio(self):
        return 2.0 ** (max(self.semitones) / 12.0)

    def draw(self, batch):
        """(chosen, frequency ratio 2^(semitones / 12)) per example."""
        chosen = self.chosen(batch)
        shift = ops.where(chosen, self.uniform(batch, *self.semitones), 0.0)
        return chosen, ops.power(2.0, shift / 12.0)

    def augment(self, x, batch):
        chosen, ratio = self.draw(batch)
        return stretch_and_shift(x, chosen, ratio=ratio, max_ratio=self.max_ratio, n_fft=self.n_fft,
                                 hop_length=self.hop_length)

    def get_config(self):
        return {**super().get_config(), "semitones": list(self.semitones), "n_fft": self.n_fft,
                "hop_length": self.hop_length}


@_serializable
class WaveformAugmentation(keras.layers.Layer):
    """The paper's recipe, each step applied to an example with its own probability, in this order:
    gain -> time stretch -> pitch shift -> noise (last, so the SNR refers to the final signal).

    Each step draws from its own seed stream, as the four layers alone would; the stretch and the pitch
    shift share one phase-vocoder pass (``stretch_and_shift``), so an augmented batch costs about one
    STFT / vocoder / ISTFT at ``n_fft`` / ``hop_length`` (75 % overlap by default, as librosa; a larger
    hop is cheaper and phasier).
    """

    def __init__(self, gain=(0.6, 1.4), stretch=(0.7, 1.3), semitones=4.0, snr_db=(10.0, 30.0),
                 probabilities=(0.5, 0.5, 0.5, 0.5), keep_length=True, seed=None, n_fft=512, hop_length=128,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.gain, self.stretch, self.snr_db = tuple(gain), tuple(stretch), tuple(snr_db)
        self.semitones, self.probabilities = semitones, tuple(probabilities)
        self.keep_length, self.seed = keep_length, seed
        self.n_fft, self.hop_length = n_fft, hop_length
        seeds = [None if seed is None else seed + k for k in range(4)]  # independent streams per step
        p_gain, p_stretch, p_pitch, p_noise = self.probabilities
        vocoder = {"n_fft": n_fft, "hop_length": hop_length}
        self.steps = [
            RandomGain(*self.gain, probability=p_gain, seed=seeds[0]),
            RandomTimeStretch(*self.stretch, keep_length=keep_length, probability=p_stretch, seed=seeds[1],
                              **vocoder),
            RandomPitchShift(semitones, probability=p_pitch, seed=seeds[2], **vocoder),
            RandomNoise(self.snr_db, probability=p_noise, seed=seeds[3]),
        ]

    def build(self, input_shape):
        for step in self.steps:
            step.build(input_shape)

    def call(self, waveform, training=None):
        if not training:
            return waveform
        x, single = as_batch(waveform)
        batch = ops.shape(x)[0]
        gain, stretch, pitch, noise = self.steps
        x = gain.augment(x, batch)
        stretched, rate = stretch.draw(batch)
        shifted, ratio = pitch.draw(batch)
        # Stretch then pitch shift in one phase-vocoder pass (what each layer alone costs, not twice that).
        x = stretch_and_shift(x, ops.logical_or(stretched, shifted), rate=rate, ratio=ratio,
                              min_rate=stretch.min_rate, max_ratio=pitch.max_ratio, keep_length=self.keep_length,
                              n_fft=self.n_fft, hop_length=self.hop_length)
        y = noise.augment(x, batch)
        return y[0] if single else y

    def get_config(self):
        return {**super().get_config(), "gain": list(self.gain), "stretch": list(self.stretch),
                "semitones": self.semitones, "snr_db": list(self.snr_db),
                "probabilities": list(self.probabilities), "keep_length": self.keep_length, "seed": self.seed,
                "n_fft": self.n_fft, "hop_length": self.hop_length}
