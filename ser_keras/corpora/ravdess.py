"""RAVDESS: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`` (or ``.flac``).

Seven two-digit fields: modality (01 audio-video, 02 video-only, 03 audio-only), vocal
channel (01 speech, 02 song), emotion, intensity (01 normal, 02 strong), statement,
repetition, actor (odd = male). The synthetic corpus is written in this layout too, so
actor numbers are not limited to the real release's 24.

Song recordings have 6 emotions: the song release has no disgust (07) or surprised (08), so
a song file claiming one is skipped, and a scan with song files notes the smaller class set.
"""

from __future__ import annotations

import re
from collections import Counter

from ..errors import ConfigError, DataError
from .base import CorpusScan, audio_files, make_manifest, require_dir, require_rows

CORPUS = "ravdess"

EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}
INTENSITIES = {"01": "normal", "02": "strong"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
VOCAL_CHANNEL_OPTIONS = ("speech", "song", "all")
SONG_MISSING = ("disgust", "surprised")
SONG_NOTE = f"song recordings: 6 classes (no {', '.join(SONG_MISSING)})"

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def parse_name(stem: str) -> dict | str:
    """The fields of one file name as a row dict, or a string saying why it is not RAVDESS."""
    match = _NAME.match(stem)
    if not match:
        return "not a RAVDESS name (MM-VV-EE-II-SS-RR-AA)"
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    if modality != "03":
        return f"modality {modality} is video, not audio-only (03)"
    if channel not in VOCAL_CHANNELS:
        return f"unknown vocal channel {channel}"
    if emotion not in EMOTIONS:
        return f"unknown emotion code {emotion}"
    if VOCAL_CHANNELS[channel] == "song" and EMOTIONS[emotion] in SONG_MISSING:
        return f"emotion {emotion} ({EMOTIONS[emotion]}) does not exist in RAVDESS song"
    if intensity not in INTENSITIES:
        return f"unknown intensity code {intensity}"
    if statement not in ("01", "02") or repetition not in ("01", "02") or actor == "00":
        return "statement / repetition / actor out of range"
    return {
        "label": EMOTIONS[emotion],
        "speaker": f"Actor_{actor}",
        "gender": "male" if int(actor) % 2 else "female",
        "intensity": INTENSITIES[intensity],
        "statement": statement,
        "repetition": repetition,
        "vocal_channel": VOCAL_CHANNELS[channel],
    }


def _notes(vocal_channel: str, left_out: Counter, rows: list) -> list[str]:
    notes = [f"left out {n} {channel} files (vocal_channel='{vocal_channel}'; "
             f"--set data.vocal_channel={channel} or all to use them)" for channel, n in sorted(left_out.items())]
    if any(row["vocal_channel"] == "song" for row in rows):
        notes.append(SONG_NOTE)
    return notes


def _nothing_in_channel(root, vocal_channel: str, left_out: Counter) -> DataError:
    """The one-line error for a folder that holds only the other channel's recordings (e.g. the
    Audio_Song_Actors_01-24 download read with the default speech channel)."""
    other, n = left_out.most_common(1)[0]
    return DataError(f"ravdess: no {vocal_channel} recordings under '{root}'; ignored {n} {other} files "
                     f"(to use them: --set data.vocal_channel={other})")


def read(data_dir, vocal_channel: str = "speech", **_options) -> CorpusScan:
    """Scan a RAVDESS folder; ``vocal_channel`` keeps "speech" (default), "song" or "all"."""
    if vocal_channel not in VOCAL_CHANNEL_OPTIONS:
        raise ConfigError(f"ravdess: vocal_channel must be one of {', '.join(VOCAL_CHANNEL_OPTIONS)}, not '{vocal_channel}'")
    root = require_dir(data_dir, CORPUS)
    rows, skipped, left_out = [], [], Counter()
    for path in audio_files(root):
        parsed = parse_name(path.stem)
        if isinstance(parsed, str):
            skipped.append((str(path), parsed))
        elif vocal_channel != "all" and parsed["vocal_channel"] != vocal_channel:
            left_out[parsed["vocal_channel"]] += 1
        else:
            rows.append({"path": str(path.absolute()), **parsed})
    if not rows and left_out:
        raise _nothing_in_channel(root, vocal_channel, left_out)
    scan = CorpusScan(make_manifest(rows, CORPUS), skipped, _notes(vocal_channel, left_out, rows))
    return require_rows(scan, CORPUS, root)
