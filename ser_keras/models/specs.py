"""The contract between front ends and network builders: named input shapes.

A builder takes ``input_spec``, a dict of named shapes without the batch axis (``None`` =
variable), from its recipe (``Recipe.network_spec``), and makes its Inputs with ``model_inputs``.
"""

import keras

from ..errors import ConfigError


def model_inputs(input_spec, names):
    """{name: keras.Input} (float32) for ``names``, checking the spec provides each one.

    Models take this dict as their inputs, so every model is fed ``{name: array}`` exactly
    as ``input_spec`` names them, whatever the number of inputs.
    """
    missing = [name for name in names if name not in input_spec]
    if missing:
        raise ConfigError(f"input spec lacks {', '.join(missing)}; it must name "
                          f"{', '.join(names)} (see Recipe.network_spec)")
    return {name: keras.Input(shape=tuple(input_spec[name]), name=name, dtype="float32")
            for name in names}
