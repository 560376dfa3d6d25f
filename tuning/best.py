"""The best trial of a search as a normal run directory (``<search dir>/best``)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

from .cluster import TuneError
from .searchdir import BEST_DIR


def build_best_run(tuner, hypermodel, data, fold, path: Path, trial, command: str, out):
    """``path/best``: the best trial's model (best-epoch weights) as a normal run directory, its
    test part scored once. Kept as it is while the best trial does not change."""
    import keras

    from ser_keras import runs
    from ser_keras.evaluation import report_run
    from ser_keras.loading import head_label_columns
    from ser_keras.reports import write_atomically

    from .trials import display_id

    best_dir = path / BEST_DIR
    marker = best_dir / "tuning.json"
    if runs.is_finished(best_dir) and marker.is_file():
        if json.loads(marker.read_text()).get("keras_tuner_trial_id") == trial.trial_id:
            return best_dir, json.loads((best_dir / runs.FINISHED_MARKER).read_text())
    weights = Path(tuner._get_checkpoint_fname(trial.trial_id))
    if not weights.is_file():
        raise TuneError(f"the best trial's weights are missing ({weights}); workers must write to the same "
                        f"--search-dir as the chief (a shared file system)")
    partial = path / f"{BEST_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    keras.backend.clear_session()
    target = hypermodel.build(trial.hyperparameters)
    with warnings.catch_warnings():  # the checkpoint also holds the trial's optimizer state: not needed
        warnings.simplefilter("ignore")
        target.load_weights(str(weights))
    run_model = hypermodel.last_run_model
    config = hypermodel.config_for(trial.hyperparameters)
    split = runs.split_table(data.manifest, fold, head_label_columns(config.recipe, hypermodel.targets))
    runs.write_header(partial, config, command, data.class_names, split)
    history = Path(tuner.get_trial_dir(trial.trial_id)) / "history.csv"
    if history.is_file():
        shutil.copyfile(history, partial / "history.csv")
    info = {"search_dir": str(path), "trial": display_id(trial.trial_id), "keras_tuner_trial_id": trial.trial_id,
            "objective": tuner.oracle.objective.name,
            "val_ua": float(trial.score), "hyperparameters": dict(trial.hyperparameters.values)}
    text = json.dumps(info, indent=2, sort_keys=True, default=str)
    write_atomically(partial / "tuning.json", lambda tmp: Path(tmp).write_text(text))
    runs.save_model(run_model.model, partial)
    out(f"scoring the best trial on the test part ({len(fold.test)} utterances, once)")
    metrics = report_run(partial, run_model.model, config, data, fold)
    old = path / f"{BEST_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if best_dir.exists():
        best_dir.rename(old)
    partial.rename(best_dir)
    shutil.rmtree(old, ignore_errors=True)
    return best_dir, metrics
