"""Parity of the in-graph front ends with the librosa code the papers' notebooks ran per file.

Each test runs on two real RAVDESS files (skipped without ../shared/data) and on a synthetic voiced
signal (harmonics, vibrato, syllable envelope, noise, digital silence), always available. The layers use
the same float32 STFT and filterbanks as librosa, so agreement is to float32 rounding: tolerances below
are ~10x the largest difference measured, except where stated.
"""

import glob

import keras
import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr
import tensorflow as tf

from ser_keras import frontends as fe

SR = 16000


def synthetic_speech(seconds=5.0, sr=SR, seed=0):
    """Voiced-speech stand-in: 5 harmonics of a vibrato F0, syllable bursts, breath noise, then silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 180.0 + 25.0 * np.sin(2 * np.pi * 5.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) * (t < 0.8 * seconds)
    return (0.3 * voiced * envelope + 0.005 * rng.standard_normal(t.size) * (t < 0.8 * seconds)).astype(np.float32)


def _real(root, count=2):
    files = sorted(glob.glob(str(root / "Actor_0*" / "*.flac")))[: 60 * count : 60]
    return [sf.read(f, dtype="float32", always_2d=True)[0].mean(axis=1) for f in files]


@pytest.fixture(params=["real", "synthetic"])
def speech16k(request):
    """A few 16 kHz utterances: real RAVDESS when present, synthetic otherwise (and always)."""
    if request.param == "real":
        return _real(request.getfixturevalue("shared_ravdess"))
    return [synthetic_speech(seed=0), synthetic_speech(3.2, seed=1)]


def _fixed(waves, samples):
    return np.stack([librosa.util.fix_length(w, size=samples) for w in waves])


def test_log_mel_matches_librosa_within_0_01_db(speech16k):
    x = _fixed(speech16k, 5 * SR)
    ours = np.asarray(fe.LogMelSpectrogram()(x))
    assert ours.shape == (len(x), 626, 128)  # 1 + 80000 // 128 frames, like center=True
    for got, y in zip(ours, x):
        power = np.abs(librosa.stft(y, n_fft=512, window="hamming", win_length=256, hop_length=128)) ** 2
        mel = librosa.feature.melspectrogram(S=power, sr=SR, n_mels=128, fmax=4000)
        ref = librosa.power_to_db(mel, ref=np.max).T
        loud = ref > -60.0  # quieter bins are float32 rounding noise on both sides
        assert np.abs(got - ref)[loud].max() < 0.01
        assert np.abs(got - ref).max() < 0.05


def test_frame_windows_cut_like_the_released_code():
    frames = np.random.default_rng(0).standard_normal((2, 626, 128)).astype(np.float32)
    ours = np.asarray(fe.FrameWindows(128, 64)(frames))
    assert ours.shape == (2, 8, 128, 128, 1)
    for t in range(8):
        np.testing.assert_array_equal(ours[:, t, :, :, 0], frames[:, 64 * t: 64 * t + 128])


def _cldnn_reference(y):
    """The released cldnn code's extract_get_audio_features (IEMOCAP), as [frames, 46]."""
    kw = dict(sr=SR, hop_length=512)
    stats = [
        librosa.feature.spectral_centroid(y=y, **kw)[0],
        librosa.feature.spectral_contrast(y=y, **kw)[0],
        librosa.feature.spectral_bandwidth(y=y, **kw)[0],
        librosa.feature.spectral_rolloff(y=y, **kw)[0],
        librosa.feature.zero_crossing_rate(y, hop_length=512)[0],
        librosa.feature.rms(y=y, hop_length=512)[0],
    ]
    mfcc = librosa.feature.mfcc(y=y, **kw)
    return np.concatenate([np.stack(stats, 1), mfcc.T, librosa.feature.delta(mfcc).T], axis=1)


def test_cldnn_frame_features_match_librosa(speech16k):
    x = _fixed(speech16k, 5 * SR)
    ours = np.asarray(fe.CLDNNFrameFeatures()(x))
    assert ours.shape == (len(x), 157, 46)
    for got, y in zip(ours, x):
        ref = _cldnn_reference(y)
        diff = np.abs(got - ref)
        relative = diff / (np.abs(ref) + 1e-3)
        assert relative[:, [0, 2]].max() < 1e-4          # centroid, bandwidth (Hz)
        assert diff[:, 1].max() < 0.05                   # contrast, dB
        rolloff_bins = diff[:, 3] / (SR / 2048)           # float32 vs float32 cumsum order can flip
        assert (rolloff_bins == 0).mean() >= 0.99 and rolloff_bins.max() <= 1.0 + 1e-6  # one bin
        assert diff[:, 4].max() < 1e-6                   # ZCR, counts are exact
        assert relative[:, 5].max() < 1e-3              # RMS
        assert diff[:, 6:26].max() < 0.02                # MFCC (dB-scaled, values up to ~500)
        assert diff[:, 26:].max() < 0.005                # delta MFCC


def test_log_power_spectrogram_matches_librosa(speech16k):
    x = _fixed(speech16k, 3 * SR)
    ours = np.asarray(fe.LogPowerSpectrogram()(x))
    assert ours.shape == (len(x), 301, 401)  # 0..4000 Hz in 10 Hz bins
    for got, y in zip(ours, x):
        spec = librosa.stft(y, n_fft=1600, hop_length=160, win_length=640, window="hamming")
        ref = librosa.power_to_db(np.abs(spec) ** 2).T[:, :401]
        loud = ref > ref.max() - 60.0
        assert np.abs(got - ref)[loud].max() < 0.01


def _mtl_reference(y, sr=22050):
    kw = dict(sr=sr, n_fft=1024, hop_length=220, win_length=551, window="hamming")
    mfcc = librosa.feature.mfcc(y=y, n_mfcc=40, **kw)
    parts = [mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2),
             librosa.power_to_db(librosa.feature.melspectrogram(y=y, n_mels=64, **kw)),
             librosa.feature.spectral_centroid(y=y, **kw), librosa.feature.spectral_rolloff(y=y, **kw),
             librosa.feature.spectral_contrast(y=y, **kw), librosa.feature.chroma_stft(y=y, tuning=0.0, **kw)]
    return np.concatenate(parts, axis=0).T, librosa.feature.chroma_stft(y=y, **kw).T


def test_mtl_features_match_librosa_and_fix_600_frames(speech16k):
    waves = [soxr.resample(w, SR, 22050).astype(np.float32) for w in speech16k]
    x = _fixed(waves, max(len(w) for w in waves))
    ours = np.asarray(fe.MTLFeatures()(x))
    assert ours.shape == (len(x), 600, 205)
    for got, y in zip(ours, x):
        ref, chroma_tuned = _mtl_reference(y)
        n = min(600, len(ref))
        diff = np.abs(got[:n] - ref[:n])
        assert diff[:, :40].max() < 0.02 and diff[:, 40:120].max() < 0.005      # MFCC, deltas
        assert diff[:, 120:184][ref[:n, 120:184] > ref[:n, 120:184].max() - 60].max() < 0.01  # log-mel dB
        assert (diff[:, 184] / (ref[:n, 184] + 1e-3)).max() < 1e-4                # centroid
        assert (diff[:, 185] / (22050 / 1024)).max() <= 1.0 + 1e-6                  # roll-off: one bin
        assert diff[:, 186:193].max() < 0.1                                          # contrast, dB
        assert diff[:, 193:].max() < 1e-4                                            # chroma, tuning 0
        # librosa's default estimates the tuning per file; with tuning fixed at 0 the chroma can only
        # correlate (the filterbank shifts by up to half a bin); measured r >= 0.94 on RAVDESS.
        assert np.corrcoef(got[:n, 193:].ravel(), chroma_tuned[:n].ravel())[0, 1] > 0.9
        np.testing.assert_array_equal(got[n:], 0.0)


@pytest.mark.parametrize("order", [1, 2])
def test_deltas_match_librosa_interp_edges(order):
    x = np.random.default_rng(order).standard_normal((2, 30, 5)).astype(np.float32)
    ours = np.asarray(fe.Deltas(order)(x))[..., 5 * order:]
    ref = np.stack([librosa.feature.delta(v.T, order=order).T for v in x])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_front_ends_run_in_tf_data_map_on_single_waveforms():
    layer = fe.CLDNNFrameFeatures()
    waves = np.stack([synthetic_speech(1.0, seed=s) for s in range(2)])
    mapped = [e.numpy() for e in tf.data.Dataset.from_tensor_slices(waves).map(layer)]
    np.testing.assert_allclose(np.stack(mapped), np.asarray(layer(waves)), rtol=1e-5, atol=1e-4)


def test_front_ends_save_and_reload_in_a_functional_model(tmp_path):
    audio = keras.Input((2 * SR,))
    outputs = [fe.FrameWindows(16, 8)(fe.LogMelSpectrogram()(audio)), fe.CLDNNFrameFeatures()(audio),
               fe.LogPowerSpectrogram()(audio), fe.MTLFeatures(sample_rate=SR, num_frames=50)(audio)]
    model = keras.Model(audio, outputs)
    assert [o.shape[1:] for o in model.outputs] == [(30, 16, 128, 1), (63, 46), (201, 401), (50, 205)]
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = synthetic_speech(2.0)[None]
    for a, b in zip(model(x), loaded(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    mtl = next(layer for layer in loaded.layers if isinstance(layer, fe.MTLFeatures))
    assert mtl.get_config()["num_frames"] == 50 and mtl.get_config()["sample_rate"] == SR
