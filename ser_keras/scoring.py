"""Scoring: the one function that turns utterances into per-utterance probabilities.

The run's own reports, `evaluate`, `cv` and `predict` all call ``score_utterances`` with the run's
whole model, so one file gets one answer whoever asks. The rule for lengths is the model's own:
- fixed-length models (cldnn, bilstm_att_mtl): the first training-length samples of a clip,
  zero-padded when shorter (exactly as in training; the model's PadOrCrop layer does it);
- bigru_mha: the whole clip, batched with ``length`` so padding is masked;
- strl_ser: every segment of the clip, probabilities combined by ``features.aggregate``
  (mean, the paper's rule, or vote).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data.batches import pad_batch, pad_or_crop
from .recipes.base import FIXED, SEGMENTS, VARIABLE

AGGREGATION_METHODS = ("mean", "vote")
PAD_MULTIPLE_SECONDS = 0.5  # variable-length batches are padded to a multiple of this (fewer shapes)

# Vote fractions differ by at least 1/segments, so adding this much of the mean
# probability only reorders classes with equal votes: argmax breaks ties by mean
# probability while the row still reads as vote fractions.
_VOTE_TIE_BREAK_WEIGHT = 1e-6


def model_inputs(recipe, features, items) -> tuple[dict | np.ndarray, np.ndarray]:
    """Network-ready inputs for a list of utterances, and the utterance index of each input row.

    ``items``: 1-D waveforms at the model's rate (waveform recipes), or (lld, functionals) pairs."""
    if recipe.input_kind == SEGMENTS:
        from .data.segments import utterance_segments

        parts = [utterance_segments(lld, functionals, features) for lld, functionals in items]
        owners = np.concatenate([np.full(len(p["lld_segments"]), i) for i, p in enumerate(parts)])
        return {k: np.concatenate([p[k] for p in parts]) for k in ("lld_segments", "functionals")}, owners
    owners = np.arange(len(items))
    if recipe.input_kind == FIXED:
        length = recipe.training_samples(features)
        return np.stack([pad_or_crop(w, length) for w in items]), owners
    assert recipe.input_kind == VARIABLE
    audio, lengths = pad_batch(list(items), multiple=int(PAD_MULTIPLE_SECONDS * features.sample_rate))
    return {"audio": audio, "length": lengths}, owners


def as_heads(outputs) -> dict:
    """A model's output(s) as {head: numpy probabilities}; a single output is the emotion head."""
    if isinstance(outputs, dict):
        return {k: np.asarray(v) for k, v in outputs.items()}
    return {"emotion": np.asarray(outputs)}


def score_utterances(model, recipe, features, items, batch_size: int = 16) -> dict:
    """{head: [utterances, classes]} probabilities of ``items`` in order (see the module docstring)."""
    from .distribute import predict_on_batch

    rows: dict = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        inputs, owners = model_inputs(recipe, features, chunk)
        for head, probs in as_heads(predict_on_batch(model, inputs)).items():
            method = features.aggregate if head == "emotion" else "mean"
            _, per_utterance = aggregate_segments(probs, owners, method=method)
            rows.setdefault(head, []).append(per_utterance)
    return {head: np.concatenate(parts).astype(np.float32) for head, parts in rows.items()}


# ----------------------------------------------------------------------------- segment decisions

def _group_segments(utterance_ids, num_segments: int):
    ids = np.asarray(utterance_ids).reshape(-1)
    if ids.size != num_segments:
        raise ValueError(f"{num_segments} segment rows but {ids.size} utterance ids")
    codes, uniques = pd.factorize(ids, sort=False)  # keeps the order of first appearance
    return codes, list(uniques)


def aggregate_segments(probabilities, utterance_ids, method: str = "mean"):
    """Combine segment predictions into one probability row per utterance (STRL-SER §4.3).

    ``probabilities`` is ``(segments, classes)``; ``utterance_ids`` names the utterance of each
    segment. Returns ``(ids, utterance_probs)`` with ids in order of first appearance. ``"mean"``
    averages segment probabilities; ``"vote"`` returns the fraction of segments whose argmax is
    each class, ties broken by mean probability.
    """
    if method not in AGGREGATION_METHODS:
        raise ValueError(f"method must be one of {AGGREGATION_METHODS}, got {method!r}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0:
        raise ValueError("probabilities must be a non-empty (segments, classes) array")
    codes, ids = _group_segments(utterance_ids, probabilities.shape[0])
    num_utterances, num_classes = len(ids), probabilities.shape[1]
    counts = np.bincount(codes, minlength=num_utterances).astype(np.float64)[:, None]

    summed = np.zeros((num_utterances, num_classes))
    np.add.at(summed, codes, probabilities)
    mean_probs = summed / counts
    if method == "mean":
        return ids, mean_probs

    votes = np.zeros((num_utterances, num_classes))
    np.add.at(votes, (codes, probabilities.argmax(axis=1)), 1.0)
    tie_broken = votes / counts + _VOTE_TIE_BREAK_WEIGHT * mean_probs
    return ids, tie_broken / tie_broken.sum(axis=1, keepdims=True)


def utterance_labels(segment_labels, utterance_ids):
    """One label per utterance (same order as ``aggregate_segments``); ValueError if the
    segments of one utterance carry different labels (the segmentation mixed utterances up)."""
    labels = np.asarray(segment_labels).reshape(-1)
    codes, ids = _group_segments(utterance_ids, labels.size)
    _, first_index = np.unique(codes, return_index=True)
    result = labels[first_index]
    if np.any(labels != result[codes]):
        raise ValueError("segments of the same utterance carry different labels")
    return ids, result
