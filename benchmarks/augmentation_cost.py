"""What waveform augmentation inside the training model costs per training step.

    python benchmarks/augmentation_cost.py [--arch bilstm_att_mtl cldnn] [--steps 3] [--warmup 1]
                                           [--baseline-ref 4d2d1c4 | --no-baseline]

For each architecture, in one process, the same waveform-in model is built twice (three times with a
baseline): ``Input([samples]) -> [WaveformAugmentation] -> front end -> network``, and the median
``model.train_on_batch`` time is measured after ``--warmup`` steps (tracing, first allocations):

* bilstm_att_mtl: 22.05 kHz, 5.99 s clips (131,780 samples = 599 hops of 220), batch 32,
  ``MTLFeatures()`` -> ``build_bilstm_att_mtl({"features": (600, 205)}, 5)``, three heads
  (emotion / speed / volume) trained on dummy targets with the paper's loss weights;
* cldnn: 16 kHz, 5 s (80,000 samples), batch 16, ``LogMelSpectrogram()`` -> ``FrameWindows(128, 64)``
  -> ``build_cldnn({"features": (None, 128, 128, 1)}, 7)`` (the builders' default hyperparameters).

The augmentation is ``WaveformAugmentation(seed=0)``: the training default (each step with probability
0.5, keep_length=True). The baseline is the same layer from ``ser_keras/augment.py`` as committed at
``--baseline-ref`` (default: the last per-layer phase-vocoder version), loaded from git under its own
registration package so both live in one process (it is the slow one, and its slowed-down examples
came out 2-4x too quiet: reflect-padded first frames). Also printed: the augmentation layer alone on one
batch (a ``tf.function`` / ``jax.jit`` of ``layer(x, training=True)``), new and old.

The figure to compare across machines is the ratio augmented / plain step time; the target is <= 1.5.
Prints lines, asserts nothing. Keep ``--steps`` small on a CPU: a cldnn step takes seconds.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ser_keras import augment, frontends  # noqa: E402
from ser_keras.models.bilstm_att_mtl import build_bilstm_att_mtl  # noqa: E402
from ser_keras.models.cldnn import build_cldnn  # noqa: E402

BASELINE_REF = "4d2d1c4"  # augment.py with one STFT / phase vocoder / ISTFT per stretch and per pitch shift

ARCHS = {
    "bilstm_att_mtl": {"samples": 131_780, "batch": 32, "sample_rate": 22050},
    "cldnn": {"samples": 80_000, "batch": 16, "sample_rate": 16000},
}


def load_baseline(ref):
    """``ser_keras/augment.py`` at git ``ref`` as a module, its layers registered as ``ser_keras_old>``."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:ser_keras/augment.py"],
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"baseline {ref}: not loaded ({getattr(error, 'stderr', error)!s})".strip())
        return None
    module = types.ModuleType(f"augment_{ref}")
    source = source.replace('package="ser_keras"', 'package="ser_keras_old"')
    try:
        exec(compile(source, f"augment.py@{ref}", "exec"), module.__dict__)
    except Exception as error:  # e.g. an import that the current tree no longer has
        print(f"baseline {ref}: not loaded ({type(error).__name__}: {error})")
        return None
    return module


def front_end(arch):
    if arch == "bilstm_att_mtl":
        return frontends.MTLFeatures()
    return keras.Sequential([frontends.LogMelSpectrogram(), frontends.FrameWindows(128, 64)])


def build(arch, augmentation):
    """Compiled waveform-in training model and one batch ``(x, y)`` for it."""
    shape = ARCHS[arch]
    audio = keras.Input((shape["samples"],), name="audio")
    x = audio if augmentation is None else augmentation(audio)
    features = front_end(arch)(x)
    rng = np.random.default_rng(0)
    waves = (0.1 * rng.standard_normal((shape["batch"], shape["samples"]))).astype("float32")
    if arch == "bilstm_att_mtl":
        network = build_bilstm_att_mtl({"features": (600, 205)}, 5)
        model = keras.Model(audio, network({"features": features}))
        weights = {"emotion": 1.0, "speed": 0.3, "volume": 0.3}
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss={k: "sparse_categorical_crossentropy" for k in weights}, loss_weights=weights)
        targets = {"emotion": rng.integers(0, 5, shape["batch"]),
                   "speed": rng.integers(0, 3, shape["batch"]), "volume": rng.integers(0, 3, shape["batch"])}
    else:
        network = build_cldnn({"features": (None, 128, 128, 1)}, 7)
        model = keras.Model(audio, network({"features": features}))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        targets = rng.integers(0, 7, shape["batch"])
    return model, waves, targets


class Timing:
    """Median wall-clock and process CPU seconds of the timed calls (CPU time is the steadier of the two
    when other processes share the cores; wall time is what an epoch takes)."""

    def __init__(self, wall, cpu):
        self.wall, self.cpu = wall, cpu

    def __truediv__(self, other):
        return Timing(self.wall / other.wall, self.cpu / other.cpu)

    def seconds(self):
        return f"{self.wall:.3f} s ({self.cpu:.3f} CPU s)"


def median_time(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return Timing(statistics.median(wall), statistics.median(cpu))


def step_time(arch, augmentation, steps, warmup):
    model, x, y = build(arch, augmentation)
    return median_time(lambda: model.train_on_batch(x, y), steps, warmup)


def layer_time(layer, x, steps, warmup):
    """One batch through ``layer(x, training=True)``, compiled as training would run it."""
    if keras.backend.backend() == "jax":
        import jax

        layer.build(x.shape)
        state = [v.value for v in layer.non_trainable_variables]  # the seed generators' states

        @jax.jit
        def run(state, v):
            return layer.stateless_call([], state, v, training=True)

        def once():
            out, state[:] = run(state, x)
            out.block_until_ready()

        return median_time(once, steps, warmup)
    import tensorflow as tf

    compiled = tf.function(lambda v: layer(v, training=True))
    return median_time(lambda: compiled(x).numpy(), steps, warmup)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (tracing)")
    parser.add_argument("--baseline-ref", default=BASELINE_REF,
                        help="git revision whose ser_keras/augment.py is the old implementation")
    parser.add_argument("--no-baseline", action="store_true", help="skip the old implementation")
    args = parser.parse_args()

    old = None if args.no_baseline else load_baseline(args.baseline_ref)
    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs, median of {args.steps} steps "
          f"after {args.warmup} warm-up")
    for arch in args.arch:
        shape = ARCHS[arch]
        x = (0.1 * np.random.default_rng(1).standard_normal((shape["batch"], shape["samples"]))).astype("float32")
        new_layer = layer_time(augment.WaveformAugmentation(seed=0), x, args.steps, args.warmup)
        line = (f"{arch} augmentation layer alone, batch {shape['batch']} x {shape['samples']}: "
                f"new {new_layer.seconds()}")
        if old is not None:
            old_layer = layer_time(old.WaveformAugmentation(seed=0), x, args.steps, args.warmup)
            ratio = old_layer / new_layer
            line += f", old ({args.baseline_ref}) {old_layer.seconds()}: {ratio.wall:.1f}x ({ratio.cpu:.1f}x CPU)"
        print(line, flush=True)

        plain = step_time(arch, None, args.steps, args.warmup)
        new = step_time(arch, augment.WaveformAugmentation(seed=0), args.steps, args.warmup)
        ratio = new / plain
        print(f"{arch} augmented/plain step time: {ratio.wall:.2f} ({ratio.cpu:.2f} in CPU time; "
              f"augmented {new.seconds()}, plain {plain.seconds()})", flush=True)
        if old is not None:
            before = step_time(arch, old.WaveformAugmentation(seed=0), args.steps, args.warmup)
            ratio = before / plain
            print(f"{arch} augmented/plain step time, old augmentation ({args.baseline_ref}): {ratio.wall:.2f} "
                  f"({ratio.cpu:.2f} in CPU time; augmented {before.seconds()}, plain {plain.seconds()})",
                  flush=True)


if __name__ == "__main__":
    main()
