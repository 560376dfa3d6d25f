"""prepare.py: decode once, skip bad files, fingerprinted atomic cache, IS10, speech measures."""

import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audio_fixtures import write_tone
from ser_keras import audio, prepare
from ser_keras.corpora import synthetic
from ser_keras.errors import DataError


def manifest_of(paths, labels=None):
    paths = [str(p) for p in paths]
    return pd.DataFrame({"path": paths, "corpus": "test", "label": labels or ["neutral"] * len(paths),
                         "speaker": [f"s{i % 2}" for i in range(len(paths))]})


@pytest.fixture
def good(tmp_path):
    return [write_tone(tmp_path / "audio" / f"g{i}.wav", seconds=0.4 + 0.1 * i, freq=200 + 30 * i, seed=i)
            for i in range(3)]


@pytest.fixture
def bad(tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir(exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("not audio at all\n" * 10)
    sf.write(str(folder / "silent.wav"), np.zeros(4000, np.float32), 16000)
    return {"empty.wav": "empty file", "text.wav": "not audio libsndfile can read", "silent.wav": "silent"}


def cached_dirs(cache):
    folder = cache / "prepared"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_bad_files_are_skipped_with_reasons(tmp_path, good, bad):
    odd = [write_tone(tmp_path / "audio" / "aiff.wav", fmt="AIFF"),
           write_tone(tmp_path / "audio" / "stereo96k.wav", sample_rate=96000, channels=2)]
    paths = [good[0], tmp_path / "audio" / "empty.wav", good[1], tmp_path / "audio" / "text.wav",
             tmp_path / "audio" / "silent.wav", good[2], *odd]
    pc = prepare.prepare_corpus(manifest_of(paths), 16000, cache_dir=tmp_path / "cache", progress=False)
    assert len(pc) == 5
    assert list(pc.manifest.index) == list(range(5))
    assert list(pc.manifest["path"]) == [str(p) for p in (*good, *odd)]
    reasons = dict(zip(pc.skipped["path"].map(lambda p: os.path.basename(p)), pc.skipped["reason"]))
    assert reasons == bad
    assert pd.read_csv(pc.directory / "skipped.csv").shape == (3, 2)
    for i, path in enumerate(pc.manifest["path"]):
        expected = audio.load_audio(path, 16000)
        assert pc.manifest.loc[i, "n_samples"] == expected.size
        assert pc.waveform(i).dtype == np.float32
        np.testing.assert_allclose(pc.waveform(i), expected, atol=np.abs(expected).max() / 32767)
    assert pc.manifest.loc[4, "duration"] == pytest.approx(0.5)  # the 96 kHz stereo file


def test_every_file_bad_is_a_data_error_and_leaves_no_cache(tmp_path, bad):
    paths = [tmp_path / "audio" / name for name in bad]
    with pytest.raises(DataError, match="none of the 3"):
        prepare.prepare_corpus(manifest_of(paths), 16000, cache_dir=tmp_path / "cache", progress=False)
    assert cached_dirs(tmp_path / "cache") == []


def test_second_call_reuses_the_cache_without_decoding(tmp_path, good, monkeypatch):
    first = prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=tmp_path / "cache", progress=False)

    def must_not_decode(*args, **kwargs):
        raise AssertionError("load_audio called on a cache hit")

    monkeypatch.setattr(audio, "load_audio", must_not_decode)
    relabelled = manifest_of(good, labels=["happy", "sad", "angry"])
    again = prepare.prepare_corpus(relabelled, 16000, cache_dir=tmp_path / "cache", progress=False)
    assert again.fingerprint == first.fingerprint and again.directory == first.directory
    assert list(again.manifest["label"]) == ["happy", "sad", "angry"]  # labels come from the caller
    np.testing.assert_array_equal(again.waveform(2), first.waveform(2))


def test_rate_or_file_change_rebuilds(tmp_path, good):
    cache = tmp_path / "cache"
    at16 = prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=cache, progress=False)
    at22 = prepare.prepare_corpus(manifest_of(good), 22050, cache_dir=cache, progress=False)
    assert at22.fingerprint != at16.fingerprint
    assert at22.manifest.loc[0, "n_samples"] == round(0.4 * 22050)
    write_tone(good[0], seconds=0.9)  # same name, new content (size and mtime change)
    changed = prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=cache, progress=False)
    assert changed.fingerprint not in (at16.fingerprint, at22.fingerprint)
    assert changed.manifest.loc[0, "n_samples"] == 0.9 * 16000
    assert len(cached_dirs(cache)) == 3


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_interrupted_prepare_leaves_no_directory(tmp_path, good, monkeypatch, failure):
    real_load, calls = audio.load_audio, []

    def fail_on_third(path, sample_rate):
        calls.append(path)
        if len(calls) == 3:
            raise failure("interrupted")
        return real_load(path, sample_rate)

    monkeypatch.setattr(audio, "load_audio", fail_on_third)
    with pytest.raises(failure):
        prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=tmp_path / "cache", progress=False)
    assert cached_dirs(tmp_path / "cache") == []
    monkeypatch.setattr(audio, "load_audio", real_load)
    pc = prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=tmp_path / "cache", progress=False)
    assert len(pc) == 3 and cached_dirs(tmp_path / "cache") == [pc.fingerprint]


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_KERAS_CACHE", str(tmp_path / "c"))
    assert prepare.cache_root() == tmp_path / "c"
    monkeypatch.delenv("SER_KERAS_CACHE")
    assert prepare.cache_root() == prepare.Path.home() / ".cache" / "ser_keras"


def test_is10_frame_counts_match_the_paper():
    assert prepare.is10_frame_count(1.4) == 40
    assert prepare.is10_frame_count(2.0) == 59
    assert prepare.is10_frame_count(0.05) == 1


def test_pooling_averages_the_frames_starting_in_each_window():
    starts = np.arange(0, 300, 10)  # 30 frames of 10 ms
    values = np.stack([starts, -starts], axis=1).astype(float)
    pooled = prepare.pool_is10_frames(values, starts, duration=0.3)
    assert pooled.shape == (prepare.is10_frame_count(0.3), 2) == (6, 2)
    assert pooled[0, 0] == pytest.approx(np.mean(np.arange(0, 130, 10)))    # [0, 128) ms
    assert pooled[1, 0] == pytest.approx(np.mean(np.arange(40, 160, 10)))   # [32, 160) ms
    np.testing.assert_allclose(pooled[:, 1], -pooled[:, 0])


def test_is10_features_are_cached_at_the_paper_rate(tmp_path):
    root = synthetic.generate(tmp_path / "syn", speakers=1, emotions=("happy",), intensities=1, statements=1, repetitions=1)
    paths = sorted(root.rglob("*.wav"))
    pc = prepare.prepare_corpus(manifest_of(paths), 16000, cache_dir=tmp_path / "cache", is10=True, progress=False)
    lld = pc.is10_lld(0)
    assert lld.dtype == np.float32 and lld.shape == (prepare.is10_frame_count(pc.manifest.loc[0, "duration"]), 76)
    assert pc.is10_functionals.shape == (1, 1582)
    assert np.isfinite(lld).all() and np.isfinite(pc.is10_functionals).all()
    assert lld[:, 0].std() > 0  # loudness moves with the syllables
    plain = prepare.prepare_corpus(manifest_of(paths), 16000, cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(DataError):
        plain.is10_lld(0)


def test_tertile_labels_cut_at_training_quantiles():
    names = ("slow", "normal", "fast")
    train = np.arange(1, 10)  # cuts at 3.67 and 6.33
    labels = prepare.tertile_labels([0, 3, 4, 6, 7, 100], train, names)
    assert list(labels) == ["slow", "slow", "normal", "normal", "fast", "fast"]
    shifted = prepare.tertile_labels([4, 6], train + 10, names)
    assert list(shifted) == ["slow", "slow"]  # the cut points come from train only


def test_derived_measures_rank_the_synthetic_speed_and_volume(tmp_path):
    root = synthetic.generate(tmp_path / "syn", speakers=4, intensities=1)
    scan = synthetic.read(root)
    pc = prepare.prepare_corpus(scan.manifest, 16000, cache_dir=tmp_path / "cache", progress=False)
    rate = pc.manifest.groupby("speed")["syllable_rate"].mean()
    level = pc.manifest.groupby("volume")["active_rms_db"].mean()
    assert rate["slow"] < rate["normal"] < rate["fast"]
    assert level["quiet"] < level["normal"] < level["loud"]
    speed = prepare.tertile_labels(pc.manifest["syllable_rate"], pc.manifest["syllable_rate"], ("slow", "normal", "fast"))
    assert np.mean(speed == pc.manifest["speed"].to_numpy()) > 0.5  # chance is 1/3


def test_truncated_file_is_skipped_as_truncated(tmp_path, good):
    whole = good[2].read_bytes()
    cut = tmp_path / "audio" / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])  # an interrupted copy: the header promises twice as much
    pc = prepare.prepare_corpus(manifest_of([good[0], cut, good[1]]), 16000, cache_dir=tmp_path / "cache", progress=False)
    assert len(pc) == 2
    assert pc.skipped.values.tolist() == [[str(cut), "truncated"]]


def test_cache_files_follow_the_umask(tmp_path, good):
    old = os.umask(0o022)
    try:
        pc = prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=tmp_path / "cache", progress=False)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in pc.directory.iterdir()}
    assert set(modes) >= {"waveforms.npy", "offsets.npy", "scales.npy", "manifest.csv", "skipped.csv", "settings.json"}
    assert set(modes.values()) == {0o644}
    assert pc.directory.stat().st_mode & 0o777 == 0o755
