"""TESS (Toronto emotional speech set): ``<root>/<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav``.

Two speakers, OAF (older) and YAF (younger). Copies in the wild spell the emotion in many
ways (``ps``, ``pleasant_surprise``, ``Pleasant_surprised``, ``fear``, ``Fear``), so the
label comes from the file name's last token (or last two, for ``pleasant_surprise``)
through ``labels.normalise_label``; the folder name is not trusted for the label.

The speaker normally comes from the file name's prefix, but the real release has at least one
file with a clipped prefix (``OAF_neutral/OA_bite_neutral.wav``); when the prefix is not a
speaker, the folder's prefix (``OAF_neutral`` -> OAF) decides, and the scan notes how often.
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


def _prefix(name: str) -> str:
    return name.split("_")[0].upper()


def _speaker(path: Path) -> str | None:
    """OAF / YAF from the file name's prefix, else from the folder's (OAF_neutral/OA_bite...)."""
    for name in (path.stem, path.parent.name):
        if _prefix(name) in SPEAKERS:
            return _prefix(name)
    return None


def parse_path(path: Path) -> dict | str:
    """Row fields for one TESS file name, or the reason it is not one."""
    tokens = path.stem.split("_")
    if len(tokens) < 3:
        return "not a TESS name (OAF|YAF_word_emotion)"
    speaker = _speaker(path)
    if speaker is None:
        return f"unknown speaker '{tokens[0]}' (expected OAF or YAF in the file or folder name)"
    label = _emotion(tokens)
    if label is None:
        return f"unknown emotion '{tokens[-1]}'"
    return {"label": label, "speaker": speaker, "word": tokens[1].lower()}


def read(data_dir, **_options) -> CorpusScan:
    """Scan a TESS folder (the one holding the OAF_* / YAF_* folders)."""
    scan = scan_file_names(data_dir, CORPUS, parse_path)
    from_folder = [Path(p).name for p in scan.manifest["path"] if _prefix(Path(p).stem) not in SPEAKERS]
    if from_folder:
        scan.notes.append(f"speaker taken from the folder name for {len(from_folder)} file(s) whose name "
                          f"does not start with OAF/YAF (e.g. {from_folder[0]})")
    return scan
