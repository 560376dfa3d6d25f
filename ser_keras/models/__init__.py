"""Architecture registry: ``build_model(arch, input_spec, num_classes, **hparams)``.

Builders return uncompiled Functional ``keras.Model`` objects; training code compiles them.
"""

import contextlib
import importlib
import inspect
import io
import os

from ..errors import ConfigError

ARCHS = ("cldnn", "bigru_mha", "strl_ser", "bilstm_att_mtl")
_BUILDERS = {
    "cldnn": ("cldnn", "build_cldnn"),
    "bigru_mha": ("bigru_mha", "build_bigru_mha"),
    "strl_ser": ("strl_ser", "build_strl_ser"),
    "bilstm_att_mtl": ("bilstm_att_mtl", "build_bilstm_att_mtl"),
}
# Builder arguments that are not hyperparameters.
_NOT_HPARAMS = ("input_spec", "num_classes", "name")


def get_builder(arch):
    """The builder function of ``arch`` (ConfigError naming the valid archs otherwise)."""
    if arch not in _BUILDERS:
        raise ConfigError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
    module, function = _BUILDERS[arch]
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)


def hparam_defaults(arch):
    """{name: default} of every hyperparameter ``arch`` accepts."""
    parameters = inspect.signature(get_builder(arch)).parameters
    return {name: p.default for name, p in parameters.items() if name not in _NOT_HPARAMS}


def build_model(arch, input_spec, num_classes, **hparams):
    """Build ``arch`` for ``input_spec`` (dict of named shapes) and ``num_classes``."""
    valid = hparam_defaults(arch)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {arch} hyperparameter(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(valid))}")
    return get_builder(arch)(input_spec, int(num_classes), **hparams)


def summary_text(arch, dataset, **hparams):
    """Keras summary of the (arch, dataset) preset as a string, ending with ``params: N``."""
    from .specs import default_hparams, default_num_classes, input_spec

    spec = input_spec(arch, dataset)
    merged = {**default_hparams(arch, dataset), **hparams}
    model = build_model(arch, spec, default_num_classes(arch, dataset), **merged)
    buffer = io.StringIO()
    with _wide_console():
        model.summary(print_fn=lambda text, line_break=True: buffer.write(text + "\n"))
    return buffer.getvalue().rstrip("\n") + f"\nparams: {model.count_params()}\n"


@contextlib.contextmanager
def _wide_console(columns=160):
    """Keras renders summaries with rich, which crops to the terminal width (80 when not a
    terminal); COLUMNS is how both rich and shutil learn the width."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def count_params(arch, dataset, **hparams):
    """Parameter count of the (arch, dataset) preset."""
    from .specs import default_hparams, default_num_classes, input_spec

    merged = {**default_hparams(arch, dataset), **hparams}
    model = build_model(arch, input_spec(arch, dataset), default_num_classes(arch, dataset),
                        **merged)
    return model.count_params()
