"""Run configuration: data, features, model and training settings, resolved from the recipe.

A run's configuration is resolved in layers: the architecture recipe's paper defaults, the
recipe's preset for the dataset (what the paper used on that corpus), then the user's
``--epochs`` / ``--batch-size`` / ``--set section.key=value`` overrides. Every value is then
checked for type and range (``validate``) before anything is created, so a bad setting is one
``error:`` line naming the key and what it accepts. The result is saved as ``config.json``.
"""

from __future__ import annotations

import copy
import json
import numbers
from dataclasses import asdict, dataclass, field, fields

from .errors import ConfigError

PROTOCOLS = ("paper", "speaker", "loso")
SCHEDULES = ("constant", "exponential", "cosine")
PRECISIONS = ("float32", "mixed_bfloat16")
AGGREGATES = ("mean", "vote")
SEGMENT_WEIGHTINGS = ("segment", "utterance")
CLASS_WEIGHTINGS = ("none", "balanced")
VOCAL_CHANNELS = ("speech", "song", "all")


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
    vocal_channel: str | None = None  # ravdess: speech (default) | song | all


@dataclass
class FeatureConfig:
    frontend: str = "logmel"          # one of the recipe's front ends
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
    devices: str = "1"                # "1", a count, or "all": keras.distribution.DataParallel (JAX)
    precision: str = "float32"        # or mixed_bfloat16: the network computes in bf16 (opt-in, see README "Speed")
    time_limit_minutes: float | None = None  # stop after the last epoch that fits (None: no limit)
    bn_recompute_batches: int = 0     # >0: BatchNorm statistics recomputed over N training batches before each validation
    segment_weighting: str = "segment"  # strl_ser: every training segment counts once | every utterance counts once
    class_weighting: str = "none"     # none | balanced: every emotion class weighs the same in the loss
    init_from: str | None = None      # a finished run folder whose weights the first epoch starts from (warmstart.py)


@dataclass
class RunConfig:
    arch: str = "cldnn"
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: dict = field(default_factory=dict)    # builder hyperparameters (defaults: the paper's)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def recipe(self):
        from .recipes import get_recipe

        return get_recipe(self.arch)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        def known(section_cls, values):  # tolerate keys added or removed since the run was made
            names = {f.name for f in fields(section_cls)}
            return section_cls(**{k: v for k, v in values.items() if k in names})

        return cls(arch=data["arch"], data=known(DataConfig, data["data"]),
                   features=known(FeatureConfig, data["features"]), model=dict(data.get("model", {})),
                   train=known(TrainConfig, data["train"]))


def resolve_config(arch: str, dataset: str, overrides: list[str] | None = None, **options) -> RunConfig:
    """Recipe defaults -> recipe's dataset preset -> explicit options -> ``--set`` overrides, validated."""
    from .recipes import get_recipe

    recipe = get_recipe(arch)
    config = RunConfig(arch=arch)
    config.data.dataset = dataset
    _merge(config, recipe.presets)
    _merge(config, recipe.dataset_presets.get(dataset, {}))
    for key, value in options.items():
        if value is not None:
            set_value(config, key, value)
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects section.key=value, got '{item}'")
        set_value(config, key.strip(), parse_value(text.strip()))
    validate(config)
    return config


def _merge(config: RunConfig, preset: dict) -> None:
    for section, values in preset.items():
        for key, value in values.items():
            set_value(config, f"{section}.{key}", copy.deepcopy(value))


def set_value(config: RunConfig, dotted: str, value) -> None:
    """Set ``section.key`` (``model.<hparam>``: any name the recipe's builder accepts)."""
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


# ----------------------------------------------------------------------------- validation

def _integer(low, high=None):
    def check(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low and (high is None or v <= high)
    return check, f"an integer >= {low}" + ("" if high is None else f" and <= {high}")


def _number(low, high=None, low_open=True, optional=False):
    def check(v):
        if v is None:
            return optional
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            return False
        return (v > low if low_open else v >= low) and (high is None or v < high)
    bound = f"> {low}" if low_open else f">= {low}"
    text = f"a number {bound}" + ("" if high is None else f" and < {high}") + (" (or null)" if optional else "")
    return check, text


def _choice(options, optional=False):
    return (lambda v: v in options or (optional and v is None)), \
        "one of " + ", ".join(options) + (" (or null)" if optional else "")


def _devices(v):
    return v == "all" or (str(v).isdigit() and int(v) >= 1)


RULES = {
    "data.protocol": _choice(PROTOCOLS),
    "data.fold": _integer(0),
    "data.seed": _integer(0),
    "data.test_size": _number(0, 1),
    "data.val_size": _number(0, 1),
    "data.merges": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of merge names"),
    "data.vocal_channel": _choice(VOCAL_CHANNELS, optional=True),
    "features.sample_rate": _integer(1000, 192000),
    "features.clip_seconds": _number(0, optional=True),
    "features.segment_seconds": _number(0, optional=True),
    "features.segment_hop_seconds": _number(0, optional=True),
    "features.augment": (lambda v: isinstance(v, bool), "true or false"),
    "features.aggregate": _choice(AGGREGATES),
    "train.epochs": _integer(1),
    "train.batch_size": _integer(1),
    "train.learning_rate": _number(0, 1),
    "train.schedule": _choice(SCHEDULES),
    "train.decay_rate": _number(0, 1.0000001),
    "train.patience": _integer(0),
    "train.monitor": (lambda v: isinstance(v, str) and v.startswith("val_"), "a validation metric name (val_...)"),
    "train.loss_weights": (lambda v: isinstance(v, dict) and all(
        isinstance(w, numbers.Real) and not isinstance(w, bool) and w >= 0 for w in v.values()),
        "a dict of head -> weight >= 0"),
    "train.devices": (_devices, "a device count >= 1 or 'all'"),
    "train.precision": _choice(PRECISIONS),
    "train.time_limit_minutes": _number(0, optional=True),
    "train.bn_recompute_batches": _integer(0),
    "train.segment_weighting": _choice(SEGMENT_WEIGHTINGS),
    "train.class_weighting": _choice(CLASS_WEIGHTINGS),
    "train.init_from": (lambda v: v is None or (isinstance(v, str) and bool(v)), "a run folder (or null)"),
}


def validate(config: RunConfig) -> None:
    """Every setting's type and range, and the model hyperparameter names (ConfigError on the first bad one)."""
    from .recipes.base import SEGMENTS

    for dotted, (check, expected) in RULES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if not check(value):
            raise ConfigError(f"{dotted} must be {expected}, got {json.dumps(value)}")
    recipe = config.recipe
    if recipe.frontends and config.features.frontend not in recipe.frontends:
        raise ConfigError(f"features.frontend must be one of {', '.join(recipe.frontends)} for {config.arch}, "
                          f"got {json.dumps(config.features.frontend)}")
    if recipe.input_kind != SEGMENTS:
        if config.train.segment_weighting != "segment":
            raise ConfigError(f"train.segment_weighting applies to segment models (strl_ser) only; "
                              f"{config.arch} trains on whole utterances")
        if config.train.monitor.startswith("val_utterance_"):  # else no checkpoint would ever be kept
            raise ConfigError(f"train.monitor={config.train.monitor} is logged by segment models (strl_ser) "
                              f"only; {config.arch} validates whole utterances: use val_unweighted_accuracy")
    unknown_heads = set(config.train.loss_weights) - {"emotion", *recipe.heads}
    if unknown_heads:
        raise ConfigError(f"train.loss_weights names unknown head(s) {', '.join(sorted(unknown_heads))}; "
                          f"{config.arch} has: {', '.join(['emotion', *recipe.heads])}")
    if config.model:  # (checking names imports the builder, and so Keras: only when there are any)
        check_hparams(recipe, config.model)


def check_hparams(recipe, hparams: dict) -> None:
    """Model hyperparameters must be ones the recipe's builder accepts (checked without building)."""
    valid = recipe.hparam_defaults()
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {recipe.name} hyperparameter(s) {', '.join('model.' + u for u in unknown)}; "
                          f"valid: {', '.join('model.' + v for v in sorted(valid))}")
