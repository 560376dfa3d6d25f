"""`predict`: files and folders from a run directory or its SavedModel; bad files skipped."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audio_fixtures import write_tone
from ser_keras.errors import DataError, RunDirError
from ser_keras.inference import collect_files, format_predictions, predict_files

pytest_plugins = ["trained_runs"]
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture
def mixed_folder(tmp_path):
    """Two usable files (one longer than cldnn's tiny 1.5 s window) and three unusable ones."""
    folder = tmp_path / "incoming"
    write_tone(folder / "short.wav", seconds=0.8, freq=200.0)
    write_tone(folder / "nested" / "long.flac", seconds=3.4, sample_rate=22050, freq=310.0, seed=2)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is not audio\n")
    sf.write(str(folder / "silent.wav"), np.zeros(8000, np.float32), 16000)
    (folder / "readme.txt").write_text("ignored: not an audio suffix\n")
    return folder


def test_collect_files(mixed_folder, tmp_path):
    files = collect_files([mixed_folder, mixed_folder / "short.wav"])
    assert sorted(p.name for p in files) == ["empty.wav", "long.flac", "notes.wav", "short.wav", "silent.wav"]
    with pytest.raises(DataError, match="does not exist"):
        collect_files([tmp_path / "missing.wav"])
    (tmp_path / "blank").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        collect_files(tmp_path / "blank")


def test_predict_folder_skips_bad_files_and_export_agrees(trained_runs, mixed_folder, tmp_path):
    run_dir, export_dir = trained_runs.run("cldnn"), trained_runs.export("cldnn")
    csv = tmp_path / "out" / "predictions.csv"
    from_run = predict_files(run_dir, [mixed_folder], csv_path=csv)

    assert sorted(pd.Series(from_run["file"]).map(lambda f: f.rsplit("/", 1)[-1])) == ["long.flac", "short.wav"]
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in from_run.attrs["skipped"]}
    assert reasons == {"empty.wav": "empty file", "notes.wav": "not audio libsndfile can read", "silent.wav": "silent"}
    names = (export_dir / "assets" / "labels.txt").read_text().split()
    probs = from_run[[f"p_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert list(from_run["label"]) == [names[i] for i in probs.argmax(1)]
    np.testing.assert_allclose(from_run["probability"], probs.max(1))
    pd.testing.assert_frame_equal(pd.read_csv(csv), from_run, check_dtype=False)

    from_export = predict_files(export_dir, [mixed_folder])
    assert list(from_export["label"]) == list(from_run["label"])
    np.testing.assert_allclose(from_export[probs_columns(names)], from_run[probs_columns(names)], atol=1e-5)
    assert from_export.attrs["skipped"] == from_run.attrs["skipped"]

    text = format_predictions(from_run, from_run.attrs["skipped"])
    first = text.splitlines()[0].split()
    assert first == [from_run["file"][0], from_run["label"][0], f"{from_run['probability'][0]:.2f}"]
    assert "skipped 3 file(s):" in text and "empty.wav: empty file" in text


def probs_columns(names):
    return [f"p_{n}" for n in names]


@pytest.mark.parametrize("arch", ["bigru_mha", "bilstm_att_mtl"])
def test_run_and_savedmodel_predict_the_same(trained_runs, tmp_path, arch):
    files = [write_tone(tmp_path / "a.wav", seconds=1.9, freq=190.0),
             write_tone(tmp_path / "b.wav", seconds=3.1, freq=280.0, seed=4)]
    from_run = predict_files(trained_runs.run(arch), files)
    from_export = predict_files(trained_runs.export(arch), files)
    assert list(from_run["file"]) == [str(f) for f in files]
    assert list(from_export["label"]) == list(from_run["label"])
    columns = [c for c in from_run if c.startswith("p_")]
    np.testing.assert_allclose(from_export[columns], from_run[columns], atol=1e-5)
    if arch == "bilstm_att_mtl":
        assert set(from_run["speed"]) <= {"slow", "normal", "fast"}
        assert set(from_run["volume"]) <= {"quiet", "normal", "loud"}
        assert "speed=" in format_predictions(from_run)


def test_strl_ser_segments_from_run_and_savedmodel_agree(trained_runs, tmp_path):
    from ser_keras.inference import load_items, open_predictor
    from ser_keras.scoring import model_inputs

    files = [write_tone(tmp_path / "a.wav", seconds=1.9, freq=190.0),
             write_tone(tmp_path / "b.wav", seconds=3.1, freq=280.0, seed=4),
             tmp_path / "empty.wav"]
    files[2].write_bytes(b"")
    run = open_predictor(trained_runs.run("strl_ser"))
    paths, items, skipped = load_items(run, files)  # openSMILE once, in a worker process
    assert skipped == [(str(files[2]), "empty file")]
    inputs, owners = model_inputs(run.recipe, run.features, items)
    # 1.4 s segments every 0.7 s over 32 ms IS10 frames: 1.9 s -> 2 segments, 3.1 s -> 4
    assert np.bincount(owners).tolist() == [2, 4]
    assert inputs["lld_segments"].shape[1:] == (76, 40, 1) and inputs["functionals"].shape == (6, 1582)
    from_run, from_export = (predict_files(source, files[:2]) for source in
                             (run, trained_runs.export("strl_ser")))
    assert list(from_run["label"]) == list(from_export["label"])
    columns = [c for c in from_run if c.startswith("p_")]
    np.testing.assert_allclose(from_export[columns], from_run[columns], atol=1e-5)


@pytest.mark.parametrize("arch", ["cldnn", "bigru_mha", "bilstm_att_mtl"])
def test_model_keras_on_raw_audio_equals_cli_predict_and_savedmodel(trained_runs, tmp_path, arch):
    """The must-show of the waveform-in redesign: one model, three ways in, one answer."""
    import json
    import subprocess
    import sys

    import keras

    from ser_keras.audio import load_audio

    run_dir = trained_runs.run(arch)
    rate = json.loads((run_dir / "config.json").read_text())["features"]["sample_rate"]
    path = write_tone(tmp_path / "clip.wav", seconds=1.1, freq=230.0, seed=7)
    csv = tmp_path / "cli.csv"
    done = subprocess.run([sys.executable, "cli.py", "predict", str(run_dir), str(path), "--csv", str(csv)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    names = json.loads((run_dir / "classes.json").read_text())
    from_cli = pd.read_csv(csv)[[f"p_{n}" for n in names]].to_numpy()[0]

    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    audio = load_audio(path, rate)[None, :]
    x = {"audio": audio, "length": np.array([audio.shape[1]], np.int32)} if arch == "bigru_mha" else audio
    out = model.predict_on_batch(x)
    from_keras = np.asarray(out["emotion"] if isinstance(out, dict) else out)[0]
    from_export = predict_files(trained_runs.export(arch), [path])[[f"p_{n}" for n in names]].to_numpy()[0]
    np.testing.assert_allclose(from_cli, from_keras, atol=1e-5)
    np.testing.assert_allclose(from_export, from_keras, atol=1e-5)


def test_every_file_bad_is_an_error(trained_runs, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(str(tmp_path / "silent.wav"), np.zeros(4000, np.float32), 16000)
    with pytest.raises(DataError, match="none of the 2 files"):
        predict_files(trained_runs.run("cldnn"), [tmp_path])


def test_source_that_is_neither_run_nor_export(tmp_path, mixed_folder):
    with pytest.raises(RunDirError, match="neither a run directory nor a SavedModel"):
        predict_files(tmp_path, [mixed_folder])
