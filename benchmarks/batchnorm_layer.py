"""One BatchNormalization layer's training step (forward + backward), at cldnn's first block:
Keras' own layer, the shipped ``MatmulBatchNormalization`` and TensorFlow's fused kernel
(benchmark only), and why the shipped layer sums with matmuls.

    python benchmarks/batchnorm_layer.py [--shape 128 128 128 64] [--repeats 5]

The default shape is one cldnn batch (16 utterances x 8 windows) after the first conv: 128 x 128
x 64 values per window. Each layer's step is a ``tf.function`` (gradient of ``sum(y * w)`` with
respect to the input, gamma and beta), timed after a tracing call; median of ``--repeats``.
Also timed: the per-channel sum of the same values as ``reduce_sum`` over the leading axes and
as ``ones @ x``. Prints one line per layer with its ratio to Keras' layer in the same process.
TensorFlow backend only (the fused kernel and the graph timings are TensorFlow's).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def median_seconds(fn, repeats: int) -> float:
    fn()  # tracing
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        _ = [o.numpy() for o in out] if isinstance(out, (list, tuple)) else out.numpy()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def layer_step(layer, x, w):
    import tensorflow as tf

    layer.build(x.shape)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * w)
        return tape.gradient(loss, [x, layer.gamma, layer.beta])

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[128, 128, 128, 64])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from ser_keras.startup import import_keras_quietly

    import_keras_quietly()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("error: this benchmark needs KERAS_BACKEND=tensorflow")
    import numpy as np
    import tensorflow as tf
    from training_throughput import cpu_model, fused_batch_normalization

    from ser_keras.models.batchnorm import MatmulBatchNormalization

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, args.shape).astype("float32"))
    w = tf.constant(rng.normal(0.0, 1.0, args.shape).astype("float32"))
    print(f"# {cpu_model()}; shape {tuple(args.shape)}; median of {args.repeats}", flush=True)

    flat = tf.reshape(x, [-1, args.shape[-1]])
    ones = tf.ones([1, flat.shape[0]])
    sums = {"reduce_sum over leading axes": tf.function(lambda: tf.reduce_sum(x, list(range(len(args.shape) - 1)))),
            "ones @ x (matmul)": tf.function(lambda: tf.matmul(ones, flat))}
    base = None
    for name, fn in sums.items():
        seconds = median_seconds(fn, args.repeats)
        base = base or seconds
        print(f"per-channel sum, {name:<30} {1000 * seconds:8.1f} ms ({base / seconds:.2f}x reduce_sum)", flush=True)

    layers = {"keras BatchNormalization": keras.layers.BatchNormalization(),
              "MatmulBatchNormalization (shipped)": MatmulBatchNormalization(),
              "fused kernel (benchmark only)": fused_batch_normalization()()}
    base = None
    for name, layer in layers.items():
        seconds = median_seconds(layer_step(layer, x, w), args.repeats)
        base = base or seconds
        print(f"train step, {name:<36} {1000 * seconds:8.1f} ms ({base / seconds:.2f}x keras)", flush=True)


if __name__ == "__main__":
    main()
