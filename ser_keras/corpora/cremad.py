"""CREMA-D: ``AudioWAV/1001_DFA_ANG_XX.wav`` (the files may also sit directly in the data dir).

Fields: actor (1001-1091), sentence code (DFA, IEO, ...), emotion (ANG, DIS, FEA, HAP, NEU,
SAD), level (LO, MD, HI, or XX for unspecified).
"""

from __future__ import annotations

import re

from .base import CorpusScan, scan_file_names

CORPUS = "cremad"

EMOTIONS = {
    "ANG": "angry", "DIS": "disgust", "FEA": "fearful",
    "HAP": "happy", "NEU": "neutral", "SAD": "sad",
}
LEVELS = ("LO", "MD", "HI", "XX")

_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Za-z]{3})_(?P<emotion>[A-Za-z]{3})_(?P<level>[A-Za-z]{2})$")


def parse_name(stem: str) -> dict | str:
    """Row fields for one CREMA-D file name, or the reason it is not one."""
    match = _NAME.match(stem)
    if not match:
        return "not a CREMA-D name (AAAA_SSS_EEE_LL)"
    emotion, level = match["emotion"].upper(), match["level"].upper()
    if emotion not in EMOTIONS:
        return f"unknown emotion code {match['emotion']}"
    if level not in LEVELS:
        return f"unknown level {match['level']}"
    return {
        "label": EMOTIONS[emotion],
        "speaker": match["actor"],
        "sentence": match["sentence"].upper(),
        "level": level,
    }


def read(data_dir, **_options) -> CorpusScan:
    """Scan a CREMA-D folder (its ``AudioWAV/`` subfolder, or the wav files themselves)."""
    return scan_file_names(data_dir, CORPUS, lambda path: parse_name(path.stem))
