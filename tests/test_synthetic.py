"""The synthetic corpus: deterministic, RAVDESS layout, labels that overlap but carry signal."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from ser_keras.corpora import read_corpus, synthetic
from ser_keras.errors import DataError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("syn") / "default")


def small(root, seed=0):
    return synthetic.generate(root, speakers=2, emotions=("neutral", "angry"), seed=seed, intensities=1, repetitions=1)


def test_default_corpus_layout_reads_as_ravdess(corpus):
    scan = read_corpus("synthetic", corpus)
    m = scan.manifest
    assert len(m) == 256 and not scan.skipped
    assert set(m["corpus"]) == {"synthetic"}
    assert sorted(m["label"].unique()) == ["angry", "happy", "neutral", "sad"]
    assert m["speaker"].nunique() == 8
    assert set(m.groupby("speaker")["gender"].first()) == {"male", "female"}
    assert set(m["speed"]) == {"slow", "normal", "fast"} and set(m["volume"]) == {"quiet", "normal", "loud"}
    assert (corpus / "Actor_03" / "03-01-05-02-01-02-03.wav").is_file()
    info = sf.info(str(corpus / "Actor_03" / "03-01-05-02-01-02-03.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    meta = pd.read_csv(corpus / "metadata.csv")
    assert meta["duration"].between(1.5, 3.0).all()


def test_speed_and_volume_follow_emotion_only_partly(corpus):
    meta = pd.read_csv(corpus / "metadata.csv")
    for column in ("speed", "volume"):
        table = pd.crosstab(meta["label"], meta[column])
        assert (table > 0).all().all()  # every emotion has every speed / volume


def test_no_single_cue_separates_the_classes_but_together_they_help(corpus):
    meta = pd.read_csv(corpus / "metadata.csv")
    meta["speaker"] = meta["path"].str[:8]
    log_f0 = np.log(meta["f0_hz"])
    meta["f0_rel"] = log_f0 - log_f0.groupby(meta["speaker"]).transform("mean")
    for cue in ("f0_hz", "f0_rel", "syllable_rate", "level_db"):
        stump = DecisionTreeClassifier(max_depth=3, random_state=0).fit(meta[[cue]], meta["label"])
        assert stump.score(meta[[cue]], meta["label"]) < 0.85, cue
    cues = meta[["f0_rel", "syllable_rate", "level_db"]]
    cues = (cues - cues.mean()) / cues.std()
    accuracy = cross_val_score(LogisticRegression(max_iter=500), cues, meta["label"],
                               groups=meta["speaker"], cv=GroupKFold(4)).mean()
    assert accuracy > 0.55  # chance is 0.25, on unseen speakers


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = small(tmp_path / "a"), small(tmp_path / "b"), small(tmp_path / "c", seed=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*.wav"))
    assert len(files) == 2 * 2 * 2
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / "metadata.csv").read_bytes() == (b / "metadata.csv").read_bytes()
    assert all((a / f).read_bytes() != (c / f).read_bytes() for f in files)


def test_generate_reuses_same_corpus_and_refuses_other_content(tmp_path):
    root = small(tmp_path / "s")
    before = (root / "metadata.csv").stat().st_mtime_ns
    assert small(tmp_path / "s") == root
    assert (root / "metadata.csv").stat().st_mtime_ns == before  # not regenerated
    with pytest.raises(DataError):
        small(tmp_path / "s", seed=5)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.txt").write_text("keep me")
    with pytest.raises(DataError):
        small(tmp_path / "busy")
    (tmp_path / "empty").mkdir()
    assert small(tmp_path / "empty").joinpath("metadata.csv").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic.sf, "write", boom)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path / "s")
    assert list(tmp_path.iterdir()) == []


def test_read_without_folder_generates_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_KERAS_CACHE", str(tmp_path / "cache"))
    real_generate = synthetic.generate
    monkeypatch.setattr(synthetic, "generate", lambda root: real_generate(root, speakers=2, emotions=("neutral",), intensities=1))
    assert synthetic.default_root() == tmp_path / "cache" / "synthetic-v1-seed0"
    scan = synthetic.read()
    assert len(scan.manifest) == 8 and set(scan.manifest["corpus"]) == {"synthetic"} and (tmp_path / "cache" / "synthetic-v1-seed0" / "metadata.csv").is_file()


def test_read_of_a_plain_ravdess_folder_says_what_to_do(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    (tmp_path / "Actor_01" / "03-01-01-01-01-01-01.wav").write_bytes(b"")
    with pytest.raises(DataError, match="synth"):
        synthetic.read(tmp_path)
