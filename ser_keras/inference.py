"""Predict emotions of audio files and folders, from a run directory or an exported SavedModel.

Both sources score through ``scoring.score_utterances``, the function `evaluate` and the run's
own reports use: a run's ``model.keras`` directly (any Keras backend, no TensorFlow needed), a
SavedModel through its ``serving_default`` signature (TensorFlow). Per file, the model's length
rule applies (scoring.py): the first training-length seconds for cldnn / bilstm_att_mtl (zero-
padded when shorter), the whole file for bigru_mha, every segment (combined) for strl_ser, whose
openSMILE IS10 features are computed in a worker process first.

Files that cannot be used (empty, corrupt, truncated, not audio, silent) are skipped with a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import AudioError, DataError, RunDirError
from .recipes.base import SEGMENTS


@dataclass
class Predictor:
    """A model to score with (``predict_on_batch`` -> head probabilities) and what feeds it."""

    source: Path
    recipe: object
    features: object      # FeatureConfig of the run
    class_names: list
    model: object         # keras.Model, or a SignatureModel

    @property
    def sample_rate(self) -> int:
        return int(self.features.sample_rate)


class SignatureModel:
    """A SavedModel's ``serving_default`` behind the ``predict_on_batch`` that scoring calls."""

    def __init__(self, loaded, signature, heads):
        self._loaded, self.signature, self.heads = loaded, signature, heads  # keep variables alive

    def predict_on_batch(self, inputs):
        from .export import call_signature

        named = inputs if isinstance(inputs, dict) else {"audio": inputs}
        out = call_signature(self.signature, named)
        return {"emotion": out["probabilities"], **{h: out[f"{h}_probabilities"] for h in self.heads}}


def open_predictor(source) -> Predictor:
    """A run directory or a SavedModel (version or model folder) written by ``export_run``."""
    from . import runs

    source = Path(source)
    if (source / "config.json").is_file():
        runs.check_run_dir(source)  # refuses an unfinished run with one line
        config = runs.read_config(source)
        return Predictor(source, config.recipe, config.features, runs.read_classes(source), runs.load_model(source))
    if not (source / "saved_model.pb").is_file():
        versions = sorted(int(p.name) for p in source.iterdir() if p.name.isdigit()) if source.is_dir() else []
        if not versions or not (source / str(versions[-1]) / "saved_model.pb").is_file():
            raise RunDirError(f"'{source}' is neither a run directory nor a SavedModel; pass runs/<run> "
                              f"or saved_models/<name>/<version>")
        source = source / str(versions[-1])  # a model folder: its newest version
    return _saved_model_predictor(source)


def _saved_model_predictor(version_dir: Path) -> Predictor:
    from . import export
    from .config import FeatureConfig
    from .recipes import get_recipe

    meta_path = version_dir / "assets" / export.METADATA_FILE
    if not meta_path.is_file():
        raise RunDirError(f"'{version_dir}' was not exported by ser_keras (no assets/{export.METADATA_FILE}); "
                          f"predict from its run directory instead")
    meta = json.loads(meta_path.read_text())
    if "features" not in meta:
        raise RunDirError(f"'{version_dir}' was exported by an older ser_keras; re-export it from its run")
    loaded, signature = export.load_signature(version_dir)
    recipe = get_recipe(meta["arch"])
    return Predictor(version_dir, recipe, FeatureConfig(**meta["features"]), meta["class_names"],
                     SignatureModel(loaded, signature, recipe.heads))


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


def load_items(predictor: Predictor, files) -> tuple[list, list, list]:
    """(usable paths, their scoring items, skipped (path, reason)) for ``score_utterances``."""
    if predictor.recipe.input_kind == SEGMENTS:
        from .prepare import decoded

        paths, items, skipped = [], [], []
        for path, result in zip(files, decoded([str(f) for f in files], predictor.sample_rate, is10=True)):
            if isinstance(result, tuple):
                skipped.append(result)
            else:
                paths.append(path)
                items.append((result["lld"], result["func"]))
        return paths, items, skipped
    from .audio import load_audio

    paths, items, skipped = [], [], []
    for path in files:
        try:
            items.append(load_audio(path, predictor.sample_rate))
            paths.append(path)
        except AudioError as error:
            skipped.append((str(path), getattr(error, "reason", str(error))))
    return paths, items, skipped


# ----------------------------------------------------------------------------- predictions

def predict_files(source, inputs, csv_path=None) -> pd.DataFrame:
    """One row per usable file: file, label, probability, p_<class>... (+ extra heads).

    ``source`` is a run directory or an exported SavedModel; ``inputs`` files and/or folders.
    Unusable files are listed in ``result.attrs["skipped"]`` as (path, reason); a DataError
    is raised when no file is usable. ``csv_path`` also writes the table (atomically).
    """
    from .scoring import score_utterances

    predictor = source if isinstance(source, Predictor) else open_predictor(source)
    files = collect_files(inputs)
    paths, items, skipped = load_items(predictor, files)
    if not items:
        raise DataError(f"none of the {len(files)} files could be used (e.g. {skipped[0][0]}: {skipped[0][1]})")
    scores = score_utterances(predictor.model, predictor.recipe, predictor.features, items)
    table = prediction_table(predictor, paths, scores)
    table.attrs["skipped"] = skipped
    if csv_path:
        from .reports import write_atomically

        write_atomically(csv_path, lambda tmp: table.to_csv(tmp, index=False))
    return table


def prediction_table(predictor: Predictor, paths, scores: dict) -> pd.DataFrame:
    names = predictor.class_names
    probs = scores["emotion"]
    table = pd.DataFrame({"file": [str(p) for p in paths], "label": [names[i] for i in probs.argmax(1)],
                          "probability": probs.max(1)})
    for i, n in enumerate(names):
        table[f"p_{n}"] = probs[:, i]
    for head, head_names in predictor.recipe.heads.items():
        table[head] = [head_names[i] for i in scores[head].argmax(1)]
        for i, n in enumerate(head_names):
            table[f"p_{head}_{n}"] = scores[head][:, i]
    return table


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

