"""benchmarks/varied_corpus.py: clips of 1-3 same-speaker, same-emotion utterances joined, cut to
Emo-DB's class proportions, written as a csv corpus that reads back; a bad --out is one error line."""

from pathlib import Path

import pandas as pd
import soundfile as sf
from benchmark_scripts import load_benchmark

from ser_keras.corpora import synthetic
from ser_keras.datasets import scan_dataset

EMOTIONS = ("neutral", "happy", "sad", "angry", "disgust", "surprised")


def _corpus(tmp_path):
    return synthetic.generate(tmp_path / "corpus", speakers=3, emotions=EMOTIONS, seed=1,
                              intensities=2, statements=2, repetitions=2)


def _make(corpus, out, seed=0):
    return load_benchmark("varied_corpus").main(["--dataset", "synthetic", "--data-dir", str(corpus),
                                                  "--out", str(out), "--seed", str(seed)])


def test_clips_join_one_speakers_utterances_of_one_emotion_in_emodb_proportions(tmp_path, capsys):
    corpus, out = _corpus(tmp_path), tmp_path / "varied"
    source = scan_dataset("synthetic", corpus).manifest
    by_name = {Path(p).name: row for p, row in zip(source["path"].map(str), source.to_dict("records"))}

    assert _make(corpus, out) == 0

    manifest = _read_manifest(out)
    back = scan_dataset("csv", out).manifest  # the csv corpus reads every clip with its label and speaker
    assert sorted(zip(back["path"].map(lambda p: Path(p).name), back["label"], back["speaker"].astype(str))) == \
        sorted(zip(manifest["path"].map(lambda p: Path(p).name), manifest["label"], manifest["speaker"]))
    assert set(manifest["label"]) == {"neutral", "happy", "sad", "angry", "disgust"}  # surprised: no Emo-DB class
    counts = manifest["label"].value_counts()
    assert counts.idxmax() == "angry" and counts.idxmin() == "disgust"  # Emo-DB: 127 anger, 46 disgust
    used = [name for sources in manifest["sources"] for name in sources.split(";")]
    assert len(used) == len(set(used))  # every utterance in at most one clip
    sizes = set()
    for row in manifest.to_dict("records"):
        names = row["sources"].split(";")
        sizes.add(len(names))
        assert {(by_name[n]["speaker"], by_name[n]["label"]) for n in names} == {(row["speaker"], row["label"])}
        info = sf.info(out / row["path"])
        assert info.samplerate == 16000 and abs(info.frames / 16000 - row["seconds"]) < 1e-3
    assert sizes == {1, 2, 3}
    assert f"{len(manifest)} clips of 3 speakers" in capsys.readouterr().out


def test_the_same_seed_gives_the_same_corpus(tmp_path):
    corpus = _corpus(tmp_path)
    assert _make(corpus, tmp_path / "a") == 0 and _make(corpus, tmp_path / "b") == 0
    assert _read_manifest(tmp_path / "a").equals(_read_manifest(tmp_path / "b"))


def test_an_existing_out_folder_is_one_error_line_and_left_alone(tmp_path, capsys):
    corpus, out = _corpus(tmp_path), tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _make(corpus, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def _read_manifest(out):
    return pd.read_csv(out / "manifest.csv")
