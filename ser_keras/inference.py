"""Predict emotions of audio files and folders, from a run directory or an exported SavedModel.

Both sources go through the same ``serving_default`` computation (``export.audio_outputs`` /
``export.segment_outputs``; the SavedModel holds it as a graph), so a run and its export give
the same answers. Per file:

- fixed-length models (cldnn, bilstm_att_mtl): the file is cut into consecutive windows of the
  training length (a last window ending at the file's end covers the tail; a file shorter than
  one window is zero-padded, as in training) and the windows' probabilities are averaged;
- bigru_mha: the whole file in one pass (it was trained on full-length utterances);
- strl_ser: openSMILE IS10 features (in a worker process: openSMILE and TensorFlow must not
  share a process), cut into the training segments, probabilities combined as in training.

Files that cannot be used (empty, corrupt, not audio, silent) are skipped with a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .errors import AudioError, DataError, RunDirError


@dataclass
class Predictor:
    """Named inputs -> named outputs (numpy), with what is needed to build the inputs."""

    source: Path
    meta: dict            # export.run_metadata: arch, sample_rate, fixed_samples, class_names, ...
    call: Callable[[dict], dict]

    @property
    def waveform_input(self) -> bool:
        return self.meta["inputs"] == ["audio"]


def open_predictor(source) -> Predictor:
    """A run directory or a SavedModel version directory written by ``export_run``."""
    from . import export

    source = Path(source)
    if export.is_run_dir(source):
        return _run_predictor(source)
    if (source / "saved_model.pb").is_file():
        return _saved_model_predictor(source)
    versions = export.existing_versions(source)
    if versions and (source / str(versions[-1]) / "saved_model.pb").is_file():
        return _saved_model_predictor(source / str(versions[-1]))  # a model folder: its newest version
    raise RunDirError(f"'{source}' is neither a run directory nor a SavedModel; pass runs/<run> "
                      f"or saved_models/<name>/<version>")


def _run_predictor(run_dir: Path) -> Predictor:
    """The export's serving function applied to the run's Keras model (no SavedModel involved)."""
    from . import export

    run = export.load_run(run_dir)
    serve = export.traced_serving_function(run)
    return Predictor(run_dir, export.run_metadata(run), lambda inputs: export.call_signature(serve, inputs))


def _saved_model_predictor(version_dir: Path) -> Predictor:
    from . import export

    meta_path = version_dir / "assets" / export.METADATA_FILE
    if not meta_path.is_file():
        raise RunDirError(f"'{version_dir}' was not exported by ser_keras (no assets/{export.METADATA_FILE}); "
                          f"predict from its run directory instead")
    loaded, signature = export.load_signature(version_dir)
    meta = json.loads(meta_path.read_text())

    def call(inputs, _keep_alive=loaded):  # the signature's variables live as long as `loaded`
        return export.call_signature(signature, inputs)

    return Predictor(version_dir, meta, call)


# ----------------------------------------------------------------------------- inputs

def collect_files(inputs) -> list:
    """Files named directly (any suffix) and audio files found under folders, in order, once each."""
    from .corpora.base import AUDIO_SUFFIXES, audio_files

    items = [Path(i) for i in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    found = []
    for path in items:
        if path.is_dir():
            found += audio_files(path)
        elif path.exists():
            found.append(path)
        else:
            raise DataError(f"'{path}' does not exist; pass audio files or folders of them")
    files = list(dict.fromkeys(found))
    if not files:
        where = ", ".join(str(p) for p in items) or "(nothing given)"
        raise DataError(f"no audio files ({' '.join(AUDIO_SUFFIXES)}) under {where}")
    return files


def windows(x: np.ndarray, length: int) -> np.ndarray:
    """Consecutive ``[n, length]`` windows covering ``x``; the last one ends at the end of ``x``."""
    if x.size <= length:
        return np.pad(x, (0, length - x.size))[None, :]
    starts = list(range(0, x.size - length + 1, length))
    if starts[-1] + length < x.size:
        starts.append(x.size - length)
    return np.stack([x[s:s + length] for s in starts])


def waveform_requests(predictor: Predictor, files) -> tuple[list, list]:
    """(path, {"audio": [n, samples]}) per usable file, and skipped (path, reason)."""
    from .audio import load_audio

    meta, requests, skipped = predictor.meta, [], []
    for path in files:
        try:
            x = load_audio(path, meta["sample_rate"])
        except AudioError as error:
            skipped.append((str(path), getattr(error, "reason", str(error))))
            continue
        audio = windows(x, meta["fixed_samples"]) if meta["fixed_samples"] else x[None, :]
        requests.append((path, {"audio": audio.astype(np.float32)}))
    return requests, skipped


def segment_requests(predictor: Predictor, files) -> tuple[list, list]:
    """strl_ser: (path, {"lld_segments", "functionals"}) per usable file, and skipped files."""
    from .pipeline import is10_segments, segment_geometry

    meta = predictor.meta
    _, hop = segment_geometry(meta["segment_seconds"], meta["segment_hop_seconds"])
    requests, skipped = [], []
    from .prepare import decoded

    for path, result in zip(files, decoded([str(f) for f in files], meta["sample_rate"], is10=True)):
        if isinstance(result, tuple):
            skipped.append(result)
            continue
        lld = is10_segments(result["lld"], meta["lld_frames"], hop)
        functionals = np.repeat(result["func"][None, :], len(lld), axis=0).astype(np.float32)
        requests.append((path, {"lld_segments": lld, "functionals": functionals}))
    return requests, skipped


# ----------------------------------------------------------------------------- predictions

def predict_files(source, inputs, csv_path=None) -> pd.DataFrame:
    """One row per usable file: file, label, probability, segments, p_<class>... (+ speed, volume).

    ``source`` is a run directory or an exported SavedModel; ``inputs`` files and/or folders.
    Unusable files are listed in ``result.attrs["skipped"]`` as (path, reason); a DataError
    is raised when no file is usable. ``csv_path`` also writes the table (atomically).
    """
    predictor = source if isinstance(source, Predictor) else open_predictor(source)
    files = collect_files(inputs)
    make = waveform_requests if predictor.waveform_input else segment_requests
    requests, skipped = make(predictor, files)
    if not requests:
        raise DataError(f"none of the {len(files)} files could be used (e.g. {skipped[0][0]}: {skipped[0][1]})")
    rows = [prediction_row(predictor, path, predictor.call(request)) for path, request in requests]
    table = pd.DataFrame(rows)
    table.attrs["skipped"] = skipped
    if csv_path:
        from .reports import write_atomically

        write_atomically(csv_path, lambda tmp: table.to_csv(tmp, index=False))
    return table


def prediction_row(predictor: Predictor, path, outputs: dict) -> dict:
    """Combine the segment/window rows of one file into its row of the table."""
    from .export import MULTITASK_HEADS

    meta = predictor.meta
    # strl_ser combines segments as its config says (mean / vote); windows are always averaged.
    method = "mean" if predictor.waveform_input else meta.get("aggregate", "mean")
    probs = combine(outputs["probabilities"], method)
    names = meta["class_names"]
    row = {"file": str(path), "label": names[int(probs.argmax())], "probability": float(probs.max()),
           "segments": int(len(outputs["probabilities"]))}
    row.update({f"p_{n}": float(p) for n, p in zip(names, probs)})
    for head, head_names in MULTITASK_HEADS.items():
        if f"{head}_probabilities" in outputs:
            head_probs = combine(outputs[f"{head}_probabilities"], "mean")
            row[head] = head_names[int(head_probs.argmax())]
            row.update({f"p_{head}_{n}": float(p) for n, p in zip(head_names, head_probs)})
    return row


def combine(probabilities, method: str) -> np.ndarray:
    """One probability row from a file's windows / segments (``evaluation.aggregate_segments``)."""
    from .evaluation import aggregate_segments

    probabilities = np.asarray(probabilities)
    _, rows = aggregate_segments(probabilities, np.zeros(len(probabilities), np.int32), method=method)
    return rows[0]


def format_predictions(table: pd.DataFrame, skipped=()) -> str:
    """``file  label  0.87`` per file (+ speed / volume), then the skipped files with reasons."""
    width = max(len(f) for f in table["file"]) if len(table) else 0
    extra = [c for c in ("speed", "volume") if c in table]
    lines = []
    for row in table.itertuples(index=False):
        line = f"{row.file:<{width}}  {row.label:<10}  {row.probability:.2f}"
        lines.append(line + "".join(f"  {c}={getattr(row, c)}" for c in extra))
    if skipped:
        lines.append(f"skipped {len(skipped)} file(s):")
        lines += [f"  {path}: {reason}" for path, reason in skipped]
    return "\n".join(lines)

