"""STRL-SER: spatio-temporal representation learning with multi-head attention fusion
(Chen et al., Knowledge-Based Systems 2024; paper 003).

Inputs per segment: ``lld_segments`` (76 LLD features, T_seg frames, 1) and the utterance's
``functionals`` (1582 IS10 functionals, z-scored).
- spatial branch: MultiScaleConv2D (b x 1 | 1 x d, 16 filters each) -> 3 x [Conv 3x3 ->
  ReLU -> MaxPool 2x2 -> BN] (48 channels) -> attention pooling (alpha = softmax(w^T X')).
- temporal branch: BiLSTM over the T_seg frames (each frame a 76-vector); its final
  forward and backward states summarise the segment. Ablations: LSTM, Transformer encoder.
- utterance branch: Dense on the functionals.
- fusion: each branch projected (Dense = 1x1 conv) to ``fusion_width``, stacked as three
  tokens, multi-head self-attention (8 heads), mean over the tokens, Dense softmax.
Segment-level decisions are averaged per utterance by the evaluation code, not here.
"""

import keras
from keras import layers

from ..errors import ConfigError
from .batchnorm import MatmulBatchNormalization
from .layers import MultiScaleConv2D, PositionEmbedding, SpatialAttentionPooling
from .specs import model_inputs

TEMPORAL = ("bilstm", "lstm", "transformer")


def build_strl_ser(input_spec, num_classes, heads=8, temporal="bilstm", use_functionals=True,
                   kernel_b=7, kernel_d=3, multiscale_filters=16, conv_filters=(48, 48, 48),
                   lstm_units=128, utterance_units=256, fusion_width=128, dropout=0.0,
                   utterance_dropout=0.0, name="strl_ser"):
    """Functional STRL-SER (one segment in, class probabilities out). ``utterance_dropout``
    regularises the functionals branch (input and Dense output), which can otherwise memorise
    a small corpus by itself; the paper has none (0.0)."""
    if temporal not in TEMPORAL:
        raise ConfigError(f"unknown strl_ser temporal {temporal!r}; choose one of "
                          f"{', '.join(TEMPORAL)}")
    if not 1 <= int(heads) <= 64:
        raise ConfigError(f"strl_ser heads must be 1..64, got {heads}")
    names = ("lld_segments", "functionals") if use_functionals else ("lld_segments",)
    inputs = model_inputs(input_spec, names)
    lld = inputs["lld_segments"]

    tokens = [_spatial_branch(lld, kernel_b, kernel_d, multiscale_filters, conv_filters),
              _temporal_branch(lld, temporal, lstm_units)]
    if use_functionals:
        functionals = layers.Dropout(utterance_dropout, name="functionals_dropout")(inputs["functionals"])
        utterance = layers.Dense(utterance_units, activation="relu", name="utterance_dense")(functionals)
        tokens.append(layers.Dropout(utterance_dropout, name="utterance_dropout")(utterance))
    branch_names = ("spatial", "temporal", "utterance")
    projected = [layers.Reshape((1, fusion_width), name=f"{branch}_token")(
        layers.Dense(fusion_width, name=f"{branch}_projection")(token))
        for branch, token in zip(branch_names, tokens)]
    sequence = layers.Concatenate(axis=1, name="tokens")(projected)
    fusion = layers.MultiHeadAttention(num_heads=int(heads),
                                       key_dim=max(1, fusion_width // int(heads)),
                                       name="fusion_attention")
    fused = layers.GlobalAveragePooling1D(name="fusion_pool")(fusion(sequence, sequence))
    fused = layers.Dropout(dropout, name="dropout")(fused)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(fused)
    return keras.Model(inputs, outputs, name=name)


def _spatial_branch(lld, kernel_b, kernel_d, multiscale_filters, conv_filters):
    x = MultiScaleConv2D(multiscale_filters, int(kernel_b), int(kernel_d), name="multiscale")(lld)
    for i, filters in enumerate(conv_filters):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool_{i + 1}")(x)
        x = MatmulBatchNormalization(name=f"bn_{i + 1}")(x)
    return SpatialAttentionPooling(name="spatial_attention")(x)


def _temporal_branch(lld, temporal, units):
    """(76, T, 1) -> T frames of 76 features -> one vector per segment."""
    frames = layers.Permute((2, 1), name="frames")(
        layers.Reshape(tuple(lld.shape[1:3]), name="drop_channel")(lld))
    if temporal == "bilstm":
        return layers.Bidirectional(layers.LSTM(units), name="bilstm")(frames)
    if temporal == "lstm":
        return layers.LSTM(units, name="lstm")(frames)
    return _transformer_encoder(frames, width=2 * units)


def _transformer_encoder(frames, width, heads=4):
    """One pre-norm Transformer encoder block over the frames, mean-pooled (Table 6-7)."""
    x = layers.Dense(width, name="transformer_in")(frames)
    x = PositionEmbedding(max_length=512, name="transformer_positions")(x)
    y = layers.LayerNormalization(name="transformer_norm_1")(x)
    y = layers.MultiHeadAttention(heads, width // heads, name="transformer_attention")(y, y)
    x = layers.Add(name="transformer_residual_1")([x, y])
    y = layers.LayerNormalization(name="transformer_norm_2")(x)
    y = layers.Dense(2 * width, activation="relu", name="transformer_ffn_1")(y)
    y = layers.Dense(width, name="transformer_ffn_2")(y)
    x = layers.Add(name="transformer_residual_2")([x, y])
    return layers.GlobalAveragePooling1D(name="transformer_pool")(x)
