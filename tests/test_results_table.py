"""benchmarks/results_table.py turns run directories into the README table: every figure from a
run's files, auxiliary heads included, and the README replaced only between its markers."""

import json
from pathlib import Path

from benchmark_scripts import load_benchmark


def results_table():
    return load_benchmark("results_table")


def fake_run(root: Path, name: str, arch: str, wa: float, heads: dict | None = None, code: str | None = None) -> Path:
    run = root / name
    (run / "baseline-svm").mkdir(parents=True)
    metrics = {"wa": wa, "ua": wa - 0.01, "macro_f1": wa - 0.02, "fold": "random", "checkpoint_selection": "val_loss",
               "split_sizes": {"train": 10, "val": 2, "test": 3}}
    if heads:
        metrics["heads"] = heads
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "config.json").write_text(json.dumps({"arch": arch, "data": {"dataset": "ravdess", "protocol": "paper"},
                                                 "environment": {"device": "CPU", "backend": "tensorflow",
                                                                 **({"code": code} if code else {})}}))
    (run / "history.csv").write_text("epoch,val_loss\n0,1.0\n1,0.5\n2,0.7\n")
    (run / "command.txt").write_text(f"python cli.py train --arch {arch}\n")
    (run / "baseline-svm" / "metrics.json").write_text(json.dumps({"wa": 0.5, "ua": 0.25}))
    return run


def test_rows_carry_every_figure_from_the_run_files(tmp_path):
    module = results_table()
    mtl = fake_run(tmp_path, "b", "bilstm_att_mtl", 0.6,
                   heads={"speed": {"wa": 0.7, "ua": 0.65}, "volume": {"wa": 0.8, "ua": 0.75}})
    plain = fake_run(tmp_path, "a", "cldnn", 0.9, code="abc1234")
    rows = {r["arch"]: r for r in (module.row(mtl), module.row(plain))}
    assert rows["bilstm_att_mtl"]["other heads WA / UA %"] == "speed 70.0 / 65.0; volume 80.0 / 75.0"
    assert rows["cldnn"]["other heads WA / UA %"] == "—"
    assert rows["cldnn"]["WA / UA %"] == "90.0 / 89.0"
    assert rows["cldnn"]["epochs (best)"] == "3 (2)"
    assert rows["cldnn"]["SVM WA / UA % (same split)"] == "50.0 / 25.0"
    assert rows["cldnn"]["run"] == "a (abc1234)" and rows["bilstm_att_mtl"]["run"] == "b"  # code: where recorded
    assert module.row(tmp_path / "missing") is None
    assert rows["cldnn"]["dataset"] == "ravdess"

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{module.BEGIN}\nold table\n{module.END}\noutro\n")
    assert module.main([str(mtl), str(plain), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert "| cldnn |" in text and "speed 70.0 / 65.0" in text


def test_a_warm_started_run_counts_on_from_its_source_s_best_epoch(tmp_path):
    module = results_table()
    source = fake_run(tmp_path, "cldnn-ravdess-1", "cldnn", 0.7)  # 3 epochs, best 2
    warm = fake_run(tmp_path, "cldnn-ravdess-2", "cldnn", 0.8)
    config = json.loads((warm / "config.json").read_text())
    config["train"] = {"init_from": "runs/cldnn-ravdess-1"}
    (warm / "config.json").write_text(json.dumps(config))
    (warm / "history.csv").write_text("epoch,val_loss\n0,0.4\n1,0.3\n2,0.35\n3,0.5\n")
    assert module.row(warm)["epochs (best)"] == "2 + 4 (2 + 2)"
    for name in ("metrics.json", "history.csv"):
        (source / name).unlink()  # the source's record is not beside it
    assert module.row(warm)["epochs (best)"] == "4 (2) after cldnn-ravdess-1"


def test_a_csv_corpus_is_named_by_its_manifest(tmp_path):
    """Two corpora read as ``--dataset csv`` are told apart by their manifest's name."""
    module = results_table()
    run = fake_run(tmp_path, "a", "strl_ser", 0.5)
    config = json.loads((run / "config.json").read_text())
    config["data"].update(dataset="csv", data_dir="runs/proxy/ravdess10.csv")
    (run / "config.json").write_text(json.dumps(config))
    assert module.row(run)["dataset"] == "csv (ravdess10.csv)"


def test_runs_record_the_git_commit_of_their_code(tmp_path, monkeypatch):
    """config.json's environment names the code that trained a run: the commit, marked when
    tracked files were changed, and outside a git checkout nothing, or what SER_KERAS_CODE names."""
    import subprocess

    from ser_keras.runs import code_version

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()

    monkeypatch.delenv("SER_KERAS_CODE", raising=False)
    assert code_version(tmp_path) is None
    git("init", "-q")
    (tmp_path / "model.py").write_text("a = 1\n")
    git("add", "model.py")
    git("commit", "-qm", "first")
    commit = git("rev-parse", "--short", "HEAD")
    (tmp_path / "untracked.txt").write_text("runs and logs are not code\n")
    assert code_version(tmp_path) == commit
    (tmp_path / "model.py").write_text("a = 2\n")
    assert code_version(tmp_path) == commit + "+changes"
    (tmp_path / "site-packages").mkdir()
    assert code_version(tmp_path / "site-packages") is None  # inside someone else's repository
    # a copy without git (carried to an offline GPU machine) names its commit in SER_KERAS_CODE;
    # a git checkout ignores it
    monkeypatch.setenv("SER_KERAS_CODE", "abc1234+changes")
    assert code_version(tmp_path / "site-packages") == "abc1234+changes"
    assert code_version(tmp_path) == commit + "+changes"


def test_records_keep_what_the_table_needs_and_nothing_heavy(tmp_path):
    """--record-to copies a run's small record files (not weights or split.csv) to a committed
    folder; the table made from the copies is the one made from the runs, and a folder of records
    (a search's best/ included) stands for every run in it."""
    module = results_table()
    runs = tmp_path / "runs"
    plain = fake_run(runs, "cldnn-ravdess-1", "cldnn", 0.9)
    (plain / "best.weights.h5").write_bytes(b"weights")
    (plain / "split.csv").write_text("path,part\n")
    best = fake_run(runs / "tune-strl_ser", "best", "strl_ser", 0.8)
    expected = module.results_markdown([plain, best])

    records = tmp_path / "results"
    readme = tmp_path / "README.md"
    readme.write_text(f"{module.BEGIN}\n{module.END}\n")
    assert module.main([str(plain), str(best), "--record-to", str(records), "--readme", str(readme)]) == 0
    kept = sorted(str(p.relative_to(records)) for p in records.rglob("*") if p.is_file())
    assert kept == sorted(f"{run}/{name}" for run in ("cldnn-ravdess-1", "tune-strl_ser/best")
                          for name in ("command.txt", "config.json", "metrics.json", "history.csv",
                                       "baseline-svm/metrics.json"))
    assert module.run_folders([records]) == [records / "cldnn-ravdess-1", records / "tune-strl_ser" / "best"]
    assert module.results_markdown(module.run_folders([records])) == expected
    assert expected in readme.read_text()

    (plain / "metrics.json").write_text((plain / "metrics.json").read_text().replace('"wa": 0.9', '"wa": 0.7'))
    assert module.main([str(plain), "--record-to", str(records), "--readme", str(readme)]) == 0
    assert module.row(records / "cldnn-ravdess-1")["WA / UA %"] == "70.0 / 89.0"  # the copy was replaced
    assert "| strl_ser |" in readme.read_text()  # and the table still has every record, not just this run
    assert module.main([str(records), "--record-to", str(records)]) == 0  # records are not copied onto themselves
    assert module.row(records / "cldnn-ravdess-1")["WA / UA %"] == "70.0 / 89.0"
    assert module.main([str(tmp_path / "nowhere")]) == 2


def test_two_runs_of_one_name_get_two_records(tmp_path):
    """Runs started in the same second in two runs folders share a name; neither record overwrites
    the other, and recording a run again replaces its own record."""
    module = results_table()
    first = fake_run(tmp_path / "runs-a", "strl_ser-csv-1", "strl_ser", 0.9)
    second = fake_run(tmp_path / "runs-b", "strl_ser-csv-1", "strl_ser", 0.6)
    (second / "command.txt").write_text("python cli.py train --arch strl_ser --runs-dir runs-b\n")
    records = tmp_path / "results"
    assert module.main([str(first), str(second), "--record-to", str(records)]) == 0
    assert module.main([str(second), "--record-to", str(records)]) == 0  # again: its own record
    assert sorted(p.name for p in records.iterdir()) == ["strl_ser-csv-1", "strl_ser-csv-1-2"]
    assert module.row(records / "strl_ser-csv-1")["WA / UA %"] == "90.0 / 89.0"
    assert module.row(records / "strl_ser-csv-1-2")["WA / UA %"] == "60.0 / 59.0"


def test_readme_tables_are_the_ones_the_committed_records_give():
    """Every figure in the README's results table and seed table comes from results/, regenerated
    here on a clean clone."""
    module = results_table()
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    records = module.run_folders([root / "results"])
    for begin, end, make in ((module.BEGIN, module.END, module.results_markdown),
                             (module.SPREAD_BEGIN, module.SPREAD_END, module.spread_markdown)):
        assert readme.split(begin, 1)[1].split(end, 1)[0].strip() == make(records)


def seeded_run(root: Path, name: str, seed: int, ua: float, svm_ua: float, arch: str = "strl_ser") -> Path:
    """A finished run of one command with ``--seed seed`` (none for seed 0), and its SVM."""
    run = fake_run(root, name, arch, ua + 0.01)  # fake_run's UA is its WA - 0.01
    config = json.loads((run / "config.json").read_text())
    config["data"].update(protocol="speaker", seed=seed)
    (run / "config.json").write_text(json.dumps(config))
    seed_option = f" --seed {seed}" if seed else ""
    (run / "command.txt").write_text(f"python cli.py train --arch {arch} --epochs 40{seed_option} --verbose 2\n")
    (run / "baseline-svm" / "metrics.json").write_text(json.dumps({"wa": svm_ua, "ua": svm_ua}))
    return run


def test_seed_table_sets_each_command_beside_the_svm_on_the_same_splits(tmp_path):
    """Runs of one command on several seeds make one line: mean and spread of UA and of the SVM's
    UA, the gap's mean and range, and on how many splits the model is at or above the SVM. A rerun
    with the same seed replaces the earlier run; a command run on one seed has no line."""
    module = results_table()
    runs = [seeded_run(tmp_path, "strl-1", 0, 0.70, 0.60), seeded_run(tmp_path, "strl-2", 1, 0.50, 0.65),
            seeded_run(tmp_path, "strl-3", 2, 0.80, 0.70),
            seeded_run(tmp_path, "strl-4", 1, 0.60, 0.65),  # seed 1 again, later: this one counts
            seeded_run(tmp_path, "cldnn-1", 0, 0.40, 0.60, arch="cldnn")]
    lines = module.spread_markdown(runs).splitlines()
    assert len(lines) == 3  # header, rule, strl_ser
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    # UA 70, 60, 80 against the SVM's 60, 65, 70: gaps +10, -5, +10
    assert cells[:8] == ["strl_ser", "ravdess", "speaker", "0, 1, 2", "70.0 ± 10.0", "65.0 ± 5.0", "+5.0 (-5.0 … +10.0)", "2 of 3"]
    assert cells[8] == "`python cli.py train --arch strl_ser --epochs 40 --verbose 2`"
    assert module.spread_markdown(runs[-1:]) == "(no command run on two or more seeds)"
    assert module.command_key("python cli.py train --seed=3 --epochs 4") == "python cli.py train --epochs 4"
    assert (module.command_key("python cli.py train --epochs 4 --seed 2 --runs-dir runs/a/s2 --verbose 2")
            == module.command_key("python cli.py train --epochs 4 --runs-dir=runs/a/s0 --verbose 2")
            == "python cli.py train --epochs 4 --verbose 2")

    readme = tmp_path / "README.md"
    readme.write_text(f"{module.BEGIN}\n{module.END}\ntext\n{module.SPREAD_BEGIN}\nold\n{module.SPREAD_END}\nend\n")
    assert module.main([str(r) for r in runs] + ["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and "2 of 3" in text and text.endswith("end\n")
