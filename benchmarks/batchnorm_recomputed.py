"""Whether cldnn's (or any BatchNorm model's) validation swings come from the moving statistics:
an unfinished run's validation part scored with its latest weights, first with the moving
statistics as stored, then with them recomputed from training batches ("precise BN").

    python benchmarks/batchnorm_recomputed.py RUN_DIR [--batches 20] [--clean]

RUN_DIR is a run interrupted or still training (it has ``backup/latest.weights.h5``; copy a
running one first, its backup is rewritten every epoch). The recomputed statistics are the plain
average over ``--batches`` training batches of the run's next epoch order, in training mode
(augmentation and dropout as in training), with the same weights. ``--clean`` adds a third line:
recomputed over the same batches with the augmentation layer passing the audio through, as it does
at inference (whether statistics of augmented audio are what misleads validation).
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path

from batchnorm_start_values import load_latest


def augmentation_layers(model) -> list:
    """Every WaveformAugmentation inside ``model``, nested models included."""
    from ser_keras.augment import WaveformAugmentation

    return [layer for layer in model._flatten_layers() if isinstance(layer, WaveformAugmentation)]


@contextmanager
def augmentation_bypassed(layers):
    """The given augmentation layers return their input, even when training (eager calls)."""
    for layer in layers:
        layer.call = lambda waveform, training=None: waveform
    try:
        yield
    finally:
        for layer in layers:
            del layer.call  # back to the class' method


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--clean", action="store_true", help="also recompute without augmentation")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error("--batches must be >= 1")
    plan, epochs = load_latest(args.run_dir, parser)
    from ser_keras.data import as_loader
    from ser_keras.models.batchnorm import recompute_moving_statistics

    def score(label):
        logs = plan.target.evaluate(as_loader(plan.val), verbose=0, return_dict=True)
        emotion = "" if "accuracy" in logs else "emotion_"  # multi-task models prefix the head
        print(f"{label}: val accuracy {logs[emotion + 'accuracy']:.3f}  "
              f"val UA {logs[emotion + 'unweighted_accuracy']:.3f}  val loss {logs['loss']:.3f}")

    augmenting = augmentation_layers(plan.target)
    if args.clean and not augmenting:
        parser.error(f"{args.run_dir} trains without augmentation: --clean has nothing to leave out")

    print(f"{args.run_dir}: {epochs} epochs")
    score("moving statistics as stored")
    count = min(args.batches, len(plan.train.order(epochs)))

    def batches():
        return (plan.train.batch(i, epoch=epochs)[0] for i in range(count))

    used = recompute_moving_statistics(plan.target, batches())
    score(f"recomputed over {used} batches")
    if args.clean:
        with augmentation_bypassed(augmenting):
            recompute_moving_statistics(plan.target, batches())
        score(f"recomputed over {used} batches, augmentation off")


if __name__ == "__main__":
    main()
