"""The SVM baseline on exactly a run's split, in the run's metrics format."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

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


def test_a_run_trained_on_another_machine_finds_its_files_with_data_dir(trained_runs, tmp_path):
    """Its split.csv names that machine's paths; --data-dir re-roots them onto this machine's copy."""
    from ser_keras.baseline import run_baseline
    from ser_keras.errors import DataError

    run_dir, corpus = trained_runs.run("cldnn"), trained_runs.corpus().resolve()
    moved = tmp_path / "moved_run"
    shutil.copytree(run_dir, moved, ignore=shutil.ignore_patterns("baseline-svm"))
    split = pd.read_csv(moved / "split.csv")
    split["path"] = [str(Path("/gpu-box/home/me/data/tiny") / Path(p).relative_to(corpus)) for p in split["path"]]
    split.to_csv(moved / "split.csv", index=False)

    with pytest.raises(DataError, match="files are missing.*--data-dir"):
        run_baseline(moved, progress=False)
    with pytest.raises(DataError, match="not under --data-dir"):
        run_baseline(moved, progress=False, data_dir=tmp_path)
    metrics, out = run_baseline(moved, progress=False, data_dir=corpus)
    reference, _ = run_baseline(run_dir, progress=False)
    assert metrics["confusion"] == reference["confusion"] and metrics["ua"] == reference["ua"]
    tested = pd.read_csv(out / "predictions.csv")["file"]
    assert all(Path(f).is_relative_to(corpus) and Path(f).is_file() for f in tested)
