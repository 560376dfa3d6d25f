"""openSMILE IS10 from ONE openSMILE run (acoustic.is10_features) equals opensmile's public API run
once per feature level, aligned and pooled as ser_keras did before (the reference below).

openSMILE must not share a process with TensorFlow (it corrupts the heap; the suite has loaded
TensorFlow by the time these run), so each check runs this file in a fresh interpreter:
``python tests/test_is10.py CASE [ARG]``.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def three_runs(x):
    """The previous implementation: three opensmile.Smile runs, deltas joined on start time."""
    import opensmile
    import pandas as pd

    from ser_keras import acoustic

    def level(name):
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.IS10, feature_level=getattr(opensmile.FeatureLevel, name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Segment too short": NaN
            return smile.process_signal(x, SR)

    def by_start_ms(frame):
        starts = np.round(frame.index.get_level_values("start").total_seconds() * 1000).astype(np.int64)
        out = pd.DataFrame(frame.to_numpy(), index=starts)
        return out[~out.index.duplicated()]

    frames = pd.concat([by_start_ms(level("LowLevelDescriptors")), by_start_ms(level("LowLevelDescriptors_Deltas"))],
                       axis=1, join="inner", keys=["lld", "delta"]).sort_index()
    pooled = acoustic.pool_is10_frames(np.nan_to_num(frames.to_numpy(dtype=np.float64)), frames.index.to_numpy(),
                                       x.size / SR)
    return pooled, np.nan_to_num(level("Functionals").to_numpy()[0]).astype(np.float32)


def tone_and_noise(seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * (180 + 30 * np.sin(2 * np.pi * 3 * t)) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (tone + 0.03 * rng.standard_normal(t.size)).astype(np.float32)


def assert_bit_identical(x, extractors):
    from ser_keras import acoustic

    pooled, functionals = acoustic.is10_features(x, extractors)
    want_pooled, want_functionals = three_runs(x)
    assert pooled.dtype == functionals.dtype == np.float32
    assert pooled.shape == (acoustic.is10_frame_count(x.size / SR), acoustic.IS10_LLD_DIM)
    assert functionals.shape == (acoustic.IS10_FUNCTIONALS_DIM,)
    np.testing.assert_array_equal(pooled, want_pooled)
    np.testing.assert_array_equal(functionals, want_functionals)
    return pooled, functionals


# ----------------------------------------------------------------------------- the checks (fresh process)

def check_tone_in_noise():
    from ser_keras import acoustic

    pooled, functionals = assert_bit_identical(tone_and_noise(2.5), acoustic.is10_extractors())
    assert pooled[:, 0].std() > 0 and np.count_nonzero(functionals) > 1000


def check_segment_too_short():
    from ser_keras import acoustic

    extractors = acoustic.is10_extractors()
    x = tone_and_noise(0.05, seed=1)
    streams = extractors.run(x, SR)
    assert any(np.isnan(values).all() for _, values in streams.values())  # the NaN ("too short") path
    assert_bit_identical(x, extractors)


def check_real_speech(path):
    import soundfile as sf
    import soxr

    from ser_keras import acoustic

    x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = soxr.resample(x[:, 0], rate, SR).astype(np.float32)
    assert_bit_identical(x, acoustic.is10_extractors())


CHECKS = {"tone": check_tone_in_noise, "too_short": check_segment_too_short, "speech": check_real_speech}


def run_check(name, *args):
    done = subprocess.run([sys.executable, __file__, name, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.strip().endswith(f"{name}: identical"), \
        done.stdout[-2000:] + done.stderr[-3000:]


def test_one_run_equals_three_runs_on_a_tone_in_noise():
    run_check("tone")


def test_one_run_equals_three_runs_on_a_segment_too_short():
    run_check("too_short")


def test_one_run_equals_three_runs_on_real_speech(shared_ravdess):
    path = sorted(f for f in shared_ravdess.glob("Actor_01/*") if f.suffix in (".wav", ".flac"))[-1]  # surprised, strong
    run_check("speech", path)


if __name__ == "__main__":
    CHECKS[sys.argv[1]](*sys.argv[2:])
    print(f"{sys.argv[1]}: identical")
