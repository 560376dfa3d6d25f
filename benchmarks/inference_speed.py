"""Inference speed per architecture: real-time factor (seconds of audio per second of compute) and
the latency of one request, from ``model.keras`` and from the exported SavedModel, on ONE CPU thread
and on all of them.

    python benchmarks/inference_speed.py --quick          # 1 thread only, fewer repeats
    python benchmarks/inference_speed.py [--arch cldnn strl_ser] [--clips 16] [--data-dir DIR --dataset ravdess]

For each architecture a run is trained for one epoch with the recipe's paper settings (RAVDESS
features, default hyperparameters: the paper-size model) on the 3-5 s synthetic benchmark corpus
(see training_throughput.py), exported with ``export.export_run``, and kept in the cache for the
next call (``--retrain`` trains again). The clips are 5.0 s pieces of that corpus at the model's
rate. Timed, after a warm-up call (tracing):

- ``keras``: ``scoring.score_utterances(model, ...)`` on the loaded ``model.keras`` (what
  ``evaluate`` and ``predict RUN_DIR`` run), default batch 16; all clips per call;
- ``savedmodel``: the same through the exported ``serving_default`` signature (``predict
  saved_models/...``, TF Serving's graph);
- latency: one clip per call (batch 1), median of the calls;
- strl_ser adds openSMILE IS10 extraction (``acoustic.is10_features``: one openSMILE run with
  three sinks, as ``prepare`` / ``predict`` compute it) timed in a process without TensorFlow
  (openSMILE must not share a process with it), single-threaded; its RTF and latency are of the
  sum. Timed beside it: the previous way, three ``opensmile.Smile`` runs, one per feature level
  (``is10_three_runs``; the worker checks the two are bit-identical).

Every figure is given by wall clock and by process CPU time. On one thread the CPU time is what
the call takes on an idle core, so it is the figure to read on a shared machine (the wall clock
there includes waiting for a core); on all threads only the wall clock means something.
One thread: ``tf.config.threading`` intra-op 1 and inter-op 1, set before TensorFlow runs anything,
in a fresh process per (architecture, thread setting). Prints per architecture
``<arch> realtime factor (1 thread): <x>`` and details; ``--json OUT`` writes every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from training_throughput import (  # noqa: E402
    ARCHS, RESULT_TAG, Variant, bench_config, bench_corpus, cpu_model, load_note, start_backend,
)

CLIP_SECONDS = 5.0
TARGET_RTF = 50.0


# ----------------------------------------------------------------------------- clips

def clip_paths(data_dir: str, count: int) -> list:
    """The corpus files, in a fixed order (enough to cut ``count`` 5-s clips)."""
    files = sorted(str(p) for p in Path(data_dir).rglob("*") if p.suffix.lower() in (".wav", ".flac"))
    return files[: max(4, 2 * count)]


def five_second_clips(paths: list, rate: int, count: int) -> list:
    """``count`` clips of exactly 5.0 s at ``rate``: the files back to back, cut every 5 s."""
    import numpy as np

    from ser_keras.audio import load_audio

    length, clips, buffer = int(round(CLIP_SECONDS * rate)), [], np.zeros(0, np.float32)
    for path in paths * 4:
        buffer = np.concatenate([buffer, load_audio(path, rate)])
        while len(buffer) >= length and len(clips) < count:
            clips.append(buffer[:length].copy())
            buffer = buffer[length:]
        if len(clips) == count:
            return clips
    raise SystemExit(f"not enough audio for {count} clips of {CLIP_SECONDS} s")


# ----------------------------------------------------------------------------- workers

def timed(fn, repeats: int) -> list:
    """[wall seconds, process CPU seconds] of ``repeats`` calls (CPU time: every thread of the
    process; on one thread it is what the call would take on an idle core)."""
    out = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append([time.perf_counter() - t0, time.process_time() - c0])
    return out


def median_of(samples, which: int) -> float:
    return statistics.median(s[which] for s in samples)


# ----------------------------------------------------------------------------- openSMILE IS10, before and now

IS10_LEVELS = {"lld": "LowLevelDescriptors", "delta": "LowLevelDescriptors_Deltas", "functionals": "Functionals"}


def is10_three_runs():
    """The previous way, timed beside the shipped one: three ``opensmile.Smile`` objects, one per
    feature level, each a full openSMILE run that recomputes the LLDs. Returns (``features(x)``,
    the per-level extractors)."""
    import numpy as np
    import opensmile
    import pandas as pd

    from ser_keras.acoustic import IS10_SAMPLE_RATE, pool_is10_frames

    extractors = {name: opensmile.Smile(feature_set=opensmile.FeatureSet.IS10,
                                        feature_level=getattr(opensmile.FeatureLevel, level))
                  for name, level in IS10_LEVELS.items()}

    def by_start_ms(frame):
        starts = np.round(frame.index.get_level_values("start").total_seconds() * 1000).astype(np.int64)
        out = pd.DataFrame(frame.to_numpy(), index=starts)
        return out[~out.index.duplicated()]

    def features(x):
        lld = by_start_ms(extractors["lld"].process_signal(x, IS10_SAMPLE_RATE))
        delta = by_start_ms(extractors["delta"].process_signal(x, IS10_SAMPLE_RATE))
        functionals = extractors["functionals"].process_signal(x, IS10_SAMPLE_RATE).to_numpy()[0]
        frames = pd.concat([lld, delta], axis=1, join="inner", keys=["lld", "delta"]).sort_index()
        values = np.nan_to_num(frames.to_numpy(dtype=np.float64))
        pooled = pool_is10_frames(values, frames.index.to_numpy(), x.size / IS10_SAMPLE_RATE)
        return pooled, np.nan_to_num(functionals).astype(np.float32)

    return features, extractors


def is10_worker(spec: dict) -> dict:
    """openSMILE IS10 of each clip (no TensorFlow in this process) as ``prepare`` / ``predict``
    compute it (one openSMILE run, ser_keras/is10.py), and the previous three-run way; saves the
    features for the model's worker."""
    import numpy as np

    from ser_keras.acoustic import IS10_SAMPLE_RATE, is10_extractors, is10_features

    clips = five_second_clips(spec["paths"], IS10_SAMPLE_RATE, spec["clips"])
    extractor = is10_extractors()
    three_runs, per_level = is10_three_runs()
    is10_features(clips[0], extractor)  # first calls: openSMILE's configuration
    three_runs(clips[0])
    shipped, previous, features, identical = [], [], [], True
    for x in clips:  # interleaved, clip by clip
        shipped += timed(lambda: features.append(is10_features(x, extractor)), 1)
        got = []
        previous += timed(lambda: got.append(three_runs(x)), 1)
        identical &= all(np.array_equal(a, b) for a, b in zip(features[-1], got[0]))
    split = {name: median_of(timed(lambda: smile.process_signal(clips[0], IS10_SAMPLE_RATE), 3), 1)
             for name, smile in per_level.items()}  # CPU s of each level's run on one clip
    np.savez(spec["out"], **{f"lld{i}": f[0] for i, f in enumerate(features)},
             **{f"func{i}": f[1] for i, f in enumerate(features)})
    return {"shipped": shipped, "three_runs": previous, "identical": bool(identical), "level_run_cpu_s": split}


def prepare_worker(spec: dict) -> dict:
    """Train the 1-epoch run and export it (TensorFlow process)."""
    start_backend(Variant("default"))
    from ser_keras.export import export_run
    from ser_keras.training import train

    config = bench_config(spec["arch"], spec["dataset"], spec["data_dir"], ["train.epochs=1"])
    t0 = time.perf_counter()
    run_dir, metrics = train(config, runs_dir=spec["runs_dir"], command="benchmarks/inference_speed.py", progress=False,
                             verbose=0)
    trained = time.perf_counter() - t0
    export = export_run(run_dir, name=f"{spec['arch']}-bench", version=1, force=True, root=spec["export_root"])
    return {"run_dir": str(run_dir), "export_dir": str(export), "train_s": round(trained, 1)}


def speed_worker(spec: dict) -> dict:
    """model.keras and SavedModel timings of one architecture under one thread setting."""
    threads = spec["threads"]
    start_backend(Variant("default", threads=threads))
    import numpy as np

    from ser_keras.export import load_run, load_signature
    from ser_keras.inference import SignatureModel
    from ser_keras.recipes.base import SEGMENTS
    from ser_keras.scoring import score_utterances

    run = load_run(spec["run_dir"])
    recipe, features = run.recipe, run.config.features
    if recipe.input_kind == SEGMENTS:
        saved = np.load(spec["is10_file"])
        items = [(saved[f"lld{i}"], saved[f"func{i}"]) for i in range(spec["clips"])]
    else:
        items = five_second_clips(spec["paths"], int(features.sample_rate), spec["clips"])
    loaded, signature = load_signature(spec["export_dir"])
    models = {"keras": run.model, "savedmodel": SignatureModel(loaded, signature, recipe.heads)}
    audio_s = CLIP_SECONDS * len(items)
    result = {"clips": len(items), "audio_s": audio_s}
    scorers = {name: (lambda batch=16, chunk=items, model=model:
                      score_utterances(model, recipe, features, chunk, batch_size=batch)) for name, model in models.items()}
    for score in scorers.values():  # tracing: the batch of 16 and the batch of 1
        score()
        score(chunk=items[:1])
    whole, single = {name: [] for name in models}, {name: [] for name in models}
    for _ in range(spec["repeats"]):  # keras and savedmodel interleaved
        for name, score in scorers.items():
            whole[name] += timed(score, 1)
            single[name] += timed(lambda: score(chunk=items[:1]), 3)
    for name in models:
        result[name] = {"seconds_per_clip": [median_of(whole[name], i) / len(items) for i in (0, 1)],
                        "latency_s": [median_of(single[name], i) for i in (0, 1)],
                        "whole": whole[name], "single": single[name]}
    if spec.get("batch_sweep"):
        sweep = {}
        for batch in spec["batch_sweep"]:
            scorers["keras"](batch=batch)  # a new batch shape: traced once
            sweep[batch] = median_of(timed(lambda: scorers["keras"](batch=batch), spec["repeats"]), 0) / len(items)
        result["keras"]["wall_seconds_per_clip_by_batch"] = sweep
    import tensorflow as tf

    result["threads"] = [tf.config.threading.get_intra_op_parallelism_threads(),
                         tf.config.threading.get_inter_op_parallelism_threads()]
    return result


# ----------------------------------------------------------------------------- orchestration

def spawn(mode: str, spec: dict, timeout: float, env_extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND")}
    env.update({"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})})
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps({**spec, "mode": mode})]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{mode} worker timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"{mode} worker exited {done.returncode}: {tail}"}


def trained_run(arch: str, args, root: Path) -> dict:
    """The cached 1-epoch run + export of ``arch`` on this corpus (trained when missing)."""
    key = hashlib.sha256(json.dumps([arch, args.dataset, str(Path(args.data_dir).resolve())]).encode()).hexdigest()[:12]
    marker = root / f"{arch}-{key}.json"
    if marker.is_file() and not args.retrain:
        known = json.loads(marker.read_text())
        if (Path(known["run_dir"]) / "metrics.json").is_file() and (Path(known["export_dir"]) / "saved_model.pb").is_file():
            return known
    spec = {"arch": arch, "dataset": args.dataset, "data_dir": args.data_dir, "runs_dir": str(root / "runs"),
            "export_root": str(root / "saved_models" / key)}
    result = spawn("prepare", spec, args.timeout * 4)
    if "error" not in result:
        root.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(result))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-dir", help="corpus folder (default: the generated 3-5 s synthetic benchmark corpus)")
    parser.add_argument("--quick", action="store_true", help="one thread only, 8 clips, 3 repeats")
    parser.add_argument("--clips", type=int, help="5-s clips per timed call (default 16; quick 8)")
    parser.add_argument("--repeats", type=int, help="timed calls per figure (default 5; quick 3)")
    parser.add_argument("--retrain", action="store_true", help="train and export the runs again")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per worker process")
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        work = {"is10": is10_worker, "prepare": prepare_worker, "speed": speed_worker}[spec["mode"]]
        print(RESULT_TAG + json.dumps(work(spec)), flush=True)
        return
    if args.data_dir is None:
        if args.dataset != "synthetic":
            parser.error("--dataset other than synthetic needs --data-dir")
        args.data_dir = str(bench_corpus())
    clips = args.clips or (8 if args.quick else 16)
    repeats = args.repeats or (3 if args.quick else 5)
    thread_modes = [("1 thread", [1, 1])] + ([] if args.quick else [("all threads", None)])
    from ser_keras.prepare import cache_root
    from ser_keras.recipes import get_recipe
    from ser_keras.recipes.base import SEGMENTS

    root = cache_root() / "bench" / "inference"
    paths = clip_paths(args.data_dir, clips)
    print(f"# {cpu_model()}, {os.cpu_count()} CPUs; {clips} clips of {CLIP_SECONDS} s; data {args.data_dir}; {load_note()}",
          flush=True)
    out = []
    for arch in args.arch:
        run = trained_run(arch, args, root)
        if "error" in run:
            print(f"{arch}: {run['error']}")
            continue
        print(f"# {arch}: run {run['run_dir']}, export {run['export_dir']}; {load_note()}", flush=True)
        is10 = None
        if get_recipe(arch).input_kind == SEGMENTS:
            is10_file = str(root / f"is10-{os.getpid()}.npz")
            is10 = spawn("is10", {"paths": paths, "clips": clips, "out": is10_file}, args.timeout)
            if "error" in is10:
                print(f"{arch} IS10: {is10['error']}")
                continue
            for key, what in (("shipped", "shipped, one openSMILE run"), ("three_runs", "previous, three runs")):
                wall, cpu = median_of(is10[key], 0), median_of(is10[key], 1)
                print(f"{arch} openSMILE IS10 ({what}; 1 thread): {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
                      f"per 5-s clip = realtime factor {CLIP_SECONDS / wall:.1f} wall, {CLIP_SECONDS / cpu:.1f} CPU", flush=True)
            split = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in is10["level_run_cpu_s"].items())
            print(f"{arch} openSMILE IS10: shipped identical to the three runs: {is10['identical']}; CPU of each "
                  f"of the three runs on one clip: {split}", flush=True)
        for label, threads in thread_modes:
            spec = {"run_dir": run["run_dir"], "export_dir": run["export_dir"], "paths": paths, "clips": clips,
                    "repeats": repeats, "threads": threads, "is10_file": is10_file if is10 else None,
                    "batch_sweep": None if args.quick or threads else [1, 4, 16]}
            result = spawn("speed", spec, args.timeout)
            if "error" in result:
                print(f"{arch} ({label}): {result['error']}")
                continue
            figures = {}
            for name in ("keras", "savedmodel"):
                r = result[name]
                for k, kind in enumerate(("wall", "CPU")):
                    is10_s = median_of(is10["shipped"], k) if is10 else 0.0
                    is10_three = median_of(is10["three_runs"], k) if is10 else 0.0
                    model_s = r["seconds_per_clip"][k]
                    rtf = CLIP_SECONDS / (model_s + is10_s)
                    latency = 1000 * (r["latency_s"][k] + is10_s)
                    figures[(name, kind)] = rtf
                    extra = ""
                    if is10:
                        extra = (f" (model alone {CLIP_SECONDS / model_s:.1f}, + IS10 {is10_s * 1000:.0f} ms/clip; "
                                 f"with the previous three-run IS10: {CLIP_SECONDS / (model_s + is10_three):.1f})")
                    print(f"{arch} {name:<10} ({label}, threads {result['threads'][0]}/{result['threads'][1]}, {kind:<4}): "
                          f"realtime factor {rtf:.1f}{extra}; latency batch 1 {latency:.0f} ms", flush=True)
            sweep = result["keras"].get("wall_seconds_per_clip_by_batch")
            if sweep:
                print(f"{arch} keras predict batch size ({label}): realtime factor (wall) "
                      + ", ".join(f"batch {b}: {CLIP_SECONDS / v:.1f}" for b, v in sweep.items()), flush=True)
            worst = min(v for (n, kind), v in figures.items() if kind == "wall")
            worst_cpu = min(v for (n, kind), v in figures.items() if kind == "CPU")
            note = f"  [CPU time: {worst_cpu:.1f}"
            if threads:
                note += f"; target >= {TARGET_RTF:.0f}: {'met' if worst_cpu >= TARGET_RTF else 'NOT met'} on CPU time"
            print(f"{arch} realtime factor ({label}): {worst:.1f}{note}; {load_note()}]", flush=True)
            figures = {f"{n} {k}": v for (n, k), v in figures.items()}
            out.append({"arch": arch, "threads": label, "result": result, "is10": is10, "rtf": figures})
        print(f"# {arch} done; {load_note()}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
