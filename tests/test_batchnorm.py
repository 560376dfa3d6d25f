"""MatmulBatchNormalization is Keras' BatchNormalization up to float noise: the same outputs,
the same gradients (its own, written by hand, against Keras' autodiff), the same moving
averages, and Keras' own code wherever the matmul path does not apply.

TensorFlow runs in this process; JAX in a fresh interpreter (Keras fixes its backend at import),
skipped where jax is not installed.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]

# Shared by both backends: one training call of each layer on the same batch and weights.
COMPARE = r"""
import numpy as np
import keras
from keras import ops
from ser_keras.models.batchnorm import MatmulBatchNormalization


def one_training_step(layer_class, x, weights, gamma, beta, mask=None):
    layer = layer_class(momentum=0.9)
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = layer(inputs, training=True, mask=mask)
            loss = tf.reduce_sum(y * weights)
        grads = tape.gradient(loss, [inputs, layer.gamma.value, layer.beta.value])
        moving = [layer.moving_mean, layer.moving_variance]
    else:
        import jax

        def loss_fn(inputs, gamma, beta):
            y, moving = layer.stateless_call([gamma, beta], [v.value for v in layer.non_trainable_variables],
                                             inputs, training=True, mask=mask)
            return (y * weights).sum(), (y, moving)

        (_, (y, moving)), grads = jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True)(
            x, layer.gamma.value, layer.beta.value)
    names = ["outputs", "d_inputs", "d_gamma", "d_beta", "moving_mean", "moving_variance"]
    return {n: np.asarray(ops.convert_to_numpy(v)) for n, v in zip(names, [y, *grads, *moving])}


def compare(x, weights, gamma, beta, mask=None):
    ours = one_training_step(MatmulBatchNormalization, x, weights, gamma, beta, mask)
    keras_own = one_training_step(keras.layers.BatchNormalization, x, weights, gamma, beta, mask)
    return {n: float(np.max(np.abs(ours[n] - keras_own[n])) / (np.max(np.abs(keras_own[n])) + 1e-12)) for n in ours}


def cases():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (6, 5, 7, 4)).astype("float32")
    weights = rng.normal(0.0, 1.0, x.shape).astype("float32")
    gamma = np.array([1.2, -0.7, 0.3, 1.0], "float32")
    beta = np.array([0.0, 1.0, -2.0, 3.0], "float32")
    offset = x * 0.25 + 40.0  # mean / std of 80: E[x^2] - E[x]^2 cancels most of its digits
    return {"image": compare(x, weights, gamma, beta),
            "offset": compare(offset, weights, gamma, beta),
            "sequence": compare(x[:, 0], weights[:, 0], gamma, beta)}
"""


def assert_close(report: dict):
    for case, diffs in report.items():
        tolerance = 1e-4 if case == "offset" else 1e-5  # E[x^2] - E[x]^2 gives 1.2e-3 on "offset"
        for name, relative in diffs.items():
            assert relative < tolerance, f"{case} {name}: relative difference {relative:.2e}"


def test_matmul_batch_norm_trains_like_keras_under_tensorflow():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("this suite's in-process backend is not TensorFlow")
    scope: dict = {}
    exec(COMPARE, scope)
    assert_close(scope["cases"]())


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_matmul_batch_norm_trains_like_keras_under_jax():
    script = COMPARE + "\nimport json\nassert keras.backend.backend() == 'jax'\nprint('REPORT' + json.dumps(cases()))\n"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_close(json.loads(next(line for line in done.stdout.splitlines() if line.startswith("REPORT"))[6:]))


def test_matmul_batch_norm_keeps_keras_inference_config_and_fallbacks():
    import keras

    from ser_keras.models.batchnorm import MatmulBatchNormalization

    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 2.0, (4, 3, 5, 6)).astype("float32")
    ours, theirs = MatmulBatchNormalization(center=False), keras.layers.BatchNormalization(center=False)
    for layer in (ours, theirs):
        layer.build(x.shape)
        layer.moving_mean.assign(np.linspace(-1, 1, 6).astype("float32"))
        layer.moving_variance.assign(np.linspace(0.5, 2, 6).astype("float32"))
    np.testing.assert_array_equal(np.asarray(ours(x, training=False)), np.asarray(theirs(x, training=False)))
    # A masked call is Keras' own code (masked moments): the same as Keras' layer exactly.
    mask = np.ones((4, 3, 5), bool)
    mask[0, 1:] = False
    np.testing.assert_array_equal(np.asarray(ours(x, training=True, mask=mask)),
                                  np.asarray(theirs(x, training=True, mask=mask)))
    # Under mixed precision: bfloat16 in and out, float32 statistics, as Keras' layer.
    mixed = [cls(dtype="mixed_bfloat16") for cls in (MatmulBatchNormalization, keras.layers.BatchNormalization)]
    outputs = []
    for layer in mixed:
        layer.build(x.shape)
        outputs.append(layer(keras.ops.cast(x, "bfloat16"), training=True))
    assert [keras.backend.standardize_dtype(y.dtype) for y in outputs] == ["bfloat16", "bfloat16"]
    np.testing.assert_allclose(*[np.asarray(keras.ops.cast(y, "float32")) for y in outputs], atol=0.02)
    np.testing.assert_allclose(np.asarray(mixed[0].moving_variance), np.asarray(mixed[1].moving_variance), rtol=1e-5)
    config = ours.get_config()
    assert not config["center"] and MatmulBatchNormalization.from_config(config).get_config() == config
    assert keras.saving.get_registered_object("ser_keras>MatmulBatchNormalization") is MatmulBatchNormalization


def test_conv_models_use_the_matmul_layer_as_the_benchmark_chose():
    """``FASTEST["batch_norm"]`` in benchmarks/training_throughput.py records the winner."""
    from ser_keras.assembly import summary_network
    from ser_keras.models.batchnorm import MatmulBatchNormalization, batch_norm_layers

    module = load_benchmark("training_throughput")
    expected = module.FASTEST["batch_norm"] == "matmul"
    for arch in ("cldnn", "bigru_mha", "strl_ser"):
        norms = batch_norm_layers(summary_network(arch, "ravdess"))
        assert norms, arch
        assert all(isinstance(layer, MatmulBatchNormalization) == expected for layer in norms), arch


def test_moving_statistics_start_from_a_training_batch_not_from_0_and_1():
    """Keras starts the moving mean / variance at 0 / 1; a conv's outputs have a variance far
    from 1, so inference would normalise them wrongly until hundreds of steps have averaged the
    start values away. ``start_moving_statistics`` takes them from one batch (training.train
    calls it before the first step), and leaves every layer's momentum as it was."""
    import keras

    from ser_keras.models.batchnorm import MatmulBatchNormalization, start_moving_statistics

    keras.utils.set_random_seed(2)
    x = np.random.default_rng(2).normal(0.0, 0.5, (8, 12, 10, 1)).astype("float32")
    inputs = keras.Input((12, 10, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer="glorot_uniform")(inputs)
    inner = keras.Model(inputs, MatmulBatchNormalization(name="bn_inner")(conv))  # a nested model too
    outer = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.9, name="bn_outer")(inner(inputs)))
    pre_norm = keras.Model(inputs, conv)(x)
    batch_variance = np.var(np.asarray(pre_norm), axis=(0, 1, 2))
    assert np.all(batch_variance < 0.25)  # the case at hand: far from the start value 1

    inference_before = np.asarray(outer(x, training=False))
    start_moving_statistics(outer, x)
    bn_inner, bn_outer = inner.get_layer("bn_inner"), outer.get_layer("bn_outer")
    np.testing.assert_allclose(np.asarray(bn_inner.moving_variance), batch_variance, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(bn_inner.moving_mean), np.mean(np.asarray(pre_norm), axis=(0, 1, 2)),
                               atol=1e-6)
    assert (bn_inner.momentum, bn_outer.momentum) == (0.99, 0.9)
    # Inference now normalises this batch as training does; with Keras' start values it did not.
    training_outputs = np.asarray(outer(x, training=True))
    np.testing.assert_allclose(np.asarray(outer(x, training=False)), training_outputs, atol=1e-3)
    assert np.max(np.abs(inference_before - training_outputs)) > 0.5


def test_recomputed_moving_statistics_are_the_plain_average_of_the_batches():
    """``recompute_moving_statistics`` replaces the exponential average (which weighs the last
    batches most and remembers older weights) by the equal-weight average of each batch's
    statistics under the current weights, and leaves every momentum as it was."""
    import keras

    from ser_keras.models.batchnorm import MatmulBatchNormalization, recompute_moving_statistics

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    batches = [rng.normal(shift, 0.5, (8, 12, 10, 1)).astype("float32") for shift in (0.0, 1.0, 3.0)]
    inputs = keras.Input((12, 10, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, MatmulBatchNormalization(momentum=0.9, name="bn")(conv))
    conv_out = keras.Model(inputs, conv)
    means = [np.mean(np.asarray(conv_out(x)), axis=(0, 1, 2)) for x in batches]
    variances = [np.var(np.asarray(conv_out(x)), axis=(0, 1, 2)) for x in batches]

    assert recompute_moving_statistics(model, iter(batches)) == 3
    bn = model.get_layer("bn")
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean(means, axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), np.mean(variances, axis=0), rtol=1e-4)
    assert bn.momentum == 0.9
    # an exponential average with momentum 0.9 from the same start would differ: the last batch dominates
    assert np.max(np.abs(np.asarray(bn.moving_mean) - means[-1])) > 0.1
