"""IEMOCAP: labels from ``Session{n}/dialog/EmoEvaluation/*.txt``, audio from
``Session{n}/sentences/wav/<dialog>/<utterance>.wav``.

An evaluation line reads ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5, 2.5, 2.5]``.
The standard 4-class set is used: neutral, happy (hap + exc, as most published results),
sad, angry; every other label (fru, sur, fea, dis, oth, xxx) is dropped and counted.

The speaker is the session plus the gender letter of the utterance's *last* part
(``Ses01F_impro01_M003`` is the male actor of session 1 -> ``Ses01M``): the letter after
``Ses01`` only says who wore the markers in that dialogue.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from .base import CorpusScan, audio_files, drop_note, make_manifest, require_dir, require_rows

CORPUS = "iemocap"

FOUR_CLASSES = {"neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry"}

_LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+"
    r"(?P<utt>Ses(?P<session>\d\d)[FM]_\S+_(?P<gender>[FM])\d+)\s+(?P<emo>\S+)"
)


def evaluation_files(root: Path) -> list[Path]:
    """The per-dialogue evaluation files, with or without a wrapping IEMOCAP_full_release folder."""
    pattern = "Session*/dialog/EmoEvaluation/*.txt"
    found = sorted(root.glob(pattern)) or sorted(root.glob("*/" + pattern))
    return [p for p in found if not p.name.startswith(".")]


def parse_evaluation(text: str):
    """Yield (line_number, match or None) for every line that looks like an utterance line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("["):
            yield number, _LINE.match(line)


def _session_audio(session_dir: Path, cache: dict) -> dict[str, Path]:
    """utterance id -> audio file under ``sentences/wav`` of one session (indexed once)."""
    if session_dir not in cache:
        wav_root = session_dir / "sentences" / "wav"
        cache[session_dir] = {p.stem: p for p in audio_files(wav_root)} if wav_root.is_dir() else {}
    return cache[session_dir]


def read(data_dir, **_options) -> CorpusScan:
    """Scan an IEMOCAP release folder (the one holding Session1 ... Session5)."""
    root = require_dir(data_dir, CORPUS)
    rows, skipped, dropped, audio_index = [], [], Counter(), {}
    for evaluation in evaluation_files(root):
        session_dir = evaluation.parents[2]
        audio = _session_audio(session_dir, audio_index)
        for number, match in parse_evaluation(evaluation.read_text(errors="replace")):
            if match is None:
                skipped.append((f"{evaluation}:{number}", "malformed evaluation line"))
                continue
            utterance, emotion = match["utt"], match["emo"]
            if emotion not in FOUR_CLASSES:
                dropped[emotion] += 1
                continue
            if utterance not in audio:
                dialog = utterance.rsplit("_", 1)[0]
                skipped.append((str(session_dir / "sentences" / "wav" / dialog / f"{utterance}.wav"), "audio missing"))
                continue
            rows.append({
                "path": str(audio[utterance].absolute()),
                "label": FOUR_CLASSES[emotion],
                "speaker": f"Ses{match['session']}{match['gender']}",
                "session": f"Session{int(match['session'])}",
                "dialog": utterance.rsplit("_", 1)[0],
                "original_label": emotion,
                "start": float(match["start"]),
                "end": float(match["end"]),
            })
    scan = CorpusScan(make_manifest(rows, CORPUS), skipped, drop_note(dropped))
    return require_rows(scan, CORPUS, root)
