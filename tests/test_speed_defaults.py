"""The CPU-speed defaults (issue 13): the CLI keeps oneDNN on, its start-up is silent on stderr,
and what ships is what benchmarks/training_throughput.py measured fastest.

Each check runs a fresh interpreter with the environment a user has: no TF_ENABLE_ONEDNN_OPTS,
no TF_CPP_MIN_LOG_LEVEL (this suite's conftest sets one; a user's shell does not).
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark_scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


def user_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    return {**env, "KERAS_BACKEND": "tensorflow", **extra}


def run_python(code: str, **env):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=user_env(**env),
                          capture_output=True, text=True, timeout=600)


def benchmark_module():
    return load_benchmark("training_throughput")


# What a process that went through the CLI's imports and Keras start-up runs with.
PROBE = """
import json, os, sys
sys.argv = ["cli.py"]
import cli  # noqa: F401  (module-level settings)
from ser_keras.startup import import_keras_quietly
import_keras_quietly()
import keras
facts = {"env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "policy": keras.mixed_precision.global_policy().name}
try:
    from tensorflow.python.util import _pywrap_util_port
    facts["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
except ImportError:  # private module moved: the environment check above still holds
    facts["onednn"] = None
print("FACTS " + json.dumps(facts))
"""


def probe_facts(**env) -> dict:
    done = run_python(PROBE, **env)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("FACTS "))
    return json.loads(line[len("FACTS "):])


def test_cli_keeps_onednn_on():
    """Asked for explicitly: TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI /
    BF16 / AMX, and leaves it off on an AVX2 CPU (cldnn 1.95x slower there)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("ser_keras asks for oneDNN on x86-64 CPUs only")
    facts = probe_facts()
    assert facts["env"] == "1", f"the CLI left TF_ENABLE_ONEDNN_OPTS={facts['env']!r} (2x slower training on AVX2 CPUs)"
    assert facts["onednn"] in (True, None), "TensorFlow reports oneDNN off in a CLI process"


def test_users_own_onednn_setting_is_kept():
    facts = probe_facts(TF_ENABLE_ONEDNN_OPTS="0")
    assert facts["env"] == "0"
    assert facts["onednn"] in (False, None)


def test_cli_source_does_not_disable_onednn():
    """Static twin of the check above: no code path in the CLI or start-up turns oneDNN off."""
    for path in (ROOT / "cli.py", ROOT / "ser_keras" / "startup.py", ROOT / "ser_keras" / "__init__.py"):
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0]
            assert not ("TF_ENABLE_ONEDNN_OPTS" in code and "0" in code.split("TF_ENABLE_ONEDNN_OPTS", 1)[1]), \
                f"{path.name}: {line.strip()}"


def test_summary_prints_nothing_on_stderr():
    done = subprocess.run([sys.executable, "cli.py", "summary", "--arch", "cldnn"], cwd=ROOT, env=user_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", f"start-up lines on stderr:\n{done.stderr[:2000]}"
    assert done.stdout.rstrip().splitlines()[-1].startswith("params: ")


def test_shipped_settings_are_the_benchmark_winner():
    """Whatever replaced the oneDNN-off default is what the benchmark shows to be fastest:
    ``FASTEST`` in benchmarks/training_throughput.py records the winning settings, and a CLI
    process (and the compiled training model) must run with exactly those."""
    fastest = benchmark_module().FASTEST
    facts = probe_facts()
    assert (facts["onednn"] is not False and facts["env"] in (None, "1")) == fastest["onednn"]
    assert facts["policy"] == fastest["precision"]
    done = run_python(JIT_PROBE)
    assert done.returncode == 0, done.stderr[-2000:]
    jit = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("JIT "))[4:])
    assert jit == fastest["jit_compile"]


def test_cldnn_blocks_pool_before_the_elu():
    """The benchmark's ~1.16x for cldnn that ships: each block max-pools before its ELU (the same
    function, ELU being increasing) when ``FASTEST`` says so."""
    from ser_keras.assembly import summary_network

    names = [layer.name for layer in summary_network("cldnn", "ravdess")._flatten_layers()]
    assert (names.index("pool_1") < names.index("elu_1")) == benchmark_module().FASTEST["cldnn_pool_before_elu"]


# compile_model's model on this CPU-only machine: Keras "auto" resolves XLA off for TensorFlow.
JIT_PROBE = """
import json, sys
sys.argv = ["cli.py"]
import cli  # noqa: F401
from ser_keras.startup import import_keras_quietly
import_keras_quietly()
import keras
import tensorflow as tf
from ser_keras.config import resolve_config
from ser_keras.training import compile_model
config = resolve_config("strl_ser", "synthetic", overrides=["model.lstm_units=4", "model.utterance_units=4",
    "model.fusion_width=8", "model.heads=1", "model.multiscale_filters=2", "model.conv_filters=[2,2,2]"])
recipe = config.recipe
network = recipe.build_network(recipe.network_spec(config.features), 4, **config.model)
compile_model(network, recipe, config, 1, 4)
gpu = bool(tf.config.list_physical_devices("GPU"))
print("JIT " + json.dumps(bool(network.jit_compile) if not gpu else False))
"""

