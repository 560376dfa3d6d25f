"""How much Keras' BatchNormalization start values (moving mean 0, variance 1) distort validation
early in a run: the validation part of an unfinished run, scored with its latest weights twice.

    python benchmarks/batchnorm_start_values.py RUN_DIR

RUN_DIR is a run interrupted or still training (it has ``backup/latest.weights.h5``). The first
line scores the moving statistics as stored. The second takes the start values out of each
moving average: after t steps of momentum m the stored value is m^t * start + (1 - m^t) * (the
batches' average), so the batches' average is (stored - m^t * start) / (1 - m^t). That assumes
Keras' start values, so the second line means something only for runs made before
``start_moving_statistics`` (which starts them from a batch's statistics).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_latest(run: Path, parser):
    """The run's training model with its latest backed-up weights, its fit plan and epochs done."""
    if not (run / "backup" / "latest.weights.h5").is_file() or not (run / "config.json").is_file():
        parser.error(f"{run} is not an unfinished run directory (no config.json or backup/latest.weights.h5)")
    from ser_keras import startup

    startup.import_keras_quietly()
    from ser_keras.config import RunConfig
    from ser_keras.loading import load_data, make_targets
    from ser_keras.runs import settings_of
    from ser_keras.training import compile_model, plan_fit

    config = RunConfig.from_dict(settings_of(json.loads((run / "config.json").read_text())))
    data = load_data(config, progress=False)
    fold = data.folds[config.data.fold]
    plan = plan_fit(config, data, fold, make_targets(config.recipe, data.manifest, data.class_names, fold.train))
    compile_model(plan.target, config.recipe, config, len(plan.train), len(data.class_names))
    plan.target.load_weights(run / "backup" / "latest.weights.h5")
    epochs = json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"]
    return plan, epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    run = parser.parse_args(argv).run_dir
    plan, epochs = load_latest(run, parser)
    import numpy as np

    from ser_keras.data import as_loader
    from ser_keras.models.batchnorm import batch_norm_layers

    steps = epochs * len(plan.train)

    def score(label):
        logs = plan.target.evaluate(as_loader(plan.val), verbose=0, return_dict=True)
        print(f"{label}: val accuracy {logs['accuracy']:.3f}  val loss {logs['loss']:.3f}")

    print(f"{run}: {epochs} epochs, {steps} steps")
    score("moving statistics as stored      ")
    for layer in batch_norm_layers(plan.target):
        start_weight = layer.momentum ** steps
        mean, variance = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
        batches_variance = (variance - start_weight) / (1 - start_weight)  # start value 1 taken out
        layer.moving_mean.assign(mean / (1 - start_weight))  # start value 0
        layer.moving_variance.assign(batches_variance)
        print(f"  {layer.name}: mean moving variance {variance.mean():.3f} stored, "
              f"{batches_variance.mean():.3f} without the start value")
    score("moving statistics without starts")


if __name__ == "__main__":
    main()
