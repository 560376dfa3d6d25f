"""Wiring between corpora, labels and the prepared cache: what `info` and `prepare` show,
and what training loads. Readers know nothing about models; models nothing about corpora.
"""

from __future__ import annotations

import pandas as pd

from .corpora import read_corpus
from .corpora.ravdess import VOCAL_CHANNEL_OPTIONS
from .errors import ConfigError


def _reader_options(dataset: str, audio_dir, vocal_channel) -> dict:
    """Keyword options for the corpus reader; ConfigError for a vocal channel it cannot take."""
    options = {"audio_dir": audio_dir} if audio_dir else {}
    if vocal_channel is None:
        return options  # the reader's default (RAVDESS: speech)
    if dataset != "ravdess":
        raise ConfigError("data.vocal_channel applies to ravdess only")
    if vocal_channel not in VOCAL_CHANNEL_OPTIONS:
        raise ConfigError(f"data.vocal_channel must be one of {', '.join(VOCAL_CHANNEL_OPTIONS)}, not '{vocal_channel}'")
    return {**options, "vocal_channel": vocal_channel}


def scan_dataset(dataset: str, data_dir=None, merges=(), audio_dir=None, vocal_channel=None):
    """Read a corpus and apply named label merges -> CorpusScan.

    ``vocal_channel`` ("speech", "song" or "all"; None = speech) picks RAVDESS recordings;
    RAVDESS song has 6 emotions (no disgust, surprised), which the scan's notes say.
    """
    from .labels import NAMED_MERGES, merge_labels

    scan = read_corpus(dataset, data_dir, **_reader_options(dataset, audio_dir, vocal_channel))
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
