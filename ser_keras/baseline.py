"""The classic baseline beside every deep run: an RBF SVM on openSMILE IS10 functionals,
trained and tested on exactly the run's split (its ``split.csv``).

Features: the 1582 IS10 functionals of each utterance (z-scored with training statistics).
Model: scikit-learn ``SVC(kernel="rbf", gamma="scale")``; ``C`` is chosen on the run's
validation part (never the test part), then the SVM trained on the training part scores the
test part once. Results go to ``RUN_DIR/baseline-svm/`` in the run's own metrics.json format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import runs

C_GRID = (0.1, 1.0, 10.0, 100.0)
IS10_RATE = 16000  # openSMILE's IS10 configuration is defined for 16 kHz audio


def fit_svm(x_train, y_train, x_val, y_val, seed: int = 0):
    """StandardScaler + RBF SVC with C picked by validation UA; returns (pipeline, C, val UA per C)."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    scores = {}
    for c in C_GRID:
        svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=c, gamma="scale", random_state=seed))
        svm.fit(x_train, y_train)
        scores[c] = float(balanced_accuracy_score(y_val, svm.predict(x_val))) if len(y_val) else 0.0
    best = max(C_GRID, key=lambda c: (scores[c], -c))  # ties: the smaller C (simpler boundary)
    svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=best, gamma="scale", random_state=seed))
    return svm.fit(x_train, y_train), best, scores


def run_baseline(run_dir, progress: bool = True, data_dir=None) -> tuple[dict, Path]:
    """Train and test the SVM on a finished run's split; returns (metrics, output folder).
    ``data_dir``: the corpus' folder on this machine, for a run trained on another one."""
    from . import reports
    from .errors import DataError
    from .metrics import compute_metrics
    from .prepare import prepare_corpus

    run_dir = runs.check_run_dir(run_dir)
    config, classes = runs.read_config(run_dir), runs.read_classes(run_dir)
    # sorted like the corpus readers list files, so a run that prepared IS10 already (strl_ser)
    # shares its cache instead of running openSMILE again
    split = runs.read_split(run_dir, data_dir).sort_values("path").reset_index(drop=True)
    missing = ~split["path"].map(lambda p: Path(p).is_file())
    if missing.any():
        raise DataError(f"{int(missing.sum())} of the run's files are missing (e.g. {split['path'][missing].iloc[0]}); "
                        f"the baseline needs the run's exact split (--data-dir: the corpus' folder, "
                        f"for a run trained on another machine)")
    prepared = prepare_corpus(split.assign(corpus=config.data.dataset), IS10_RATE, cache_dir=config.data.cache_dir,
                              is10=True, progress=progress)
    kept = prepared.manifest.reset_index(drop=True)
    features = np.asarray(prepared.is10_functionals, np.float64)
    lookup = {n: i for i, n in enumerate(classes)}
    labels = kept["label"].map(lookup).to_numpy()
    part = kept["path"].map(split.set_index("path")["part"]).to_numpy()
    x = {p: features[part == p] for p in ("train", "val", "test")}
    y = {p: labels[part == p] for p in ("train", "val", "test")}
    svm, c, scores = fit_svm(x["train"], y["train"], x["val"], y["val"], seed=config.data.seed)
    y_pred = svm.predict(x["test"])
    metrics = compute_metrics(y["test"], y_pred, classes)
    out = run_dir / "baseline-svm"
    out.mkdir(exist_ok=True)
    probs = np.eye(len(classes))[y_pred]  # an SVC has no calibrated probabilities: one-hot decisions
    reports.write_predictions_csv(out, kept["path"][part == "test"].tolist(), y["test"], y_pred, probs, classes)
    reports.plot_confusion(out / "confusion.png", metrics["confusion"], classes)
    reports.write_metrics_json(out, metrics, arch="svm_is10", dataset=config.data.dataset,
                               protocol=config.data.protocol, seed=config.data.seed, trained_run=str(run_dir),
                               split_sizes={p: int(len(y[p])) for p in y},
                               checkpoint_selection=f"C={c} chosen by UA on the validation part "
                                                    f"({', '.join(f'C={k}: {v:.3f}' for k, v in scores.items())})")
    return metrics, out
