"""CLDNN with Bahdanau attention (Sherman, Hazan, Gannot; paper 001 + the authors' code).

Input ``features`` is either
- ``(windows, 128, 128, 1)``: log-mel windows (RAVDESS; 5.0 s -> 8 windows of 128 frames x
  128 mel bands), or
- ``(frames, 46)``: the per-frame IEMOCAP feature stack. The authors' code feeds it as ONE
  window ``(1, frames, 46, 1)`` through the same 2-D blocks (pooling 'same'), so the BLSTM
  runs over a single step; with 157 frames (5 s, hop 512) that gives 1,446,596 parameters
  for 4 classes, the paper's "about 1.442 M".

Local feature learning block (time distributed over windows): Conv2D 3x3 'same' -> BN ->
ELU -> MaxPool ('same') -> Dropout, computed as BN -> MaxPool -> ELU (the same function).
Then BLSTM(256, L1 activity ``l1``: the paper's 1e-3 here, 0 in the recipe's preset) -> Bahdanau
attention -> [context, h_fwd_last, h_bwd_last] -> Dense softmax. 1,187,527 parameters for 7 classes.
"""

import keras
from keras import layers

from ..errors import ConfigError
from .batchnorm import MatmulBatchNormalization
from .layers import BahdanauAttention, FoldWindows, L1Float32, UnfoldWindows
from .specs import model_inputs

VARIANTS = ("cldnn", "blstm", "blstm_att", "conv_blstm")
# Blocks 1-4 are the paper's; block 5 is the one commented out in the authors' code (the
# paper's Table III went up to 5 blocks). Fewer blocks keep the first k of this schedule.
BLOCK_FILTERS = (64, 64, 128, 128, 128)
BLOCK_POOLS = (2, 4, 4, 4, 4)


def build_cldnn(input_spec, num_classes, variant="cldnn", conv_blocks=4, dropout=0.2,
                lstm_units=256, attention_units=256, l1=0.001, bn_momentum=0.99, name="cldnn"):
    """Functional CLDNN. ``variant``: cldnn | blstm | blstm_att | conv_blstm (Table IV);
    ``conv_blocks``: 2-5 (Table III); ``bn_momentum``: the BatchNorm moving averages' momentum
    (Keras' default 0.99, which the authors' code used; lower follows fast-changing weights)."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown cldnn variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if not 2 <= int(conv_blocks) <= len(BLOCK_FILTERS):
        raise ConfigError(f"cldnn conv_blocks must be 2..{len(BLOCK_FILTERS)}, got {conv_blocks}")
    if not 0.0 <= float(bn_momentum) < 1.0:
        raise ConfigError(f"cldnn bn_momentum must be in [0, 1), got {bn_momentum}")
    inputs = model_inputs(input_spec, ("features",))
    features = inputs["features"]
    if variant in ("cldnn", "conv_blstm"):
        sequence = _conv_front_end(_as_windows(features), int(conv_blocks), dropout, float(bn_momentum))
    else:
        sequence = _as_sequence(features)

    blstm = layers.Bidirectional(
        layers.LSTM(lstm_units, return_sequences=True, return_state=True,
                    activity_regularizer=L1Float32(l1) if l1 else None, name="lstm"),
        name="blstm")
    states, forward_h, _, backward_h, _ = blstm(sequence)
    last_state = layers.Concatenate(name="last_state")([forward_h, backward_h])
    if variant in ("cldnn", "blstm_att"):
        context = BahdanauAttention(attention_units, name="attention")(states)
        summary = layers.Concatenate(name="context_and_last_state")([context, last_state])
    else:
        summary = last_state  # what return_sequences=False gives: [h_fwd_T, h_bwd_1]
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(summary)
    return keras.Model(inputs, outputs, name=name)


def _as_windows(features):
    """Rank-2 frame features (frames, F) become one window (1, frames, F, 1)."""
    if len(features.shape) == 3:
        return layers.Reshape((1, -1, features.shape[-1], 1), name="one_window")(features)
    if len(features.shape) != 5:
        raise ConfigError("cldnn input must be (windows, H, W, 1) or (frames, features); "
                          f"got {tuple(features.shape[1:])}")
    return features


def _as_sequence(features):
    """Inputs for the conv-free ablations: frame features as they are, windows flattened."""
    if len(features.shape) == 3:
        return features
    width = 1
    for size in features.shape[2:]:
        width *= int(size)
    return layers.Reshape((-1, width), name="flatten_windows")(features)


def _conv_front_end(windows, blocks, dropout, bn_momentum):
    x = FoldWindows(name="fold_windows")(windows)
    for i in range(blocks):
        pool = BLOCK_POOLS[i]
        x = layers.Conv2D(BLOCK_FILTERS[i], 3, padding="same", name=f"conv_{i + 1}")(x)
        x = MatmulBatchNormalization(momentum=bn_momentum, name=f"bn_{i + 1}")(x)
        # Pool, then ELU: the paper's BN -> ELU -> pool is the same function (ELU is increasing,
        # so max-pooling commutes with it) with the ELU on 1/4 (block 1) to 1/16 of the values:
        # ~1.16x per training step on CPU (benchmarks/training_throughput.py, pool_first).
        x = layers.MaxPooling2D(pool, strides=pool, padding="same", name=f"pool_{i + 1}")(x)
        x = layers.Activation("elu", name=f"elu_{i + 1}")(x)
        x = layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    return UnfoldWindows(name="unfold_windows")(x, windows)
