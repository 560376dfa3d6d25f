"""BatchNormalization for the conv blocks, trained with matrix-product sums and a hand-written
gradient (``keras.ops`` only; registered under the ``ser_keras`` package like models/layers.py)."""

import keras
from keras import layers, ops

from .layers import register


@register
class MatmulBatchNormalization(layers.BatchNormalization):
    """Keras' ``BatchNormalization`` (same weights, config, moving averages and inference path)
    whose training step has a hand-written gradient and takes its per-channel sums as matrix
    products (``ones @ x``).

    Why: on CPU under TensorFlow, Keras' training graph (moments, normalisation and their
    autodiff) makes about a dozen passes over the values, and TensorFlow's reductions over the
    leading axes run ~4x slower than the same sum as a oneDNN matmul. cldnn's first block
    normalises 128 x 128 x 64 values per window, so that layer set the pace of its training
    step: this one runs its forward + backward ~2.2x faster (benchmarks/batchnorm_layer.py), and
    cldnn trains 1.56x faster (benchmarks/training_throughput.py, variant ``keras_bn``; README
    "Speed"). The function is the same up to float noise: batch
    mean and biased variance (of the centred values, in float32), gradient
    dx = gamma / sigma * (dy - mean(dy) - x_hat * mean(dy * x_hat)).

    Keras' own training code runs instead for masks, renorm, a non-last axis and backends without
    ``keras.ops.custom_gradient`` (PyTorch). Under mixed precision the statistics and the
    normalisation are float32, as in Keras' layer.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._matmul_path_applies(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        # Values, not the variables: tf.custom_gradient would take variables read inside it for
        # extra inputs with their own gradient protocol.
        gamma = ops.copy(self.gamma) if self.scale else ops.ones((channels,), "float32")
        beta = ops.copy(self.beta) if self.center else ops.zeros((channels,), "float32")
        # float32 statistics, as Keras' layer keeps them under mixed precision
        outputs, mean, variance = _batch_norm_training(ops.cast(inputs, "float32"), gamma, beta, self.epsilon)
        mean, variance = ops.stop_gradient(mean), ops.stop_gradient(variance)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)

    def _matmul_path_applies(self, inputs, mask) -> bool:
        rank = len(inputs.shape)
        return (mask is None and not self.renorm and self.axis in (rank - 1, -1)
                and keras.backend.backend() in ("tensorflow", "jax"))


def _batch_norm_training(inputs, gamma, beta, epsilon):
    """(normalised inputs, batch mean, batch variance) over every axis but the last."""

    @ops.custom_gradient
    def forward(x, gamma, beta):
        channels = x.shape[-1]
        flat = ops.reshape(x, (-1, channels))
        ones = ops.expand_dims(ops.ones_like(flat[:, 0]), 0)  # (1, n): sums as matrix products
        count = ops.cast(ops.shape(flat)[0], x.dtype)
        mean = ops.matmul(ones, flat)[0] / count
        # Centred before squaring: E[x^2] - E[x]^2 would lose the variance's digits to
        # cancellation when |mean| >> std. The backward pass reuses the centred values.
        centred = flat - mean
        variance = ops.matmul(ones, ops.square(centred))[0] / count
        inv_std = ops.rsqrt(variance + epsilon)
        scale = gamma * inv_std
        outputs = ops.reshape(centred * scale + beta, ops.shape(x))

        def grad(*args, upstream=None):
            # TensorFlow passes one upstream gradient per output, JAX one tuple of them; the
            # mean and variance only feed the moving averages (no gradient).
            upstream = upstream if upstream is not None else (args if len(args) > 1 else args[0])
            d_out = ops.reshape(upstream[0], (-1, channels))
            sum_d = ops.matmul(ones, d_out)[0]
            sum_d_xhat = ops.matmul(ones, d_out * centred)[0] * inv_std
            # dx = scale * (dy - sum_d / n - x_hat * sum_d_xhat / n), as dy * a + (x - mean) * b + c
            b = -scale * inv_std * sum_d_xhat / count
            c = -scale * sum_d / count
            d_x = ops.reshape(d_out * scale + (centred * b + c), ops.shape(x))
            return d_x, sum_d_xhat, sum_d

        return (outputs, mean, variance), grad

    return forward(inputs, gamma, beta)


def batch_norm_layers(model) -> list:
    """Every BatchNormalization inside ``model``, nested models included (Keras' own walk)."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, layers.BatchNormalization)]


def start_moving_statistics(model, inputs) -> None:
    """Set the moving mean and variance of every BatchNormalization in ``model`` to the
    statistics of one training batch (``inputs``), before the first training step.

    Why: Keras starts them at 0 and 1 and moves them 1 % per step (momentum 0.99), so the start
    values fade only after a few hundred steps, and a RAVDESS epoch is about 34 steps. bigru_mha's
    first block has a batch variance of about 0.04: after 4 epochs its moving variance was still
    0.29 (a quarter of it the start value 1), validation ran the network on activations 2.6x too
    small and scored 13 % accuracy, where the same weights score 27 % with the start value taken
    out. Validation picks checkpoints and stops training, so it has to see the network as it trains.
    From here on the running average is Keras' own.
    """
    norms = batch_norm_layers(model)
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0  # the update below then writes the batch's own statistics
        model(inputs, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def recompute_moving_statistics(model, batches) -> int:
    """Replace the moving mean and variance of every BatchNormalization in ``model`` by the plain
    average of the batch statistics over ``batches`` (an iterable of input batches), computed
    with the current weights in training mode ("precise BN", Wu & Johnson 2021, *Rethinking
    "Batch" in BatchNorm*, section 3). Returns how many batches were averaged.

    Why: an exponential moving average over the last ~100 steps mixes statistics of weights that
    changed along the way; while the weights still move fast (Adam 1e-3), inference then runs on
    statistics that no longer match them, and validation swings from epoch to epoch. The k-th
    batch enters with weight 1/k (momentum 1 - 1/k), so every batch counts equally.
    """
    norms = batch_norm_layers(model)
    if not norms:
        return 0
    momenta = [layer.momentum for layer in norms]
    count = 0
    try:
        for count, inputs in enumerate(batches, start=1):
            for layer in norms:
                layer.momentum = 1.0 - 1.0 / count
            model(inputs, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return count
