"""BiLSTM-ATT-MTL (Li & Liu; paper 000): 2 stacked BiLSTMs (128 per direction) ->
additive attention e_t = v^T tanh(W h_t + b) -> context -> three softmax heads
``emotion`` (5 on StyleTalk), ``speed`` and ``volume`` (3 each: slow/normal/fast,
quiet/normal/loud). 805,131 parameters with 5/3/3 outputs (paper Table 2: 0.81 M).
Loss weights (1.0, 0.3, 0.3) are applied when training code compiles the model.
"""

import keras
from keras import layers

from .layers import AdditiveAttentionPooling
from .specs import model_inputs

AUX_CLASSES = 3  # speed and volume tertiles


def build_bilstm_att_mtl(input_spec, num_classes, lstm_units=128, lstm_layers=2,
                         attention_units=None, dropout=0.0, name="bilstm_att_mtl"):
    """Functional BiLSTM + additive attention with emotion / speed / volume heads."""
    inputs = model_inputs(input_spec, ("features",))
    x = inputs["features"]
    for i in range(int(lstm_layers)):
        lstm = layers.LSTM(lstm_units, return_sequences=True, name=f"lstm_{i + 1}")
        x = layers.Bidirectional(lstm, name=f"bilstm_{i + 1}")(x)
    context = AdditiveAttentionPooling(attention_units, name="attention")(x)
    context = layers.Dropout(dropout, name="dropout")(context)
    outputs = {
        "emotion": layers.Dense(num_classes, activation="softmax", name="emotion")(context),
        "speed": layers.Dense(AUX_CLASSES, activation="softmax", name="speed")(context),
        "volume": layers.Dense(AUX_CLASSES, activation="softmax", name="volume")(context),
    }
    return keras.Model(inputs, outputs, name=name)
