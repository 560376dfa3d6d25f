"""Baselines of paper 000 (Table 1-2): LSTM, BiLSTM, LSTM+Att, BiLSTM+Att on (T, F) frame
features, and an SVM on utterance statistics (mean and std of every frame feature).

The Keras baselines take the same ``{"features": (T, F)}`` input spec as bilstm_att_mtl
(a bare shape tuple works too) and end in one softmax named ``emotion``.
"""

import keras
import numpy as np
from keras import layers
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..errors import ConfigError
from .layers import AdditiveAttentionPooling


def _frame_input(input_spec):
    shape = input_spec["features"] if isinstance(input_spec, dict) else input_spec
    if len(tuple(shape)) != 2:
        raise ConfigError(f"baselines take (frames, features) input, got {tuple(shape)}")
    return {"features": keras.Input(shape=tuple(shape), name="features", dtype="float32")}


def _recurrent(input_spec, num_classes, units, bidirectional, attention, name):
    inputs = _frame_input(input_spec)
    frames = inputs["features"]
    lstm = layers.LSTM(units, return_sequences=attention, name="lstm")
    x = layers.Bidirectional(lstm, name="bilstm")(frames) if bidirectional else lstm(frames)
    if attention:
        x = AdditiveAttentionPooling(name="attention")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name=name)


def build_lstm(input_spec, num_classes, units=128):
    """LSTM -> last state -> softmax."""
    return _recurrent(input_spec, num_classes, units, False, False, "lstm")


def build_bilstm(input_spec, num_classes, units=128):
    """BiLSTM -> last states -> softmax."""
    return _recurrent(input_spec, num_classes, units, True, False, "bilstm")


def build_lstm_att(input_spec, num_classes, units=128):
    """LSTM -> additive attention -> softmax."""
    return _recurrent(input_spec, num_classes, units, False, True, "lstm_att")


def build_bilstm_att(input_spec, num_classes, units=128):
    """BiLSTM -> additive attention -> softmax."""
    return _recurrent(input_spec, num_classes, units, True, True, "bilstm_att")


def utterance_statistics(frames, lengths=None, mask=None):
    """(N, T, F) frames -> (N, 2F): mean and std over each utterance's valid frames.

    ``lengths`` (N,) or ``mask`` (N, T) mark the valid frames; by default all are valid.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3:
        raise ConfigError(f"SVM baseline takes (utterances, frames, features), got {frames.shape}")
    if mask is None and lengths is not None:
        mask = np.arange(frames.shape[1])[None, :] < np.asarray(lengths)[:, None]
    if mask is None:
        mask = np.ones(frames.shape[:2], dtype=bool)
    weights = np.asarray(mask, dtype=np.float64)[..., None]
    count = np.maximum(weights.sum(axis=1), 1.0)
    mean = (frames * weights).sum(axis=1) / count
    var = (((frames - mean[:, None, :]) ** 2) * weights).sum(axis=1) / count
    return np.concatenate([mean, np.sqrt(var)], axis=1)


class SVMBaseline(ClassifierMixin, BaseEstimator):
    """StandardScaler + SVC on utterance statistics (scikit-learn API), with Platt-scaled
    probabilities: CalibratedClassifierCV(SVC, ensemble=False) is what SVC(probability=True)
    computed internally, and its replacement now that scikit-learn deprecates it."""

    def __init__(self, C=1.0, kernel="rbf", gamma="scale", random_state=0):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.random_state = random_state

    def fit(self, frames, y, lengths=None, mask=None):
        svc = SVC(C=self.C, kernel=self.kernel, gamma=self.gamma, random_state=self.random_state)
        calibrated = CalibratedClassifierCV(svc, method="sigmoid", ensemble=False)
        self.pipeline_ = make_pipeline(StandardScaler(), calibrated)
        self.pipeline_.fit(utterance_statistics(frames, lengths, mask), np.asarray(y))
        self.classes_ = self.pipeline_.classes_
        return self

    def predict(self, frames, lengths=None, mask=None):
        return self.pipeline_.predict(utterance_statistics(frames, lengths, mask))

    def predict_proba(self, frames, lengths=None, mask=None):
        return self.pipeline_.predict_proba(utterance_statistics(frames, lengths, mask))
