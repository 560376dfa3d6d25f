"""The tf.data pipelines: shapes, masks, normalisation statistics and determinism per input kind."""

import numpy as np
import pytest

from tiny import tiny_config, tiny_corpus

from ser_keras import pipeline
from ser_keras.config import resolve_config
from ser_keras.training import load_data, make_targets


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    return tiny_corpus(root / "corpus"), root / "cache"


def first_batch(config, data, training=False, seed=0):
    fold = data.folds[0]
    targets = make_targets(config, data, fold)
    if config.features.frontend == "is10":
        ds, owners = pipeline.segment_dataset(config, data.prepared, fold.train, targets, training, seed)
        return next(iter(ds)), owners
    ds = pipeline.waveform_dataset(config, data.prepared, fold.train, targets, training=training, seed=seed,
                                   augmentation=pipeline.build_augmentation(config.features, seed))
    return next(iter(ds)), None


@pytest.mark.parametrize("arch, shapes", [
    ("cldnn", {"features": (8, 1, 128, 128, 1)}),
    ("bilstm_att_mtl", {"features": (8, 600, 205)}),
])
def test_fixed_length_batches(arch, shapes, corpus):
    data_dir, cache = corpus
    config = tiny_config(arch, data_dir, cache)
    data = load_data(config, progress=False)
    (x, y), _ = first_batch(config, data)
    assert tuple(x.shape) == shapes["features"]
    assert np.isfinite(x.numpy()).all()
    if arch == "bilstm_att_mtl":
        assert set(y) == {"emotion", "speed", "volume"}
        assert all(int(v.numpy().max()) <= 2 for k, v in y.items() if k != "emotion")
    else:
        assert y.shape == (8,)


def test_bigru_batches_are_padded_and_masked(corpus):
    data_dir, cache = corpus
    config = tiny_config("bigru_mha", data_dir, cache)
    data = load_data(config, progress=False)
    (x, y), _ = first_batch(config, data)
    spec, mask = x["spectrogram"].numpy(), x["mask"].numpy()
    assert spec.shape[0] == mask.shape[0] == y.shape[0] and spec.shape[2] == 401
    lengths = mask.sum(axis=1).astype(int)
    positions = data.folds[0].train[:len(lengths)]
    expected = 1 + data.manifest["n_samples"].to_numpy()[positions] // 160  # centred 10 ms frames
    assert np.array_equal(lengths, expected)
    for row, n in enumerate(lengths):  # mask: ones on real frames, zeros (and zero features) on padding
        assert mask[row, :n].all() and not mask[row, n:].any()
        assert not spec[row, n:].any()


def test_strl_segments_and_owners(corpus):
    data_dir, cache = corpus
    config = tiny_config("strl_ser", data_dir, cache)
    data = load_data(config, progress=False)
    (x, y), owners = first_batch(config, data)
    assert tuple(x["lld_segments"].shape[1:]) == (76, 40, 1)
    assert tuple(x["functionals"].shape[1:]) == (1582,)
    # every training utterance contributes at least one segment, none from outside the part
    assert set(owners) == set(data.folds[0].train)


def test_normalisers_learn_training_statistics(corpus):
    data_dir, cache = corpus
    config = tiny_config("bilstm_att_mtl", data_dir, cache)
    data = load_data(config, progress=False)
    fold = data.folds[0]
    ds = pipeline.waveform_dataset(config, data.prepared, fold.train, make_targets(config, data, fold),
                                   training=False)
    (norm,) = pipeline.adapt_normalizers(ds, ["features"]).values()
    features = np.concatenate([x.numpy() for x, _ in ds])
    normalised = np.asarray(norm(features)).reshape(-1, 205)
    features = features.reshape(-1, 205)
    assert np.allclose(normalised.mean(axis=0), 0, atol=1e-3)
    spread = features.std(axis=0) > 1e-3
    assert np.allclose(normalised.std(axis=0)[spread], 1, atol=1e-2)


def test_training_batches_are_deterministic_under_a_seed(corpus):
    data_dir, cache = corpus
    config = tiny_config("bilstm_att_mtl", data_dir, cache)
    data = load_data(config, progress=False)
    fold = data.folds[0]
    targets = make_targets(config, data, fold)

    def labels(seed):
        ds = pipeline.waveform_dataset(config, data.prepared, fold.train, targets, training=True, seed=seed)
        return np.concatenate([y["emotion"].numpy() for _, y in ds])

    first, again, other = labels(3), labels(3), labels(4)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert sorted(first) == sorted(targets.emotion[fold.train])


def test_real_ravdess_log_mel_windows(shared_ravdess, tmp_path):
    config = resolve_config("cldnn", "ravdess", **{"data.data_dir": str(shared_ravdess),
                                                    "data.cache_dir": str(tmp_path), "train.batch_size": 4})
    config.data.dataset = "csv"  # read just a few real files through the csv reader
    rows = sorted(shared_ravdess.glob("Actor_0[12]/*.flac"))[:12]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,speaker\n" + "".join(
        f"{p},{['neutral', 'happy', 'sad'][i % 3]},{p.parent.name}\n" for i, p in enumerate(rows)))
    config.data.data_dir = str(manifest)
    config.data.merges = []
    data = load_data(config, progress=False)
    (x, y), _ = first_batch(config, data)
    assert tuple(x.shape) == (4, 8, 128, 128, 1)  # 5.0 s -> 626 frames -> 8 windows
    values = x.numpy()
    assert values.max() <= 0.0 + 1e-4 and values.min() >= -80.0 - 1e-3  # dB relative to each clip's max
