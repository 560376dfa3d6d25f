"""Backend-neutral batches: numpy arrays in, ``(inputs, targets)`` batches out.

One ``Batches`` object serves one part of a split (train, val or test) on every backend:
``tf_data.as_dataset`` wraps it in tf.data under TensorFlow, ``py_dataset.as_py_dataset`` in a
``keras.utils.PyDataset`` under JAX or PyTorch, so shuffling, bucketing and seeds behave the
same everywhere. The order of an epoch depends only on (seed, epoch number): a fresh order every
epoch, the same order again when a resumed run replays an epoch.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


class Batches:
    """``len(self)`` batches of ``make_batch(item_indices) -> (inputs, targets)``.

    Training parts are shuffled per epoch; with ``lengths``, items are first grouped into length
    buckets (``bucket_edges``) so that a batch pads little, and the batch order is shuffled too.
    Evaluation parts keep item order. ``weights`` (training parts): per-item sample weights,
    each batch's third element (``parts.sample_weights``).

    ``multiple`` > 1 (DataParallel over that many devices, which split every batch evenly): a
    training batch that is not a multiple of it (the last of the part, or of a bucket) is cut to
    one, so fewer than ``multiple`` items sit out each epoch (others every epoch: the order is
    reshuffled); an evaluation part loses nothing: its last batch is padded with repeats of its
    last item and every batch comes with sample weights: 0 on the padding, (items + padding) /
    items on every item, so that Keras' epoch loss (row mean of weighted losses) and weighted
    metrics are exactly those of the items alone.
    """

    def __init__(self, make_batch: Callable, n_items: int, batch_size: int, shuffle: bool = False,
                 seed: int = 0, lengths=None, bucket_edges=(), ragged=(), multiple: int = 1, weights=None,
                 utterance_of=None):
        self.make_batch, self.n_items, self.batch_size = make_batch, int(n_items), int(batch_size)
        self.ragged = tuple(ragged)  # input names whose axis 1 (time) differs between batches
        self.utterance_of = utterance_of  # segment parts: each item's utterance (parts.segment_batches)
        self.weights = None if weights is None else np.asarray(weights, np.float32)
        self.shuffle, self.seed, self.multiple = shuffle, int(seed), int(multiple)
        self.buckets = None
        if lengths is not None and shuffle:
            self.buckets = np.digitize(np.asarray(lengths), np.asarray(bucket_edges))
        self.epoch = 0  # set by the EpochOrder callback at the start of each epoch

    def __len__(self) -> int:
        if self.buckets is None:
            return max(1, self._batches_of(self.n_items))
        counts = np.bincount(self.buckets)
        return int(sum(self._batches_of(c) for c in counts if c))

    def _batches_of(self, count: int) -> int:
        full, rest = divmod(int(count), self.batch_size)
        if self.shuffle:
            rest -= rest % self.multiple  # cut to a multiple of the devices
        return full + (rest > 0)

    @property
    def padding(self) -> int:
        """Rows of weight 0 an epoch adds (evaluation parts split over several devices)."""
        if self.shuffle or self.multiple == 1:
            return 0
        return sum(-len(b) % self.multiple for b in self._order(0))

    def order(self, epoch: int) -> list[np.ndarray]:
        """The item indices of each batch of ``epoch``."""
        batches = self._order(epoch)
        if self.shuffle and self.multiple > 1:
            batches = [b[:len(b) - len(b) % self.multiple] for b in batches]
            batches = [b for b in batches if len(b)]
        return batches

    def _order(self, epoch: int) -> list[np.ndarray]:
        items = np.arange(self.n_items)
        if not self.shuffle:
            return [items[i:i + self.batch_size] for i in range(0, self.n_items, self.batch_size)]
        rng = np.random.default_rng([self.seed, epoch])
        items = rng.permutation(self.n_items)
        if self.buckets is None:
            return [items[i:i + self.batch_size] for i in range(0, self.n_items, self.batch_size)]
        batches = []
        for bucket in np.unique(self.buckets):
            members = items[self.buckets[items] == bucket]  # keeps the permuted order
            batches += [members[i:i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def batch(self, index: int, epoch: int | None = None):
        return self._make(self.order(self.epoch if epoch is None else epoch)[index])

    def __iter__(self):
        epoch = self.epoch
        for indices in self.order(epoch):
            yield self._make(indices)

    def _make(self, indices):
        if self.shuffle and self.weights is not None:
            return (*self.make_batch(indices), self.weights[indices])
        if self.shuffle or self.multiple == 1:
            return self.make_batch(indices)
        pad, scale = -len(indices) % self.multiple, (self.n_items + self.padding) / self.n_items
        weights = np.concatenate([np.full(len(indices), scale, np.float32), np.zeros(pad, np.float32)])
        x, y = self.make_batch(np.concatenate([indices, np.repeat(indices[-1:], pad)]))
        return x, y, weights


def epoch_order_callback(*sources):
    """A Keras callback that tells each source which epoch is starting (so resume replays orders)."""
    import keras

    class EpochOrder(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            for source in sources:
                source.epoch = epoch

    return EpochOrder()


def pad_or_crop(wave: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` samples, zero-padded: what the model's PadOrCrop layer does."""
    out = np.zeros(length, np.float32)
    out[:min(length, len(wave))] = wave[:length]
    return out


def pad_batch(arrays, multiple: int = 1, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length arrays (along axis 0) zero-padded to the longest, rounded up to
    ``multiple`` (fewer distinct shapes: fewer JAX compilations); returns (batch, lengths)."""
    lengths = np.array([len(a) for a in arrays], np.int32)
    longest = int(math.ceil(max(lengths.max(), 1) / multiple) * multiple)
    out = np.zeros((len(arrays), longest, *np.shape(arrays[0])[1:]), dtype)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out, lengths


def select_targets(targets: dict, indices):
    """Targets of a batch: the emotion array alone, or {head: array} for multi-task models."""
    if list(targets) == ["emotion"]:
        return targets["emotion"][indices]
    return {head: values[indices] for head, values in targets.items()}
