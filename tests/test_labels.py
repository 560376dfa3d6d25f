import pandas as pd
import pytest

from ser_keras.errors import ConfigError
from ser_keras.labels import (
    CANONICAL_LABELS, NAMED_MERGES, class_names, merge_labels, normalise_label, resolve_merges,
)


@pytest.mark.parametrize("text, expected", [
    ("ps", "surprised"), ("pleasant_surprise", "surprised"), ("Pleasant surprised", "surprised"),
    ("pleasant-surprise", "surprised"), ("surprise", "surprised"), ("SUR", "surprised"),
    ("fear", "fearful"), ("Fear", "fearful"), ("anger", "angry"), ("ang", "angry"),
    ("happiness", "happy"), ("hap", "happy"), ("sadness", "sad"), ("disgusted", "disgust"),
    ("neu", "neutral"), (" Neutral ", "neutral"), ("bored", "boredom"), ("calm", "calm"),
    ("Cheerful", "cheerful"), ("unfriendly", "unfriendly"),
])
def test_normalise_label_maps_common_spellings(text, expected):
    assert normalise_label(text) == expected


def test_normalise_label_keeps_unknown_labels_lower_cased():
    # "excited" is corpus-specific (IEMOCAP -> happy, StyleTalk -> cheerful), so it stays as given.
    assert normalise_label("Excited") == "excited"
    assert normalise_label(" Contempt ") == "contempt"


def test_every_canonical_label_normalises_to_itself():
    assert [normalise_label(name.upper()) for name in CANONICAL_LABELS] == list(CANONICAL_LABELS)


def test_class_names_in_canonical_order_then_unknown_sorted():
    labels = ["sad", "zesty", "neutral", "angry", "sad", "contempt", "calm"]
    assert class_names(labels) == ["neutral", "calm", "sad", "angry", "contempt", "zesty"]
    assert class_names([]) == []


def test_merge_labels_maps_a_copy():
    manifest = pd.DataFrame({"path": ["a", "b", "c"], "label": ["calm", "neutral", "sad"]})
    merged = merge_labels(manifest, NAMED_MERGES["calm_to_neutral"])
    assert merged["label"].tolist() == ["neutral", "neutral", "sad"]
    assert manifest["label"].tolist() == ["calm", "neutral", "sad"]
    assert class_names(merged["label"]) == ["neutral", "sad"]


def test_resolve_merges():
    assert resolve_merges(None) == {}
    assert resolve_merges("calm_to_neutral") == {"calm": "neutral"}
    assert resolve_merges({"exc": "happy"}) == {"exc": "happy"}
    with pytest.raises(ConfigError, match="calm_to_neutral"):
        resolve_merges("nonsense")
