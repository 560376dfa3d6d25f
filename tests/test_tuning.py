"""`tune`: KerasTuner search end to end on the tiny synthetic corpus (tiny cldnn, 1 epoch a trial).

Local searches run in this process (cli.main) to save interpreter start-ups; the chief / worker
test runs three real cli.py processes on 127.0.0.1 under a hard timeout.
"""

import contextlib
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tiny import TINY_MODEL, tiny_corpus

import cli
from ser_keras import runs
from ser_keras.data import parts

ROOT = Path(__file__).resolve().parents[1]
ARCH = "cldnn"
# Tiny cldnn; augmentation and conv blocks pinned by --set (which takes them out of the search),
# so the trials vary learning rate and dropout over cached features.
TINY_SETS = [f"model.{k}={json.dumps(v)}" for k, v in TINY_MODEL[ARCH].items()] + [
    "features.clip_seconds=1.5", "features.augment=false", "model.conv_blocks=2"]


def tune_args(corpus, *extra, arch=ARCH):
    data_dir, cache = corpus
    sets = [a for s in TINY_SETS for a in ("--set", s)] if arch == ARCH else []
    return ["tune", "--arch", arch, "--dataset", "synthetic", "--data-dir", str(data_dir), "--cache-dir",
            str(cache), "--epochs", "1", "--batch-size", "8", "--tuner", "random", *sets, *map(str, extra)]


def run_here(args):
    """cli.main in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    return tiny_corpus(root / "corpus"), root / "cache"


@pytest.fixture(scope="module")
def first_search(corpus, tmp_path_factory):
    """A 3-trial random search, counting how often the data work really runs."""
    runs_dir = tmp_path_factory.mktemp("runs")
    calls = {"statistics": 0, "compute_features": 0}
    with pytest.MonkeyPatch.context() as mp:
        for name in calls:
            real = getattr(parts, name)

            def counted(*a, _real=real, _name=name, **k):
                calls[_name] += 1
                return _real(*a, **k)

            mp.setattr(parts, name, counted)
        code, out, err = run_here(tune_args(corpus, "--max-trials", 3, "--runs-dir", runs_dir))
    assert code == 0, err
    (search_dir,) = runs_dir.glob(f"tune-{ARCH}-synthetic-*")
    return search_dir, out, calls


def test_random_search_writes_trials_and_a_run_that_evaluates(first_search, tmp_path):
    search_dir, out, calls = first_search
    lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("hp=learning_rate=" in line and "val UA " in line and " best " in line for line in lines)

    table = pd.read_csv(search_dir / "trials.csv")
    assert len(table) == 3
    assert list(table.columns) == ["trial", "status", "learning_rate", "dropout", "val_ua", "epochs", "seconds",
                                   "worker"]  # pinned by --set: augment and conv_blocks are not searched
    assert (table["status"] == "completed").all() and (table["epochs"] == 1).all()
    assert (table["worker"] == "local").all() and (table["seconds"] > 0).all()
    assert table["learning_rate"].nunique() == 3
    assert (search_dir / "search.png").stat().st_size > 0
    effects = pd.read_csv(search_dir / "effects.csv")
    assert set(effects["hyperparameter"]) <= {"learning_rate", "dropout"}  # levels of one trial are left out
    meta = json.loads((search_dir / "search.json").read_text())
    assert meta["arch"] == ARCH and meta["config"]["train"]["monitor"] == "val_unweighted_accuracy"

    # Data read and normalised once per search: the front end ran once over train and val, and
    # the statistics were taken once, for 3 trials + the space probe + the best run's rebuild.
    assert calls == {"statistics": 1, "compute_features": 2}

    best = search_dir / "best"
    assert runs.is_finished(best) and (best / "model.keras").is_file() and (best / "split.csv").is_file()
    info = json.loads((best / "tuning.json").read_text())
    assert table["val_ua"].max() == pytest.approx(info["val_ua"])
    assert f"best run directory: {best}" in out
    saved = json.loads((best / "config.json").read_text())
    assert saved["model"]["conv_blocks"] == 2 and saved["model"]["lstm_units"] == 8
    assert saved["train"]["learning_rate"] == pytest.approx(info["hyperparameters"]["learning_rate"])

    from ser_keras.evaluation import evaluate_run

    metrics, eval_dir = evaluate_run(best, progress=False)
    assert 0.0 <= metrics["ua"] <= 1.0 and (eval_dir / "metrics.json").is_file()
    if importlib.util.find_spec("tensorflow") is not None:
        from ser_keras.export import export_run

        exported = export_run(best, name="tuned", root=tmp_path / "saved_models")
        assert (Path(exported) / "saved_model.pb").is_file()


def test_effects_rank_the_hyperparameter_that_moves_val_ua_first():
    """effects.csv / "what mattered": heads alone sets val UA (+0.1 above 2 heads), the learning
    rate (three clusters of values, compared as tertiles) and augmentation are noise, balanced
    over heads; unfinished trials are left out."""
    import numpy as np

    from tuning.trials import hyperparameter_effects

    rng = np.random.default_rng(0)
    n = 24
    table = pd.DataFrame({"trial": range(n), "heads": np.tile([1, 2, 4, 8], n // 4),
                          "learning_rate": np.repeat([1e-4, 5e-4, 2e-3], n // 3) * rng.uniform(1, 1.01, n),
                          "augment": np.tile([True, False, False], n // 3)})
    table["val_ua"] = 0.5 + 0.1 * (table["heads"] > 2) + rng.normal(0, 0.005, n)
    table.loc[0, "val_ua"] = float("nan")
    effects = hyperparameter_effects(table, ["learning_rate", "augment", "heads"])
    assert list(effects["hyperparameter"])[0] == "heads"
    top = effects.iloc[0]
    assert top["spread"] == pytest.approx(0.1, abs=0.01) and top["best_level"] in ("4", "8")
    assert top["spearman"] > 0.7 and top["trials"] == n - 1
    assert (effects["spread"].iloc[1:] < 0.02).all()  # the learning rate (tertiles) and augment
    assert np.isnan(effects.set_index("hyperparameter").loc["augment", "spearman"])


def test_a_search_saved_before_a_setting_existed_still_matches_at_its_default():
    """A search directory written before ``train.precision`` existed continues with the same
    command (the new setting at its default); a non-default value is a different search."""
    import copy

    from ser_keras.config import resolve_config
    from tuning.searchdir import differences

    current = resolve_config("strl_ser", "ravdess").to_dict()
    saved = copy.deepcopy(current)
    del saved["train"]["precision"]
    assert differences(saved, current) == []
    current["train"]["precision"] = "mixed_bfloat16"
    assert differences(saved, current) == ["train.precision"]
    current["train"]["precision"], current["train"]["learning_rate"] = "float32", 0.5
    assert differences(saved, current) == ["train.learning_rate"]


def test_same_command_with_more_trials_continues_the_search(first_search, corpus):
    from tuning.searchdir import META_FILE

    search_dir, _, _ = first_search
    before = pd.read_csv(search_dir / "trials.csv")
    meta = json.loads((search_dir / META_FILE).read_text())  # as saved before train.init_from existed:
    del meta["config"]["train"]["init_from"]                 # found all the same
    (search_dir / META_FILE).write_text(json.dumps(meta))
    code, out, err = run_here(tune_args(corpus, "--max-trials", 4, "--runs-dir", search_dir.parent))
    assert code == 0, err
    assert f"search directory: {search_dir} (continuing: 3 trials done)" in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("trial ")] == ["4/4"]
    after = pd.read_csv(search_dir / "trials.csv")
    assert len(after) == 4 and list(search_dir.parent.glob("tune-*")) == [search_dir]
    pd.testing.assert_frame_equal(after.iloc[:3][["trial", "learning_rate", "dropout", "val_ua"]],
                                  before[["trial", "learning_rate", "dropout", "val_ua"]])


def test_chief_and_two_workers_on_localhost(corpus, tmp_path):
    port, search_dir = free_port(), tmp_path / "shared-search"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)
    common = tune_args(corpus, "--max-trials", 3, "--search-dir", search_dir, "--timeout", 60)
    roles = {"chief": ["--chief", "--oracle", f"127.0.0.1:{port}"],
             "w1": ["--worker", "w1", "--oracle", f"127.0.0.1:{port}", "--connect-timeout", 120],
             "w2": ["--worker", "w2", "--oracle", f"127.0.0.1:{port}", "--connect-timeout", 120]}
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *common, *map(str, extra)],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, extra in roles.items()}
    deadline, results = time.monotonic() + 300, {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
            results[name] = (proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for name, (code, out, err) in results.items():
        assert code == 0, f"{name}: {out}\n{err}"

    table = pd.read_csv(search_dir / "trials.csv")
    assert len(table) == 3 and (table["status"] == "completed").all()
    assert set(table["worker"]) == {"w1", "w2"}  # both workers ran trials; the chief only serves
    for name in ("w1", "w2"):
        ran = sum(line.startswith(f"worker {name}: trial ") for line in results[name][1].splitlines())
        assert ran == (table["worker"] == name).sum()
    chief_out = results["chief"][1]
    best_line = next(line for line in chief_out.splitlines() if line.startswith("best: trial "))
    best_id = best_line.split()[2]
    row = table[table["trial"].astype(str) == best_id].iloc[0]
    assert row["val_ua"] == table["val_ua"].max()
    assert json.loads((search_dir / "best" / "tuning.json").read_text())["trial"] == best_id
    assert runs.is_finished(search_dir / "best")


def test_a_chief_that_hears_from_no_worker_gives_up_after_the_timeout():
    import keras_tuner as kt

    from tuning import cluster

    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_unweighted_accuracy", "max"), max_trials=2)
    role = cluster.Role("chief", "chief", "127.0.0.1", free_port())
    started = time.monotonic()
    with pytest.raises(cluster.TuneError, match="no worker has contacted the chief for 1 s"):
        cluster.serve(oracle, role, cluster.Watch({}), timeout=1, poll=0.1)
    assert time.monotonic() - started < 10


def test_a_silent_worker_loses_its_trial_and_no_longer_holds_up_the_search(tmp_path):
    import keras_tuner as kt

    from tuning import cluster

    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_unweighted_accuracy", "max"), max_trials=2)
    oracle._set_project_dir(str(tmp_path), "kt")
    oracle.hyperparameters.Float("learning_rate", 1e-4, 1e-2)
    owners, notes = {}, []
    trial = oracle.create_trial("w1")
    owners[trial.trial_id] = "w1"
    watch = cluster.Watch(owners)
    watch.last["w1"] = time.monotonic() - 5  # last heard 5 s ago
    cluster._end_dead_workers(oracle, watch, timeout=2, on_dead=notes.append)
    assert oracle.trials[trial.trial_id].status == "FAILED" and not oracle.ongoing_trials
    assert "w1" not in oracle.tuner_ids and "silent" in notes[0]


@pytest.mark.parametrize("case", ["unknown_hparam", "zero_trials", "other_arch", "unreachable_oracle",
                                  "bad_oracle_address", "init_from"])
def test_bad_input_is_one_error_line(case, corpus, first_search, tmp_path):
    search_dir = first_search[0]
    args = {
        "unknown_hparam": tune_args(corpus, "--set", "model.no_such_thing=1", "--runs-dir", tmp_path),
        "zero_trials": tune_args(corpus, "--max-trials", 0, "--runs-dir", tmp_path),
        "other_arch": tune_args(corpus, "--search-dir", search_dir, arch="bigru_mha"),
        "unreachable_oracle": tune_args(corpus, "--worker", "w1", "--oracle", f"127.0.0.1:{free_port()}",
                                        "--connect-timeout", 1, "--search-dir", tmp_path / "s"),
        "bad_oracle_address": tune_args(corpus, "--worker", "w1", "--oracle", "no-port-here",
                                        "--search-dir", tmp_path / "s"),
        "init_from": tune_args(corpus, "--set", f"train.init_from={tmp_path}", "--runs-dir", tmp_path),
    }[case]
    code, out, err = run_here(args)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), err
    expected = {"unknown_hparam": "model.no_such_thing", "zero_trials": "--max-trials",
                "other_arch": "--arch cldnn", "unreachable_oracle": "cannot reach the chief",
                "bad_oracle_address": "HOST:PORT", "init_from": "train.init_from applies to train and cv"}[case]
    assert expected in lines[0]
    assert not list(tmp_path.glob("tune-*"))  # nothing half-made


JAX_SCRIPT = r"""
import sys


class NoTensorFlow:  # any TensorFlow import fails (sys.modules["tensorflow"] = None would make
    def find_spec(self, name, path=None, target=None):  # Keras think TF is loaded)
        if name.partition(".")[0] == "tensorflow":
            raise ImportError("TensorFlow is blocked in this test")


sys.meta_path.insert(0, NoTensorFlow())
import keras_tuner  # noqa: E402,F401  (KerasTuner itself, gRPC included, runs without TF)
from keras_tuner.src.distribute import oracle_chief, oracle_client  # noqa: E402,F401
import cli  # noqa: E402

code = cli.main(sys.argv[1:])
assert "tensorflow" not in sys.modules
sys.exit(code)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_search_under_jax_without_tensorflow(corpus, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT,
                             *tune_args(corpus, "--max-trials", 1, "--runs-dir", tmp_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (search_dir,) = tmp_path.glob("tune-*")
    assert len(pd.read_csv(search_dir / "trials.csv")) == 1 and runs.is_finished(search_dir / "best")
