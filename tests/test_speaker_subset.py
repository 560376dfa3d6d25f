"""benchmarks/speaker_subset.py: a corpus cut to its first N speakers (sorted), written as a
manifest that the csv corpus reads back; a bad count is one error line."""

from benchmark_scripts import load_benchmark

from ser_keras.corpora import synthetic
from ser_keras.datasets import scan_dataset


def test_first_speakers_manifest_reads_back_as_a_csv_corpus(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    synthetic.generate(corpus, speakers=4, seed=1, intensities=1, statements=1, repetitions=1)
    full = scan_dataset("synthetic", corpus).manifest
    out = tmp_path / "sub" / "three.csv"

    assert load_benchmark("speaker_subset").main(["--dataset", "synthetic", "--data-dir", str(corpus),
                                                   "--speakers", "3", "--out", str(out)]) == 0

    kept = sorted(full["speaker"].astype(str).unique())[:3]
    expected = full[full["speaker"].astype(str).isin(kept)]
    back = scan_dataset("csv", out).manifest
    assert sorted(back["speaker"].astype(str).unique()) == kept
    assert sorted(back["path"]) == sorted(expected["path"].map(str))
    assert back.set_index("path")["label"].to_dict() == expected.set_index("path")["label"].to_dict()
    assert f"{len(expected)} utterances of 3 speakers" in capsys.readouterr().out


def test_a_count_outside_the_corpus_is_one_error_line(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    synthetic.generate(corpus, speakers=3, seed=1, intensities=1, statements=1, repetitions=1)
    out = tmp_path / "x.csv"
    code = load_benchmark("speaker_subset").main(["--dataset", "synthetic", "--data-dir", str(corpus),
                                                  "--speakers", "4", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--speakers must be 3..3" in err[0]
    assert not out.exists()
