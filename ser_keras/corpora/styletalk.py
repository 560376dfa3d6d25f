"""StyleTalk: ``train.csv`` and ``eval.csv`` plus an audio root holding ``<diag_id>/c_N.wav``
(current turn) and ``<diag_id>/r_N.wav`` (response).

Every CSV row describes a turn pair, so it yields two utterances, each with its own emotion,
speed and volume. Emotions are merged to the paper's five classes: cheerful (+ excited),
friendly, neutral, sad, unfriendly; the rare others (e.g. ``hopeful``) are dropped and counted.
``split`` keeps the official protocol: train.csv -> "train", eval.csv -> "test".

StyleTalk has no speaker ids (the turns are synthesised). ``speaker`` is therefore the
dialogue id, so a speaker-independent protocol on StyleTalk groups by dialogue: no dialogue
contributes turns to both train and test.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from ..errors import DataError
from .base import CorpusScan, drop_note, make_manifest, require_dir, require_rows

CORPUS = "styletalk"

EMOTIONS = {
    "cheerful": "cheerful", "excited": "cheerful",
    "friendly": "friendly", "neutral": "neutral", "sad": "sad", "unfriendly": "unfriendly",
}
SPLIT_FILES = {"train.csv": "train", "eval.csv": "test"}
TURNS = {"current": "curr", "response": "res"}
REQUIRED_COLUMNS = ["diag_id", "curr_audio_id", "res_audio_id"] + [
    f"{prefix}_{field}" for prefix in TURNS.values() for field in ("emotion", "speed", "volume")
]


def _read_annotations(root: Path) -> list[tuple[str, pd.DataFrame]]:
    tables = []
    for name, split in SPLIT_FILES.items():
        path = root / name
        if not path.is_file():
            continue
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if missing:
            raise DataError(f"styletalk: '{path}' lacks column(s) {', '.join(missing)}; is it StyleTalk's {name}?")
        tables.append((split, table))
    if not tables:
        raise DataError(f"styletalk: no train.csv or eval.csv in '{root}'; point --data-dir at the StyleTalk folder")
    return tables


def _audio_root(root: Path, audio_dir, tables) -> Path:
    """``audio_dir`` if given, else whichever of data_dir / data_dir/audio holds more of the files."""
    if audio_dir is not None:
        return require_dir(audio_dir, CORPUS)
    sample = [aid for _, table in tables for aid in table["curr_audio_id"].head(50)]
    candidates = [root, root / "audio"]
    return max(candidates, key=lambda candidate: sum((candidate / aid).is_file() for aid in sample))


def _turns(split: str, table: pd.DataFrame):
    """Yield one utterance dict (still with its raw emotion) per turn of each row."""
    for row in table.to_dict("records"):
        for turn, prefix in TURNS.items():
            yield {
                "audio_id": row[f"{prefix}_audio_id"].strip(),
                "emotion": row[f"{prefix}_emotion"].strip().lower(),
                "speaker": row["diag_id"].strip(),
                "speed": row[f"{prefix}_speed"].strip().lower(),
                "volume": row[f"{prefix}_volume"].strip().lower(),
                "split": split,
                "turn": turn,
                "text": str(row.get(f"{prefix}_text", "")).strip(),
            }


def read(data_dir, audio_dir=None, **_options) -> CorpusScan:
    """Scan StyleTalk annotations; audio under ``audio_dir``, data_dir or data_dir/audio."""
    root = require_dir(data_dir, CORPUS)
    tables = _read_annotations(root)
    audio_root = _audio_root(root, audio_dir, tables)
    rows, skipped, dropped, seen = [], [], Counter(), {}
    repeats = conflicts = 0
    for split, table in tables:
        for utterance in _turns(split, table):
            path = audio_root / utterance.pop("audio_id")
            emotion = utterance.pop("emotion")
            if emotion not in EMOTIONS:
                dropped[emotion] += 1
                continue
            utterance = {"path": str(path.absolute()), "label": EMOTIONS[emotion], **utterance}
            key = utterance["path"]
            if key in seen:  # the same recording annotated twice: keep the first
                repeats += 1
                conflicts += any(seen[key][c] != utterance[c] for c in ("label", "speed", "volume", "split"))
                continue
            seen[key] = utterance
            if not path.is_file():
                skipped.append((str(path), "audio missing"))
                continue
            rows.append(utterance)
    notes = drop_note(dropped)
    if repeats:
        notes.append(f"{repeats} annotations repeat an earlier audio path; kept the first ({conflicts} with conflicting labels or split)")
    if not rows and skipped:
        raise DataError(f"styletalk: none of the {len(skipped)} annotated recordings is under '{audio_root}' "
                        "(expected <diag_id>/c_N.wav); put the audio there or set the styletalk audio_dir option")
    scan = CorpusScan(make_manifest(rows, CORPUS), skipped, notes)
    return require_rows(scan, CORPUS, audio_root)
