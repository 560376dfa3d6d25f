"""Every architecture builds and runs forward under KERAS_BACKEND=jax.

Keras fixes its backend at import, so the check runs in a fresh interpreter. Skipped where
jax is not installed (CI's venv has TensorFlow only).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json
import numpy as np
import keras
from ser_keras.recipes import get_recipe, names

ARCHS = names()


def build_model(arch, spec, num_classes):
    return get_recipe(arch).build_network(spec, num_classes)

assert keras.backend.backend() == "jax", keras.backend.backend()
rng = np.random.default_rng(0)
mask = np.ones((2, 9), "float32"); mask[0, 5:] = 0
cases = {
    "cldnn": ({"features": (None, 128, 128, 1)},
              {"features": rng.normal(size=(2, 2, 128, 128, 1))}),
    "bigru_mha": ({"spectrogram": (None, 401), "mask": (None,)},
                  {"spectrogram": rng.normal(size=(2, 9, 401)) * mask[..., None], "mask": mask}),
    "strl_ser": ({"lld_segments": (76, 40, 1), "functionals": (1582,)},
                 {"lld_segments": rng.normal(size=(2, 76, 40, 1)),
                  "functionals": rng.normal(size=(2, 1582))}),
    "bilstm_att_mtl": ({"features": (12, 205)}, {"features": rng.normal(size=(2, 12, 205))}),
}
report = {}
for arch in ARCHS:
    spec, batch = cases[arch]
    batch = {k: v.astype("float32") for k, v in batch.items()}
    model = build_model(arch, spec, 4)
    out = model.predict(batch, verbose=0)
    emotion = np.asarray(out["emotion"] if isinstance(out, dict) else out)
    report[arch] = {"shape": list(emotion.shape), "sums": emotion.sum(axis=-1).tolist(),
                    "params": model.count_params()}
# Padding invariance also holds under JAX.
model = build_model("bigru_mha", cases["bigru_mha"][0], 4)
short = rng.normal(size=(1, 5, 401)).astype("float32")
alone = model.predict({"spectrogram": short, "mask": np.ones((1, 5), "float32")}, verbose=0)
padded = np.zeros((2, 9, 401), "float32"); padded[0, :5] = short[0]; padded[1] = 1.0
both = model.predict({"spectrogram": padded, "mask": mask}, verbose=0)
report["padding_gap"] = float(np.abs(both[0] - alone[0]).max())
print("REPORT" + json.dumps(report))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_every_model_runs_forward_under_jax():
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("REPORT"))
    report = json.loads(line[len("REPORT"):])
    for arch in ("cldnn", "bigru_mha", "strl_ser", "bilstm_att_mtl"):
        assert report[arch]["shape"] == [2, 4]
        assert all(abs(s - 1.0) < 1e-4 for s in report[arch]["sums"])
    assert report["padding_gap"] < 1e-5
