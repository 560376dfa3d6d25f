"""Small serializable layers shared by the architectures.

Every layer here is written with ``keras.ops`` only (no ``tf.*``), has ``get_config`` and is
registered under the ``ser_keras`` package, so models save to ``.keras``, reload with
``safe_mode=True`` and build under the JAX backend as well as TensorFlow.

Masks are float or bool tensors shaped ``(batch, time)`` with 1 / True for valid steps.
"""

import math

import keras
from keras import layers, ops

register = keras.saving.register_keras_serializable(package="ser_keras")


def _float_mask(mask, dtype):
    """(batch, time) bool/float mask -> float of ``dtype`` (1 valid, 0 padding)."""
    if mask is None:
        return None
    return ops.cast(ops.cast(mask, "bool"), dtype)


def _masked_softmax(scores, mask):
    """Softmax over the last axis that gives exactly zero weight to padded steps.

    Written out (not ops.softmax) because a single-step sequence (CLDNN on IEMOCAP, one
    window) is legitimate here and ops.softmax warns about size-1 axes.
    """
    if mask is not None:
        valid = ops.cast(mask, "bool")
        scores = ops.where(valid, scores, ops.full_like(scores, -1e9))
    weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
    if mask is not None:
        weights = weights * ops.cast(valid, weights.dtype)
    return weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-12)


class _TemporalAttention(layers.Layer):
    """Shared part of the attention poolings over time: scores -> masked softmax -> context.

    Subclasses provide ``scores(states) -> [batch, time]``. The output is ``context`` or
    ``(context, alpha)`` when ``return_attention_weights``.
    """

    def __init__(self, units=None, return_attention_weights=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.return_attention_weights = return_attention_weights
        self.supports_masking = True

    def call(self, states, mask=None):
        alpha = _masked_softmax(self.scores(states), mask)
        context = ops.sum(states * ops.expand_dims(alpha, -1), axis=1)
        return (context, alpha) if self.return_attention_weights else context

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        context = (input_shape[0], input_shape[-1])
        if self.return_attention_weights:
            return context, (input_shape[0], input_shape[1])
        return context

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, return_attention_weights=self.return_attention_weights)
        return config


@register
class BahdanauAttention(_TemporalAttention):
    """CLDNN attention (paper 001 and its released code).

    score_t = v^T tanh(W h_t) / sqrt(units), both projections without bias and initialised
    N(0, 1) as in the authors' code (the 1/sqrt(units) scaling then gives unit-variance
    scores); alpha = softmax over time; context = sum_t alpha_t h_t.
    """

    def __init__(self, units=256, return_attention_weights=False, **kwargs):
        super().__init__(units, return_attention_weights, **kwargs)
        init = keras.initializers.RandomNormal(mean=0.0, stddev=1.0)
        # sublayers compute in this layer's dtype policy (mixed precision), also when reloaded
        self.hidden = layers.Dense(units, activation="tanh", use_bias=False, kernel_initializer=init,
                                   name="hidden", dtype=self.dtype_policy)
        self.score = layers.Dense(1, use_bias=False, kernel_initializer=init, name="score", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.score.build(tuple(input_shape[:-1]) + (self.units,))

    def scores(self, states):
        return ops.squeeze(self.score(self.hidden(states)), axis=-1) / math.sqrt(self.units)


@register
class AdditiveAttentionPooling(_TemporalAttention):
    """e_t = v^T tanh(W h_t + b); alpha = softmax(e) over valid steps; c = sum alpha_t h_t.

    Paper 000, eqs. (7)-(9). ``units`` defaults to the width of ``h`` (W is square).
    """

    def build(self, input_shape):
        width = int(input_shape[-1])
        units = self.units or width
        self.w = self.add_weight(name="w", shape=(width, units), initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(units,), initializer="glorot_uniform")

    def scores(self, states):
        hidden = ops.tanh(ops.matmul(states, self.w) + self.b)
        return ops.matmul(hidden, ops.expand_dims(self.v, -1))[..., 0]


@register
class SpatialAttentionPooling(layers.Layer):
    """STRL-SER attention pooling over a CNN feature map (paper 003, eqs. (6)-(7)).

    X' (batch, H, W, C) is read as H*W positions of C channels; alpha = softmax(w^T X')
    over positions; X~ = alpha^T X' (batch, C). A bias would cancel in the softmax.
    """

    def __init__(self, return_attention_weights=False, **kwargs):
        super().__init__(**kwargs)
        self.return_attention_weights = return_attention_weights

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(int(input_shape[-1]), 1),
                                 initializer="glorot_uniform")

    def call(self, feature_map):
        channels = feature_map.shape[-1]
        positions = ops.reshape(feature_map, (ops.shape(feature_map)[0], -1, channels))
        alpha = ops.softmax(ops.matmul(positions, self.w)[..., 0], axis=-1)
        pooled = ops.sum(positions * ops.expand_dims(alpha, -1), axis=1)
        return (pooled, alpha) if self.return_attention_weights else pooled

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], input_shape[-1])
        if self.return_attention_weights:
            h, w = input_shape[1], input_shape[2]
            return pooled, (input_shape[0], None if None in (h, w) else h * w)
        return pooled

    def get_config(self):
        config = super().get_config()
        config.update(return_attention_weights=self.return_attention_weights)
        return config


@register
class MultiScaleConv2D(layers.Layer):
    """Parallel (b x 1) and (1 x d) convolutions, ``filters`` each, concatenated on channels.

    Paper 003 eq. (3): frequency kernels (b, 1) and time kernels (1, d) on the
    (features, frames) LLD matrix. 'same' padding keeps both outputs aligned.
    """

    def __init__(self, filters=16, kernel_b=7, kernel_d=3, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_b = kernel_b
        self.kernel_d = kernel_d
        self.activation = activation
        self.freq_conv = layers.Conv2D(filters, (kernel_b, 1), padding="same", activation=activation,
                                       name="freq_conv", dtype=self.dtype_policy)  # this layer's policy
        self.time_conv = layers.Conv2D(filters, (1, kernel_d), padding="same", activation=activation,
                                       name="time_conv", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.freq_conv.build(input_shape)
        self.time_conv.build(input_shape)

    def call(self, inputs):
        return ops.concatenate([self.freq_conv(inputs), self.time_conv(inputs)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_b=self.kernel_b, kernel_d=self.kernel_d,
                      activation=self.activation)
        return config


@register
class MaskedMeanPooling(layers.Layer):
    """Mean over time of the valid steps only: sum_t m_t x_t / max(sum_t m_t, 1)."""

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(_float_mask(mask, inputs.dtype), -1)
        total = ops.sum(inputs * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@register
class ValidMask(layers.Layer):
    """(batch, time) float/bool padding mask -> bool mask (True = valid frame)."""

    def call(self, mask):
        return ops.cast(mask, "float32") > 0.5

    def compute_output_spec(self, mask):
        return keras.KerasTensor(mask.shape, dtype="bool")


@register
class ZeroMaskedSteps(layers.Layer):
    """Sets padded frames of a (batch, time, ...) tensor to exactly zero.

    Used between convolution blocks so that a 'same' convolution at the last valid frame
    sees zeros beyond it whether or not the utterance was padded in its batch.
    """

    def call(self, inputs, valid):
        weights = _float_mask(valid, inputs.dtype)
        for _ in range(len(inputs.shape) - 2):
            weights = ops.expand_dims(weights, -1)
        return inputs * weights

    def compute_output_shape(self, inputs_shape, valid_shape):
        return inputs_shape


@register
class SelfAttentionMask(layers.Layer):
    """(batch, time) valid mask -> (batch, time, time) attention mask: every query may
    attend to every valid key and never to padding."""

    def call(self, mask):
        keys = ops.cast(mask, "bool")
        queries = ops.ones_like(ops.cast(keys, "int32")) > 0
        return ops.logical_and(ops.expand_dims(queries, 2), ops.expand_dims(keys, 1))

    def compute_output_spec(self, mask):
        return keras.KerasTensor((mask.shape[0], mask.shape[1], mask.shape[1]), dtype="bool")


@register
class FoldWindows(layers.Layer):
    """(batch, windows, ...) -> (batch * windows, ...): a time-distributed stack of layers
    then runs as one batch (how Keras 2's TimeDistributed, used by the CLDNN authors,
    executed it: BatchNorm statistics are taken over all windows of the batch)."""

    def call(self, inputs):
        return ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))

    def compute_output_shape(self, input_shape):
        batch = None if None in input_shape[:2] else input_shape[0] * input_shape[1]
        return (batch,) + tuple(input_shape[2:])


@register
class UnfoldWindows(layers.Layer):
    """Inverse of ``FoldWindows``: ``[(batch * windows, ...), reference]`` ->
    (batch, windows, ...), taking batch and windows from ``reference``."""

    def call(self, inputs, reference):
        shape = ops.shape(reference)
        return ops.reshape(inputs, (shape[0], shape[1]) + tuple(inputs.shape[1:]))

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (reference_shape[0], reference_shape[1]) + tuple(inputs_shape[1:])


@register
class PositionEmbedding(layers.Layer):
    """Learned absolute position embedding added to a (batch, time, width) sequence."""

    def __init__(self, max_length=1024, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.supports_masking = True

    def build(self, input_shape):
        self.embedding = self.add_weight(name="embedding",
                                         shape=(self.max_length, int(input_shape[-1])),
                                         initializer="glorot_uniform")

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        return inputs + ops.expand_dims(self.embedding[:length], 0)

    def get_config(self):
        config = super().get_config()
        config.update(max_length=self.max_length)
        return config


@register
class L1Float32(keras.regularizers.L1):
    """L1 penalty computed in float32: a bfloat16 layer's activity penalty joins the float32 loss
    (``train.precision=mixed_bfloat16``); in float32 the same as ``keras.regularizers.L1``."""

    def __call__(self, x):
        return super().__call__(ops.cast(x, "float32"))
