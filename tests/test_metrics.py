"""Metrics (WA, UA, P/R/F1, confusion), the Keras UA metric, segment aggregation, fold tables."""

import json

import keras
import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from ser_keras.cv import format_fold_table, summarise_folds
from ser_keras.scoring import aggregate_segments, utterance_labels
from ser_keras.metrics import UnweightedAccuracy, compute_metrics, format_metrics

NAMES3 = ["neutral", "happy", "sad"]


# ------------------------------------------------------------------- compute_metrics
def test_hand_made_three_class_example():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    m = compute_metrics(y_true, y_pred, NAMES3)
    assert m["wa"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((1 / 2 + 2 / 2 + 1 / 2) / 3)
    # precision: neutral 1/2, happy 2/3, sad 1/1
    assert m["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["confusion_normalised"][0] == pytest.approx([0.5, 0.5, 0.0])
    assert m["per_class"]["happy"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert m["classes"] == NAMES3
    assert m["n"] == 6


def test_matches_scikit_learn_on_random_predictions():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 5, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, 200))
    m = compute_metrics(y_true, y_pred, list("abcde"))
    assert m["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=0
        )
        assert m[f"{average}_precision"] == pytest.approx(p)
        assert m[f"{average}_recall"] == pytest.approx(r)
        assert m[f"{average}_f1"] == pytest.approx(f)
    assert m["confusion"] == confusion_matrix(y_true, y_pred).tolist()
    assert m["ua"] != pytest.approx(m["wa"])  # imbalanced draw: the two must differ


def test_absent_class_is_left_out_of_ua_but_zero_in_macro_recall():
    names = NAMES3 + ["angry"]  # class 3 never occurs in y_true but is predicted once
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 3, 1, 1, 2, 2])
    m = compute_metrics(y_true, y_pred, names)
    assert m["ua"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    with pytest.warns(UserWarning):  # sklearn warns about the predicted-only class
        assert m["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_recall"] == pytest.approx((1 / 2 + 1 + 1 + 0) / 4)
    assert m["per_class"]["angry"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_normalised"][3] == [0.0, 0.0, 0.0, 0.0]
    assert m["confusion"][3] == [0, 0, 0, 0]


def test_numpy_inputs_give_plain_json_serialisable_values():
    m = compute_metrics(np.array([0, 1, 2, 2], np.int32), np.array([0, 1, 1, 2], np.int64), NAMES3)
    reloaded = json.loads(json.dumps(m))
    assert reloaded == m
    assert type(m["wa"]) is float and type(m["n"]) is int
    assert type(m["confusion"][0][0]) is int
    assert type(m["per_class"]["sad"]["support"]) is int


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="outside"):
        compute_metrics([0, 3], [0, 1], NAMES3)
    with pytest.raises(ValueError, match="labels but"):
        compute_metrics([0, 1, 2], [0, 1], NAMES3)
    with pytest.raises(ValueError, match="zero samples"):
        compute_metrics([], [], NAMES3)


def test_format_metrics_shows_headline_and_every_class():
    text = format_metrics(compute_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], NAMES3))
    assert "WA  66.67 %" in text and "UA  66.67 %" in text
    for name in NAMES3:
        assert name in text
    assert len(text.splitlines()) == 2 + len(NAMES3)


# ------------------------------------------------------------- UnweightedAccuracy
def _random_batch(rng, size, num_classes=4):
    y_true = rng.integers(0, num_classes, size)
    logits = rng.normal(size=(size, num_classes)) + 2.0 * np.eye(num_classes)[y_true]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, probs.astype("float32")


def test_keras_ua_equals_balanced_accuracy_over_batches_and_after_reset():
    rng = np.random.default_rng(0)
    metric = UnweightedAccuracy(num_classes=4)
    batches = [_random_batch(rng, size) for size in (7, 16, 3, 30)]
    for y_true, probs in batches:
        metric.update_state(y_true, probs)
    all_true = np.concatenate([b[0] for b in batches])
    all_pred = np.concatenate([b[1].argmax(axis=1) for b in batches])
    expected = balanced_accuracy_score(all_true, all_pred)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)

    metric.reset_state()
    assert float(metric.result()) == 0.0
    y_true, probs = batches[1]
    metric.update_state(y_true.reshape(-1, 1), probs)  # (batch, 1) sparse labels
    expected = balanced_accuracy_score(y_true, probs.argmax(axis=1))
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_keras_ua_accepts_one_hot_labels_and_sample_weights():
    rng = np.random.default_rng(1)
    y_true, probs = _random_batch(rng, 40)
    weights = rng.random(40).astype("float32")
    metric = UnweightedAccuracy(num_classes=4)
    metric.update_state(np.eye(4, dtype="float32")[y_true], probs, sample_weight=weights)
    expected = balanced_accuracy_score(y_true, probs.argmax(axis=1), sample_weight=weights)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-5)


def test_keras_ua_skips_classes_without_support():
    metric = UnweightedAccuracy(num_classes=5)
    probs = np.eye(5, dtype="float32")[[0, 1, 1, 4]]
    metric.update_state(np.array([0, 1, 2, 2]), probs)
    assert float(metric.result()) == pytest.approx((1 + 1 + 0) / 3)


def test_keras_ua_serialises_and_is_logged_as_val_unweighted_accuracy():
    metric = UnweightedAccuracy(num_classes=3, name="ua3")
    clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(clone, UnweightedAccuracy)
    assert (clone.name, clone.num_classes) == ("ua3", 3)

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6)).astype("float32")
    y = rng.integers(0, 3, 48)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[UnweightedAccuracy(3)])
    history = model.fit(x[:32], y[:32], validation_data=(x[32:], y[32:]), epochs=2,
                        batch_size=8, verbose=0)
    logged = history.history["val_unweighted_accuracy"][-1]
    predicted = model.predict(x[32:], verbose=0).argmax(axis=1)
    assert logged == pytest.approx(balanced_accuracy_score(y[32:], predicted), abs=1e-6)


# ------------------------------------------------------------- aggregate_segments
def test_aggregate_segments_mean_in_order_of_first_appearance():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.4, 0.6]])
    ids, utt = aggregate_segments(probs, ["b", "a", "b", "c"])
    assert ids == ["b", "a", "c"]
    np.testing.assert_allclose(utt, [[0.7, 0.3], [0.2, 0.8], [0.4, 0.6]])


def test_aggregate_segments_vote_fractions_and_tie_break_by_mean_probability():
    probs = np.array([
        [0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.4, 0.5, 0.1],  # u1: votes 1/3, 2/3, 0
        [0.51, 0.49, 0.0], [0.1, 0.9, 0.0],                   # u2: votes tie 1-1
    ])
    utterance_ids = ["u1"] * 3 + ["u2"] * 2
    ids, votes = aggregate_segments(probs, utterance_ids, method="vote")
    assert ids == ["u1", "u2"]
    np.testing.assert_allclose(votes, [[1 / 3, 2 / 3, 0], [0.5, 0.5, 0]], atol=1e-5)
    np.testing.assert_allclose(votes.sum(axis=1), 1.0)
    _, means = aggregate_segments(probs, utterance_ids, method="mean")
    # u1: the majority (class 1) beats the single confident class-0 segment that wins the mean.
    assert means[0].argmax() == 0 and votes[0].argmax() == 1
    # u2: a 1-1 tie goes to the class with the higher mean probability, not the lower index.
    assert votes[1].argmax() == 1


def test_aggregate_segments_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        aggregate_segments(np.ones((2, 2)), ["a", "b"], method="max")
    with pytest.raises(ValueError, match="utterance ids"):
        aggregate_segments(np.ones((3, 2)), ["a", "b"])


def test_utterance_labels_follow_aggregation_order_and_catch_mixed_segments():
    ids, labels = utterance_labels([2, 0, 2, 1], ["b", "a", "b", "c"])
    assert ids == ["b", "a", "c"] and labels.tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="different labels"):
        utterance_labels([2, 0, 1], ["b", "a", "b"])


# ------------------------------------------------------------------ fold summaries
def _fold(wa, ua):
    keys = ["macro_precision", "weighted_precision", "macro_recall", "weighted_recall",
            "macro_f1", "weighted_f1"]
    return {"wa": wa, "ua": ua, **{key: 0.5 for key in keys}, "n": 10}


def test_summarise_folds_mean_and_sample_std():
    df = summarise_folds([_fold(0.6, 0.5), _fold(0.7, 0.6), _fold(0.8, 0.4)], ["03", "08", "09"])
    assert list(df.index) == ["03", "08", "09", "mean", "std"]
    assert df.loc["mean", "wa"] == pytest.approx(0.7)
    assert df.loc["std", "wa"] == pytest.approx(np.std([0.6, 0.7, 0.8], ddof=1))
    assert df.loc["mean", "ua"] == pytest.approx(0.5)
    assert df.loc["std", "macro_f1"] == pytest.approx(0.0)
    text = format_fold_table(df)
    assert "WA" in text and "70.00 ± 10.00" in text
    assert "3 fold(s)" in text


def test_summarise_folds_single_fold_and_mismatch():
    df = summarise_folds([_fold(0.6, 0.5)], ["all"])
    assert np.isnan(df.loc["std", "wa"])
    assert "60.00 ± n/a" in format_fold_table(df)
    with pytest.raises(ValueError, match="fold names"):
        summarise_folds([_fold(0.6, 0.5)], ["a", "b"])
