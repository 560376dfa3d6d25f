"""Front-end throughput: the papers' per-file librosa loops vs. this project's in-graph Keras layers.

    python benchmarks/frontend_throughput.py [--files 64] [--batch 32] [--data-dir ../shared/data/ravdess]

Uses real RAVDESS files when the folder exists, synthetic voiced signals otherwise; the same waveforms
go through both paths (decoding and resampling are outside the timings). Prints one JSON line per
measurement, then ``<name> speedup: <ratio>x`` (in-graph utterances/s ÷ librosa utterances/s).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402
import tensorflow as tf  # noqa: E402

from ser_keras import frontends as fe  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("SER_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ravdess"


# ----------------------------------------------------------------------------- the notebooks' loops
def librosa_log_mel(y, sr=16000):
    power = np.abs(librosa.stft(y, n_fft=512, window="hamming", win_length=256, hop_length=128)) ** 2
    return librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr, n_mels=128, fmax=4000), ref=np.max)


def librosa_cldnn(y, sr=16000):
    kw = dict(sr=sr, hop_length=512)
    mfcc = librosa.feature.mfcc(y=y, **kw)
    stats = [librosa.feature.spectral_centroid(y=y, **kw), librosa.feature.spectral_contrast(y=y, **kw)[:1],
             librosa.feature.spectral_bandwidth(y=y, **kw), librosa.feature.spectral_rolloff(y=y, **kw),
             librosa.feature.zero_crossing_rate(y, hop_length=512), librosa.feature.rms(y=y, hop_length=512)]
    return np.concatenate(stats + [mfcc, librosa.feature.delta(mfcc)], axis=0).T


def librosa_log_power(y, sr=16000):
    spec = librosa.stft(y, n_fft=1600, hop_length=160, win_length=640, window="hamming")
    return librosa.power_to_db(np.abs(spec[:401]) ** 2).T


def librosa_mtl(y, sr=22050):
    kw = dict(sr=sr, n_fft=1024, hop_length=220, win_length=551, window="hamming")
    mfcc = librosa.feature.mfcc(y=y, n_mfcc=40, **kw)
    feats = np.concatenate([
        mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2),
        librosa.power_to_db(librosa.feature.melspectrogram(y=y, n_mels=64, **kw)),
        librosa.feature.spectral_centroid(y=y, **kw), librosa.feature.spectral_rolloff(y=y, **kw),
        librosa.feature.spectral_contrast(y=y, **kw), librosa.feature.chroma_stft(y=y, **kw)], axis=0).T
    return librosa.util.fix_length(feats, size=600, axis=0)


# ----------------------------------------------------------------------------- inputs
def load_waveforms(data_dir, count):
    files = sorted(Path(data_dir).glob("Actor_*/*.flac")) + sorted(Path(data_dir).glob("Actor_*/*.wav"))
    if not files:
        rng = np.random.default_rng(0)
        waves = []
        for k in range(count):
            t = np.arange(int(rng.uniform(3.0, 4.5) * 16000)) / 16000
            f0 = rng.uniform(100, 250) * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))
            phase = 2 * np.pi * np.cumsum(f0) / 16000
            voice = sum(np.sin(h * phase) / h for h in range(1, 6)) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
            waves.append((0.3 * voice + 0.005 * rng.standard_normal(t.size)).astype(np.float32))
        return waves, "synthetic"
    picked = files[:: max(1, len(files) // count)][:count]
    waves = []
    for path in picked:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        waves.append(soxr.resample(y, sr, 16000).astype(np.float32) if sr != 16000 else y)
    return waves, f"ravdess ({data_dir})"


def batches(waves, size, length=None):
    """Zero-padded ``[batch, samples]`` arrays: to ``length`` or to each batch's longest."""
    for start in range(0, len(waves), size):
        group = waves[start: start + size]
        n = length or max(len(w) for w in group)
        yield np.stack([librosa.util.fix_length(w, size=n) for w in group])


# ----------------------------------------------------------------------------- timing
def time_librosa(fn, waves):
    fn(waves[0])  # warm librosa's caches (filterbanks, FFT plans)
    start = time.perf_counter()
    for y in waves:
        fn(y)
    return time.perf_counter() - start


def time_in_graph(layer, arrays, jit):
    run = tf.function(layer, input_signature=[tf.TensorSpec([None, None], tf.float32)], jit_compile=jit)
    for array in arrays:  # trace / compile once for every shape XLA will see
        run(array).numpy()
    start = time.perf_counter()
    for array in arrays:
        run(array).numpy()
    return time.perf_counter() - start


def benchmark(name, layer, librosa_fn, waves, batch, length, jit):
    lib_waves = [librosa.util.fix_length(w, size=length) for w in waves] if length else waves
    # Variable-length inputs are bucketed by length as the bigru_mha pipeline does, so that padding
    # to the batch's longest wastes little.
    arrays = list(batches(waves if length else sorted(waves, key=len), batch, length))
    results = {"librosa": time_librosa(librosa_fn, lib_waves), "in_graph": time_in_graph(layer, arrays, jit)}
    for impl, seconds in results.items():
        in_graph = impl == "in_graph"
        print(json.dumps({"frontend": name, "impl": impl, "utterances": len(waves), "batch": batch if in_graph else 1,
                          "jit_compile": jit if in_graph else None, "seconds": round(seconds, 3),
                          "utt_per_s": round(len(waves) / seconds, 1)}))
    print(f"{name} speedup: {results['librosa'] / results['in_graph']:.1f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--jit", action="store_true", help="XLA-compile the in-graph front ends")
    args = parser.parse_args()
    waves, source = load_waveforms(args.data_dir, args.files)
    waves_22k = [soxr.resample(w, 16000, 22050).astype(np.float32) for w in waves]
    print(json.dumps({"source": source, "utterances": len(waves), "threads": os.cpu_count(),
                      "mean_seconds": round(float(np.mean([len(w) for w in waves])) / 16000, 2)}))
    runs = [("cldnn_log_mel", fe.LogMelSpectrogram(), librosa_log_mel, waves, 80000),
            ("cldnn_frame_features", fe.CLDNNFrameFeatures(), librosa_cldnn, waves, 80000),
            ("bigru_mha_log_power", fe.LogPowerSpectrogram(), librosa_log_power, waves, None),
            ("bilstm_att_mtl_features", fe.MTLFeatures(), librosa_mtl, waves_22k, None)]
    for name, layer, fn, inputs, length in runs:
        benchmark(name, layer, fn, inputs, args.batch, length, args.jit)


if __name__ == "__main__":
    main()
