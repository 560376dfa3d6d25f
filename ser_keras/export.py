"""SavedModel export for TF Serving: raw audio in, probabilities and label names out.

``export_run`` writes ``<root>/<name>/<version>/``, the layout TF Serving scans, with a
``serving_default`` signature:

- waveform models (cldnn, bigru_mha, bilstm_att_mtl): the run's whole ``model.keras`` traced:
  input ``audio`` float32 ``[batch, samples]``, mono at the model's sample rate, any length. The
  front end and the training-set normalisation run inside the graph, so a client needs no librosa.
  Audio is handled as training handled it: cropped / zero-padded to the training length (cldnn,
  bilstm_att_mtl) or used at full length (bigru_mha, which also takes ``length`` int32 ``[batch]``:
  the samples of each zero-padded row that are audio; padding is masked, so each answer equals
  that clip sent alone).
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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, RunDirError, SERError

SIGNATURE = "serving_default"
METADATA_FILE = "ser_keras.json"   # in assets/: what `predict` needs to feed the SavedModel
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ----------------------------------------------------------------------------- a trained run

@dataclass
class TrainedRun:
    """A finished run directory's whole model, class names and config."""

    run_dir: Path
    config: object        # RunConfig
    class_names: list
    model: object         # keras.Model: the whole waveform-in (or IS10-in) chain

    @property
    def recipe(self):
        return self.config.recipe


def load_run(run_dir) -> TrainedRun:
    """Load a finished run directory (RunDirError when it is not one, or unfinished)."""
    from . import runs

    config = runs.read_config(run_dir)
    return TrainedRun(Path(run_dir), config, runs.read_classes(run_dir), runs.load_model(run_dir))


def run_metadata(run: TrainedRun) -> dict:
    """What a client (and `predict`) needs to know to feed the exported signature."""
    features, recipe = run.config.features, run.recipe
    meta = {"arch": run.config.arch, "dataset": run.config.data.dataset, "input_kind": recipe.input_kind,
            "sample_rate": int(features.sample_rate), "training_samples": recipe.training_samples(features),
            "class_names": run.class_names, "signature": SIGNATURE, "inputs": signature_input_names(run),
            "outputs": output_names(run), "features": asdict(features), "run_dir": str(run.run_dir.resolve())}
    return meta


def signature_input_names(run: TrainedRun) -> list:
    return [spec.name for spec in input_signature(run)]


def output_names(run: TrainedRun) -> list:
    names = ["probabilities", "label"]
    return names + [f"{head}_{kind}" for head in run.recipe.heads for kind in ("probabilities", "label")]


# ----------------------------------------------------------------------------- the serving graph

def named_outputs(outputs, class_names, heads) -> dict:
    """The model's softmax head(s) -> probabilities and label strings per head."""
    import tensorflow as tf

    outputs = outputs if isinstance(outputs, dict) else {"emotion": outputs}
    result = {}
    for head, names in {"emotion": class_names, **heads}.items():
        prefix = "" if head == "emotion" else f"{head}_"
        probs = tf.convert_to_tensor(outputs[head])
        result[f"{prefix}probabilities"] = probs
        result[f"{prefix}label"] = tf.gather(tf.constant(list(names)), tf.argmax(probs, axis=-1))
    return result


def input_signature(run: TrainedRun) -> list:
    """audio [batch, samples] (+ length [batch]) for waveform models; IS10 inputs for strl_ser."""
    import tensorflow as tf

    from .recipes.base import SEGMENTS, VARIABLE

    recipe = run.recipe
    if recipe.input_kind == SEGMENTS:
        spec = recipe.network_spec(run.config.features)
        return [tf.TensorSpec([None, *shape], tf.float32, name=name) for name, shape in spec.items()]
    signature = [tf.TensorSpec([None, None], tf.float32, name="audio")]
    if recipe.input_kind == VARIABLE:
        signature.append(tf.TensorSpec([None], tf.int32, name="length"))
    return signature


def serving_function(run: TrainedRun):
    """``serving_default``: named inputs -> the whole model (training=False) -> named outputs."""
    names = signature_input_names(run)

    def serve(*inputs):
        feed = dict(zip(names, inputs))
        x = feed["audio"] if names == ["audio"] else feed
        return named_outputs(run.model(x, training=False), run.class_names, run.recipe.heads)

    return serve


def call_signature(fn, inputs: dict) -> dict:
    """Call a SavedModel signature on named numpy inputs -> named numpy outputs."""
    import tensorflow as tf

    outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: np.asarray(v) for k, v in outputs.items()}


def build_archive(run: TrainedRun):
    """A keras.export.ExportArchive holding the whole model and ``serving_default``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(run.model)
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
    from . import runs

    require_tensorflow()
    config = runs.read_config(run_dir)  # refuse bad names / versions before loading the model
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


def require_tensorflow(reading: bool = False) -> None:
    """Writing (`export`) or reading (`predict SAVED_MODEL`) a TensorFlow SavedModel: one clear
    line where TensorFlow is missing."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None:
        return
    if reading:
        raise SERError("predicting from a SavedModel needs TensorFlow, which is not installed here; predict "
                       "from the run directory instead (works without it, KERAS_BACKEND=jax), or "
                       "`pip install tensorflow`")
    raise SERError("export writes a TensorFlow SavedModel and needs TensorFlow, which is not installed "
                   "here; train / evaluate / predict work without it (KERAS_BACKEND=jax), export on a "
                   "machine with `pip install tensorflow`")


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
    require_tensorflow(reading=True)
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
