"""Corpus readers: each turns a corpus folder into a manifest (see ``base.py``).

``read_corpus(name, data_dir)`` is the single entry point; the readers themselves live
one per module and are imported lazily so that a missing optional piece of one corpus
never breaks another.
"""

from importlib import import_module

from ..errors import ConfigError

DATASETS = ("ravdess", "iemocap", "emodb", "styletalk", "tess", "savee", "cremad", "csv", "synthetic")


def read_corpus(name, data_dir, **options):
    """Read corpus ``name`` from ``data_dir`` -> ``base.CorpusScan`` (manifest + skipped files)."""
    if name not in DATASETS:
        raise ConfigError(f"unknown --dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    module = import_module(f"{__name__}.{name}")
    return module.read(data_dir, **options)
