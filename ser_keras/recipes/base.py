"""What an architecture is, in one object: the ``Recipe`` base class.

Everything that differs between architectures lives in a recipe (one module each): sample rate
and clip length, the in-graph front end, the input kind, the network builder, the extra heads,
the monitored metric, the papers' presets per corpus, the paper protocol and the search space.
Shared code (config, data, training, scoring, export, tuning) asks the recipe and never tests
an architecture's name.
"""

from __future__ import annotations

# How a run model takes its input:
FIXED = "fixed_waveform"        # audio [batch, samples], cropped / zero-padded to one training length
VARIABLE = "variable_waveform"  # audio [batch, samples] + length [batch]; padding is masked
SEGMENTS = "is10_segments"      # openSMILE IS10 features per segment (cannot run in a graph)
INPUT_KINDS = (FIXED, VARIABLE, SEGMENTS)


class Recipe:
    """Defaults for a waveform architecture; each recipe module subclasses and fills in."""

    name: str = ""
    paper: str = ""                  # which paper, for humans and the README
    input_kind: str = FIXED
    frontends: tuple = ()            # valid values of features.frontend
    heads: dict = {}                 # auxiliary heads: name -> class names (emotion is implicit)
    # Run settings by section ("data", "features", "train", "model"): the paper's defaults, then
    # what the paper changed on particular corpora (and quick presets for the synthetic corpus).
    presets: dict = {}
    dataset_presets: dict = {}
    # The concrete split "--protocol paper" means per corpus ("*": any other corpus); one of
    # splits.PAPER_KINDS.
    paper_protocol: dict = {"*": "random"}
    # Emotion classes for `summary` per corpus, where the paper merged labels.
    summary_classes: dict = {}

    # ------------------------------------------------------------------ model pieces
    def network_builder(self):
        """The Functional builder ``(input_spec, num_classes, **hparams) -> keras.Model`` taking
        ``{name: features}`` (z-scored), with heads named ``emotion`` (+ ``self.heads``)."""
        raise NotImplementedError

    def build_network(self, input_spec: dict, num_classes: int, **hparams):
        from ..errors import ConfigError

        unknown = sorted(set(hparams) - set(self.hparam_defaults()))
        if unknown:
            raise ConfigError(f"unknown {self.name} hyperparameter(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(self.hparam_defaults()))}")
        return self.network_builder()(input_spec, int(num_classes), **hparams)

    def hparam_defaults(self) -> dict:
        """{name: default} of every hyperparameter the builder accepts."""
        import inspect

        from ..startup import import_keras_quietly

        import_keras_quietly()  # the builder's module imports Keras: without its start-up lines (info, baseline)
        skip = ("input_spec", "num_classes", "name")
        parameters = inspect.signature(self.network_builder()).parameters
        return {n: p.default for n, p in parameters.items() if n not in skip}

    def frontend(self, features):
        """In-graph front end: audio ``[batch, samples]`` -> network input features (None: SEGMENTS)."""
        raise NotImplementedError

    def normalization_axes(self, features) -> dict:
        """Input name -> the axis kept by its Normalization layer (statistics are per that axis)."""
        return {"features": -1}

    def network_spec(self, features) -> dict:
        """Named network input shapes (no batch axis), read off the front end's symbolic output."""
        import keras

        samples = self.training_samples(features)
        out = self.frontend(features)(keras.Input((samples,), name="audio"))
        return {"features": tuple(out.shape[1:])}

    def frame_hop(self, features) -> int:
        """VARIABLE only: samples per feature frame (a clip of n samples has 1 + n // hop frames)."""
        raise NotImplementedError

    def training_samples(self, features) -> int | None:
        """Waveform length of every training example (FIXED), None for full-length inputs."""
        if features.clip_seconds:
            return int(round(features.clip_seconds * features.sample_rate))
        return None

    def search_space(self, hp) -> dict:
        """KerasTuner search space: ``--set``-style overrides {"section.key": value} drawn from ``hp``.

        The tuning issue's spaces: learning rate, dropout and augmentation for every architecture,
        plus what each paper varied (overridden per recipe)."""
        space = {"train.learning_rate": hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
                 "model.dropout": hp.Float("dropout", 0.0, 0.5, step=0.1)}
        if self.input_kind != SEGMENTS:  # features computed once (IS10) cannot be augmented
            space["features.augment"] = hp.Boolean("augment")
        return space

    def monitor(self, config) -> str:
        """The logged validation quantity that drives early stopping and checkpoint selection
        (multi-head models log the emotion head's metrics as ``val_emotion_<metric>``)."""
        monitor = config.train.monitor
        if self.heads and monitor != "val_loss" and not monitor.startswith("val_emotion_"):
            return "val_emotion_" + monitor[len("val_"):]
        return monitor

    # ------------------------------------------------------------------ derived
    def paper_kind(self, dataset: str) -> str:
        return self.paper_protocol.get(dataset, self.paper_protocol.get("*", "random"))

    def __repr__(self) -> str:
        return f"<recipe {self.name}>"
