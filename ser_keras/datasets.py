"""Wiring between corpora, labels and the prepared cache: what `info` and `prepare` show,
and what training loads. Readers know nothing about models; models nothing about corpora.
"""

from __future__ import annotations

import pandas as pd

from .corpora import read_corpus
from .errors import ConfigError


def scan_dataset(dataset: str, data_dir=None, merges=(), audio_dir=None):
    """Read a corpus and apply named label merges -> CorpusScan."""
    from .labels import NAMED_MERGES, merge_labels

    options = {"audio_dir": audio_dir} if audio_dir else {}
    scan = read_corpus(dataset, data_dir, **options)
    for name in merges:
        if name not in NAMED_MERGES:
            raise ConfigError(f"unknown label merge '{name}'; choose from: {', '.join(NAMED_MERGES)}")
        scan.manifest = merge_labels(scan.manifest, NAMED_MERGES[name])
    return scan


def describe_scan(scan, durations: pd.Series | None = None, duplicates=()) -> str:
    """The `info` report: utterances, speakers, per-class counts, durations, skips, duplicates."""
    from .labels import class_names

    m = scan.manifest
    lines = [
        f"corpus: {m['corpus'].iloc[0]}",
        f"utterances: {len(m)}",
        f"speakers: {m['speaker'].nunique()}",
        f"classes: {len(class_names(m['label']))}",
    ]
    counts = m["label"].value_counts()
    for name in class_names(m["label"]):
        lines.append(f"  {name:<12} {counts[name]:>6}")
    if "split" in m:
        lines.append("split: " + ", ".join(f"{k} {v}" for k, v in m["split"].value_counts().sort_index().items()))
    if durations is not None and durations.notna().any():
        d = durations.dropna()
        lines.append(f"duration: total {d.sum() / 3600:.2f} h, mean {d.mean():.2f} s, min {d.min():.2f} s, max {d.max():.2f} s")
    lines.extend(f"note: {note}" for note in scan.notes)
    lines.append(f"skipped: {len(scan.skipped)}")
    lines.extend(f"  {path}: {reason}" for path, reason in scan.skipped)
    lines.append(f"duplicates: {len(duplicates)} group(s) of byte-identical files")
    lines.extend("  " + " == ".join(group) for group in duplicates)
    return "\n".join(lines)


def probe_durations(scan) -> pd.Series:
    """Durations from file headers (no decoding); unreadable files move to ``scan.skipped``."""
    from .audio import probe
    from .errors import AudioError

    durations, unreadable = [], []
    for path in scan.manifest["path"]:
        try:
            rate, _, frames = probe(path)
            durations.append(frames / rate)
        except AudioError as error:
            durations.append(None)
            unreadable.append((path, str(error)))
    if unreadable:
        bad = {p for p, _ in unreadable}
        scan.skipped.extend(unreadable)
        keep = ~scan.manifest["path"].isin(bad)
        scan.manifest = scan.manifest[keep].reset_index(drop=True)
        durations = [d for d, k in zip(durations, keep) if k]
    return pd.Series(durations, dtype=float)
