"""benchmarks/validation_curves.py: the steadiness figures of a validation curve, read from a
run's history (one-output and multi-task column names), and one error line for a folder that
is not a run or a history that was never validated."""

import json

import pandas as pd
import pytest
from benchmark_scripts import load_benchmark


def validation_curves():
    return load_benchmark("validation_curves")


def test_curve_summary_reads_best_epochs_changes_and_one_label_epochs():
    history = pd.DataFrame({"epoch": range(6),
                            "val_loss": [2.0, 1.9, 1.8, 1.5, 2.5, 1.6],
                            "val_accuracy": [0.1, 0.2, 0.3, 0.5, 0.2, 0.45],
                            "val_unweighted_accuracy": [0.25, 0.3, 0.3, 0.5, 0.25, 0.4]})
    summary = validation_curves().curve_summary(history, num_classes=4, skip=2)
    assert (summary["best_val_loss"], summary["best_val_loss_epoch"]) == (1.5, 4)
    assert (summary["best_val_ua"], summary["best_val_ua_epoch"]) == (0.5, 4)
    # from epoch 3 on: 0.3 -> 0.5 -> 0.2 -> 0.45, changes 0.2, 0.3, 0.25
    assert summary["mean_abs_change"] == pytest.approx(0.25)
    assert summary["largest_drop"] == pytest.approx(0.3)
    assert summary["one_label_epochs"] == [1, 5]  # UA 1/4: one label for every clip


def test_multi_task_runs_are_read_on_the_emotion_head(tmp_path, capsys):
    run = tmp_path / "bilstm_att_mtl-run"
    run.mkdir()
    pd.DataFrame({"epoch": [0, 1], "val_loss": [2.0, 1.0], "val_speed_accuracy": [0.9, 0.9],
                  "val_emotion_accuracy": [0.3, 0.6], "val_emotion_unweighted_accuracy": [0.3, 0.6]}
                 ).to_csv(run / "history.csv", index=False)
    (run / "classes.json").write_text(json.dumps(["a", "b", "c"]))
    module = validation_curves()
    assert module.main([str(run), "--skip", "0"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split()[:2] == ["bilstm_att_mtl-run", "2"] and "0.300" in line  # change 0.3 -> 0.6
    assert module.main([str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    pd.DataFrame({"epoch": [0], "loss": [1.0]}).to_csv(run / "history.csv", index=False)  # never validated
    assert module.main([str(run)]) == 2
    assert "no validated epochs" in capsys.readouterr().err
