"""train -> evaluate end to end on a tiny synthetic corpus, for every architecture, plus the
guarantees that make the numbers honest (no test file selects a checkpoint) and resumption."""

import copy
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from tiny import tiny_config, tiny_corpus

from ser_keras import callbacks, runs, training
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

    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["arch"] == arch
    assert saved["environment"]["keras"] == keras.__version__
    assert saved["environment"]["backend"] == keras.backend.backend() and saved["environment"]["numpy"]


def test_checkpoint_selection_never_sees_test_files(corpus, tmp_path, monkeypatch):
    """Spy on fit: the validation batches it receives are built only from the fold's validation
    files, which are training-side files disjoint from the test files."""
    from ser_keras.data import parts

    data_dir, cache = corpus
    config = tiny_config("bilstm_att_mtl", data_dir, cache, epochs=1, **{"data.protocol": "speaker"})
    part_rows, seen = {}, {}
    real_part = parts.PartInputs.__init__

    def spy_part(self, recipe, features, prepared, positions, targets):
        real_part(self, recipe, features, prepared, positions, targets)
        seen["manifest"] = prepared.manifest
        part_rows[id(self)] = list(positions)

    real_plan = training.plan_fit

    def spy_plan(config, data, fold, targets):
        plan = real_plan(config, data, fold, targets)
        seen["val_source"] = plan.val
        return plan

    real_fit = keras.Model.fit

    def spy_fit(self, *args, validation_data=None, **kwargs):
        seen["validation"] = validation_data
        return real_fit(self, *args, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(parts.PartInputs, "__init__", spy_part)
    monkeypatch.setattr(training, "plan_fit", spy_plan)
    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    run_dir, _ = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)

    # augmentation on: the validation batches are waveform batches of one PartInputs
    val_part = seen["val_source"].make_batch.__closure__
    part = next(c.cell_contents for c in val_part if isinstance(c.cell_contents, parts.PartInputs))
    manifest = seen["manifest"]
    val_files = set(manifest["path"].iloc[part_rows[id(part)]])
    split = pd.read_csv(run_dir / "split.csv")
    test_files = set(split.loc[split["part"] == "test", "path"])
    assert val_files == set(split.loc[split["part"] == "val", "path"])
    assert val_files and not val_files & test_files
    # speaker protocol: no test speaker anywhere on the training side
    speakers = manifest.set_index("path")["speaker"]
    train_side = set(split.loc[split["part"] != "test", "path"])
    assert not {speakers[f] for f in test_files} & {speakers[f] for f in train_side}
    assert "validation part" in json.loads((run_dir / "metrics.json").read_text())["checkpoint_selection"]


class KeepEpochWeights(keras.callbacks.Callback):
    """Copies of the trained model's weights after every epoch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def test_model_keras_holds_the_best_validation_epoch(corpus, tmp_path):
    data_dir, cache = corpus
    keep = KeepEpochWeights()
    config = tiny_config("strl_ser", data_dir, cache, epochs=4, **{"train.patience": 10})
    run_dir, _ = training.train(config, runs_dir=tmp_path, progress=False, verbose=0, extra_callbacks=[keep])
    history = pd.read_csv(run_dir / "history.csv")
    assert "val_utterance_accuracy" not in history  # no second validation pass unless monitored
    monitor = config.recipe.monitor(config)
    best = int(history[monitor].idxmax() if "acc" in monitor else history[monitor].idxmin())
    saved = keras.saving.load_model(run_dir / "model.keras", safe_mode=True).get_layer("classifier")
    for got, want in zip(saved.get_weights(), keep.weights[best]):
        np.testing.assert_array_equal(got, want)
    if best != len(history) - 1:  # the last epoch differs, so the test could tell them apart
        assert any(not np.array_equal(a, b) for a, b in zip(saved.get_weights(), keep.weights[-1]))


def test_segment_model_selects_on_utterance_level_validation(corpus, tmp_path):
    """train.monitor=val_utterance_unweighted_accuracy: the logged figure is the validation part
    scored as the test report scores utterances, and the saved model is the epoch it ranks best."""
    from ser_keras.loading import load_data, make_targets
    from ser_keras.metrics import compute_metrics
    from ser_keras.scoring import score_utterances

    data_dir, cache = corpus
    config = tiny_config("strl_ser", data_dir, cache, epochs=3,
                         **{"train.patience": 10, "train.segment_weighting": "utterance",
                            "train.class_weighting": "balanced",
                            "train.monitor": "val_utterance_unweighted_accuracy"})
    run_dir, _ = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)
    history = pd.read_csv(run_dir / "history.csv")
    assert {"val_utterance_accuracy", "val_utterance_unweighted_accuracy"} <= set(history)
    best = int(history["val_utterance_unweighted_accuracy"].idxmax())

    data = load_data(config, progress=False)
    val = data.folds[0].val
    truth = make_targets(config.recipe, data.manifest, data.class_names, data.folds[0].train)["emotion"][val]
    items = [(data.prepared.is10_lld(int(p)), data.prepared.is10_functionals[int(p)]) for p in val]
    saved = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    probs = score_utterances(saved, config.recipe, config.features, items)["emotion"]
    scores = compute_metrics(truth, probs.argmax(axis=1), data.class_names)
    assert scores["ua"] == pytest.approx(history["val_utterance_unweighted_accuracy"][best], abs=1e-6)
    assert scores["wa"] == pytest.approx(history["val_utterance_accuracy"][best], abs=1e-6)
    with pytest.raises(ConfigError, match="train.segment_weighting"):
        tiny_config("cldnn", data_dir, cache, **{"train.segment_weighting": "utterance"})
    with pytest.raises(ConfigError, match="train.monitor=val_utterance_accuracy"):
        tiny_config("bigru_mha", data_dir, cache, **{"train.monitor": "val_utterance_accuracy"})
    with pytest.raises(ConfigError, match="train.class_weighting"):
        tiny_config("cldnn", data_dir, cache, **{"train.class_weighting": "inverse"})


def test_identical_runs_give_identical_metrics_and_fresh_orders(corpus, tmp_path, monkeypatch):
    from ser_keras.data.batches import Batches

    data_dir, cache = corpus
    orders = []
    real_order = Batches.order

    def spy_order(self, epoch):
        result = real_order(self, epoch)
        if self.shuffle:
            orders.append((epoch, np.concatenate(result).tolist()))
        return result

    monkeypatch.setattr(Batches, "order", spy_order)
    results = [training.train(tiny_config("cldnn", data_dir, cache, epochs=2), runs_dir=tmp_path / str(i),
                              progress=False, verbose=0) for i in range(2)]
    first, second = (json.loads((d / "metrics.json").read_text()) for d, _ in results)
    assert first["wa"] == second["wa"] and first["ua"] == second["ua"]
    assert first["confusion"] == second["confusion"]
    p1, p2 = (pd.read_csv(d / "predictions.csv") for d, _ in results)
    np.testing.assert_allclose(p1.filter(like="p_"), p2.filter(like="p_"), atol=1e-5)
    by_epoch = {}
    for epoch, order in orders:
        by_epoch.setdefault(epoch, order)
        assert by_epoch[epoch] == order  # the same epoch replays the same order
    assert set(by_epoch) >= {0, 1} and by_epoch[0] != by_epoch[1]  # every epoch a new order


def test_mtl_monitor_is_a_logged_metric_and_selects_checkpoints(corpus, tmp_path):
    data_dir, cache = corpus
    config = tiny_config("bilstm_att_mtl", data_dir, cache, epochs=1,
                         **{"train.monitor": "val_unweighted_accuracy", "features.augment": False})
    run_dir, metrics = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)
    monitor = training.monitor_name(config.recipe, config)
    assert monitor == "val_emotion_unweighted_accuracy"
    assert monitor in pd.read_csv(run_dir / "history.csv").columns
    assert (run_dir / "best.weights.h5").exists()
    assert set(metrics["heads"]) == {"speed", "volume"}  # the auxiliary heads are reported too


def test_each_prediction_row_belongs_to_its_file(corpus, tmp_path):
    from ser_keras.inference import predict_files

    data_dir, cache = corpus
    run_dir, _ = training.train(tiny_config("bigru_mha", data_dir, cache, epochs=1), runs_dir=tmp_path,
                                progress=False, verbose=0)
    rows = pd.read_csv(run_dir / "predictions.csv")
    alone = predict_files(run_dir, list(rows["file"][::-1]))  # other order, other batches, other padding
    merged = rows.merge(alone, on="file", suffixes=("", "_alone"))
    columns = [c for c in rows if c.startswith("p_")]
    ours, theirs = merged[columns].to_numpy(), merged[[c + "_alone" for c in columns]].to_numpy()
    # Float noise of batched GRUs only: up to 1.5e-4 measured since BatchNorm's moving statistics
    # start from a batch's (the first block's activations are no longer shrunk by Keras' start
    # variance 1 after one epoch), 1e-4 before.
    np.testing.assert_allclose(ours, theirs, atol=5e-4)
    assert np.abs(ours - np.roll(theirs, 1, axis=0)).max() > 1e-3  # rows one file off would fail


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
        tiny_config("cldnn", data_dir, cache, **{"model.heads": 3})
    assert not any(tmp_path.iterdir())


def test_evaluate_rescores_the_test_part_and_other_corpora(corpus, tmp_path):
    from ser_keras.corpora import synthetic
    from ser_keras.evaluation import evaluate_run

    data_dir, cache = corpus
    run_dir, metrics = training.train(tiny_config("cldnn", data_dir, cache, epochs=1), runs_dir=tmp_path / "runs",
                                      progress=False, verbose=0)
    again, out = evaluate_run(run_dir, progress=False)
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("wa", "ua", "macro_f1", "n"):
        assert again[key] == pytest.approx(saved[key])
    assert again["confusion"] == saved["confusion"]
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
    from ser_keras.cv import run_cv

    data_dir, cache = corpus
    config = tiny_config("cldnn", data_dir, cache, epochs=1, **{"data.protocol": "loso"})
    table, out = run_cv(config, runs_dir=tmp_path, progress=False, verbose=0)
    assert list(table.index) == ["loso-Actor_01", "loso-Actor_02", "loso-Actor_03", "mean", "std"]
    assert table.loc["mean", "wa"] == pytest.approx(table.iloc[:3]["wa"].mean())
    assert (out / "summary.txt").exists()
    folds = pd.read_csv(out / "folds.csv", index_col="fold")
    assert all((Path(d) / "metrics.json").exists() for d in folds["run_dir"].iloc[:3])
    assert len(list(tmp_path.glob("cldnn-synthetic-*"))) == 3

    # The same command again (after an interruption, say) trains only the fold that is missing.
    first_dirs = list(folds["run_dir"].iloc[:3])
    shutil.rmtree(first_dirs[1])
    again, again_out = run_cv(config, runs_dir=tmp_path, progress=False, verbose=0)
    again_dirs = list(pd.read_csv(again_out / "folds.csv", index_col="fold")["run_dir"].iloc[:3])
    assert again_dirs[0] == first_dirs[0] and again_dirs[2] == first_dirs[2] and again_dirs[1] != first_dirs[1]
    assert again.loc[["loso-Actor_01", "loso-Actor_03"]].equals(table.loc[["loso-Actor_01", "loso-Actor_03"]])
    assert len(list(tmp_path.glob("cldnn-synthetic-*"))) == 3

    # A finished run is reused only on exactly its own split (config is fold 0's).
    split = pd.read_csv(Path(first_dirs[0]) / "split.csv")
    assert runs.finished_run(tmp_path, config, split) == Path(first_dirs[0])
    moved = split.assign(part=split["part"].replace({"val": "train"}))
    assert runs.finished_run(tmp_path, config, moved) is None

    # ... and only if it trained to its end: all its epochs, or early stopping's patience spent.
    # A run cut by a time limit before backups were kept (metrics.json, no backup/) is trained anew.
    history = Path(first_dirs[0]) / "history.csv"
    assert runs.ran_its_course(first_dirs[0], config)  # 1 epoch of 1
    longer = copy.deepcopy(config)
    longer.train.epochs = 5
    assert not runs.ran_its_course(first_dirs[0], longer)  # 1 of 5, patience left
    longer.train.patience = 0
    assert runs.ran_its_course(first_dirs[0], longer)  # early stopping would have ended it there
    logged = history.read_text()
    history.write_text(logged.splitlines()[0] + "\n")  # no epoch logged
    assert runs.finished_run(tmp_path, config, split) is None
    history.write_text("val_loss\n0.5\n")  # no epoch column: not read as finished, not a traceback
    assert runs.finished_run(tmp_path, config, split) is None
    history.write_text(logged)
    assert runs.finished_run(tmp_path, config, split) == Path(first_dirs[0])

    # Folders that cannot be read are passed over, not a traceback: a config.json cut short, and a
    # split.csv from before its bytes column (the finished fold is then trained again).
    broken = tmp_path / "cldnn-synthetic-20000101-000000"
    broken.mkdir()
    (broken / "config.json").write_text('{"arch": "cld')
    split.drop(columns="bytes").to_csv(Path(first_dirs[0]) / "split.csv", index=False)
    assert runs.finished_run(tmp_path, config, split) is None
    assert runs.open_run_dir(tmp_path, config)[1] is False


@pytest.mark.parametrize("arch", ["cldnn", "bilstm_att_mtl"])
def test_bfloat16_run_computes_in_bfloat16_and_reports_float32(arch, corpus, tmp_path):
    """train.precision=mixed_bfloat16: the network's layers compute in bfloat16 with float32
    weights (cldnn: its L1 activity penalty too), the heads and everything before the network in
    float32; the run finishes, reloads in safe mode and gives float32 probabilities."""
    data_dir, cache = corpus
    paper_l1 = {"model.l1": 0.001} if arch == "cldnn" else {}  # the preset turns it off
    config = tiny_config(arch, data_dir, cache, epochs=1, **{"train.precision": "mixed_bfloat16", **paper_l1})
    run_dir, metrics = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)
    assert np.isfinite(pd.read_csv(run_dir / "history.csv")["loss"]).all()
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    network = model.get_layer("classifier").get_layer("network")
    computes = {layer.name: layer.compute_dtype for layer in network._flatten_layers(include_self=False) if layer.weights}
    assert {name: dtype for name, dtype in computes.items() if dtype != "bfloat16"} == {
        head: "float32" for head in ("emotion", *config.recipe.heads)}
    assert all(w.dtype == "float32" for w in network.weights)
    assert all(layer.compute_dtype == "float32" for layer in model.get_layer("classifier").layers
               if layer.name.startswith("normalize_"))
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert np.allclose(predictions.filter(like="p_").sum(axis=1), 1.0, atol=1e-3)
    assert json.loads((run_dir / "config.json").read_text())["train"]["precision"] == "mixed_bfloat16"


def test_time_limit_stops_after_the_last_epoch_that_fits():
    ticks = iter(range(0, 1000, 10))  # every clock reading is 10 s later: each epoch lasts 10 s
    limit = callbacks.time_limit_callback(45, verbose=0, clock=lambda: next(ticks))
    limit.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    limit.model.stop_training = False
    limit.on_train_begin()
    stopped_after = None
    for epoch in range(5):
        limit.on_epoch_begin(epoch)
        limit.on_epoch_end(epoch)
        if limit.model.stop_training:
            stopped_after = epoch + 1
            break
    # epoch 1 ends at 20 s (another 10 s fits in 45), epoch 2 at 40 s (50 would not)
    assert stopped_after == 2 and limit.stopped_after == 2


@pytest.mark.parametrize("ends_anyway", ["early_stopping", "last_epoch"])
def test_time_limit_does_not_claim_a_fit_that_ends_anyway(ends_anyway):
    """Past the limit at epoch 2 of 2, or when early stopping stopped fit first, the run ended
    on its own: the time limit must not keep its backup for a continuation."""
    ticks = iter(range(0, 1000, 10))
    limit = callbacks.time_limit_callback(15, verbose=0, clock=lambda: next(ticks))
    limit.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    limit.set_params({"epochs": 2 if ends_anyway == "last_epoch" else 5})
    limit.model.stop_training = ends_anyway == "early_stopping"
    limit.on_train_begin()
    limit.on_epoch_begin(1)
    limit.on_epoch_end(1)  # 20 s in, 10 s epochs, 15 s limit: past it
    assert limit.stopped_after is None


def test_early_stopping_in_a_resumed_run_counts_the_epochs_logged_before_it(tmp_path):
    """Best val_loss 0.5 at epoch 1, then two worse epochs: with patience 3, one more worse epoch
    stops the resumed run, as it would have stopped the uninterrupted one; a better one goes on."""
    history = tmp_path / "history.csv"
    history.write_text("epoch,val_loss\n0,1.0\n1,0.5\n2,0.7\n3,0.8\n")

    def resumed(val_loss):
        stopping = callbacks.early_stopping_callback("val_loss", "min", 3,
                                                     callbacks.logged_best(history, "val_loss", "min"))
        stopping.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
        stopping.model.stop_training = False
        stopping.on_train_begin()
        stopping.on_epoch_end(4, {"val_loss": val_loss})
        return stopping

    assert resumed(0.9).model.stop_training
    better = resumed(0.4)
    assert not better.model.stop_training and better.best == 0.4 and better.wait == 0
    assert callbacks.logged_best(tmp_path / "new.csv", "val_loss", "min") is None  # a new run starts afresh


def test_time_limited_run_ends_complete_and_the_same_command_continues_it(corpus, tmp_path):
    """A cut run is scored like an early-stopped one, keeps its backup, and the same command (any
    time limit) goes on from the next epoch in the same folder (here: cut again, one epoch later)."""
    data_dir, cache = corpus
    config = tiny_config("strl_ser", data_dir, cache, epochs=4,
                         **{"train.patience": 10, "train.time_limit_minutes": 1e-6})
    run_dir, metrics = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == [0]  # no epoch takes under 60 µs
    assert (run_dir / "metrics.json").exists() and 0 <= metrics["ua"] <= 1
    assert (run_dir / "backup").is_dir() and runs.check_run_dir(run_dir) == run_dir
    # The limit is one invocation's budget, not part of the run: another limit continues it too;
    # and so does a run saved before a setting was added (here: its config.json lacks init_from).
    saved = json.loads((run_dir / "config.json").read_text())
    del saved["train"]["init_from"]
    (run_dir / "config.json").write_text(json.dumps(saved))
    config.train.time_limit_minutes = 2e-6
    again, _ = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)
    assert again == run_dir and list(pd.read_csv(run_dir / "history.csv")["epoch"]) == [0, 1]
    assert runs.is_finished(run_dir)
    other, _ = training.train(tiny_config("strl_ser", data_dir, cache, epochs=1), runs_dir=tmp_path,
                              progress=False, verbose=0)  # another command: a new run, no backup left
    assert other != run_dir and not (other / "backup").exists()
    with pytest.raises(ConfigError, match="train.time_limit_minutes"):
        tiny_config("strl_ser", data_dir, cache, **{"train.time_limit_minutes": 0})


def test_bn_recompute_runs_before_every_validation_of_fit(corpus, tmp_path, monkeypatch):
    """train.bn_recompute_batches=N: each epoch's validation (and so the checkpoint it chooses)
    sees BatchNorm statistics recomputed over N batches of that epoch, with its last weights."""
    from ser_keras.models import batchnorm

    data_dir, cache = corpus
    calls, real = [], batchnorm.recompute_moving_statistics

    def spy(model, batches):
        batches = list(batches)
        calls.append(len(batches))
        return real(model, batches)

    monkeypatch.setattr(batchnorm, "recompute_moving_statistics", spy)
    config = tiny_config("cldnn", data_dir, cache, epochs=2,
                         **{"train.patience": 10, "train.bn_recompute_batches": 2})
    run_dir, _ = training.train(config, runs_dir=tmp_path, progress=False, verbose=0)
    assert calls == [2, 2]  # once per epoch, not for the test report after fit
    history = pd.read_csv(run_dir / "history.csv")
    assert len(history) == 2 and history["val_loss"].notna().all()


class WeightsAtStart(keras.callbacks.Callback):
    """The trained model's weights as the first epoch begins (after any backup was restored)."""

    def on_train_begin(self, logs=None):
        self.weights = [np.array(w) for w in self.model.get_weights()]


def test_warm_start_begins_from_the_source_run_and_refuses_its_test_files(corpus, tmp_path):
    """train.init_from: the first epoch starts from the source run's saved weights (network,
    normalisation and BatchNorm statistics alike); a source of another architecture, or one that
    trained on any file this run tests on, is one ConfigError and leaves no run folder."""
    from ser_keras.errors import RunDirError

    data_dir, cache = corpus
    source, _ = training.train(tiny_config("strl_ser", data_dir, cache, epochs=1), runs_dir=tmp_path / "a",
                               progress=False, verbose=0)
    want = runs.load_model(source).get_weights()
    start = WeightsAtStart()
    warm = tiny_config("strl_ser", data_dir, cache, epochs=1, **{"train.init_from": str(source)})
    run_dir, _ = training.train(warm, runs_dir=tmp_path / "b", progress=False, verbose=0, extra_callbacks=[start])
    assert len(start.weights) == len(want)
    for got, expected in zip(start.weights, want):
        np.testing.assert_array_equal(got, expected)
    assert json.loads((run_dir / "config.json").read_text())["train"]["init_from"] == str(source)

    cold = WeightsAtStart()  # the same run without init_from starts elsewhere (the test can tell)
    training.train(tiny_config("strl_ser", data_dir, cache, epochs=1), runs_dir=tmp_path / "c",
                   progress=False, verbose=0, extra_callbacks=[cold])
    assert any(not np.array_equal(a, b) for a, b in zip(cold.weights, want))

    refused = tmp_path / "refused"
    other_split = tiny_config("strl_ser", data_dir, cache, epochs=1, protocol="speaker",
                              **{"train.init_from": str(source)})
    with pytest.raises(ConfigError, match=r"trained or validated on \d+ file\(s\) of this run's test part"):
        training.train(other_split, runs_dir=refused, progress=False, verbose=0)
    # A run warm-started from `source` carries what `source` trained on: its test-file check
    # follows the chain (here the middle run's split is rewritten to hold no training files).
    middle = tmp_path / "middle"
    shutil.copytree(run_dir, middle)
    pd.read_csv(middle / "split.csv").assign(part="test").to_csv(middle / "split.csv", index=False)
    chained = tiny_config("strl_ser", data_dir, cache, epochs=1, protocol="speaker",
                          **{"train.init_from": str(middle)})
    with pytest.raises(ConfigError, match=f"'{source}' trained or validated on"):
        training.train(chained, runs_dir=refused, progress=False, verbose=0)
    saved = json.loads((middle / "config.json").read_text())
    saved["train"]["init_from"] = str(tmp_path / "gone")
    (middle / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="which is not a finished run folder here"):
        training.train(chained, runs_dir=refused, progress=False, verbose=0)
    other_arch = tiny_config("cldnn", data_dir, cache, epochs=1, **{"train.init_from": str(source)})
    with pytest.raises(ConfigError, match="is a strl_ser run; this run trains cldnn"):
        training.train(other_arch, runs_dir=refused, progress=False, verbose=0)
    wider = tiny_config("strl_ser", data_dir, cache, epochs=1,
                        **{"train.init_from": str(source), "model.utterance_units": 24})
    with pytest.raises(ConfigError, match=r"utterance_dense/kernel has the shape \(1582, 24\) here and \(1582, 16\)"):
        training.train(wider, runs_dir=refused, progress=False, verbose=0)
    missing = tiny_config("strl_ser", data_dir, cache, epochs=1, **{"train.init_from": str(tmp_path / "none")})
    with pytest.raises(RunDirError, match="does not exist"):
        training.train(missing, runs_dir=refused, progress=False, verbose=0)
    assert not refused.exists() or not any(refused.iterdir())
    with pytest.raises(ConfigError, match="train.init_from must be a run folder"):
        tiny_config("strl_ser", data_dir, cache, **{"train.init_from": ""})

    # A warm-started run cut by its time limit goes on from its own backup, source or not.
    cut = tiny_config("strl_ser", data_dir, cache, epochs=2,
                      **{"train.init_from": str(source), "train.time_limit_minutes": 1e-6})
    cut_dir, _ = training.train(cut, runs_dir=tmp_path / "d", progress=False, verbose=0)
    assert (cut_dir / "backup").is_dir()
    shutil.rmtree(source)
    again, _ = training.train(cut, runs_dir=tmp_path / "d", progress=False, verbose=0)
    assert again == cut_dir and list(pd.read_csv(cut_dir / "history.csv")["epoch"]) == [0, 1]
