"""Batches for fit / predict on any backend: tf.data under TensorFlow, a PyDataset otherwise."""

from __future__ import annotations


def as_loader(batches):
    """What ``model.fit`` takes for ``batches`` on the active Keras backend."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from .tf_data import as_dataset

        return as_dataset(batches)
    from .py_dataset import BatchesDataset

    return BatchesDataset(batches)
