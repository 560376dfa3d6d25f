"""Waveform augmentation: the effect each layer promises, measured on synthetic signals."""

import keras
import librosa
import numpy as np
import pytest
import tensorflow as tf

from audio_fixtures import tone
from ser_keras import augment as au

SR = 16000


def syllables(seconds=2.0, period=0.4, freq=200.0):
    """A harmonic tone whose loudness swells once per ``period`` s, like syllables.

    The floor between swells stays voiced: a phase vocoder (librosa's too) loses phase coherence across
    digital silence, which makes burst levels erratic and would test the vocoder, not the stretch.
    """
    t = np.arange(int(seconds * SR)) / SR
    swell = 0.1 + 0.9 * np.sin(np.pi * np.mod(t, period) / period) ** 4
    voice = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 5))
    return (0.3 * swell * voice).astype(np.float32)


def onsets(y, level=0.5, min_gap=0.2):
    """Sample indices where the 20 ms energy envelope rises through ``level`` of its peak, ignoring
    re-crossings within ``min_gap`` s (vocoder ripple on top of a swell)."""
    envelope = np.sqrt(np.convolve(y ** 2, np.ones(320) / 320, mode="same"))
    above = envelope > level * envelope.max()
    kept = []
    for index in np.flatnonzero(above[1:] & ~above[:-1]) + 1:
        if not kept or index - kept[-1] > min_gap * SR:
            kept.append(index)
    return np.array(kept)


def median_f0(y):
    return float(np.median(librosa.yin(y, fmin=80, fmax=600, sr=SR)))


def batch(n=3, seconds=1.0):
    return np.stack([tone(seconds, SR, 200.0, seed=s) for s in range(n)])


@pytest.mark.parametrize("layer", [
    au.RandomGain(seed=0), au.RandomNoise(seed=0), au.RandomTimeStretch(seed=0),
    au.RandomPitchShift(seed=0), au.WaveformAugmentation(seed=0),
])
def test_identity_unless_training(layer):
    x = batch()
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    assert not np.array_equal(np.asarray(layer(x, training=True)), x)


def test_gain_is_an_exact_per_example_factor_in_range():
    x = batch(6)
    y = np.asarray(au.RandomGain(0.6, 1.4, seed=1)(x, training=True))
    ratio = y / x
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-6)
    assert np.all((ratio[:, 0] >= 0.6) & (ratio[:, 0] <= 1.4)) and np.ptp(ratio[:, 0]) > 0.05


def test_noise_reaches_the_drawn_snr_relative_to_each_example():
    x = batch(4) * np.array([[0.1], [1.0], [0.3], [2.0]], np.float32)
    fixed = np.asarray(au.RandomNoise((12.0, 12.0), seed=2)(x, training=True))
    snr = 10 * np.log10(np.mean(x ** 2, 1) / np.mean((fixed - x) ** 2, 1))
    np.testing.assert_allclose(snr, 12.0, atol=0.05)
    ranged = np.asarray(au.RandomNoise((5.0, 25.0), seed=2)(x, training=True))
    snr = 10 * np.log10(np.mean(x ** 2, 1) / np.mean((ranged - x) ** 2, 1))
    assert np.all((snr > 5.0 - 0.05) & (snr < 25.0 + 0.05)) and np.ptp(snr) > 1.0


@pytest.mark.parametrize("rate", [0.7, 0.8, 1.25])
def test_time_stretch_scales_duration_and_keeps_pitch(rate):
    x = syllables()[None]
    y = np.asarray(au.RandomTimeStretch(rate, rate, keep_length=False, seed=0)(x, training=True))[0]
    assert y.size == round(x.shape[1] / rate)
    before, after = onsets(x[0]), onsets(y)
    assert len(after) == len(before)
    span_ratio = (after[-1] - after[0]) / (before[-1] - before[0])
    assert abs(span_ratio * rate - 1.0) < 0.02
    assert abs(median_f0(y) / median_f0(x[0]) - 1.0) < 0.02


def test_time_stretch_keep_length_crops_or_pads_back():
    x = syllables()[None].repeat(4, 0)
    y = np.asarray(au.RandomTimeStretch(0.7, 1.3, keep_length=True, seed=3)(x, training=True))
    assert y.shape == x.shape
    second_swell = np.array([onsets(v)[1] for v in y], float)  # moves with each example's own rate
    assert np.ptp(second_swell) > 0.05 * second_swell.mean()


@pytest.mark.parametrize("semitones", [-4.0, 3.0])
def test_pitch_shift_changes_f0_by_the_interval_and_keeps_duration(semitones):
    x = tone(1.5, SR, 200.0)[None]
    y = np.asarray(au.RandomPitchShift((semitones, semitones), seed=0)(x, training=True))
    assert y.shape == x.shape
    ratio = median_f0(y[0]) / median_f0(x[0])
    assert abs(ratio / 2.0 ** (semitones / 12.0) - 1.0) < 0.02
    burst_on = onsets(np.asarray(au.RandomPitchShift((semitones, semitones), seed=0)(
        syllables()[None], training=True))[0])
    np.testing.assert_allclose(burst_on, onsets(syllables()), atol=0.02 * SR)  # same timing (20 ms envelope)


def test_probability_zero_leaves_examples_untouched():
    x = batch()
    for layer in [au.RandomGain(probability=0.0), au.RandomNoise(probability=0.0),
                  au.RandomTimeStretch(probability=0.0), au.RandomPitchShift(probability=0.0)]:
        np.testing.assert_array_equal(np.asarray(layer(x, training=True)), x)


def _augmented_pipeline(seed, waves):
    layer = au.WaveformAugmentation(probabilities=(1, 1, 1, 1), keep_length=False, seed=seed)
    dataset = tf.data.Dataset.from_tensor_slices(waves).map(lambda w: layer(w, training=True))
    return [e.numpy() for e in dataset]


def test_tf_data_map_draws_per_example_and_replays_under_a_seed():
    waves = np.repeat(tone(1.0, SR, 200.0)[None], 4, axis=0)  # identical inputs
    first, again, other = (_augmented_pipeline(s, waves) for s in (7, 7, 8))
    assert len({e.size for e in first}) == 4                 # a different stretch per element
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert any(a.size != b.size or not np.allclose(a, b) for a, b in zip(first, other))


def test_augmentation_at_the_head_of_a_saved_model(tmp_path):
    audio = keras.Input((SR,))
    model = keras.Model(audio, au.WaveformAugmentation(seed=1)(audio))
    model.save(tmp_path / "aug.keras")
    loaded = keras.models.load_model(tmp_path / "aug.keras", safe_mode=True)
    x = batch(2)
    np.testing.assert_array_equal(np.asarray(loaded(x)), x)  # inference: identity
    assert np.asarray(loaded(x, training=True)).shape == x.shape
    assert loaded.layers[-1].get_config()["stretch"] == [0.7, 1.3]


@pytest.mark.parametrize("rate, semitones", [(0.8, 3.0), (1.25, -4.0)])
def test_stretch_and_pitch_shift_in_one_vocoder_pass_do_both(rate, semitones):
    """WaveformAugmentation fuses its stretch and pitch shift: the duration follows the rate alone and
    F0 the interval alone."""
    layer = au.WaveformAugmentation(stretch=(rate, rate), semitones=(semitones, semitones),
                                    probabilities=(0, 1, 1, 0), keep_length=False, seed=0)
    x = syllables()[None]
    y = np.asarray(layer(x, training=True))[0]
    assert y.size == round(x.shape[1] / rate)
    before, after = onsets(x[0]), onsets(y)
    assert len(after) == len(before)
    assert abs((after[-1] - after[0]) / (before[-1] - before[0]) * rate - 1.0) < 0.02
    assert abs(median_f0(y) / median_f0(x[0]) / 2.0 ** (semitones / 12.0) - 1.0) < 0.02


@pytest.mark.parametrize("layer", [
    au.RandomTimeStretch(0.8, 0.8, seed=0), au.RandomTimeStretch(1.25, 1.25, seed=0),
    au.RandomPitchShift((3.0, 3.0), seed=0), au.RandomPitchShift((-4.0, -4.0), seed=0),
    au.WaveformAugmentation(stretch=(0.8, 0.8), semitones=(3.0, 3.0), probabilities=(0, 1, 1, 0), seed=0),
], ids=["slower", "faster", "up", "down", "slower+up"])
def test_stretch_and_pitch_shift_keep_the_level(layer):
    """A steady tone keeps its level (librosa's vocoder loses ~8% slowing down 0.8x, by interpolating
    magnitudes). Regression: reflect-padded first frames seeded incoherent phases, and every slowed-down
    example came out 2-4x quieter."""
    x = np.stack([tone(1.0, SR, freq) for freq in (150.0, 200.0, 210.0)])
    y = np.asarray(layer(x, training=True))
    inner = slice(SR // 10, 3 * SR // 4)  # away from the edges and within the shortest (1.25x) output
    level = np.sqrt(np.mean(y[:, inner] ** 2, 1) / np.mean(x[:, inner] ** 2, 1))
    assert np.all((level > 0.85) & (level < 1.1)), level


def test_recipe_config_round_trips_and_older_configs_still_load():
    layer = au.WaveformAugmentation(seed=4, hop_length=256)
    config = layer.get_config()
    assert (config["n_fft"], config["hop_length"]) == (512, 256)
    assert au.WaveformAugmentation.from_config(config).steps[1].hop_length == 256
    older = {k: v for k, v in config.items() if k not in ("n_fft", "hop_length")}
    restored = au.WaveformAugmentation.from_config(older)
    assert (restored.n_fft, restored.hop_length) == (512, 128)
    x = batch(2)
    assert np.asarray(restored(x, training=True)).shape == x.shape


def test_vectorised_helpers_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 50)).astype(np.float32)
    positions = np.sort(rng.uniform(-2.0, 52.0, (3, 70)), axis=1).astype(np.float32)
    expected = np.stack([np.interp(p, np.arange(50), row) for p, row in zip(positions, x)])
    np.testing.assert_allclose(np.asarray(au.interpolate(x, positions)), expected, rtol=1e-5, atol=1e-5)
    steps = rng.standard_normal((2, 64, 5)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(au._cumsum_frames(steps, 32)), np.cumsum(steps, axis=1),
                               rtol=1e-4, atol=1e-4)
