"""Bi-GRU + multi-head self-attention (Xu et al., Sensors 2024; paper 002).

Inputs: ``spectrogram`` (frames, 401) z-scored log power spectrogram and ``mask`` (frames,)
with 1 for valid frames (batches are zero-padded to the batch maximum).
Padding never changes a prediction: padded frames are zeroed after every conv block (so a
3x3 'same' conv at the last valid frame sees zeros either way), pooling is along frequency
only (time steps stay aligned with the mask), the mask goes to both Bi-GRUs, the attention
never attends to padded keys, and the mean over time skips padded frames.

Conv front end -> 2 x Bi-GRU(128) -> MHA (heads 8 Emo-DB / 16 IEMOCAP, attention dropout
0.2) -> masked mean -> 2 x [Dense ReLU -> Dropout] -> softmax (+ optional linear sentiment).
The paper gives neither the conv widths nor the dense sizes; see the defaults below.
"""

import keras
from keras import layers

from ..errors import ConfigError
from .batchnorm import MatmulBatchNormalization
from .layers import MaskedMeanPooling, SelfAttentionMask, ValidMask, ZeroMaskedSteps
from .specs import model_inputs


def build_bigru_mha(input_spec, num_classes, heads=8, dropout=0.2, attention_dropout=0.2,
                    key_dim=None, gru_units=128, conv_filters=(32, 64), freq_pool=4,
                    dense_units=(256, 128), regression_head=False, name="bigru_mha"):
    """Functional Bi-GRU + MHA. ``key_dim`` defaults to (2 * gru_units) // heads, the
    usual split of the model width across heads (parameter count independent of heads)."""
    if int(heads) < 1:
        raise ConfigError(f"bigru_mha heads must be >= 1, got {heads}")
    inputs = model_inputs(input_spec, ("spectrogram", "mask"))
    valid = ValidMask(name="valid_frames")(inputs["mask"])
    x = ZeroMaskedSteps(name="zero_padding_input")(inputs["spectrogram"], valid)
    x = layers.Reshape((-1, inputs["spectrogram"].shape[-1], 1), name="add_channel")(x)
    for i, filters in enumerate(conv_filters):
        x = layers.Conv2D(filters, 3, padding="same", name=f"conv_{i + 1}")(x)
        x = MatmulBatchNormalization(name=f"bn_{i + 1}")(x)
        x = layers.Activation("relu", name=f"relu_{i + 1}")(x)
        x = layers.MaxPooling2D((1, freq_pool), name=f"freq_pool_{i + 1}")(x)
        x = ZeroMaskedSteps(name=f"zero_padding_{i + 1}")(x, valid)
    x = layers.Reshape((-1, x.shape[2] * x.shape[3]), name="frames")(x)

    for i in range(2):
        gru = layers.GRU(gru_units, return_sequences=True, name=f"gru_{i + 1}")
        x = layers.Bidirectional(gru, name=f"bigru_{i + 1}")(x, mask=valid)
    width = 2 * gru_units
    attention = layers.MultiHeadAttention(
        num_heads=int(heads), key_dim=int(key_dim or max(1, width // int(heads))),
        dropout=attention_dropout, name="multi_head_attention")
    x = attention(x, x, attention_mask=SelfAttentionMask(name="attention_mask")(valid))
    x = MaskedMeanPooling(name="masked_mean")(x, mask=valid)

    for i, units in enumerate(dense_units):
        x = layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(x)
        x = layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    outputs = {"emotion": layers.Dense(num_classes, activation="softmax", name="emotion")(x)}
    if regression_head:
        outputs["sentiment"] = layers.Dense(1, name="sentiment")(x)
    else:
        outputs = outputs["emotion"]
    return keras.Model(inputs, outputs, name=name)
