"""Run reports: metrics.json, predictions.csv and the PNG plots."""

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from ser_keras.metrics import compute_metrics
from ser_keras.reports import (
    plot_confusion,
    plot_history,
    plot_tsne,
    write_atomically,
    write_metrics_json,
    write_predictions_csv,
)

NAMES = ["neutral", "happy", "sad"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path, min_width=200):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[1] >= min_width
    assert image.std() > 0  # something was drawn


def assert_no_temporary_files(folder):
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_metrics_json_round_trips_with_numpy_extras(tmp_path):
    metrics = compute_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), NAMES)
    path = write_metrics_json(
        tmp_path, metrics, protocol="speaker", seed=np.int64(7),
        split_sizes={"train": np.int32(80), "val": 10, "test": 10},
        loss=np.float32(0.25), test_speakers=np.array([3, 8]), missing=float("nan"),
    )
    assert path == tmp_path / "metrics.json"
    reloaded = json.loads(path.read_text())
    for key in ("wa", "ua", "macro_f1", "weighted_f1", "per_class", "confusion", "classes", "n"):
        assert reloaded[key] == metrics[key]
    assert reloaded["protocol"] == "speaker" and reloaded["seed"] == 7
    assert reloaded["split_sizes"] == {"train": 80, "val": 10, "test": 10}
    assert reloaded["loss"] == pytest.approx(0.25)
    assert reloaded["test_speakers"] == [3, 8]
    assert reloaded["missing"] is None  # strict JSON: NaN written as null
    assert_no_temporary_files(tmp_path)


def test_metrics_json_refuses_extras_that_shadow_metrics(tmp_path):
    metrics = compute_metrics([0, 1], [0, 1], NAMES)
    with pytest.raises(ValueError, match="overwrite"):
        write_metrics_json(tmp_path, metrics, wa=1.0)
    assert not (tmp_path / "metrics.json").exists()


def test_predictions_csv_columns_and_values(tmp_path):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    path = write_predictions_csv(
        tmp_path, ["a.wav", "b.wav", "sub/c.wav"], np.array([0, 1, 1]), probs.argmax(1),
        probs, NAMES,
    )
    table = pd.read_csv(path)
    assert list(table.columns) == ["file", "true", "predicted", "p_neutral", "p_happy", "p_sad"]
    assert table["file"].tolist() == ["a.wav", "b.wav", "sub/c.wav"]
    assert table["true"].tolist() == ["neutral", "happy", "happy"]
    assert table["predicted"].tolist() == ["neutral", "sad", "happy"]
    np.testing.assert_allclose(table[["p_neutral", "p_happy", "p_sad"]].to_numpy(), probs)
    assert_no_temporary_files(tmp_path)


def test_predictions_csv_without_labels_and_shape_check(tmp_path):
    probs = np.array([[0.7, 0.2, 0.1]])
    table = pd.read_csv(write_predictions_csv(tmp_path, ["x.wav"], None, [0], probs, NAMES),
                        keep_default_na=False)
    assert table["true"].tolist() == [""] and table["predicted"].tolist() == ["neutral"]
    with pytest.raises(ValueError, match="probabilities"):
        write_predictions_csv(tmp_path, ["x.wav", "y.wav"], None, [0, 1], probs, NAMES)


def test_plot_confusion_writes_png(tmp_path):
    metrics = compute_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], NAMES)
    path = plot_confusion(tmp_path / "confusion.png", metrics["confusion"], NAMES)
    assert_valid_png(path)
    assert_no_temporary_files(tmp_path)


def test_plot_confusion_copes_with_empty_rows(tmp_path):
    confusion = [[3, 1, 0], [0, 0, 0], [1, 0, 2]]  # "happy" absent from the test set
    assert_valid_png(plot_confusion(tmp_path / "c.png", confusion, NAMES))


def test_plot_history_from_csv_logger_file(tmp_path):
    csv = tmp_path / "history.csv"
    pd.DataFrame({
        "epoch": [0, 1, 2], "accuracy": [0.3, 0.5, 0.6], "loss": [1.1, 0.9, 0.8],
        "unweighted_accuracy": [0.3, 0.45, 0.55], "val_accuracy": [0.3, 0.4, 0.5],
        "val_loss": [1.2, 1.0, 0.95], "val_unweighted_accuracy": [0.28, 0.38, 0.47],
        "learning_rate": [1e-3, 1e-3, 1e-3],
    }).to_csv(csv, index=False)
    assert_valid_png(plot_history(tmp_path / "history.png", csv))


def test_plot_history_multi_output_dataframe(tmp_path):
    history = pd.DataFrame({
        "loss": [2.0, 1.5], "emotion_loss": [1.5, 1.1], "speed_loss": [0.9, 0.8],
        "volume_loss": [0.8, 0.7], "emotion_accuracy": [0.4, 0.5],
        "val_loss": [2.1, 1.7], "val_emotion_loss": [1.6, 1.3],
        "val_emotion_unweighted_accuracy": [0.35, 0.45],
    })
    assert_valid_png(plot_history(tmp_path / "history.png", history))


def test_plot_history_without_accuracy_columns(tmp_path):
    history = pd.DataFrame({"loss": [1.0, 0.5]})
    assert_valid_png(plot_history(tmp_path / "history.png", history))


@pytest.mark.parametrize("n", [10, 20])
def test_plot_tsne_small_n(tmp_path, n):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    inputs = rng.normal(size=(n, 4, 16, 1))  # any per-sample shape is flattened
    embeddings = rng.normal(size=(n, 8)) + 3.0 * np.eye(8)[labels]
    path = plot_tsne(tmp_path / "tsne.png", inputs, embeddings, labels, NAMES, seed=0)
    assert_valid_png(path, min_width=400)
    assert_no_temporary_files(tmp_path)


def test_plot_tsne_is_deterministic_under_seed(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.arange(12) % 3
    inputs, embeddings = rng.normal(size=(12, 60)), rng.normal(size=(12, 5))
    first = plot_tsne(tmp_path / "a.png", inputs, embeddings, labels, NAMES, seed=3)
    second = plot_tsne(tmp_path / "b.png", inputs, embeddings, labels, NAMES, seed=3)
    np.testing.assert_array_equal(imread(first), imread(second))


def test_plot_tsne_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="same length"):
        plot_tsne(tmp_path / "t.png", np.zeros((5, 3)), np.zeros((4, 3)), [0] * 5, NAMES)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_report_files_follow_the_umask(tmp_path, umask, mask, mode):
    # mkstemp's 0600 used to survive the rename: reports unreadable by the rest of the group
    umask(mask)
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    written = [
        write_metrics_json(tmp_path, compute_metrics(np.array([0, 1]), np.array([0, 1]), NAMES)),
        write_predictions_csv(tmp_path, ["a.wav", "b.wav"], [0, 1], [0, 1], probabilities, NAMES),
        plot_confusion(tmp_path / "confusion.png", np.eye(3), NAMES),
        write_atomically(tmp_path / "sub" / "note.txt", lambda tmp: Path(tmp).write_text("x")),
    ]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in written} == {
        "metrics.json": mode, "predictions.csv": mode, "confusion.png": mode, "note.txt": mode}
    assert_no_temporary_files(tmp_path)


def test_failed_write_leaves_no_temporary_file(tmp_path):
    def broken(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(tmp_path / "x.json", broken)
    assert list(tmp_path.iterdir()) == []


def captured_figures(monkeypatch):
    """The Figure objects the report functions draw (their PNGs are still written)."""
    import ser_keras.reports as reports

    figures = []
    real_save = reports._save_figure

    def keep(fig, path):
        figures.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(reports, "_save_figure", keep)
    return figures


def test_confusion_plot_shows_rows_as_true_classes_with_counts(tmp_path, monkeypatch):
    figures = captured_figures(monkeypatch)
    confusion = np.array([[3, 1, 0], [0, 2, 2], [1, 0, 5]])
    plot_confusion(tmp_path / "c.png", confusion, NAMES)
    ax = figures[-1].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES == [t.get_text() for t in ax.get_xticklabels()]
    assert ax.get_ylabel() == "true" and ax.get_xlabel() == "predicted"
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells[(1, 2)] == "50%\n(2)" and cells[(0, 0)] == "75%\n(3)"  # row 1 = true class 1
    np.testing.assert_allclose(ax.images[0].get_array(), confusion / confusion.sum(1, keepdims=True))


def test_history_plot_draws_the_logged_values(tmp_path, monkeypatch):
    figures = captured_figures(monkeypatch)
    history = pd.DataFrame({"epoch": [0, 1, 2], "loss": [1.5, 1.0, 0.7], "val_loss": [1.6, 1.2, 1.3],
                            "accuracy": [0.3, 0.5, 0.6], "val_accuracy": [0.25, 0.4, 0.45]})
    plot_history(tmp_path / "h.png", history)
    loss_ax = next(ax for ax in figures[-1].axes if ax.get_ylabel() == "loss")
    lines = {line.get_label(): line.get_ydata().tolist() for line in loss_ax.get_lines()}
    assert lines["train loss"] == [1.5, 1.0, 0.7] and lines["val loss"] == [1.6, 1.2, 1.3]
