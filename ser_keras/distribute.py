"""Several devices for one run: ``keras.distribution.DataParallel`` on the JAX backend.

``--set train.devices=all`` (or a count) replicates the model on that many local devices and
splits every global batch between them. Several hosts: set ``SER_KERAS_COORDINATOR``
(host:port of process 0), ``SER_KERAS_NUM_PROCESSES`` and ``SER_KERAS_PROCESS_ID`` on each
host; ``initialize_from_env`` starts ``jax.distributed`` through ``keras.distribution.initialize``
before anything else touches the devices. (TensorFlow's MultiWorkerMirroredStrategy does not work
with Keras 3 ``model.fit``, keras-team/keras#20585, so it is not offered.)
"""

from __future__ import annotations

import contextlib
import os

from .errors import ConfigError

ENV_COORDINATOR, ENV_PROCESSES, ENV_PROCESS_ID = ("SER_KERAS_COORDINATOR", "SER_KERAS_NUM_PROCESSES",
                                                  "SER_KERAS_PROCESS_ID")


def initialize_from_env() -> bool:
    """Start multi-host JAX when the environment names a coordinator; True when it did."""
    address = os.environ.get(ENV_COORDINATOR)
    if not address:
        return False
    import keras

    if keras.backend.backend() != "jax":
        raise ConfigError(f"{ENV_COORDINATOR} is set: multi-host training needs KERAS_BACKEND=jax")
    try:
        processes, process_id = int(os.environ[ENV_PROCESSES]), int(os.environ[ENV_PROCESS_ID])
    except (KeyError, ValueError):
        raise ConfigError(f"{ENV_COORDINATOR} needs {ENV_PROCESSES} and {ENV_PROCESS_ID} (integers) too") from None
    keras.distribution.initialize(address, processes, process_id)
    return True


def is_main_process() -> bool:
    """Process 0 prepares caches and writes run folders; the others wait for / read them."""
    return int(os.environ.get(ENV_PROCESS_ID, "0")) == 0


def device_count(devices) -> int:
    import keras

    available = keras.distribution.list_devices()
    wanted = len(available) if str(devices) == "all" else int(devices)
    if wanted > len(available):
        raise ConfigError(f"train.devices={devices} but only {len(available)} device(s) are visible: "
                          f"{', '.join(available)}")
    return wanted


@contextlib.contextmanager
def scope(devices):
    """Within it, new models are replicated over ``devices`` (no-op for one device)."""
    import keras

    if str(devices) == "1":
        yield 1
        return
    if keras.backend.backend() != "jax":
        raise ConfigError(f"train.devices={devices} needs KERAS_BACKEND=jax (keras.distribution.DataParallel); "
                          f"the {keras.backend.backend()} backend trains on one device here")
    count = device_count(devices)
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:count]))
    try:
        yield count
    finally:
        keras.distribution.set_distribution(previous)


def batch_share() -> int:
    """How many devices split every batch under the active distribution (1 without one)."""
    import keras

    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    mesh = distribution.device_mesh
    return int(dict(zip(mesh.axis_names, mesh.shape)).get(distribution.batch_dim_name, 1))


def predict_on_batch(model, inputs):
    """``model.predict_on_batch`` for any number of rows: under DataParallel, where every batch
    must split evenly over the devices, the rows are padded (repeating the last) and the
    outputs cut back. Outside it, exactly ``model.predict_on_batch``."""
    import keras
    import numpy as np

    share = batch_share()
    rows = len(keras.tree.flatten(inputs)[0])
    pad = -rows % share
    if not pad:
        return model.predict_on_batch(inputs)
    inputs = keras.tree.map_structure(lambda a: np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]), inputs)
    return keras.tree.map_structure(lambda a: np.asarray(a)[:rows], model.predict_on_batch(inputs))
