"""tf.data under the TensorFlow backend: the same ``Batches`` as every backend, prefetched."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def as_dataset(batches) -> tf.data.Dataset:
    """``batches`` as a tf.data.Dataset of (inputs, targets[, sample weights]): one pass per epoch,
    in that epoch's order.

    Shapes are static except the batch axis and, for ``batches.ragged`` inputs, the time axis.
    """
    x, *rest = batches.batch(0, epoch=0)
    signature = (_spec(x, batches.ragged), *(_spec(v, ()) for v in rest))
    ds = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=signature)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(batches)))  # Keras can count steps
    return ds.prefetch(tf.data.AUTOTUNE)


def _spec(value, ragged, name=None):
    if isinstance(value, dict):
        return {k: _spec(v, ragged, k) for k, v in value.items()}
    value = np.asarray(value)
    shape = [None, *value.shape[1:]]
    if value.ndim > 1 and (name in ragged or (name is None and ragged)):
        shape[1] = None
    return tf.TensorSpec(shape, tf.as_dtype(value.dtype))


def gpu_names() -> list:
    """Names of the GPUs TensorFlow sees (empty on a CPU machine)."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
    return names
