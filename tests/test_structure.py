"""The code's shape: no import cycles, TensorFlow only where it belongs, architectures only in
recipes, modules that fit on a screen or three, and a new architecture as one recipe."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ser_keras", "tuning")
TENSORFLOW_ALLOWED = {"ser_keras.data.tf_data", "ser_keras.export"}
MAX_LINES = 320  # "no module over ~300 lines"


def modules() -> dict:
    """{dotted module name: path} of the project's own modules."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict) -> set:
    """Every project module ``name`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def third_party_imports(path: Path) -> set:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_import_cycles():
    known = modules()
    graph = {name: {t for t in imports_of(name, path, known) if not name.startswith(t + ".")}
             for name, path in known.items()}  # a package's own __init__ is not a cycle
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_tensorflow_is_imported_only_by_the_tf_data_and_export_modules():
    offenders = [name for name, path in modules().items()
                 if "tensorflow" in third_party_imports(path) and name not in TENSORFLOW_ALLOWED]
    assert offenders == []


def test_no_module_is_too_long():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_only_recipes_name_architectures_and_front_ends():
    pattern = re.compile(r"""(arch|frontend|features\.frontend)\s*(==|!=|in)\s*\(?\s*["'](cldnn|bigru_mha|strl_ser|"""
                         r"""bilstm_att_mtl|logmel|log_power|mtl|is10|cldnn_frames)["']""")
    offenders = []
    for name, path in modules().items():
        if name.startswith("ser_keras.recipes"):
            continue
        offenders += [f"{name}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


# ----------------------------------------------------------------------------- one new recipe

def test_a_new_architecture_is_one_recipe(tmp_path):
    """A throwaway architecture (a small conv net on log-mel) registered at run time trains,
    evaluates and predicts through the shared code, with nothing else changed."""
    import keras

    from tiny import tiny_corpus

    from ser_keras import frontends, recipes, training
    from ser_keras.evaluation import evaluate_run
    from ser_keras.inference import predict_files
    from ser_keras.recipes.base import FIXED, Recipe

    def build_tiny_cnn(input_spec, num_classes, filters=4, dropout=0.0, name="tiny_cnn"):
        inputs = {"features": keras.Input(input_spec["features"], name="features")}
        x = keras.layers.Conv1D(filters, 3, activation="relu", name="conv")(inputs["features"])
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", name="emotion")(x), name=name)

    class TinyCNN(Recipe):
        name = "tiny_cnn"
        input_kind = FIXED
        frontends = ("logmel",)
        presets = {"features": {"frontend": "logmel", "sample_rate": 16000, "clip_seconds": 1.0},
                   "train": {"epochs": 1, "batch_size": 8}}

        def network_builder(self):
            return build_tiny_cnn

        def frontend(self, features):
            return frontends.LogMelSpectrogram(sample_rate=features.sample_rate, n_mels=32)

    recipes.register(TinyCNN())
    try:
        corpus = tiny_corpus(tmp_path / "corpus")
        from ser_keras.config import resolve_config

        config = resolve_config("tiny_cnn", "synthetic", **{"data.data_dir": str(corpus),
                                                             "data.cache_dir": str(tmp_path / "cache")})
        run_dir, metrics = training.train(config, runs_dir=tmp_path / "runs", progress=False, verbose=0)
        again, _ = evaluate_run(run_dir, progress=False)
        assert again["wa"] == pytest.approx(metrics["wa"])
        files = sorted(corpus.rglob("*.wav"))[:2]
        table = predict_files(run_dir, files)
        assert len(table) == 2 and np.allclose(table.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)
    finally:
        recipes.unregister("tiny_cnn")
