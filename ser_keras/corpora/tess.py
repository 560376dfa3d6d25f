"""TESS (Toronto emotional speech set): ``<root>/<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav``.

Two speakers, OAF (older) and YAF (younger). Copies in the wild spell the emotion in many
ways (``ps``, ``pleasant_surprise``, ``Pleasant_surprised``, ``fear``, ``Fear``), so the
label comes from the file name's last token (or last two, for ``pleasant_surprise``)
through ``labels.normalise_label``; the folder name is not trusted.
"""

from __future__ import annotations

from pathlib import Path

from ..labels import is_canonical, normalise_label
from .base import CorpusScan, scan_file_names

CORPUS = "tess"

SPEAKERS = ("OAF", "YAF")


def _emotion(tokens: list[str]) -> str | None:
    for width in (1, 2):  # "ps" / "fear" ... then "pleasant_surprise(d)"
        if len(tokens) >= 2 + width:
            label = normalise_label("_".join(tokens[-width:]))
            if is_canonical(label):
                return label
    return None


def parse_path(path: Path) -> dict | str:
    """Row fields for one TESS file name, or the reason it is not one."""
    tokens = path.stem.split("_")
    if len(tokens) < 3:
        return "not a TESS name (OAF|YAF_word_emotion)"
    speaker = tokens[0].upper()
    if speaker not in SPEAKERS:
        return f"unknown speaker '{tokens[0]}' (expected OAF or YAF)"
    label = _emotion(tokens)
    if label is None:
        return f"unknown emotion '{tokens[-1]}'"
    return {"label": label, "speaker": speaker, "word": tokens[1].lower()}


def read(data_dir, **_options) -> CorpusScan:
    """Scan a TESS folder (the one holding the OAF_* / YAF_* folders)."""
    return scan_file_names(data_dir, CORPUS, parse_path)
