"""Tiny corpora and model settings so that end-to-end tests train in seconds.

The architectures keep their structure (layer types, inputs, outputs, heads) but get few
units, so the whole train -> evaluate -> export path runs on a 2-core CPU in a test.
"""

from pathlib import Path

from ser_keras.config import resolve_config
from ser_keras.corpora import synthetic

TINY_MODEL = {
    "cldnn": {"lstm_units": 8, "attention_units": 8},
    "bigru_mha": {"gru_units": 8, "conv_filters": [4, 8], "dense_units": [16, 8], "heads": 2},
    "strl_ser": {"lstm_units": 8, "utterance_units": 16, "fusion_width": 16, "heads": 2,
                 "multiscale_filters": 4, "conv_filters": [8, 8, 8]},
    "bilstm_att_mtl": {"lstm_units": 8},
}
TINY_FEATURES = {"cldnn": {"clip_seconds": 1.5}}


def tiny_corpus(root: Path) -> Path:
    """24 utterances: 3 speakers x 4 emotions x 2 repetitions (deterministic)."""
    if not (root / "metadata.csv").exists():
        synthetic.generate(root, speakers=3, seed=1, intensities=1, statements=1, repetitions=2)
    return root


def tiny_config(arch: str, data_dir: Path, cache_dir: Path, protocol="paper", epochs=2, **extra):
    overrides = [f"model.{k}={_json(v)}" for k, v in TINY_MODEL[arch].items()]
    overrides += [f"features.{k}={_json(v)}" for k, v in TINY_FEATURES.get(arch, {}).items()]
    overrides += [f"{k}={_json(v)}" for k, v in extra.items()]
    return resolve_config(arch, "synthetic", overrides=overrides, **{
        "data.data_dir": str(data_dir), "data.cache_dir": str(cache_dir), "data.protocol": protocol,
        "train.epochs": epochs, "train.batch_size": 8})


def _json(value):
    import json

    return json.dumps(value)
