"""Run configuration: data, features, model and training settings, with paper presets.

A run's configuration is resolved in three layers: the architecture's paper defaults,
the (architecture, dataset) preset (what the paper used on that corpus), then the user's
``--epochs`` / ``--batch-size`` / ``--set section.key=value`` overrides. The resolved result
is saved as ``config.json`` in every run directory, together with the exact command.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields

from .errors import ConfigError

ARCHS = ("cldnn", "bigru_mha", "strl_ser", "bilstm_att_mtl")


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    protocol: str = "paper"
    fold: int = 0                     # which fold `train` runs (cv runs them all)
    seed: int = 0
    test_size: float = 0.2
    val_size: float = 0.1
    merges: list = field(default_factory=list)   # named label merges, see labels.NAMED_MERGES
    cache_dir: str | None = None
    audio_dir: str | None = None      # styletalk: audio root when it is not beside the CSVs


@dataclass
class FeatureConfig:
    frontend: str = "logmel"          # logmel | cldnn_frames | log_power | mtl | is10
    sample_rate: int = 16000
    clip_seconds: float | None = None  # fixed length (pad / crop) when set
    segment_seconds: float | None = None  # strl_ser: overlapping segments
    segment_hop_seconds: float | None = None
    augment: bool = False
    aggregate: str = "mean"           # segment decision: mean | vote


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str = "constant"        # constant | exponential | cosine
    decay_rate: float = 0.95          # exponential: factor per epoch
    patience: int = 10
    monitor: str = "val_loss"
    loss_weights: dict = field(default_factory=dict)


@dataclass
class RunConfig:
    arch: str = "cldnn"
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: dict = field(default_factory=dict)    # builder hyperparameters (defaults: the paper's)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        return cls(
            arch=data["arch"],
            data=DataConfig(**data["data"]),
            features=FeatureConfig(**data["features"]),
            model=dict(data.get("model", {})),
            train=TrainConfig(**data["train"]),
        )


# The papers' settings (SPEC §3), per architecture.
ARCH_PRESETS = {
    "cldnn": {
        "features": {"frontend": "logmel", "sample_rate": 16000, "clip_seconds": 5.0},
        "train": {"epochs": 200, "batch_size": 16, "learning_rate": 1e-3, "patience": 30, "monitor": "val_loss"},
        "data": {"merges": ["calm_to_neutral"]},
    },
    "bigru_mha": {
        "features": {"frontend": "log_power", "sample_rate": 16000},
        "train": {"epochs": 80, "batch_size": 32, "learning_rate": 1e-4, "patience": 20, "monitor": "val_loss"},
    },
    "strl_ser": {
        "features": {"frontend": "is10", "sample_rate": 16000, "segment_seconds": 1.4, "segment_hop_seconds": 0.7},
        "train": {"epochs": 150, "batch_size": 128, "learning_rate": 1e-3, "schedule": "exponential",
                  "decay_rate": 0.95, "patience": 30, "monitor": "val_loss"},
    },
    "bilstm_att_mtl": {
        "features": {"frontend": "mtl", "sample_rate": 22050, "augment": True},
        "train": {"epochs": 50, "batch_size": 32, "learning_rate": 1e-3, "schedule": "cosine", "patience": 10,
                  "monitor": "val_loss", "loss_weights": {"emotion": 1.0, "speed": 0.3, "volume": 0.3}},
    },
}

# What changes on particular corpora (the papers' per-corpus settings, and small, quick
# presets for the synthetic demo corpus so the quickstart finishes in minutes on a CPU).
DATASET_PRESETS = {
    ("cldnn", "iemocap"): {"features": {"frontend": "cldnn_frames"}},
    # Model hyperparameters per corpus (heads, kernels) live in models/specs.default_hparams.
    ("bigru_mha", "iemocap"): {"train": {"epochs": 100, "learning_rate": 1e-5}},
    ("strl_ser", "iemocap"): {"features": {"segment_seconds": 2.0, "segment_hop_seconds": 1.0}},
    ("cldnn", "synthetic"): {"features": {"clip_seconds": 3.0}, "train": {"epochs": 12, "patience": 5}},
    ("bigru_mha", "synthetic"): {"train": {"epochs": 15, "learning_rate": 1e-3, "patience": 5}},
    ("strl_ser", "synthetic"): {"train": {"epochs": 25, "batch_size": 32, "patience": 8}},
    ("bilstm_att_mtl", "synthetic"): {"train": {"epochs": 15, "patience": 5}},
}


def resolve_config(arch: str, dataset: str, overrides: list[str] | None = None, **options) -> RunConfig:
    """Paper defaults -> (arch, dataset) preset -> explicit options -> ``--set`` overrides."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown --arch '{arch}'; choose one of: {', '.join(ARCHS)}")
    config = RunConfig(arch=arch)
    config.data.dataset = dataset
    _merge(config, ARCH_PRESETS[arch])
    _merge(config, DATASET_PRESETS.get((arch, dataset), {}))
    for key, value in options.items():
        if value is not None:
            set_value(config, key, value)
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects section.key=value, got '{item}'")
        set_value(config, key.strip(), parse_value(text.strip()))
    return config


def _merge(config: RunConfig, preset: dict) -> None:
    for section, values in preset.items():
        for key, value in values.items():
            set_value(config, f"{section}.{key}", copy.deepcopy(value))


def set_value(config: RunConfig, dotted: str, value) -> None:
    """Set ``section.key`` (``model.<hparam>`` accepts any name: the builder validates it)."""
    section, _, key = dotted.partition(".")
    if section == "model" and key:
        config.model[key] = value
        return
    target = getattr(config, section, None) if section in ("data", "features", "train") else None
    names = {f.name for f in fields(target)} if target is not None else set()
    if key not in names:
        raise ConfigError(f"unknown setting '{dotted}'; valid: {', '.join(valid_keys(config))}, model.<hyperparameter>")
    setattr(target, key, value)


def valid_keys(config: RunConfig) -> list[str]:
    return [f"{s}.{f.name}" for s in ("data", "features", "train") for f in fields(getattr(config, s))]


def parse_value(text: str):
    """Interpret a ``--set`` value: JSON (numbers, true/false, null, lists, dicts) or a plain string."""
    lowered = text.lower()
    if lowered in ("true", "false", "none", "null"):
        return {"true": True, "false": False}.get(lowered)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
