"""The SVM baseline on exactly a run's split, in the run's metrics format."""

import json

import pandas as pd

pytest_plugins = ["trained_runs"]


def test_baseline_uses_the_runs_own_split_and_metrics_format(trained_runs):
    from ser_keras.baseline import run_baseline

    run_dir = trained_runs.run("cldnn")
    metrics, out = run_baseline(run_dir, progress=False)
    split = pd.read_csv(run_dir / "split.csv")
    predictions = pd.read_csv(out / "predictions.csv")
    assert sorted(predictions["file"]) == sorted(split.loc[split["part"] == "test", "path"])
    saved = json.loads((out / "metrics.json").read_text())
    run_metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(run_metrics) - {"arch", "fold", "checkpoint_selection"} <= set(saved) | {"fold"}
    assert saved["arch"] == "svm_is10" and saved["classes"] == run_metrics["classes"]
    assert saved["split_sizes"] == {p: int((split["part"] == p).sum()) for p in ("train", "val", "test")}
    assert "validation part" in saved["checkpoint_selection"]
    assert saved["wa"] == (predictions["true"] == predictions["predicted"]).mean()
