"""Emo-DB (Berlin): ``wav/SSTTTEV.wav``, e.g. ``03a01Fa.wav``.

``SS`` speaker (03, 08-16), ``TTT`` text code (a01 ... b10), ``E`` emotion letter (German
initials: W Wut, L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral), ``V``
version. The wav files may also sit directly in the data directory.
"""

from __future__ import annotations

import re

from .base import CorpusScan, scan_file_names

CORPUS = "emodb"

EMOTIONS = {
    "W": "angry", "L": "boredom", "E": "disgust", "A": "fearful",
    "F": "happy", "T": "sad", "N": "neutral",
}
SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")

_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[A-Za-z])(?P<version>[a-z])$")


def parse_name(stem: str) -> dict | str:
    """Row fields for one Emo-DB file name, or the reason it is not one."""
    match = _NAME.match(stem)
    if not match:
        return "not an Emo-DB name (SSTTTEV)"
    emotion = match["emotion"].upper()
    if emotion not in EMOTIONS:
        return f"unknown emotion letter {match['emotion']}"
    if match["speaker"] not in SPEAKERS:
        return f"unknown speaker {match['speaker']}"
    return {
        "label": EMOTIONS[emotion],
        "speaker": match["speaker"],
        "text": match["text"],
        "version": match["version"],
    }


def read(data_dir, **_options) -> CorpusScan:
    """Scan an Emo-DB folder (its ``wav/`` subfolder, or the wav files themselves)."""
    return scan_file_names(data_dir, CORPUS, lambda path: parse_name(path.stem))
