"""Training throughput (utterances / s) per architecture: the shipped defaults against alternatives.

    python benchmarks/training_throughput.py --quick                  # a couple of minutes per arch
    python benchmarks/training_throughput.py --arch cldnn             # full: every variant, 2 rounds
    python benchmarks/training_throughput.py --arch cldnn --accuracy-check 3   # bf16 etc. vs float32, 3 epochs
    [--data-dir /path/to/ravdess --dataset ravdess] [--variants default bf16 ...] [--steps N] [--rounds N]

What is timed is what ``training.train`` runs: ``plan_fit`` (cached front-end features + the
classifier when augmentation is off, waveform batches + the whole model when on; strl_ser's IS10
segments) and ``compile_model``, then ``train_on_batch`` on full batches drawn from ``as_loader``
(tf.data / PyDataset) in epoch order; the batches are materialised first, so the figure is the
step itself. Every variant sees the same batches. Utterances / s = items per step / step time,
median over the timed steps (strl_ser: segments converted to utterances by the part's
segments-per-utterance).

Variants that need another environment at import (oneDNN off = ``TF_ENABLE_ONEDNN_OPTS=0``, the old
CLI default, or explicitly on; TensorFlow thread pools; the JAX backend; another memory
allocator: glibc tunables or a preloaded jemalloc / tcmalloc where installed) run in their own
worker process; variants that differ only in how the model is built / compiled (mixed_bfloat16,
XLA ``jit_compile``, batch size) share a worker with ``default`` and are interleaved step by step
(A B A B ...); their ratio is to that worker's ``default``. Each worker of another environment
runs right after a default-only reference worker, and its ratio is to that reference (a shared
machine's load drifts over minutes; a pair sees the same load). Ratios are medians over
``--rounds`` rounds. Compare ratios across machines, not utt/s.

The workload is the RAVDESS (paper) setting of each recipe, on a synthetic corpus of 3-5 s clips
in the RAVDESS layout (generated once into the cache; ``--data-dir`` takes a real corpus):
cldnn 5.0 s clips with augmentation (its preset's, since it was turned on), batch 16; bigru_mha
full length, batch 32; strl_ser 1.4 s IS10 segments, batch 128; bilstm_att_mtl 6 s at 22.05 kHz
with augmentation, batch 32.

Output: one line per variant, then ``<arch> train utt/s: <n> (<ratio>x default)`` per architecture
(the shipped default, and the best variant). ``--json OUT`` also writes every measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARCHS = ("cldnn", "bigru_mha", "strl_ser", "bilstm_att_mtl")
RESULT_TAG = "@@RESULT "
BENCH_CORPUS = "synthetic-3to5s-seed0-v1"

# The fastest settings that keep training results the same up to float noise and that the house
# rules allow, as measured by this benchmark (2-core Xeon with AVX-512 BF16 / AMX, TensorFlow 2.21,
# Keras 3.15; README "Speed"): what the library ships (tests/test_speed_defaults.py checks it).
# oneDNN on: ~1.7x over off (the old CLI default). cldnn blocks pool before the ELU: ~1.16x.
# MatmulBatchNormalization (keras.ops, sums as matmuls, hand-written gradient) over Keras' own
# layer: see README "Speed". TensorFlow's fused BatchNorm kernel is faster still, but it needs
# TensorFlow inside the model code, which must stay keras.ops only: measured, not shipped.
# On an AVX2 CPU (AMD EPYC, no AVX-512) TensorFlow leaves oneDNN off by itself; ser_keras asks for
# it (ser_keras/__init__.py): 1.95x for cldnn there. XLA jit_compile on CPU: ~0.2x. Thread-pool
# settings: within +-7 %. JAX: ~0.75x. bf16 mixed precision changes results beyond float noise:
# opt-in (train.precision). Another allocator (tcmalloc, jemalloc, huge pages) adds 7-15 % in a
# VM but is set at process start from a system package: documented, not shipped.
FASTEST = {"onednn": True, "precision": "float32", "jit_compile": False, "batch_norm": "matmul",
           "cldnn_pool_before_elu": True}


@dataclass
class Variant:
    """One way to run the same training step."""

    name: str
    backend: str = "tensorflow"
    env: dict = field(default_factory=dict)   # set before the worker imports anything
    threads: list | None = None               # [intra_op, inter_op] (TensorFlow)
    precision: str = "float32"                # or mixed_bfloat16 (the network; front end and Normalization stay float32)
    jit: bool | None = None                   # None: what compile_model gives (Keras "auto": off for TF on CPU)
    batch: int | None = None                  # None: the recipe's batch size
    batch_norm: str = "matmul"                # the conv blocks' BatchNorm: matmul (shipped), keras (Keras' own
                                              # layer) or fused (TensorFlow's one-kernel op; benchmark only)
    pool_first: bool = True                   # cldnn blocks: MaxPool before ELU (the same function; shipped)

    def group(self) -> str:
        """Variants with the same group share a worker process."""
        return json.dumps([self.backend, sorted(self.env.items()), self.threads])


def variants_for(mode: str, default_batch: int) -> list[Variant]:
    """The variants of a run; ``default`` first. Quick: the in-process ones only."""
    quick = [Variant("default"), Variant("bf16", precision="mixed_bfloat16"),
             Variant("keras_bn", batch_norm="keras"), Variant("fused_bn", batch_norm="fused")]
    if mode == "quick":
        return quick
    return quick + [
        Variant("elu_first", pool_first=False),
        Variant(f"batch{default_batch * 2}", batch=default_batch * 2),
        Variant("xla", jit=True),
        Variant("onednn_off", env={"TF_ENABLE_ONEDNN_OPTS": "0"}),
        # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI / BF16 / AMX
        Variant("onednn_on", env={"TF_ENABLE_ONEDNN_OPTS": "1"}),
        # what shipped before the speed work: oneDNN off, cldnn's ELU before the pooling
        Variant("previous_default", env={"TF_ENABLE_ONEDNN_OPTS": "0"}, pool_first=False, batch_norm="keras"),
        Variant("threads_1_1", threads=[1, 1]),
        Variant("threads_2_1", threads=[2, 1]),
        Variant("jax", backend="jax"),
        Variant("jax+bf16", backend="jax", precision="mixed_bfloat16"),
    ] + allocator_variants()


def allocator_variants() -> list[Variant]:
    """The same step under other memory allocators, set at process start (nothing in the code
    changes). In a VM, where a page fault is dear, training with glibc's default took ~130,000
    faults a second; these show which allocator avoids them (README "Speed")."""
    import ctypes.util

    variants = [
        # glibc, never unmapping: no mmap for big blocks, no trimming of the heap's top
        Variant("glibc_keep", env={"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"}),
        # glibc asking for transparent huge pages (2 MB) on what it maps
        Variant("glibc_thp", env={"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}),
    ]
    for name, lib in (("jemalloc", "jemalloc"), ("tcmalloc", "tcmalloc_minimal")):
        found = ctypes.util.find_library(lib)   # a soname: the loader finds it on its own path
        if found:
            variants.append(Variant(name, env={"LD_PRELOAD": found}))
    # and each with oneDNN asked for explicitly: the same as the plain ones now that ser_keras asks
    # for it, kept so that a user's TF_ENABLE_ONEDNN_OPTS=0 run can still compare both
    return variants + [Variant(f"onednn_on+{v.name}", env={**v.env, "TF_ENABLE_ONEDNN_OPTS": "1"}) for v in variants]


# ----------------------------------------------------------------------------- the corpus

def bench_corpus(root: Path | None = None) -> Path:
    """A synthetic RAVDESS-layout corpus of 3.25-5.0 s clips (each synthetic utterance followed by
    0.25 s of silence and its other repetition, cut at 5.0 s), built once (atomically)."""
    import shutil
    import uuid

    import numpy as np
    import pandas as pd
    import soundfile as sf

    from ser_keras.corpora import synthetic
    from ser_keras.prepare import cache_root

    root = Path(root or cache_root() / "bench" / BENCH_CORPUS)
    if (root / "metadata.csv").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        raw = synthetic.generate(tmp / "raw", seed=0)
        meta = pd.read_csv(raw / "metadata.csv")
        out = tmp / "corpus"
        rate, gap, limit = synthetic.SAMPLE_RATE, np.zeros(int(0.25 * synthetic.SAMPLE_RATE)), int(5.0 * synthetic.SAMPLE_RATE)
        durations = []
        for rel in meta["path"]:
            parts = rel.split("-")
            parts[5] = "02" if parts[5] == "01" else "01"   # the other repetition of the same utterance
            first, _ = sf.read(raw / rel)
            second, _ = sf.read(raw / "-".join(parts))
            x = np.concatenate([first, gap, second])[:limit]
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(out / rel, x, rate, subtype="PCM_16")
            durations.append(round(len(x) / rate, 4))
        meta["duration"] = durations
        meta.to_csv(out / "metadata.csv", index=False)
        try:
            os.rename(out, root)
        except OSError:
            if not (root / "metadata.csv").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def paper_setting(arch: str, section: str, key: str):
    """A recipe's RAVDESS (paper) setting, read off its presets without importing Keras."""
    from ser_keras.config import RunConfig
    from ser_keras.recipes import get_recipe

    recipe = get_recipe(arch)
    for preset in (recipe.dataset_presets.get("ravdess", {}), recipe.presets):
        if key in preset.get(section, {}):
            return preset[section][key]
    return getattr(getattr(RunConfig(), section), key)


def bench_config(arch: str, dataset: str, data_dir: str | None, extra: list | None = None):
    """The recipe's RAVDESS (paper) features and batch size, on ``dataset`` (synthetic by default)."""
    from ser_keras.config import resolve_config

    paper = resolve_config(arch, "ravdess")
    overrides = []
    if dataset != "ravdess":
        base = resolve_config(arch, dataset, **{"data.data_dir": data_dir})
        for key, value in paper.to_dict()["features"].items():
            if getattr(base.features, key) != value:
                overrides.append(f"features.{key}={json.dumps(value)}")
        if base.train.batch_size != paper.train.batch_size:
            overrides.append(f"train.batch_size={paper.train.batch_size}")
    return resolve_config(arch, dataset, overrides=overrides + list(extra or []), **{"data.data_dir": data_dir})


# ----------------------------------------------------------------------------- worker side

def start_backend(variant: Variant) -> None:
    """Thread pools (before TensorFlow runs anything), then Keras as the CLI imports it."""
    if variant.backend == "tensorflow" and variant.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(variant.threads[0]))
        tf.config.threading.set_inter_op_parallelism_threads(int(variant.threads[1]))
    from ser_keras.startup import import_keras_quietly

    import_keras_quietly()


def backend_facts() -> dict:
    import keras

    facts = {"backend": keras.backend.backend(), "keras": keras.__version__}
    if facts["backend"] == "tensorflow":
        import tensorflow as tf
        from tensorflow.python.util import _pywrap_util_port

        facts.update(tensorflow=tf.__version__, onednn=bool(_pywrap_util_port.IsMklEnabled()),
                     intra_op=tf.config.threading.get_intra_op_parallelism_threads(),
                     inter_op=tf.config.threading.get_inter_op_parallelism_threads())
    else:
        import jax

        facts.update(jax=jax.__version__)
    return facts


def fused_batch_normalization():
    """``keras.layers.BatchNormalization`` that trains 4-D channels-last inputs with TensorFlow's
    FusedBatchNormV3 (one oneDNN kernel each way) instead of Keras 3's moments +
    batch_normalization graph. Benchmark only: the library's models use ``keras.ops`` and import no
    TensorFlow (the JAX path must run without it), so this measured speed-up is not shipped."""
    import keras

    class FusedBatchNormalization(keras.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            if not (training and self.trainable and mask is None and len(inputs.shape) == 4
                    and keras.backend.backend() == "tensorflow"):
                return super().call(inputs, training=training, mask=mask)
            import tensorflow as tf

            channels = inputs.shape[-1]
            empty = tf.constant([], tf.float32)
            y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
                mean=empty, variance=empty, epsilon=self.epsilon, exponential_avg_factor=1.0,
                data_format="NHWC", is_training=True)
            count = tf.cast(tf.size(inputs) // channels, tf.float32)
            variance = variance * (count - 1.0) / count  # the op returns the (n - 1) estimate
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1 - m))
            return tf.cast(y, self.compute_dtype)

    return FusedBatchNormalization


@contextlib.contextmanager
def batch_norm_layer(kind: str):
    """While the network is built, the conv blocks' ``MatmulBatchNormalization`` (shipped) is
    Keras' own ``BatchNormalization`` (``keras``) or the fused-kernel layer (``fused``)."""
    if kind == "matmul":
        yield
        return
    import keras

    from ser_keras.models import bigru_mha, cldnn, strl_ser

    layer = {"keras": keras.layers.BatchNormalization, "fused": fused_batch_normalization()}[kind]
    modules = (cldnn, bigru_mha, strl_ser)
    originals = [module.MatmulBatchNormalization for module in modules]
    for module in modules:
        module.MatmulBatchNormalization = layer
    try:
        yield
    finally:
        for module, original in zip(modules, originals):
            module.MatmulBatchNormalization = original


@contextlib.contextmanager
def pool_before_activation(enabled: bool):
    """``enabled=False``: cldnn's conv blocks in the paper's order, Conv -> BN -> ELU -> MaxPool
    -> Dropout, instead of the shipped Conv -> BN -> MaxPool -> ELU -> Dropout (the same function:
    ELU is increasing, so max-pooling commutes with it; the ELU and its gradient run on 4-16x
    more values). Other recipes: no change."""
    if enabled:
        yield
        return
    from keras import layers

    from ser_keras.models import cldnn

    original = cldnn._conv_front_end

    def conv_front_end(windows, blocks, dropout):
        x = cldnn.FoldWindows(name="fold_windows")(windows)
        for i in range(blocks):
            pool = cldnn.BLOCK_POOLS[i]
            x = layers.Conv2D(cldnn.BLOCK_FILTERS[i], 3, padding="same", name=f"conv_{i + 1}")(x)
            x = cldnn.MatmulBatchNormalization(name=f"bn_{i + 1}")(x)
            x = layers.Activation("elu", name=f"elu_{i + 1}")(x)
            x = layers.MaxPooling2D(pool, strides=pool, padding="same", name=f"pool_{i + 1}")(x)
            x = layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
        x = layers.Flatten(name="flatten")(x)
        return cldnn.UnfoldWindows(name="unfold_windows")(x, windows)

    cldnn._conv_front_end = conv_front_end
    try:
        yield
    finally:
        cldnn._conv_front_end = original


def build_plan(config, data, fold, targets, variant: Variant):
    """plan_fit + compile_model for ``variant`` (its precision, batch size, jit)."""
    import copy

    import keras

    from ser_keras.training import compile_model, plan_fit

    config = copy.deepcopy(config)
    if variant.batch:
        config.train.batch_size = int(variant.batch)
    keras.utils.set_random_seed(config.data.seed)
    config.train.precision = variant.precision  # the library's mixed precision (assembly.build_network)
    with pool_before_activation(variant.pool_first), batch_norm_layer(variant.batch_norm):
        plan = plan_fit(config, data, fold, targets)
    compile_model(plan.target, config.recipe, config, len(plan.train), len(data.class_names))
    if variant.jit is not None:
        plan.target.jit_compile = bool(variant.jit)
    return plan, config


def items_in(x) -> int:
    first = next(iter(x.values())) if isinstance(x, dict) else x
    return int(first.shape[0])


def full_batches(plan, batch_size: int, count: int) -> list:
    """``count`` full batches from the training loader, epoch after epoch (the same for every
    variant with this batch size)."""
    from ser_keras.data import as_loader

    out, epoch = [], 0
    while len(out) < count and epoch < 50:
        plan.train.epoch = epoch
        loader = as_loader(plan.train)
        source = loader if hasattr(loader, "as_numpy_iterator") else (loader[i] for i in range(len(loader)))
        out += [(x, y) for x, y in source if items_in(x) == batch_size]
        epoch += 1
    plan.train.epoch = 0
    if not out:
        raise SystemExit(f"no full batch of {batch_size}: the training part is too small")
    return [out[i % len(out)] for i in range(count)]


def run_worker(spec: dict) -> dict:
    """One worker process: its variants interleaved step by step; returns every step's timing."""
    variants = [Variant(**v) for v in spec["variants"]]
    start_backend(variants[0])
    from ser_keras.loading import load_data, make_targets
    from ser_keras.models.batchnorm import batch_norm_layers

    config = bench_config(spec["arch"], spec["dataset"], spec["data_dir"])
    data = load_data(config, progress=False)
    fold = data.folds[0]
    targets = make_targets(config.recipe, data.manifest, data.class_names, fold.train)
    steps, rounds, warmup = spec["steps"], spec["inner_rounds"], spec["warmup"]
    runs, failed = [], []
    for variant in variants:
        t0 = time.perf_counter()
        try:
            plan, cfg = build_plan(config, data, fold, targets, variant)
            batch = cfg.train.batch_size
            batches = full_batches(plan, batch, warmup + max(steps * rounds, 8))
            norms = batch_norm_layers(plan.target)
            structure = [f"{type(layer).__name__}:{layer.dtype_policy.name}" for layer in plan.target._flatten_layers()]
            run = {"variant": variant, "plan": plan, "batches": batches, "batch": batch, "bn_layers": len(norms),
                   "structure": hash(tuple(structure)),
                   "items_per_utterance": plan.train.n_items / max(1, len(fold.train)),
                   "setup_s": time.perf_counter() - t0, "warmup_s": [], "steps": []}
            for x, y in batches[:warmup]:  # tracing / compilation and first allocations are not throughput
                t0 = time.perf_counter()
                plan.target.train_on_batch(x, y)
                run["warmup_s"].append(time.perf_counter() - t0)
        except Exception as error:  # noqa: BLE001  (one variant failing must not hide the others)
            failed.append({"variant": variant.name, "error": f"{type(error).__name__}: {str(error)[:300]}"})
            continue
        runs.append(run)
    for r in range(rounds):
        for run in runs:  # at least ``steps`` steps and ``min_seconds`` per variant and round
            timed = run["batches"][warmup:]
            begin, done = time.perf_counter(), 0
            while done < steps or (time.perf_counter() - begin < spec["min_seconds"] and done < spec["max_steps"]):
                x, y = timed[(r * steps + done) % len(timed)]
                t0 = time.perf_counter()
                logs = run["plan"].target.train_on_batch(x, y, return_dict=True)
                run["steps"].append([items_in(x), time.perf_counter() - t0])
                done += 1
            run["loss"] = float(logs["loss"])
    facts = backend_facts()
    return {"facts": facts, "train_utterances": len(fold.train), "results": [
        {"variant": r["variant"].name, "batch": r["batch"], "items_per_utterance": r["items_per_utterance"],
         "setup_s": round(r["setup_s"], 2), "warmup_s": [round(t, 3) for t in r["warmup_s"]],
         "steps": r["steps"], "last_loss": r.get("loss"), "bn_layers": r["bn_layers"],
         "same_model_as_default": r["structure"] == runs[0]["structure"] and r is not runs[0]
         and r["variant"].batch is None and r["variant"].jit is None} for r in runs], "failed": failed}


def accuracy_worker(spec: dict) -> dict:
    """fit ``epochs`` epochs of one variant (same seed as the others); per-epoch logs."""
    variant = Variant(**spec["variants"][0])
    start_backend(variant)
    from ser_keras.data import as_loader
    from ser_keras.data.batches import epoch_order_callback
    from ser_keras.loading import load_data, make_targets

    extra = [f"train.epochs={spec['epochs']}"]
    config = bench_config(spec["arch"], spec["dataset"], spec["data_dir"], extra)
    if spec.get("preset"):  # the dataset's own preset (e.g. 3 s cldnn clips on synthetic): cheaper
        from ser_keras.config import resolve_config

        config = resolve_config(spec["arch"], spec["dataset"], overrides=extra, **{"data.data_dir": spec["data_dir"]})
    data = load_data(config, progress=False)
    fold = data.folds[0]
    targets = make_targets(config.recipe, data.manifest, data.class_names, fold.train)
    plan, cfg = build_plan(config, data, fold, targets, variant)
    t0 = time.perf_counter()
    history = plan.target.fit(as_loader(plan.train), validation_data=as_loader(plan.val), epochs=cfg.train.epochs,
                              callbacks=[epoch_order_callback(plan.train, plan.val)], verbose=0, shuffle=False)
    seconds = time.perf_counter() - t0
    logs = {k: [float(v) for v in values] for k, values in history.history.items()}
    return {"facts": backend_facts(), "variant": variant.name, "fit_s": round(seconds, 1), "history": logs,
            "train_utterances": len(fold.train), "clip_seconds": cfg.features.clip_seconds}


# ----------------------------------------------------------------------------- orchestration

def worker_env(variant: Variant) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND")}
    env.update(variant.env)
    env["KERAS_BACKEND"] = variant.backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def spawn(spec: dict, env: dict, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"worker exited {done.returncode}: {tail}"}


def load_note() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def jax_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("jax") is not None


def utterances_per_second(steps, items_per_utterance: float) -> list:
    return [items / seconds / items_per_utterance for items, seconds in steps]


def benchmark_arch(arch: str, args, out: list) -> None:

    default_batch = paper_setting(arch, "train", "batch_size")
    clip = paper_setting(arch, "features", "clip_seconds")
    variants = variants_for("quick" if args.quick else "full", default_batch)
    if args.variants:
        variants = [v for v in variants if v.name in args.variants or v.name == "default"]
    if not jax_importable():
        variants = [v for v in variants if v.backend != "jax"]
    groups: dict = {Variant("default").group(): []}
    for v in variants:
        groups.setdefault(v.group(), []).append(v)
    home = groups.pop(Variant("default").group())
    steps = args.steps or (2 if args.quick else 3)
    rounds = args.rounds or (1 if args.quick else 2)
    inner = 1 if args.quick else 2
    print(f"# {arch}: batch {default_batch}, clip {clip} s, {1 + len(groups)} worker group(s) "
          f"x {rounds} round(s), {steps} step(s) x {inner} inner round(s) per variant; {load_note()}", flush=True)
    per_variant: dict = {v.name: {"ups": [], "facts": None, "notes": [], "ratios": []} for v in variants}
    train_utts = None

    def run_group(members, r, label=None):
        """One worker; returns {variant name: its utt/s samples} (and files them under the variant)."""
        nonlocal train_utts
        spec = {"arch": arch, "dataset": args.dataset, "data_dir": args.data_dir, "steps": steps,
                "min_seconds": args.min_seconds if args.min_seconds is not None else (10 if args.quick else 20),
                "max_steps": 30, "inner_rounds": inner, "warmup": args.warmup,
                "variants": [asdict(v) for v in members]}
        names = label or "/".join(v.name for v in members)
        t0 = time.perf_counter()
        result = spawn(spec, worker_env(members[0]), args.timeout)
        wall = time.perf_counter() - t0
        if "error" in result:
            if not label:
                for v in members:
                    per_variant[v.name]["notes"].append(result["error"])
            print(f"  round {r + 1} {names}: {result['error']}", flush=True)
            return {}
        train_utts = result["train_utterances"]
        samples = {}
        for res in result["results"]:
            samples[res["variant"]] = utterances_per_second(res["steps"], res["items_per_utterance"])
            if label:
                continue  # a reference run: only the ratio uses it
            entry = per_variant[res["variant"]]
            entry.update(facts=result["facts"], batch=res["batch"], warmup_s=res["warmup_s"],
                         last_loss=res["last_loss"], bn_layers=res["bn_layers"],
                         same_model=res.get("same_model_as_default"))
            entry["ups"] += samples[res["variant"]]
        for res in result.get("failed", []):
            per_variant[res["variant"]]["notes"].append(res["error"])
        print(f"  round {r + 1} {names}: {wall:.0f} s wall, {load_note()}", flush=True)
        return samples

    for r in range(rounds):
        # In-process variants: ratio to ``default`` in the same worker, same round.
        samples = run_group([Variant("default")] + [v for v in home if v.name != "default"], r)
        for name, ups in samples.items():
            if samples.get("default"):
                per_variant[name]["ratios"].append(statistics.median(ups) / statistics.median(samples["default"]))
        # Variants needing their own process: each right after a default-only reference worker
        # (the load of a shared machine drifts over minutes; the pair sees the same load).
        for members in groups.values():
            reference = run_group([Variant("default")], r, label=f"default (reference for {members[0].name})")
            samples = run_group(members, r)
            for name, ups in samples.items():
                if reference.get("default"):
                    per_variant[name]["ratios"].append(statistics.median(ups) / statistics.median(reference["default"]))
    base = statistics.median(per_variant["default"]["ups"]) if per_variant["default"]["ups"] else None
    best = ("default", 1.0)
    for v in variants:
        entry = per_variant[v.name]
        if not entry["ups"]:
            print(f"{arch} {v.name:<18} failed: {'; '.join(entry['notes'])}")
            continue
        value = statistics.median(entry["ups"])
        ratio = statistics.median(entry["ratios"]) if entry["ratios"] else float("nan")
        facts = entry["facts"] or {}
        detail = (f"backend={facts.get('backend')} onednn={facts.get('onednn', '-')} "
                  f"threads={facts.get('intra_op', '-')}/{facts.get('inter_op', '-')} precision={v.precision} "
                  f"jit={'auto' if v.jit is None else v.jit} batch={entry['batch']} batch_norm={v.batch_norm} pool_first={v.pool_first}")
        spread = f"{min(entry['ups']):.2f}-{max(entry['ups']):.2f}"
        if entry.get("same_model"):
            detail += " -- the change does not apply to this model: the same model as default (an A/A check of the noise)"
        pairs = "/".join(f"{x:.2f}" for x in entry["ratios"])
        print(f"{arch} {v.name:<18} {value:7.2f} utt/s ({ratio:.2f}x default; per round {pairs})  [{spread}, n={len(entry['ups'])}; "
              f"warm-up {'+'.join(f'{t:.1f}' for t in entry.get('warmup_s', []))} s; {detail}]")
        out.append({"arch": arch, "variant": asdict(v), "utt_per_s": value, "ratio": ratio, "samples": entry["ups"],
                    "facts": facts, "batch": entry["batch"], "train_utterances": train_utts,
                    "last_loss": entry.get("last_loss")})
        if ratio > best[1]:
            best = (v.name, ratio)
    if base:
        print(f"{arch} train utt/s: {base:.2f} (1.00x default)")
        if best[0] != "default":
            print(f"{arch} fastest variant: {best[0]} {base * best[1]:.2f} utt/s ({best[1]:.2f}x default)")
    print(f"# {arch} done; {load_note()}", flush=True)


def accuracy_check(arch: str, args, out: list) -> None:
    """The same seed trained ``--accuracy-check`` epochs per variant: val loss / accuracy side by side."""
    names = args.variants or ["default", "default#2", "keras_bn", "fused_bn", "elu_first", "bf16"]
    variants = {v.name: v for v in variants_for("full", 0)}
    print(f"# accuracy check {arch}: {', '.join(names)}; {args.accuracy_check} epochs, seed 0; {load_note()}", flush=True)
    histories = {}
    for name in names:
        base_name = name.split("#")[0]  # "default#2": the same variant again (the run-to-run noise floor)
        v = variants.get(base_name) or next(v for v in variants_for("full", 16) if v.name == base_name)
        spec = {"arch": arch, "dataset": args.dataset, "data_dir": args.data_dir, "epochs": args.accuracy_check,
                "variants": [asdict(v)], "preset": args.preset}
        result = spawn({**spec, "accuracy": True}, worker_env(v), args.timeout * 4)
        if "error" in result:
            print(f"{arch} {name}: {result['error']}")
            continue
        histories[name] = result["history"]
        h = result["history"]
        acc = h.get("val_accuracy") or h.get("val_emotion_accuracy")
        print(f"{arch} {name:<12} fit {result['fit_s']:.0f} s  val_loss " + " ".join(f"{x:.4f}" for x in h["val_loss"])
              + "  val_acc " + " ".join(f"{x:.3f}" for x in acc) + "  loss " + " ".join(f"{x:.4f}" for x in h["loss"]),
              flush=True)
        out.append({"arch": arch, "accuracy_check": name, **result})
    ref = histories.get("default")
    for name, h in histories.items():
        if ref is None or name == "default":
            continue
        diff = max(abs(a - b) for a, b in zip(h["val_loss"], ref["val_loss"]))
        train = max(abs(a - b) for a, b in zip(h["loss"], ref["loss"]))
        print(f"{arch} {name} vs default: max |difference| over epochs: val_loss {diff:.2e}, loss {train:.2e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-dir", help="corpus folder (default: the generated 3-5 s synthetic benchmark corpus)")
    parser.add_argument("--quick", action="store_true", help="default, bf16, keras_bn and fused_bn only; 1 round of 2 steps")
    parser.add_argument("--variants", nargs="+", help="only these variants (default is always included)")
    parser.add_argument("--steps", type=int, help="at least this many timed steps per variant per inner round (quick 2, full 3)")
    parser.add_argument("--rounds", type=int, help="rounds over the worker groups (quick 1, full 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant (tracing)")
    parser.add_argument("--min-seconds", type=float,
                        help="keep stepping a variant until this many seconds per round (quick 10, full 20; max 30 steps)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per worker process")
    parser.add_argument("--accuracy-check", type=int, metavar="EPOCHS",
                        help="instead of timing: train EPOCHS epochs per variant on the same seed, compare val metrics")
    parser.add_argument("--preset", action="store_true",
                        help="accuracy check with the dataset's own preset (synthetic: 3 s cldnn clips) instead of the paper's")
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        result = accuracy_worker(spec) if spec.get("accuracy") else run_worker(spec)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return
    if args.data_dir is None:
        if args.dataset != "synthetic":
            parser.error("--dataset other than synthetic needs --data-dir")
        args.data_dir = str(bench_corpus())
    print(f"# {cpu_model()}, {os.cpu_count()} CPUs; python {platform.python_version()}; data {args.data_dir}; "
          f"{load_note()}", flush=True)
    out: list = []
    for arch in args.arch:
        (accuracy_check if args.accuracy_check else benchmark_arch)(arch, args, out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
