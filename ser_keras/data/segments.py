"""strl_ser's segments: an utterance's pooled IS10 LLDs cut into overlapping equal segments,
each carrying the utterance's functionals (paper 003, §4.3)."""

from __future__ import annotations

import numpy as np


def is10_segments(lld: np.ndarray, frames: int, hop: int) -> np.ndarray:
    """Cut an utterance's [T, 76] LLDs into overlapping [n, 76, frames, 1] segments (last padded)."""
    total = lld.shape[0]
    starts = list(range(0, max(total - frames, 0) + 1, hop))
    if starts[-1] + frames < total:
        starts.append(total - frames)  # cover the tail with one more full-length segment
    out = np.zeros((len(starts), frames, lld.shape[1]), np.float32)
    for i, s in enumerate(starts):
        piece = lld[s:s + frames]
        out[i, :len(piece)] = piece
    return np.transpose(out, (0, 2, 1))[..., None]


def segment_geometry(segment_seconds: float, hop_seconds: float | None) -> tuple[int, int]:
    """(frames per segment, hop in frames) at IS10's pooled 32 ms rate: 1.4 s -> 40, 2.0 s -> 59."""
    from ..prepare import IS10_HOP_MS, is10_frame_count

    hop_seconds = hop_seconds or segment_seconds
    return is10_frame_count(segment_seconds), max(1, int(round(hop_seconds * 1000 / IS10_HOP_MS)))


def utterance_segments(lld: np.ndarray, functionals: np.ndarray, features) -> dict:
    """All segments of one utterance as network inputs {"lld_segments", "functionals"}."""
    frames, hop = segment_geometry(features.segment_seconds, features.segment_hop_seconds)
    segments = is10_segments(lld, frames, hop)
    repeated = np.repeat(np.asarray(functionals, np.float32)[None, :], len(segments), axis=0)
    return {"lld_segments": segments, "functionals": repeated}


def segment_table(features, lld_of, functionals_of, items) -> tuple[dict, np.ndarray]:
    """Segments of many utterances stacked: ({"lld_segments", "functionals"}, owner item index)."""
    parts, owners = [], []
    for index, item in enumerate(items):
        segs = utterance_segments(lld_of(item), functionals_of(item), features)
        parts.append(segs)
        owners.append(np.full(len(segs["lld_segments"]), index, np.int64))
    stacked = {k: np.concatenate([p[k] for p in parts]) for k in ("lld_segments", "functionals")}
    return stacked, np.concatenate(owners)
