"""SavedModel export for TF Serving: raw audio in, probabilities and label names out.

``export_run`` writes ``<root>/<name>/<version>/``, the layout TF Serving scans, with a
``serving_default`` signature:

- waveform models (cldnn, bigru_mha, bilstm_att_mtl): input ``audio`` float32
  ``[batch, samples]``, mono at the model's sample rate, any length. The front end and the
  training-set normalisation run inside the graph, so a client needs no librosa. Audio is
  handled as training handled it: cropped / zero-padded to the training length (cldnn,
  bilstm_att_mtl) or used at full length (bigru_mha; rows of one batch share a length, so a
  client padding short rows gets that padding treated as audio: send one file per request
  for exact results).
- strl_ser, whose openSMILE features cannot run in a graph: inputs ``lld_segments``
  ``[segments, 76, T_seg, 1]`` and ``functionals`` ``[segments, 1582]``, one row per segment.
- outputs ``probabilities`` ``[batch, classes]`` and ``label`` (class-name strings);
  bilstm_att_mtl adds ``speed_probabilities`` / ``speed_label`` / ``volume_probabilities`` /
  ``volume_label``.

The version is written to a hidden sibling (``.tmp-...``, which TF Serving ignores) and
renamed when complete, so an interrupted export leaves no version directory.
``<root>/models.config`` (TF Serving's ``--model_config_file``) lists every exported model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, RunDirError, SERError

SIGNATURE = "serving_default"
MULTITASK_HEADS = {"speed": ("slow", "normal", "fast"), "volume": ("quiet", "normal", "loud")}
METADATA_FILE = "ser_keras.json"   # in assets/: what `predict` needs to feed the SavedModel
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ----------------------------------------------------------------------------- a trained run

@dataclass
class TrainedRun:
    """A run directory's model, class names and config, with its front end rebuilt."""

    run_dir: Path
    config: object        # RunConfig
    class_names: list
    model: object         # keras.Model: normalisation + network
    frontend: object      # keras layer [batch, samples] -> features, None for strl_ser

    @property
    def arch(self) -> str:
        return self.config.arch

    @property
    def waveform_input(self) -> bool:
        return self.frontend is not None


def is_run_dir(path) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in ("config.json", "classes.json", "model.keras"))


def read_run_config(run_dir):
    """The run's resolved RunConfig (cheap: no model loading); RunDirError when not a run."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise RunDirError(f"'{run_dir}' is not a finished run directory (needs config.json, classes.json "
                          f"and model.keras); pass the folder `train` printed")
    from .config import RunConfig

    return RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))


def load_run(run_dir) -> TrainedRun:
    """Load a finished run directory (RunDirError when it is not one)."""
    config = read_run_config(run_dir)
    import keras

    import ser_keras.frontends  # noqa: F401  (registers the custom objects for safe loading)
    import ser_keras.metrics  # noqa: F401
    import ser_keras.models.layers  # noqa: F401

    from .pipeline import build_frontend

    run_dir = Path(run_dir)
    names = json.loads((run_dir / "classes.json").read_text())
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    return TrainedRun(run_dir, config, list(names), model, build_frontend(config.features))


def run_metadata(run: TrainedRun) -> dict:
    """What a client (and `predict`) needs to know to feed the exported signature."""
    from .pipeline import fixed_samples

    features = run.config.features
    meta = {"arch": run.arch, "dataset": run.config.data.dataset, "sample_rate": int(features.sample_rate),
            "fixed_samples": fixed_samples(features), "class_names": run.class_names,
            "signature": SIGNATURE, "inputs": signature_input_names(run), "outputs": output_names(run),
            "aggregate": features.aggregate, "run_dir": str(run.run_dir.resolve())}
    if not run.waveform_input:
        meta["segment_seconds"] = features.segment_seconds
        meta["segment_hop_seconds"] = features.segment_hop_seconds or features.segment_seconds
        meta["lld_frames"] = int(run.model.get_layer("lld_segments").output.shape[2])
    return meta


def signature_input_names(run: TrainedRun) -> list:
    return ["audio"] if run.waveform_input else ["lld_segments", "functionals"]


def output_names(run: TrainedRun) -> list:
    names = ["probabilities", "label"]
    if run.arch == "bilstm_att_mtl":
        names += [f"{head}_{kind}" for head in MULTITASK_HEADS for kind in ("probabilities", "label")]
    return names


# ----------------------------------------------------------------------------- the serving graph

def pad_or_crop_batch(audio, length: int):
    """[batch, samples] -> [batch, length]: the first ``length`` samples, zero-padded (as training)."""
    import tensorflow as tf

    audio = audio[:, :length]
    audio = tf.pad(audio, [[0, 0], [0, length - tf.shape(audio)[1]]])
    return tf.ensure_shape(audio, [None, length])


def named_outputs(outputs, class_names) -> dict:
    """The model's softmax head(s) -> probabilities and label strings per head."""
    import tensorflow as tf

    heads = outputs if isinstance(outputs, dict) else {"emotion": outputs}
    result = {}
    for head, names in {"emotion": class_names, **MULTITASK_HEADS}.items():
        if head not in heads:
            continue
        prefix = "" if head == "emotion" else f"{head}_"
        probs = tf.convert_to_tensor(heads[head])
        result[f"{prefix}probabilities"] = probs
        result[f"{prefix}label"] = tf.gather(tf.constant(list(names)), tf.argmax(probs, axis=-1))
    return result


def audio_outputs(run: TrainedRun, audio) -> dict:
    """Raw audio [batch, samples] -> named outputs: crop/pad, front end, normalisation, network."""
    import tensorflow as tf

    from .pipeline import fixed_samples

    audio = tf.convert_to_tensor(audio, tf.float32)
    length = fixed_samples(run.config.features)
    if length is not None:
        audio = pad_or_crop_batch(audio, length)
    features = run.frontend(audio)
    if run.arch == "bigru_mha":  # full length: every frame is real
        features = {"spectrogram": features, "mask": tf.ones(tf.shape(features)[:2], tf.float32)}
    return named_outputs(run.model(features, training=False), run.class_names)


def segment_outputs(run: TrainedRun, lld_segments, functionals) -> dict:
    """strl_ser: per-segment IS10 features -> per-segment named outputs."""
    inputs = {"lld_segments": lld_segments, "functionals": functionals}
    return named_outputs(run.model(inputs, training=False), run.class_names)


def input_signature(run: TrainedRun) -> list:
    import tensorflow as tf

    if run.waveform_input:
        return [tf.TensorSpec([None, None], tf.float32, name="audio")]
    lld = run.model.get_layer("lld_segments").output.shape
    functionals = run.model.get_layer("functionals").output.shape
    return [tf.TensorSpec([None, *lld[1:]], tf.float32, name="lld_segments"),
            tf.TensorSpec([None, *functionals[1:]], tf.float32, name="functionals")]


def serving_function(run: TrainedRun):
    """``serving_default`` as a Python function of the signature's named inputs."""
    if run.waveform_input:
        def serve(audio):
            return audio_outputs(run, audio)
    else:
        def serve(lld_segments, functionals):
            return segment_outputs(run, lld_segments, functionals)
    return serve


def traced_serving_function(run: TrainedRun):
    """The same, traced once with the export's input signature (eager Keras RNNs are slow)."""
    import tensorflow as tf

    return tf.function(serving_function(run), input_signature=input_signature(run))


def call_signature(fn, inputs: dict) -> dict:
    """Call a serving function / SavedModel signature on named numpy inputs -> named numpy outputs."""
    import tensorflow as tf

    outputs = fn(**{k: tf.constant(v, tf.float32) for k, v in inputs.items()})
    return {k: np.asarray(v) for k, v in outputs.items()}


def build_archive(run: TrainedRun):
    """A keras.export.ExportArchive holding the model (+ front end) and ``serving_default``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(run.model)
    if run.waveform_input:
        run.frontend(np.zeros((1, run.config.features.sample_rate), np.float32))  # build before tracking
        archive.track(run.frontend)
    archive.add_endpoint(SIGNATURE, serving_function(run), input_signature=input_signature(run))
    return archive


# ----------------------------------------------------------------------------- TF Serving layout

def default_name(config) -> str:
    return f"{config.arch}-{config.data.dataset}"


def existing_versions(model_dir: Path) -> list:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise ConfigError(f"model name '{name}' must be letters, digits, '.', '_' or '-' (it is a folder and a URL part)")
    return name


def export_run(run_dir, name: str | None = None, version: int | None = None, force: bool = False,
               root="saved_models") -> Path:
    """Export a run as ``root/<name>/<version>/`` (atomic); rewrites ``root/models.config``."""
    config = read_run_config(run_dir)  # refuse bad names / versions before loading the model
    model_dir = Path(root) / check_name(name or default_name(config))
    if version is None:
        version = (existing_versions(model_dir) or [0])[-1] + 1
    if int(version) < 1:
        raise ConfigError(f"--version must be a positive integer, got {version}")
    final = model_dir / str(int(version))
    if final.exists() and not force:
        raise SERError(f"'{final}' already exists; pass --force to overwrite it or choose another --version")
    run = load_run(run_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".tmp-{int(version)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_version(run, tmp)
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # anything left here is an interrupted export
    write_models_config(root)
    return final


def write_version(run: TrainedRun, directory: Path) -> None:
    """The SavedModel, ``assets/labels.txt`` and ``assets/ser_keras.json`` into ``directory``."""
    build_archive(run).write_out(str(directory), verbose=False)
    assets = directory / "assets"
    assets.mkdir(exist_ok=True)
    (assets / "labels.txt").write_text("".join(f"{n}\n" for n in run.class_names))
    (assets / METADATA_FILE).write_text(json.dumps(run_metadata(run), indent=2) + "\n")


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a complete ``tmp`` to ``final``; an existing ``final`` is removed only after the move."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def models_config_text(root) -> str:
    """TF Serving ``--model_config_file`` (text protobuf) listing every model under ``root``."""
    root = Path(root).resolve()
    entries = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any((model_dir / str(v) / "saved_model.pb").is_file() for v in existing_versions(model_dir)):
            entries.append(f'  config {{\n    name: "{model_dir.name}"\n    base_path: "{model_dir}"\n'
                           f'    model_platform: "tensorflow"\n  }}\n')
    return "model_config_list {\n" + "".join(entries) + "}\n"


def write_models_config(root) -> Path:
    path = Path(root) / "models.config"
    tmp = path.with_name(f".models.config.{uuid.uuid4().hex[:8]}")
    tmp.write_text(models_config_text(root))
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- serving a request

def load_signature(export_dir):
    """``serving_default`` of a SavedModel version directory (RunDirError when it is not one)."""
    export_dir = Path(export_dir)
    if not (export_dir / "saved_model.pb").is_file():
        raise RunDirError(f"'{export_dir}' is not a SavedModel version directory (no saved_model.pb); "
                          f"pass e.g. saved_models/NAME/1")
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_dir))
    if SIGNATURE not in loaded.signatures:
        raise RunDirError(f"'{export_dir}' has no '{SIGNATURE}' signature; re-export it with `cli.py export`")
    return loaded, loaded.signatures[SIGNATURE]


def serve_request(export_dir, request, signature=None):
    """Answer a ``tensorflow_serving.apis.predict_pb2.PredictRequest`` as TF Serving would.

    Each input the signature declares is read from ``request.inputs`` (``tf.make_ndarray``),
    the signature is called, and every output goes into a ``PredictResponse``.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    if signature is None:
        _, signature = load_signature(export_dir)
    declared = signature.structured_input_signature[1]
    missing = [k for k in declared if k not in request.inputs]
    if missing:
        raise SERError(f"request lacks input(s) {', '.join(missing)}; the signature takes {', '.join(declared)}")
    inputs = {k: tf.constant(tf.make_ndarray(request.inputs[k]), declared[k].dtype) for k in declared}
    outputs = signature(**inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response
