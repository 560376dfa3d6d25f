from benchmark_scripts import load_benchmark
from test_splits import fake_manifest, needs_sklearn_18, uneven_manifest

speaker_draws = load_benchmark("speaker_draws")


def test_summary_shows_the_sorted_draw_holding_out_the_same_speakers():
    m = uneven_manifest()
    summary = speaker_draws.summarise(m, seeds=20)
    assert summary["StratifiedGroupKFold"]["most"][1] == 20  # one speaker in every seed's test part
    assert summary["ser_keras"]["tested"] == m["speaker"].nunique()
    assert summary["ser_keras"]["most"][1] <= 10
    assert 0 <= summary["ser_keras"]["stray_mean"] <= summary["ser_keras"]["stray_max"] < 100


@needs_sklearn_18
def test_tied_speakers_give_the_same_draw_both_ways():
    m = fake_manifest(speakers=10)
    for seed in range(3):
        ours, sgkf = (sorted(d) for d in list(speaker_draws.draws(m, seed).values())[:2])
        assert ours == sgkf


def test_bad_options_are_one_error_line(tmp_path, capsys):
    assert speaker_draws.main(["--dataset", "csv", "--data-dir", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
