"""openSMILE IS10 from ONE openSMILE run (acoustic.is10_features) equals opensmile's public API run
once per feature level, aligned and pooled as ser_keras did before (the reference below).

No TensorFlow in this module: openSMILE must not share a process with it.
"""

import warnings

import numpy as np
import opensmile
import pandas as pd
import pytest
import soundfile as sf
import soxr

from ser_keras import acoustic

SR = acoustic.IS10_SAMPLE_RATE


def three_runs(x):
    """The previous implementation: three opensmile.Smile runs, deltas joined on start time."""
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


@pytest.fixture(scope="module")
def extractors():
    return acoustic.is10_extractors()


def assert_bit_identical(x, extractors):
    pooled, functionals = acoustic.is10_features(x, extractors)
    want_pooled, want_functionals = three_runs(x)
    assert pooled.dtype == functionals.dtype == np.float32
    assert pooled.shape == (acoustic.is10_frame_count(x.size / SR), acoustic.IS10_LLD_DIM)
    assert functionals.shape == (acoustic.IS10_FUNCTIONALS_DIM,)
    np.testing.assert_array_equal(pooled, want_pooled)
    np.testing.assert_array_equal(functionals, want_functionals)
    return pooled, functionals


def test_one_run_equals_three_runs_on_a_tone_in_noise(extractors):
    pooled, functionals = assert_bit_identical(tone_and_noise(2.5), extractors)
    assert pooled[:, 0].std() > 0 and np.count_nonzero(functionals) > 1000


def test_one_run_equals_three_runs_on_a_segment_too_short(extractors):
    x = tone_and_noise(0.05, seed=1)
    streams = extractors.run(x, SR)
    assert any(np.isnan(values).all() for _, values in streams.values())  # the NaN ("too short") path
    assert_bit_identical(x, extractors)


def test_one_run_equals_three_runs_on_real_speech(extractors, shared_ravdess):
    path = sorted(f for f in shared_ravdess.glob("Actor_01/*") if f.suffix in (".wav", ".flac"))[-1]  # surprised, strong
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = soxr.resample(x[:, 0], rate, SR).astype(np.float32)
    assert_bit_identical(x, extractors)

