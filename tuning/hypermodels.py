"""KerasTuner HyperModels built from the architecture recipes, the same way `train` builds.

One generic ``RecipeHyperModel`` serves every architecture: ``build(hp)`` applies the recipe's
``search_space(hp)`` (``--set``-style overrides) to a copy of the search's base config, then
builds the run model with the builder, front end, Normalization statistics and compile step
that `train` uses (``training.fit_inputs`` + ``assembly.build_run_model`` +
``training.compile_model``) and returns the model that fits: the whole waveform-in model when
augmentation runs inside it, the classifier sub-model on cached features otherwise, the segment
model for strl_ser.

What depends only on the data (the parts' batches, cached front-end features, the training
part's statistics) is computed once per distinct data-affecting setting (features.* and the
batch size, e.g. each strl_ser segment length, augmentation on / off) and kept for later
trials; learning rate, dropout, heads, kernel shapes, loss weights... never recompute it.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict

import keras_tuner as kt

from ser_keras.errors import ConfigError

OBJECTIVE = "val_unweighted_accuracy"
# Settings fixed for a whole search: the corpus was read, prepared and split for them.
FROZEN_PREFIXES = ("data.", "features.sample_rate")


def objective_name(recipe, config) -> str:
    """The logged name of validation UA for this recipe (``val_emotion_...`` on multi-head models)."""
    from ser_keras.training import monitor_name

    probe = copy.deepcopy(config)
    probe.train.monitor = OBJECTIVE
    return monitor_name(recipe, probe)


def objective_for(recipe, config):
    return kt.Objective(objective_name(recipe, config), direction="max")


class RecipeHyperModel(kt.HyperModel):
    """The search space and model of ``recipe`` over one fold of an already loaded corpus.

    ``fixed_keys``: settings the user set with ``--set`` that the recipe would otherwise search;
    they keep the base config's value (their hyperparameters are registered as ``Fixed``).
    """

    def __init__(self, recipe, base_config, data, fold, fixed_keys=(), name=None):
        from ser_keras.loading import make_targets

        super().__init__(name=name or recipe.name, tunable=True)
        self.recipe, self.base_config, self.data, self.fold = recipe, base_config, data, fold
        self.fixed_keys = set(fixed_keys)
        self.num_classes = len(data.class_names)
        self.targets = make_targets(recipe, data.manifest, data.class_names, fold.train)
        self._data: dict = {}    # data key -> training.FitInputs
        self._stats: dict = {}   # statistics key -> stats (shared by augmentation on / off)
        self.last_run_model = None
        self.last_result = None
        self._built_at = None

    # ------------------------------------------------------------------ config
    def config_for(self, hp):
        """The base config with this trial's values applied (validated like ``--set``)."""
        from ser_keras.config import set_value, validate

        config = copy.deepcopy(self.base_config)
        for key, value in self.recipe.search_space(hp).items():
            if key in self.fixed_keys:
                continue
            if key.startswith(FROZEN_PREFIXES):
                raise ConfigError(f"{self.recipe.name}'s search space sets {key}, which is fixed for a "
                                  f"search (the corpus is read and split once)")
            set_value(config, key, copy.deepcopy(value))
        validate(config)
        return config

    # ------------------------------------------------------------------ data (cached)
    def trial_data(self, config):
        """``training.fit_inputs`` for ``config``'s data settings, computed on first use only (the
        statistics once per front-end setting: augmentation on / off share them)."""
        from ser_keras.training import fit_inputs

        features = asdict(config.features)
        features.pop("aggregate", None)  # decides at test time only
        weighting = [config.train.segment_weighting, config.train.class_weighting]
        key = json.dumps([features, config.train.batch_size, config.data.seed, weighting], sort_keys=True, default=str)
        if key in self._data:
            return self._data[key]
        features.pop("augment", None)    # statistics are taken without augmentation
        stats_key = json.dumps(features, sort_keys=True, default=str)
        result = fit_inputs(self.recipe, config.features, self.data.prepared, self.fold, self.targets,
                            config.train.batch_size, config.data.seed, stats=self._stats.get(stats_key),
                            segment_weighting=config.train.segment_weighting,
                            class_weighting=config.train.class_weighting)
        self._stats[stats_key] = result.stats
        self._data[key] = result
        return result

    # ------------------------------------------------------------------ KerasTuner API
    def build(self, hp):
        """The compiled model a trial fits (``self.last_run_model`` holds the whole run model)."""
        import keras

        from ser_keras import distribute
        from ser_keras.assembly import build_run_model
        from ser_keras.training import compile_model, start_batch_norm_from

        self._built_at = time.monotonic()
        config = self.config_for(hp)
        data = self.trial_data(config)
        keras.utils.set_random_seed(config.data.seed)  # every trial starts from the same seed, as train
        with distribute.scope(config.train.devices):
            run_model = build_run_model(self.recipe, config, self.num_classes, data.stats)
            target = run_model.model if data.whole_model else run_model.classifier
            compile_model(target, self.recipe, config, len(data.train), self.num_classes)
            start_batch_norm_from(target, data.train)  # as train does
        self.last_run_model = run_model
        return target

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, fit_verbose=0, trial_dir=None,
            **kwargs):
        """Fit on the training part, score on the validation part (early stopping on val UA);
        returns {objective: best val UA, "epochs": epochs run, "seconds": build + fit time}."""
        import keras

        from ser_keras.data import as_loader
        from ser_keras.data.batches import epoch_order_callback
        from ser_keras.callbacks import recompute_batch_norm_callback

        config = self.config_for(hp)
        data = self.trial_data(config)
        objective = objective_name(self.recipe, config)
        started = self._built_at or time.monotonic()
        own = [epoch_order_callback(data.train, data.val),
               keras.callbacks.EarlyStopping(monitor=objective, mode="max", patience=config.train.patience),
               keras.callbacks.TerminateOnNaN()]
        if config.train.bn_recompute_batches:  # as train does: before the checkpoint callbacks see val
            own.insert(0, recompute_batch_norm_callback(data.train, config.train.bn_recompute_batches))
        if trial_dir is not None:
            own.append(keras.callbacks.CSVLogger(f"{trial_dir}/history.csv"))
        history = model.fit(as_loader(data.train), validation_data=as_loader(data.val),
                            epochs=int(epochs or config.train.epochs), initial_epoch=int(initial_epoch or 0),
                            callbacks=own + list(callbacks), verbose=kwargs.get("verbose", fit_verbose),
                            shuffle=False)
        scores = [v for v in history.history.get(objective, []) if v == v]  # NaN-free
        if not scores:
            raise kt.errors.FailedTrialError(f"no {objective} was logged (empty validation part?)")
        self.last_result = {objective: float(max(scores)), "epochs": float(len(history.epoch)),
                            "seconds": float(time.monotonic() - started)}
        return dict(self.last_result)


# ----------------------------------------------------------------------------- the space

def space_of(recipe):
    """(HyperParameters with defaults, {hp name: config keys it drives}) of the recipe's space.

    Which key an hp drives is found by changing that hp alone and seeing which values move
    (``train.loss_weights`` is driven by two), so a ``--set`` can take exactly those out."""
    hp = kt.HyperParameters()
    base = recipe.search_space(hp)
    drives = {}
    for item in hp.space:
        for other in _other_values(item):
            trial = hp.copy()
            trial.values[item.name] = other
            changed = [k for k, v in recipe.search_space(trial).items() if v != base.get(k)]
            if changed:
                drives[item.name] = changed
                break
    return hp, drives


def _other_values(item) -> list:
    default = item.default
    if isinstance(item, kt.engine.hyperparameters.Boolean):
        return [not default]
    if hasattr(item, "values"):  # Choice
        return [v for v in item.values if v != default]
    if hasattr(item, "min_value"):  # Int / Float
        return [v for v in (item.max_value, item.min_value) if v != default]
    return []


def fixed_hyperparameters(recipe, config, fixed_keys) -> tuple[kt.HyperParameters, set]:
    """``Fixed`` hps for the searched settings the user pinned with ``--set`` (and those keys),
    and for hps the recipe declares but uses for nothing (varying them would only repeat trials).

    A pinned key driven by exactly one hp records the user's value in the trials; the
    config value is the user's either way."""
    from ser_keras.config import RunConfig

    defaults, drives = space_of(recipe)
    pinned = {key for keys in drives.values() for key in keys} & set(fixed_keys)
    fixed = kt.HyperParameters()
    for item in defaults.space:
        if item.name not in drives:
            fixed.Fixed(item.name, defaults.values[item.name])
    as_dict = RunConfig.to_dict(config)
    for name, keys in drives.items():
        if not set(keys) & pinned:
            continue
        value = defaults.values[name]
        if len(keys) == 1 and sum(keys[0] in ks for ks in drives.values()) == 1:
            section, _, key = keys[0].partition(".")
            user = as_dict.get(section, {}).get(key)
            if isinstance(user, (bool, int, float, str)):
                value = user
        fixed.Fixed(name, value)
    return fixed, pinned
