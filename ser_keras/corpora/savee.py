"""SAVEE: ``AudioData/{DC,JE,JK,KL}/{a,d,f,h,n,sa,su}NN.wav``, or flat ``DC_a01.wav``.

Four male speakers (two letters each); the emotion prefix is a, d, f, h, n, sa, su and
``NN`` the sentence number.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusScan, scan_file_names

CORPUS = "savee"

EMOTIONS = {
    "a": "angry", "d": "disgust", "f": "fearful", "h": "happy",
    "n": "neutral", "sa": "sad", "su": "surprised",
}
SPEAKERS = ("DC", "JE", "JK", "KL")

_NESTED = re.compile(r"^(?P<emotion>sa|su|[adfhn])(?P<sentence>\d\d)$", re.IGNORECASE)
_FLAT = re.compile(r"^(?P<speaker>[A-Za-z]{2})_(?P<emotion>sa|su|[adfhn])(?P<sentence>\d\d)$", re.IGNORECASE)


def parse_path(path: Path) -> dict | str:
    """Row fields for one SAVEE file (speaker from the folder or the flat name's prefix)."""
    flat = _FLAT.match(path.stem)
    nested = None if flat else _NESTED.match(path.stem)
    match = flat or nested
    if not match:
        return "not a SAVEE name ({a,d,f,h,n,sa,su}NN or XX_{...}NN)"
    speaker = (match["speaker"] if flat else path.parent.name).upper()
    if speaker not in SPEAKERS:
        return f"unknown speaker '{speaker}' (expected one of {', '.join(SPEAKERS)})"
    return {
        "label": EMOTIONS[match["emotion"].lower()],
        "speaker": speaker,
        "sentence": match["sentence"],
    }


def read(data_dir, **_options) -> CorpusScan:
    """Scan a SAVEE folder (``AudioData/`` per speaker, or flat ``XX_eNN.wav`` files)."""
    return scan_file_names(data_dir, CORPUS, parse_path)
