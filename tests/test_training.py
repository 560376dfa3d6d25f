"""train -> evaluate end to end on a tiny synthetic corpus, for every architecture, plus the
guarantees that make the numbers honest (no test file selects a checkpoint) and resumption."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from tiny import tiny_config, tiny_corpus

from ser_keras import training
from ser_keras.errors import ConfigError

ARCHS = ("cldnn", "bigru_mha", "strl_ser", "bilstm_att_mtl")
RUN_FILES = ("config.json", "command.txt", "classes.json", "split.csv", "model.keras", "history.csv",
             "metrics.json", "predictions.csv", "confusion.png", "curves.png", "tsne.png")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return tiny_corpus(root / "corpus"), root / "cache"


@pytest.mark.parametrize("arch", ARCHS)
def test_train_writes_a_complete_run_directory(arch, corpus, tmp_path):
    data_dir, cache = corpus
    config = tiny_config(arch, data_dir, cache, epochs=2)
    run_dir, metrics = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)
    for name in RUN_FILES:
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists()  # finished runs leave nothing to resume

    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("wa", "ua", "macro_precision", "weighted_precision", "macro_recall", "weighted_recall",
                "macro_f1", "weighted_f1", "classes", "per_class", "confusion", "protocol", "seed"):
        assert key in saved
    assert saved["classes"] == ["neutral", "happy", "sad", "angry"]
    split = pd.read_csv(run_dir / "split.csv")
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert sorted(predictions["file"]) == sorted(split.loc[split["part"] == "test", "path"])
    assert np.allclose(predictions.filter(like="p_").sum(axis=1), 1.0, atol=1e-4)
    assert saved["wa"] == pytest.approx((predictions["true"] == predictions["predicted"]).mean())
    assert len(pd.read_csv(run_dir / "history.csv")) == 2

    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    assert model.count_params() > 0
    assert json.loads((run_dir / "config.json").read_text())["arch"] == arch


def test_checkpoint_selection_never_sees_test_files(corpus, tmp_path, monkeypatch):
    """Spy on fit: the validation data it receives is built only from the fold's validation
    files, which are training-side files disjoint from the test files."""
    data_dir, cache = corpus
    config = tiny_config("bilstm_att_mtl", data_dir, cache, epochs=1, **{"data.protocol": "speaker"})
    built, seen = {}, {}
    real_make_datasets = training.make_datasets

    def spy_make_datasets(config, data, fold, targets, seed):
        datasets, owners = real_make_datasets(config, data, fold, targets, seed)
        built.update({id(ds): (part, getattr(fold, part)) for part, ds in datasets.items()})
        seen["manifest"] = data.manifest
        return datasets, owners

    real_fit = keras.Model.fit

    def spy_fit(self, *args, validation_data=None, **kwargs):
        seen["validation"] = built[id(validation_data)]
        return real_fit(self, *args, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(training, "make_datasets", spy_make_datasets)
    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    run_dir, _ = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)

    part, positions = seen["validation"]
    assert part == "val"
    manifest = seen["manifest"]
    val_files = set(manifest["path"].iloc[positions])
    split = pd.read_csv(run_dir / "split.csv")
    test_files = set(split.loc[split["part"] == "test", "path"])
    assert val_files == set(split.loc[split["part"] == "val", "path"])
    assert val_files and not val_files & test_files
    # speaker protocol: no test speaker anywhere on the training side
    speakers = manifest.set_index("path")["speaker"]
    train_side = set(split.loc[split["part"] != "test", "path"])
    assert not {speakers[f] for f in test_files} & {speakers[f] for f in train_side}
    assert "validation part" in json.loads((run_dir / "metrics.json").read_text())["checkpoint_selection"]


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_from_the_saved_epoch(corpus, tmp_path):
    data_dir, cache = corpus
    config = tiny_config("cldnn", data_dir, cache, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        training.train(config, runs_dir=tmp_path, progress=False, verbose=0, extra_callbacks=[StopAfter(1)])
    (first,) = tmp_path.iterdir()
    assert (first / "backup").is_dir() and not (first / "metrics.json").exists()
    assert list(pd.read_csv(first / "history.csv")["epoch"]) == [0, 1]

    again = tiny_config("cldnn", data_dir, cache, epochs=3)
    run_dir, _ = training.train(again, runs_dir=tmp_path, progress=False, verbose=0)
    assert run_dir == first
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == [0, 1, 2]  # only epoch 2 was trained again
    assert (run_dir / "metrics.json").exists()


def test_unknown_settings_are_config_errors(corpus, tmp_path):
    data_dir, cache = corpus
    with pytest.raises(ConfigError, match="unknown setting"):
        tiny_config("cldnn", data_dir, cache, **{"train.epochz": 3})
    with pytest.raises(ConfigError, match="hyperparameter"):
        config = tiny_config("cldnn", data_dir, cache, **{"model.heads": 3})
        training.train(config, runs_dir=tmp_path, progress=False, verbose=0)


def test_evaluate_rescores_the_test_part_and_other_corpora(corpus, tmp_path):
    from ser_keras.corpora import synthetic
    from ser_keras.evaluation import evaluate_run

    data_dir, cache = corpus
    run_dir, metrics = training.train(tiny_config("cldnn", data_dir, cache, epochs=1), runs_dir=tmp_path / "runs",
                                      progress=False, verbose=0)
    again, out = evaluate_run(run_dir, progress=False)
    assert again["wa"] == pytest.approx(metrics["wa"]) and again["ua"] == pytest.approx(metrics["ua"])
    assert (out / "metrics.json").exists() and (out / "predictions.csv").exists()

    # Another corpus in the RAVDESS layout with two extra emotions the model never saw.
    other = synthetic.generate(tmp_path / "other", speakers=1, seed=5, intensities=1, statements=1, repetitions=1,
                               emotions=("neutral", "calm", "happy", "surprised"))
    cross, out = evaluate_run(run_dir, dataset="ravdess", data_dir=other, progress=False)
    # The run's own merge (calm -> neutral) applies; surprised is unknown to the model: dropped.
    assert cross["n"] == 3
    assert json.loads((out / "metrics.json").read_text())["n_dropped"] == 1
    assert cross["classes"] == ["neutral", "happy", "sad", "angry"]


def test_cv_runs_every_loso_fold(corpus, tmp_path):
    from ser_keras.evaluation import run_cv

    data_dir, cache = corpus
    config = tiny_config("cldnn", data_dir, cache, epochs=1, **{"data.protocol": "loso"})
    table, out = run_cv(config, runs_dir=tmp_path, progress=False, verbose=0)
    assert list(table.index) == ["loso-Actor_01", "loso-Actor_02", "loso-Actor_03", "mean", "std"]
    assert table.loc["mean", "wa"] == pytest.approx(table.iloc[:3]["wa"].mean())
    assert (out / "summary.txt").exists()
    assert len(list(tmp_path.glob("cldnn-synthetic-*"))) == 3
