"""The manifest: one row per utterance, the same columns for every corpus.

Readers only look at file names and annotation files; they never decode audio (that is
``audio.py``'s job, done once in ``prepare``). A file whose name a reader cannot parse is
not fatal: it goes to ``CorpusScan.skipped`` with a reason, and ``info`` lists it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DataError

# Columns every manifest has, in this order. Readers may add corpus-specific columns
# after them (e.g. ravdess: intensity, statement, repetition, gender; styletalk: speed,
# volume, split; csv: split).
MANIFEST_COLUMNS = ["path", "corpus", "label", "speaker"]

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3")


@dataclass
class CorpusScan:
    """What a reader found: the manifest and the files it skipped (path, reason)."""

    manifest: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "dropped 12 rows labelled 'hopeful'"


def make_manifest(rows: list[dict], corpus: str) -> pd.DataFrame:
    """Build a manifest from row dicts, with the fixed columns first and sorted by path."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=MANIFEST_COLUMNS)
    frame["corpus"] = corpus
    extra = [c for c in frame.columns if c not in MANIFEST_COLUMNS]
    frame = frame[MANIFEST_COLUMNS + extra]
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


def require_dir(data_dir, corpus: str) -> Path:
    """The corpus root as a Path, or a DataError saying what is wrong with it."""
    if data_dir is None:
        raise DataError(f"{corpus}: no data directory given; pass --data-dir DIR")
    root = Path(data_dir).expanduser().resolve()
    if not root.exists():
        raise DataError(f"{corpus}: data directory '{root}' does not exist")
    if not root.is_dir():
        raise DataError(f"{corpus}: '{root}' is not a directory")
    if not any(root.iterdir()):
        raise DataError(f"{corpus}: data directory '{root}' is empty")
    return root


def audio_files(root: Path):
    """All audio-looking files under root (any case of suffix), sorted, hidden files ignored."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_SUFFIXES
    )


def require_rows(scan: CorpusScan, corpus: str, root: Path) -> CorpusScan:
    """Raise a DataError when a reader recognised no utterance at all."""
    if scan.manifest.empty:
        hint = f" ({len(scan.skipped)} files skipped, e.g. {scan.skipped[0][0]}: {scan.skipped[0][1]})" if scan.skipped else ""
        raise DataError(f"{corpus}: no recognisable {corpus} files under '{root}'{hint}")
    return scan


def drop_note(counts, what: str = "utterances") -> list[str]:
    """``["dropped 31 utterances labelled fru (20), sur (11)"]`` from a Counter, or ``[]``."""
    total = sum(counts.values())
    if not total:
        return []
    detail = ", ".join(f"{label} ({n})" for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return [f"dropped {total} {what} labelled {detail}"]


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_duplicates(paths) -> list[list[str]]:
    """Groups (each sorted, two or more paths) of byte-identical files.

    Cheap: only files that share a size are hashed, so a corpus without duplicates is
    mostly a round of ``stat`` calls.
    """
    by_size: dict[int, list[Path]] = defaultdict(list)
    for path in {Path(p) for p in paths}:
        by_size[path.stat().st_size].append(path)
    groups = []
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        by_hash: dict[str, list[str]] = defaultdict(list)
        for path in same_size:
            by_hash[_sha1(path)].append(str(path))
        groups.extend(sorted(group) for group in by_hash.values() if len(group) > 1)
    return sorted(groups)


def scan_file_names(data_dir, corpus: str, parse) -> CorpusScan:
    """The common reader for corpora whose labels live in file names.

    ``parse(path)`` returns the row fields (label, speaker, extras) or a string saying why
    the file is not part of the corpus; such files are skipped, not fatal.
    """
    root = require_dir(data_dir, corpus)
    rows, skipped = [], []
    for path in audio_files(root):
        parsed = parse(path)
        if isinstance(parsed, str):
            skipped.append((str(path), parsed))
        else:
            rows.append({"path": str(path.absolute()), **parsed})
    return require_rows(CorpusScan(make_manifest(rows, corpus), skipped), corpus, root)
