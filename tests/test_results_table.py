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

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{module.BEGIN}\nold table\n{module.END}\noutro\n")
    assert module.main([str(mtl), str(plain), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert "| cldnn |" in text and "speed 70.0 / 65.0" in text


def test_runs_record_the_git_commit_of_their_code(tmp_path):
    """config.json's environment names the code that trained a run: the commit, marked when
    tracked files were changed, and nothing outside a git checkout."""
    import subprocess

    from ser_keras.runs import code_version

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()

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
