import collections
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sklearn
from sklearn.model_selection import StratifiedGroupKFold

from ser_keras.datasets import scan_dataset
from ser_keras.errors import ConfigError, DataError
from ser_keras.splits import make_folds

LABELS = ["neutral", "happy", "sad", "angry"]


def fake_manifest(speakers=8, per_class=6, corpus="ravdess", split=None):
    rows = []
    for s in range(speakers):
        for label in LABELS:
            for k in range(per_class):
                rows.append({"path": f"/x/{s}/{label}{k}.wav", "corpus": corpus, "label": label,
                             "speaker": f"spk{s:02d}", "session": f"Session{s // 2 + 1}"})
    frame = pd.DataFrame(rows)
    if split is not None:
        frame["split"] = split(frame)
    return frame


def speakers_of(manifest, positions):
    return set(manifest["speaker"].iloc[positions])


def assert_partition(manifest, fold):
    everything = np.concatenate([fold.train, fold.val, fold.test])
    assert len(everything) == len(set(everything)) == len(manifest)


def test_speaker_protocol_never_shares_speakers():
    m = fake_manifest()
    (fold,) = make_folds(m, "speaker", seed=3)
    assert_partition(m, fold)
    test, train, val = (speakers_of(m, p) for p in (fold.test, fold.train, fold.val))
    assert test and not test & train and not test & val and not val & train
    assert 0.1 <= len(fold.test) / len(m) <= 0.3


def test_loso_has_one_fold_per_speaker_and_no_leak():
    m = fake_manifest(speakers=6)
    folds = make_folds(m, "loso", seed=0)
    assert len(folds) == 6
    held = [speakers_of(m, f.test) for f in folds]
    assert all(len(h) == 1 for h in held)
    assert set().union(*held) == set(m["speaker"])
    for fold in folds:
        assert_partition(m, fold)
        assert not speakers_of(m, fold.test) & (speakers_of(m, fold.train) | speakers_of(m, fold.val))
        assert not speakers_of(m, fold.val) & speakers_of(m, fold.train)


def test_iemocap_loso_leaves_out_whole_sessions():
    m = fake_manifest(speakers=10, per_class=2, corpus="iemocap")
    folds = make_folds(m, "loso")
    assert len(folds) == 5
    for fold in folds:
        assert m["session"].iloc[fold.test].nunique() == 1
        assert len(speakers_of(m, fold.test)) == 2


def test_random_protocol_is_stratified_and_validation_comes_from_training():
    m = fake_manifest(speakers=5, per_class=10)
    (fold,) = make_folds(m, "paper", paper_kind="random", seed=1)
    assert_partition(m, fold)
    test_share = m["label"].iloc[fold.test].value_counts(normalize=True)
    assert np.allclose(test_share.to_numpy(), 0.25, atol=0.02)
    assert abs(len(fold.test) / len(m) - 0.2) < 0.01
    assert set(fold.val).isdisjoint(fold.test)


def test_bigru_paper_protocol_is_loso():
    m = fake_manifest(speakers=4)
    assert len(make_folds(m, "paper", paper_kind="loso")) == 4


def test_official_split_is_used_when_the_corpus_has_one():
    m = fake_manifest(split=lambda f: np.where(f["speaker"].isin(["spk00", "spk01"]), "test", "train"))
    (fold,) = make_folds(m, "paper", paper_kind="official")
    assert speakers_of(m, fold.test) == {"spk00", "spk01"}
    assert set(m["split"].iloc[fold.val]) == {"train"}


def test_same_seed_same_folds_other_seed_other_folds():
    m = fake_manifest()
    a, b, c = (make_folds(m, "speaker", seed=s)[0] for s in (7, 7, 8))
    assert np.array_equal(a.test, b.test) and np.array_equal(a.val, b.val)
    assert not (np.array_equal(a.test, c.test) and np.array_equal(a.val, c.val))


def test_bad_protocol_and_tiny_corpora_are_clear_errors():
    m = fake_manifest()
    with pytest.raises(ConfigError, match="--protocol"):
        make_folds(m, "kfold")
    with pytest.raises(DataError, match="at least 3 speakers"):
        make_folds(fake_manifest(speakers=2), "speaker")
    with pytest.raises(DataError, match="too few"):
        make_folds(m.head(3), "paper")


def uneven_manifest(speakers=12, seed=0):
    """Speakers whose class mixes differ, as in Emo-DB (each speaker 2–12 utterances a class)."""
    rng = np.random.default_rng(seed)
    rows = [{"path": f"/x/{s}/{label}{k}.wav", "corpus": "csv", "label": label, "speaker": f"spk{s:02d}"}
            for s in range(speakers) for label in LABELS for k in range(rng.integers(2, 13))]
    return pd.DataFrame(rows)


def test_speaker_draw_reaches_every_speaker_when_class_mixes_differ():
    # scikit-learn's StratifiedGroupKFold sorts speakers by the spread of their class counts
    # and shuffles only ties, so there the same speakers were tested whatever the seed.
    m = uneven_manifest()
    tested = collections.Counter()
    for seed in range(20):
        (fold,) = make_folds(m, "speaker", seed=seed)
        tested.update(speakers_of(m, fold.test))
        shares = m["label"].iloc[fold.test].value_counts(normalize=True)
        overall = m["label"].value_counts(normalize=True)
        assert np.allclose(shares[overall.index], overall, atol=0.07)  # still class-balanced
    assert set(tested) == set(m["speaker"])
    assert max(tested.values()) <= 10  # no speaker is tested in more than half the draws


def scikit_learn_draws(m, seeds):
    labels, groups = m["label"].to_numpy(), m["speaker"].astype(str).to_numpy()
    for seed in seeds:
        (fold,) = make_folds(m, "speaker", seed=seed)
        splitter = StratifiedGroupKFold(round(1 / 0.2), shuffle=True, random_state=seed)
        yield fold, next(splitter.split(labels, labels, groups))[1]


# scikit-learn 1.8 changed StratifiedGroupKFold's shuffle (scikit-learn#32540); the recorded
# splits are those of 1.8 and later.
needs_sklearn_18 = pytest.mark.skipif(tuple(map(int, sklearn.__version__.split(".")[:2])) < (1, 8),
                                      reason="StratifiedGroupKFold shuffled differently before scikit-learn 1.8")


@needs_sklearn_18
def test_speakers_with_equal_class_mixes_split_as_scikit_learn_does():
    # Where every speaker ties (RAVDESS), the draw is StratifiedGroupKFold's.
    m = fake_manifest(speakers=10)
    for fold, held in scikit_learn_draws(m, range(6)):
        assert np.array_equal(fold.test, np.sort(held))


def test_recorded_speaker_splits_come_back(shared_ravdess):
    """Every committed speaker-protocol record names its test speakers; the same seed must draw
    them again, whatever scikit-learn is installed. RAVDESS records are checked wherever the
    corpus is; a csv corpus' records where its folder is (the Emo-DB-shaped corpus of
    benchmarks/varied_corpus.py lives in the ignored runs/, on the machine that made it)."""
    root = Path(__file__).resolve().parents[1]
    checked, manifests = collections.Counter(), {}
    for config_path in sorted((root / "results").glob("*/config.json")):
        data = json.loads(config_path.read_text())["data"]
        data_dir = shared_ravdess if data["dataset"] == "ravdess" else root / str(data["data_dir"])
        if data["protocol"] != "speaker" or not data_dir.exists():
            continue
        key = (data["dataset"], str(data_dir), tuple(data["merges"]))
        if key not in manifests:
            manifests[key] = scan_dataset(data["dataset"], data_dir, merges=key[2]).manifest
        (fold,) = make_folds(manifests[key], "speaker", seed=data["seed"], test_size=data["test_size"],
                             val_size=data["val_size"])
        assert fold.name == json.loads((config_path.parent / "metrics.json").read_text())["fold"], config_path
        checked[data["dataset"]] += 1
    assert checked["ravdess"] >= 5
