"""BatchNormalization that trains with TensorFlow's fused kernel where it can.

Keras 3's BatchNormalization trains through ``ops.moments`` + ``ops.batch_normalization``: about
ten element-wise passes over the tensor forward and as many backward. Under TensorFlow, one
``FusedBatchNormV3`` op (one oneDNN kernel each way) computes the same normalisation; for cldnn
that makes a whole training step 1.5-1.9x faster on CPU (benchmarks/training_throughput.py,
variant ``fused_bn``). The layer is Keras' own everywhere else: inference, masked inputs, renorm,
channels-first, and every other backend (JAX has no such op, and XLA fuses the plain graph anyway).

Same function: outputs within float noise of Keras' layer, and the moving statistics get the
biased batch variance, as Keras' layer does (``tests/test_models.py`` compares the two). The
saved config is Keras' BatchNormalization config; the class is registered so ``.keras`` files
reload with ``safe_mode=True``.
"""

import keras

register = keras.saving.register_keras_serializable(package="ser_keras")


@register
class BatchNormalization(keras.layers.BatchNormalization):
    fused = True  # False: Keras' own training graph (benchmarks/training_throughput.py compares them)

    def call(self, inputs, training=None, mask=None):
        if not self._fused_training(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        y, mean, variance = _fused_training_step(self, inputs)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return keras.ops.cast(y, self.compute_dtype)

    def _fused_training(self, inputs, training, mask) -> bool:
        rank = len(inputs.shape)
        axis = self.axis if self.axis >= 0 else self.axis + rank
        return bool(self.fused and training and self.trainable and mask is None and not self.renorm
                    and rank in (3, 4) and axis == rank - 1
                    and keras.backend.backend() == "tensorflow")


def _fused_training_step(layer, inputs):
    """(normalised inputs, batch mean, biased batch variance) through FusedBatchNormV3 (NHWC;
    a rank-3 ``[batch, steps, channels]`` input is viewed as ``[batch, steps, 1, channels]``)."""
    import tensorflow as tf  # only reached under the TensorFlow backend

    channels = inputs.shape[-1]
    x = inputs if len(inputs.shape) == 4 else tf.expand_dims(inputs, 2)
    if x.dtype not in (tf.float32, tf.bfloat16, tf.float16):
        x = tf.cast(x, tf.float32)
    scale = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones([channels])
    offset = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros([channels])
    empty = tf.constant([], tf.float32)
    y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=scale, offset=offset, mean=empty, variance=empty, epsilon=layer.epsilon,
        exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
    count = tf.cast(tf.size(x) // channels, tf.float32)
    variance = variance * (count - 1.0) / tf.maximum(count, 1.0)  # the op returns the (n - 1) estimate
    if len(inputs.shape) == 3:
        y = tf.squeeze(y, 2)
    dtype = layer.moving_mean.dtype
    return y, tf.cast(mean, dtype), tf.cast(variance, dtype)
