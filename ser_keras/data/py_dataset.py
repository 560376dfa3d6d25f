"""keras.utils.PyDataset for JAX / PyTorch (no TensorFlow): the same ``Batches`` as tf.data."""

from __future__ import annotations

import keras


class BatchesDataset(keras.utils.PyDataset):
    """Index ``i`` of the current epoch's order (the epoch is set by ``batches.epoch_order_callback``)."""

    def __init__(self, batches):
        super().__init__(workers=1, use_multiprocessing=False)
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches.batch(index)
