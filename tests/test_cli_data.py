"""The data commands (synth, info, prepare) end to end, including bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

from audio_fixtures import write_tone

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env_cache):
    env = {"SER_KERAS_CACHE": str(env_cache), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    # Progress bars may share stderr; apart from them, stderr is exactly the one error line.
    lines = [line for line in result.stderr.strip().splitlines() if line.strip() and not line.startswith("prepare:")]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """A tiny RAVDESS-layout folder with one good file per emotion and the usual bad ones."""
    root = tmp_path_factory.mktemp("ravdess")
    for i, code in enumerate(("01", "03", "04", "05")):
        write_tone(root / "Actor_01" / f"03-01-{code}-01-01-01-01.wav", seconds=0.3, freq=150 + 40 * i)
        write_tone(root / "Actor_02" / f"03-01-{code}-01-01-01-02.wav", seconds=0.3, sample_rate=96000, channels=2,
                   freq=300 + 40 * i)
    write_tone(root / "Actor_03" / "03-01-01-01-01-01-03.wav", seconds=0.3, fmt="AIFF")  # AIFF named .wav
    (root / "Actor_03" / "03-01-03-01-01-01-03.wav").write_bytes(b"")                  # zero bytes
    (root / "Actor_03" / "03-01-04-01-01-01-03.wav").write_text("this is not audio")   # text
    good = (root / "Actor_01" / "03-01-01-01-01-01-01.wav").read_bytes()
    (root / "Actor_03" / "03-01-05-01-01-01-03.wav").write_bytes(good[:1000])  # truncated: fewer samples than the header says
    (root / "Actor_03" / "notes.txt").write_text("readme")
    (root / "Actor_03" / "03-01-99.wav").write_bytes(good)                              # malformed name
    return root


def test_info_counts_and_lists_skips(small_corpus, tmp_path):
    result = run_cli("info", "--dataset", "ravdess", "--data-dir", small_corpus, env_cache=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # 8 good files + the AIFF; the truncated WAV (fewer frames than its header says) is skipped.
    assert "utterances: 9" in out and "speakers: 3" in out
    assert "skipped: 4" in out and "truncated" in out
    for name in ("03-01-99.wav", "03-01-03-01-01-01-03.wav", "03-01-04-01-01-01-03.wav", "03-01-05-01-01-01-03.wav"):
        assert name in out
    assert "duplicates: 0" in out


def test_prepare_skips_bad_files_and_keeps_the_rest(small_corpus, tmp_path):
    result = run_cli("prepare", "--dataset", "ravdess", "--data-dir", small_corpus, env_cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "prepared 9 utterances at 16000 Hz" in result.stdout
    assert "skipped: 4" in result.stdout and "empty file" in result.stdout and "truncated" in result.stdout
    assert "Traceback" not in result.stderr
    caches = list((tmp_path / "prepared").iterdir())
    assert len(caches) == 1 and (caches[0] / "manifest.csv").exists()


@pytest.mark.parametrize("args, fragments", [
    (("info", "--dataset", "ravdess", "--data-dir", "/nonexistent/ravdess"), ("does not exist",)),
    (("info", "--dataset", "klingon", "--data-dir", "."), ("unknown --dataset", "ravdess")),
    (("info", "--dataset", "ravdess"), ("--data-dir",)),
    (("prepare", "--dataset", "emodb", "--arch", "cldnn", "--data-dir", "EMPTY"), ("empty",)),
    (("prepare", "--dataset", "ravdess", "--data-dir", "JUNK"), ("no recognisable",)),
    (("prepare", "--dataset", "ravdess", "--data-dir", "ALLBAD"), ("could be used",)),
    (("train", "--arch", "resnet"), ("invalid choice",)),
    (("train", "--arch", "cldnn", "--dataset", "ravdess"), ("--data-dir",)),
    (("train", "--arch", "cldnn", "--set", "train.epochz=3"), ("unknown setting 'train.epochz'",)),
    (("evaluate", "EMPTY"), ("not a run directory",)),
    (("evaluate", "MISSING"), ("does not exist",)),
    (("predict", "EMPTY", "x.wav"), ("neither a run directory nor a SavedModel",)),
    (("export", "EMPTY"), ("not a run directory",)),
    (("train", "--arch", "cldnn", "--epochs", "0"), ("train.epochs must be an integer >= 1", "got 0")),
    (("train", "--arch", "cldnn", "--epochs", "-1"), ("train.epochs must be an integer >= 1",)),
    (("train", "--arch", "cldnn", "--set", "train.epochs=abc"), ("train.epochs", '"abc"')),
    (("train", "--arch", "cldnn", "--batch-size", "0"), ("train.batch_size must be an integer >= 1",)),
    (("train", "--arch", "cldnn", "--set", "train.learning_rate=-1"), ("train.learning_rate",)),
    (("train", "--arch", "cldnn", "--set", "data.protocol=kfold"), ("data.protocol must be one of",)),
    (("train", "--arch", "cldnn", "--set", "model.heads=4"), ("unknown cldnn hyperparameter", "model.heads")),
    (("cv", "--arch", "bigru_mha", "--set", "features.augment=maybe"), ("features.augment must be true or false",)),
    (("info", "--dataset", "emodb", "--data-dir", ".", "--set", "data.vocal_channel=song"), ("ravdess",)),
    (("info", "--dataset", "ravdess", "--data-dir", ".", "--set", "data.vocal_channel=opera"),
     ("data.vocal_channel must be one of speech, song, all",)),
])
def test_bad_input_is_one_clear_line(args, fragments, tmp_path):
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "JUNK").mkdir()
    (tmp_path / "JUNK" / "hello.wav").write_text("x")
    bad = tmp_path / "ALLBAD" / "Actor_01"
    bad.mkdir(parents=True)
    (bad / "03-01-01-01-01-01-01.wav").write_bytes(b"")
    args = [str(tmp_path / a) if a in ("EMPTY", "JUNK", "ALLBAD", "MISSING") else a for a in args]
    result = run_cli(*args, "--runs-dir", tmp_path / "runs", env_cache=tmp_path / "cache") \
        if args[0] in ("train", "cv") else run_cli(*args, env_cache=tmp_path / "cache")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()  # invalid input leaves no run folder behind
    assert not (tmp_path / "cache" / "prepared").exists() or not any((tmp_path / "cache" / "prepared").iterdir())


def test_synth_then_info(tmp_path):
    target = tmp_path / "synth"
    result = run_cli("synth", "--to", target, "--speakers", "4", env_cache=tmp_path)
    assert result.returncode == 0, result.stderr
    info = run_cli("info", "--dataset", "synthetic", "--data-dir", target, env_cache=tmp_path)
    assert "utterances: 128" in info.stdout and "speakers: 4" in info.stdout and "classes: 4" in info.stdout


def test_real_ravdess_info(shared_ravdess, tmp_path):
    result = run_cli("info", "--dataset", "ravdess", "--data-dir", shared_ravdess, env_cache=tmp_path)
    out = result.stdout
    assert "utterances: 1440" in out and "speakers: 24" in out and "classes: 8" in out
    assert "duplicates: 1 group" in out and "03-01-03-01-02-01-07" in out and "03-01-03-01-02-02-07" in out
    merged = run_cli("info", "--dataset", "ravdess", "--data-dir", shared_ravdess, "--merge", "calm_to_neutral",
                     env_cache=tmp_path)
    assert "classes: 7" in merged.stdout


def test_summary_ends_with_the_parameter_count(tmp_path):
    result = run_cli("summary", "--arch", "cldnn", "--dataset", "ravdess", env_cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "params: 1187527"


def test_train_evaluate_export_predict_through_the_cli(tmp_path):
    """The user's path, command by command, on a tiny synthetic corpus (TensorFlow backend)."""
    import json

    from ser_keras.corpora import synthetic

    corpus = synthetic.generate(tmp_path / "corpus", speakers=3, seed=1, intensities=1, statements=1, repetitions=2)
    runs = tmp_path / "runs"
    train = run_cli("train", "--arch", "cldnn", "--dataset", "synthetic", "--data-dir", corpus, "--epochs", "1",
                    "--batch-size", "8", "--set", "model.lstm_units=8", "--set", "model.attention_units=8",
                    "--set", "features.clip_seconds=1.5", "--runs-dir", runs, env_cache=tmp_path / "cache")
    assert train.returncode == 0, train.stderr
    (run_dir,) = runs.iterdir()
    assert f"run directory: {run_dir}" in train.stdout and "\x1b[" not in train.stdout  # no ANSI codes in a log
    evaluate = run_cli("evaluate", run_dir, env_cache=tmp_path / "cache")
    assert evaluate.returncode == 0, evaluate.stderr
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert f"WA {100 * saved['wa']:6.2f} %" in evaluate.stdout
    export = run_cli("export", run_dir, "--root", tmp_path / "exports", env_cache=tmp_path / "cache")
    assert export.returncode == 0, export.stderr
    version = tmp_path / "exports" / "cldnn-synthetic" / "1"
    assert (version / "saved_model.pb").is_file()
    clip = sorted(corpus.rglob("*.wav"))[0]
    for source in (run_dir, version):
        predict = run_cli("predict", source, clip, env_cache=tmp_path / "cache")
        assert predict.returncode == 0, predict.stderr
        assert predict.stdout.split()[0] == str(clip) and predict.stdout.split()[1] in saved["classes"]
    assert train.stderr.strip() == "" or "Traceback" not in train.stderr
