"""The parts of a split as ``Batches``, per input kind, read from the prepared cache.

- waveform recipes, augmentation on: waveform batches that the whole model (augmentation and
  front end inside) trains on;
- waveform recipes, augmentation off: the model's own ``frontend`` sub-model runs once over the
  part and its ``classifier`` trains on the cached features (the same layers; much faster on CPU);
- strl_ser: IS10 segments, each with its utterance's functionals and label.
Normalisation statistics always come from the training part's features, without augmentation.
"""

from __future__ import annotations

import numpy as np

from ..recipes.base import SEGMENTS, VARIABLE
from .batches import Batches, pad_batch, pad_or_crop, select_targets

BUCKET_EDGES_SECONDS = (2.0, 3.0, 4.0, 5.0, 7.0, 10.0)
FEATURE_CHUNK = 32


class PartInputs:
    """One part's utterances (manifest positions) as model inputs and per-utterance targets."""

    def __init__(self, recipe, features, prepared, positions, targets: dict):
        self.recipe, self.features, self.prepared = recipe, features, prepared
        self.positions = np.asarray(positions, dtype=np.int64)
        self.targets = {head: np.asarray(values)[self.positions] for head, values in targets.items()}

    def __len__(self):
        return len(self.positions)

    def items(self, indices=None) -> list:
        """Waveforms (or (lld, functionals) pairs) of the part's utterances ``indices``."""
        chosen = self.positions if indices is None else self.positions[indices]
        if self.recipe.input_kind == SEGMENTS:
            return [(self.prepared.is10_lld(int(p)), self.prepared.is10_functionals[int(p)]) for p in chosen]
        return [self.prepared.waveform(int(p)) for p in chosen]


def waveform_batches(part: PartInputs, batch_size: int, training: bool, seed: int,
                     multiple: int = 1, weights=None) -> Batches:
    """Raw audio batches for the whole model (FIXED: cropped / padded; VARIABLE: + length)."""
    recipe, features = part.recipe, part.features
    if recipe.input_kind == VARIABLE:
        pad_to = int(0.5 * features.sample_rate)  # fewer distinct shapes: fewer JAX compilations
        lengths = part.prepared.manifest["n_samples"].to_numpy()[part.positions]

        def make(indices):
            audio, length = pad_batch(part.items(indices), multiple=pad_to)
            return {"audio": audio, "length": length}, select_targets(part.targets, indices)

        return Batches(make, len(part), batch_size, training, seed, lengths=lengths,
                       bucket_edges=[s * features.sample_rate for s in BUCKET_EDGES_SECONDS], ragged=("audio",),
                       multiple=multiple, weights=weights)
    length = recipe.training_samples(features)

    def make_fixed(indices):
        audio = np.stack([pad_or_crop(w, length) for w in part.items(indices)])
        return audio, select_targets(part.targets, indices)

    return Batches(make_fixed, len(part), batch_size, training, seed, multiple=multiple, weights=weights)


def compute_features(frontend, part: PartInputs) -> list | dict:
    """The frontend sub-model over a part, once: {"features": array} (FIXED) or a list of
    per-utterance spectrograms without padding (VARIABLE)."""
    from ..distribute import predict_on_batch
    from ..scoring import model_inputs

    fixed, variable = [], []
    for start in range(0, len(part), FEATURE_CHUNK):
        inputs, _ = model_inputs(part.recipe, part.features, part.items(np.arange(start, min(start + FEATURE_CHUNK, len(part)))))
        out = {k: np.asarray(v) for k, v in predict_on_batch(frontend, inputs).items()}
        if "mask" in out:
            valid = out["mask"].sum(1).astype(int)
            variable += [out["spectrogram"][i, :n] for i, n in enumerate(valid)]
        else:
            fixed.append(out["features"])
    return variable if part.recipe.input_kind == VARIABLE else {"features": np.concatenate(fixed)}


def feature_batches(cached, part: PartInputs, batch_size: int, training: bool, seed: int,
                    multiple: int = 1, weights=None) -> Batches:
    """Batches of cached features for the classifier sub-model."""
    if isinstance(cached, list):  # variable-length spectrograms: bucketed, padded, masked
        pad_to = max(1, round(0.5 * part.features.sample_rate / part.recipe.frame_hop(part.features)))

        def make(indices):  # frames padded to a multiple of 0.5 s: fewer shapes, fewer JAX compilations
            spectrogram, frames = pad_batch([cached[i] for i in indices], multiple=pad_to)
            mask = (np.arange(spectrogram.shape[1])[None, :] < frames[:, None]).astype(np.float32)
            return {"spectrogram": spectrogram, "mask": mask}, select_targets(part.targets, indices)

        lengths = np.array([len(c) for c in cached])
        return Batches(make, len(part), batch_size, training, seed, lengths=lengths,
                       bucket_edges=[s * 100 for s in BUCKET_EDGES_SECONDS], ragged=("spectrogram", "mask"),
                       multiple=multiple, weights=weights)
    return Batches(lambda idx: ({k: v[idx] for k, v in cached.items()}, select_targets(part.targets, idx)),
                   len(part), batch_size, training, seed, multiple=multiple, weights=weights)


def segment_batches(part: PartInputs, batch_size: int, training: bool, seed: int, multiple: int = 1,
                    segment_weighting: str = "segment", class_weighting: str = "none") -> tuple[Batches, dict]:
    """strl_ser: every segment of the part (with its utterance's targets); returns (batches, table).
    ``batches.utterance_of`` gives each segment's utterance (its index in the part). Training
    parts carry ``sample_weights`` when either weighting asks for them."""
    from .segments import segment_table

    pairs = part.items()
    table, owners = segment_table(part.features, lambda i: pairs[i][0], lambda i: pairs[i][1], range(len(pairs)))
    targets = {head: values[owners] for head, values in part.targets.items()}
    weights = sample_weights(part.targets["emotion"], owners, segment_weighting, class_weighting) if training else None

    def make(indices):
        return {k: v[indices] for k, v in table.items()}, select_targets(targets, indices)

    return Batches(make, len(owners), batch_size, training, seed, multiple=multiple, weights=weights,
                   utterance_of=owners), table


def sample_weights(labels, owners=None, segment_weighting: str = "segment", class_weighting: str = "none"):
    """Per-item training weights with a mean of 1, or None when both settings are the default.

    ``labels``: one emotion class per utterance; ``owners``: each item's utterance (segments;
    None: items are the utterances). ``class_weighting="balanced"``: an utterance weighs
    1 / (utterances of its class), scikit-learn's ``compute_sample_weight("balanced")``, so every class
    counts equally in the loss (UA's view). ``segment_weighting="utterance"``: a segment weighs
    its utterance's weight / (its utterance's segment count), so a long utterance counts as much
    as a short one, as in the test report and for the SVM."""
    from sklearn.utils.class_weight import compute_sample_weight

    if segment_weighting == "segment" and class_weighting == "none":
        return None
    labels = np.asarray(labels)
    owners = np.arange(len(labels)) if owners is None else np.asarray(owners)
    weights = compute_sample_weight("balanced" if class_weighting == "balanced" else None, labels)[owners]
    if segment_weighting == "utterance":
        weights = weights / np.bincount(owners, minlength=len(labels))[owners]
    return (weights * len(weights) / weights.sum()).astype(np.float32)


def statistics(source, axes: dict) -> dict:
    """{name: (mean, variance)} of a part's features: a cached dict / list, or a segment table."""
    from ..assembly import moments_of

    if isinstance(source, list):  # spectrograms without padding
        return moments_of(({"spectrogram": s[None]} for s in source), axes)
    n = len(next(iter(source.values())))
    return moments_of(({k: v[i:i + 256] for k, v in source.items()} for i in range(0, n, 256)), axes)


def streamed_statistics(frontend, part: PartInputs, axes: dict) -> dict:
    """Training statistics without keeping the features (augmented runs recompute them anyway)."""
    from ..assembly import moments_of
    from ..distribute import predict_on_batch
    from ..scoring import model_inputs

    def chunks():
        for start in range(0, len(part), FEATURE_CHUNK):
            indices = np.arange(start, min(start + FEATURE_CHUNK, len(part)))
            inputs, _ = model_inputs(part.recipe, part.features, part.items(indices))
            yield {k: np.asarray(v) for k, v in predict_on_batch(frontend, inputs).items()}

    return moments_of(chunks(), axes)
