"""Label sets shared by every corpus, and the merges the papers use.

Every reader maps its corpus' own codes onto ``CANONICAL_LABELS`` so that a model trained on
one corpus can be evaluated on another and the class columns line up. Merges such as
calm -> neutral (the CLDNN paper's 7-class RAVDESS) are applied afterwards to a manifest,
never inside a reader, so the manifest always keeps the corpus' full label set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from .errors import ConfigError

CANONICAL_LABELS = (
    # RAVDESS speech has all eight; RAVDESS song only six (no disgust, surprised)
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
    "boredom",                               # Emo-DB
    "cheerful", "friendly", "unfriendly",    # StyleTalk
)

# Emotion classes of each corpus' standard label set (for `summary`, before any corpus is read).
DATASET_CLASSES = {"ravdess": 8, "iemocap": 4, "emodb": 7, "styletalk": 5, "tess": 7, "savee": 7,
                   "cremad": 6, "synthetic": 4}

NAMED_MERGES = {
    "calm_to_neutral": {"calm": "neutral"},
}

# Spellings seen in the wild -> canonical name. Keys are lower-case with spaces and hyphens
# turned into underscores (see ``_key``). "excited" is deliberately absent: IEMOCAP merges it
# into happy, StyleTalk into cheerful, so only the corpus reader can decide.
_ALIASES = {
    "neu": "neutral", "neutrality": "neutral",
    "hap": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy",
    "sadness": "sad",
    "ang": "angry", "anger": "angry", "mad": "angry",
    "fea": "fearful", "fear": "fearful", "afraid": "fearful", "scared": "fearful",
    "dis": "disgust", "disgusted": "disgust", "disgusting": "disgust",
    "sur": "surprised", "surprise": "surprised", "ps": "surprised",
    "pleasant_surprise": "surprised", "pleasant_surprised": "surprised",
    "pleasantsurprise": "surprised", "pleasantsurprised": "surprised",
    "bor": "boredom", "bored": "boredom", "boring": "boredom",
}


def _key(text) -> str:
    return "_".join(str(text).strip().lower().replace("-", " ").replace("_", " ").split())


def normalise_label(text) -> str:
    """A canonical label for a common spelling ('ps', 'Fear', 'anger' ...).

    Text that is neither canonical nor a known alias comes back lower-cased and stripped,
    so that custom (csv) corpora keep their own classes.
    """
    key = _key(text)
    if key in CANONICAL_LABELS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    return str(text).strip().lower()


def is_canonical(label: str) -> bool:
    return label in CANONICAL_LABELS


def class_names(labels: Iterable[str]) -> list[str]:
    """The distinct labels present: canonical ones in canonical order, then any others sorted."""
    present = set(labels)
    known = [name for name in CANONICAL_LABELS if name in present]
    return known + sorted(present.difference(CANONICAL_LABELS))


def merge_labels(manifest: pd.DataFrame, merges: Mapping[str, str]) -> pd.DataFrame:
    """A copy of ``manifest`` with labels mapped by ``merges`` (e.g. {"calm": "neutral"})."""
    merged = manifest.copy()
    merged["label"] = merged["label"].map(lambda label: merges.get(label, label))
    return merged


def resolve_merges(spec) -> dict[str, str]:
    """``None`` / a name from ``NAMED_MERGES`` / a mapping -> a merge dict (ConfigError if unknown)."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    if spec in NAMED_MERGES:
        return dict(NAMED_MERGES[spec])
    raise ConfigError(f"unknown label merge '{spec}'; choose one of: {', '.join(NAMED_MERGES)}")
