"""The run model: one Keras model per run, waveform in (DESIGN principle 2).

    audio [batch, samples] (+ length [batch])
      -> augmentation (training only)
      -> "frontend" sub-model: pad / crop to the training length, the recipe's front end (+ frame mask)
      -> "classifier" sub-model: Normalization (training-part statistics) -> the recipe's network

strl_ser's model starts at the classifier: its openSMILE features cannot run in a graph.
``model.keras`` holds the whole chain, so it predicts from raw audio with nothing else, and the
front-end settings travel in its config. Where features are worth caching (no augmentation), the
pipeline runs the model's own ``frontend`` once and fits its ``classifier``: the same layers.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np

from .recipes.base import SEGMENTS, VARIABLE


@dataclass
class RunModel:
    model: object        # keras.Model: the whole chain (what model.keras holds)
    frontend: object     # keras.Model audio (+ length) -> network inputs; None for SEGMENTS
    classifier: object   # keras.Model network inputs -> normalisation -> network


def build_run_model(recipe, config, num_classes: int, stats: dict, frontend=None) -> RunModel:
    """The run model of ``config`` with Normalization layers set from ``stats`` {name: (mean, variance)}
    (``frontend``: the sub-model that already computed the statistics, reused)."""
    import keras

    features = config.features
    spec = recipe.network_spec(features)
    classifier = build_classifier(recipe, spec, num_classes, config.model, stats,
                                  recipe.normalization_axes(features), config.train.precision)
    if recipe.input_kind == SEGMENTS:
        inputs = {name: keras.Input(shape, name=name) for name, shape in spec.items()}
        return RunModel(keras.Model(inputs, classifier(inputs), name=recipe.name), None, classifier)
    frontend = frontend or build_frontend(recipe, features)
    inputs = waveform_inputs(recipe)
    audio = inputs["audio"]
    if features.augment:
        from .augment import WaveformAugmentation

        audio = WaveformAugmentation(seed=config.data.seed, name="augmentation")(audio)
    head = frontend({**inputs, "audio": audio} if recipe.input_kind == VARIABLE else audio)
    model_inputs = inputs if recipe.input_kind == VARIABLE else inputs["audio"]
    return RunModel(keras.Model(model_inputs, classifier(head), name=recipe.name), frontend, classifier)


def waveform_inputs(recipe) -> dict:
    import keras

    inputs = {"audio": keras.Input((None,), name="audio", dtype="float32")}
    if recipe.input_kind == VARIABLE:
        inputs["length"] = keras.Input((), name="length", dtype="int32")
    return inputs


def build_frontend(recipe, features):
    """audio (+ length) -> the network's named inputs, as a sub-model named "frontend"."""
    import keras

    from .frontends import FrameMask, PadOrCrop

    inputs = waveform_inputs(recipe)
    audio = inputs["audio"]
    samples = recipe.training_samples(features)
    if samples:
        audio = PadOrCrop(samples, name="pad_or_crop")(audio)
    computed = recipe.frontend(features)(audio)
    if recipe.input_kind == VARIABLE:
        mask = FrameMask(recipe.frame_hop(features), name="frame_mask")(inputs["length"], computed)
        return keras.Model(inputs, {"spectrogram": computed, "mask": mask}, name="frontend")
    return keras.Model(inputs["audio"], {"features": computed}, name="frontend")


def build_classifier(recipe, spec: dict, num_classes: int, hparams: dict, stats: dict, axes: dict,
                     precision: str = "float32"):
    """Normalization (per the recipe's axes, training statistics) -> network, named "classifier"."""
    import keras

    network = build_network(recipe, spec, num_classes, hparams, precision)
    network.name = "network"
    inputs = {name: keras.Input(shape, name=name) for name, shape in spec.items()}
    normalised = {}
    for name, x in inputs.items():
        if name in axes:
            mean, variance = stats[name]
            x = keras.layers.Normalization(axis=axes[name], mean=mean, variance=variance,
                                           name=f"normalize_{name}")(x)
        normalised[name] = x
    return keras.Model(inputs, network(normalised), name="classifier")


def build_network(recipe, spec: dict, num_classes: int, hparams: dict, precision: str = "float32"):
    """The recipe's network; ``precision="mixed_bfloat16"``: its layers compute in bfloat16 with
    float32 variables (Keras mixed precision), its output heads in float32, so probabilities and
    the loss stay float32. Front end, augmentation and Normalization are built outside: float32."""
    import keras

    if precision == "float32":
        return recipe.build_network(spec, num_classes, **hparams)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        network = recipe.build_network(spec, num_classes, **hparams)
    finally:
        keras.config.set_dtype_policy(previous)
    for head in ("emotion", *recipe.heads):
        network.get_layer(head).dtype_policy = "float32"
    return network


# ----------------------------------------------------------------------------- statistics

class RunningMoments:
    """Mean and variance per feature along one axis, accumulated batch by batch (float64)."""

    def __init__(self, axis: int):
        self.axis, self.count, self.total, self.squares = axis, 0, 0.0, 0.0

    def update(self, x: np.ndarray, mask: np.ndarray | None = None) -> None:
        x = np.moveaxis(np.asarray(x, np.float64), self.axis, -1).reshape(-1, np.shape(x)[self.axis])
        if mask is not None:  # one weight per row (padding frames of bucketed batches count 0)
            x = x[np.asarray(mask).reshape(-1) > 0.5]
        self.count += len(x)
        self.total = self.total + x.sum(0)
        self.squares = self.squares + (x * x).sum(0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / max(self.count, 1)
        variance = np.maximum(self.squares / max(self.count, 1) - mean * mean, 0.0)
        # A near-constant feature (e.g. an IS10 functional that hardly varies in training) would
        # be blown up at test time by 1 / std: floor its std at 0.1 % of its magnitude.
        floor = (1e-3 * np.abs(mean)) ** 2 + 1e-8
        return mean.astype(np.float32), np.maximum(variance, floor).astype(np.float32)


def moments_of(batches_of_inputs, axes: dict) -> dict:
    """{name: (mean, variance)} over an iterable of named input dicts; bigru's padding excluded."""
    moments = {name: RunningMoments(axis) for name, axis in axes.items()}
    for inputs in batches_of_inputs:
        for name, m in moments.items():
            x = np.asarray(inputs[name])
            mask = inputs.get("mask") if x.ndim == 3 and "mask" in inputs else None
            m.update(x, mask)
    return {name: m.result() for name, m in moments.items()}


# ----------------------------------------------------------------------------- summaries

def summary_network(arch: str, dataset: str, **hparams):
    """The network of the (arch, dataset) preset, as ``summary`` shows it."""
    from .config import resolve_config
    from .labels import DATASET_CLASSES
    from .recipes import get_recipe

    recipe = get_recipe(arch)
    config = resolve_config(arch, dataset)
    classes = recipe.summary_classes.get(dataset, DATASET_CLASSES.get(dataset, 4))
    merged = {**config.model, **hparams}
    return recipe.build_network(recipe.network_spec(config.features), classes, **merged)


def summary_text(arch: str, dataset: str, **hparams) -> str:
    """Keras summary of the (arch, dataset) preset network, ending with ``params: N``."""
    import io

    model = summary_network(arch, dataset, **hparams)
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
