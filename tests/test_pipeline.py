"""The data path: batches per input kind, masks, normalisation statistics, seeded per-epoch orders."""

import numpy as np
import pytest

from tiny import tiny_config, tiny_corpus

from ser_keras.assembly import build_frontend
from ser_keras.config import resolve_config
from ser_keras.data import parts
from ser_keras.data.batches import Batches
from ser_keras.loading import load_data, make_targets


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    return tiny_corpus(root / "corpus"), root / "cache"


def train_part(config, data):
    fold = data.folds[0]
    targets = make_targets(config.recipe, data.manifest, data.class_names, fold.train)
    return parts.PartInputs(config.recipe, config.features, data.prepared, fold.train, targets)


@pytest.mark.parametrize("arch, shape", [("cldnn", (8, 1, 128, 128, 1)), ("bilstm_att_mtl", (8, 600, 205))])
def test_fixed_length_batches(arch, shape, corpus):
    config = tiny_config(arch, *corpus)
    data = load_data(config, progress=False)
    part = train_part(config, data)
    audio, y = parts.waveform_batches(part, 8, training=False, seed=0).batch(0)
    assert audio.shape == (8, config.recipe.training_samples(config.features))
    cached = parts.compute_features(build_frontend(config.recipe, config.features), part)
    x, y = parts.feature_batches(cached, part, 8, training=False, seed=0).batch(0)
    assert x["features"].shape == shape and np.isfinite(x["features"]).all()
    if config.recipe.heads:
        assert set(y) == {"emotion", "speed", "volume"} and max(y["speed"].max(), y["volume"].max()) <= 2
    else:
        assert y.shape == (8,)


def test_bigru_batches_are_padded_and_masked(corpus):
    config = tiny_config("bigru_mha", *corpus)
    data = load_data(config, progress=False)
    part = train_part(config, data)
    audio_batches = parts.waveform_batches(part, 8, training=False, seed=0)
    waves, _ = audio_batches.batch(0)
    n_samples = data.manifest["n_samples"].to_numpy()[part.positions[:8]]
    assert np.array_equal(waves["length"], n_samples) and waves["audio"].shape[1] % 8000 == 0
    cached = parts.compute_features(build_frontend(config.recipe, config.features), part)
    x, y = parts.feature_batches(cached, part, 8, training=False, seed=0).batch(0)
    spec, mask = x["spectrogram"], x["mask"]
    assert spec.shape[0] == mask.shape[0] == y.shape[0] and spec.shape[2] == 401
    lengths = mask.sum(axis=1).astype(int)
    assert np.array_equal(lengths, 1 + n_samples // 160)  # centred 10 ms frames
    for row, n in enumerate(lengths):  # mask: ones on real frames, zeros (and zero features) on padding
        assert mask[row, :n].all() and not mask[row, n:].any() and not spec[row, n:].any()


def test_strl_segments_and_owners(corpus):
    config = tiny_config("strl_ser", *corpus)
    data = load_data(config, progress=False)
    part = train_part(config, data)
    batches, table = parts.segment_batches(part, 8, training=False, seed=0)
    x, y = batches.batch(0)
    assert x["lld_segments"].shape[1:] == (76, 40, 1) and x["functionals"].shape[1:] == (1582,)
    assert len(table["lld_segments"]) == batches.n_items >= len(part)  # every utterance gives >= 1 segment
    # the segments of one utterance carry its functionals and its label
    assert np.array_equal(x["functionals"][0], data.prepared.is10_functionals[part.positions[0]])


def test_sample_weights_balance_utterances_and_classes():
    assert parts.sample_weights([0, 1, 1]) is None  # the defaults: no weights at all
    owners, labels = np.array([0, 0, 0, 1, 2, 2]), np.array([0, 1, 1])
    by_utterance = parts.sample_weights(labels, owners, segment_weighting="utterance")
    np.testing.assert_allclose(by_utterance, np.array([1 / 3, 1 / 3, 1 / 3, 1, 1 / 2, 1 / 2]) * 6 / 3, rtol=1e-6)
    by_class = parts.sample_weights(labels, class_weighting="balanced")  # class 0 once, class 1 twice
    np.testing.assert_allclose(by_class, np.array([1, 1 / 2, 1 / 2]) * 3 / 2, rtol=1e-6)
    both = parts.sample_weights(labels, owners, "utterance", "balanced")
    per_class = [both[np.isin(owners, np.flatnonzero(labels == c))].sum() for c in (0, 1)]
    assert per_class[0] == pytest.approx(per_class[1]) and both.mean() == pytest.approx(1.0)


def test_weightings_weight_training_batches_only(corpus):
    config = tiny_config("strl_ser", *corpus)
    data = load_data(config, progress=False)
    part = train_part(config, data)
    weighted, _ = parts.segment_batches(part, 8, training=True, seed=0, segment_weighting="utterance")
    totals = np.zeros(len(part))
    for index in range(len(weighted)):
        _, _, weights = weighted.batch(index, epoch=0)
        np.add.at(totals, weighted.utterance_of[weighted.order(0)[index]], weights)
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)  # every utterance weighs the same in an epoch
    plain, _ = parts.segment_batches(part, 8, training=True, seed=0)
    evaluation, _ = parts.segment_batches(part, 8, training=False, seed=0, segment_weighting="utterance")
    assert len(plain.batch(0)) == len(evaluation.batch(0)) == 2  # (inputs, targets): no weights
    config = tiny_config("cldnn", *corpus)
    part = train_part(config, load_data(config, progress=False))
    balanced = parts.sample_weights(part.targets["emotion"], class_weighting="balanced")
    audio = parts.waveform_batches(part, 8, training=True, seed=0, weights=balanced)
    _, labels, weights = audio.batch(0, epoch=0)
    np.testing.assert_array_equal(weights, balanced[audio.order(0)[0]])
    assert np.array_equal(labels, part.targets["emotion"][audio.order(0)[0]])


def test_normalisation_uses_training_statistics(corpus):
    from ser_keras.assembly import build_run_model

    config = tiny_config("bilstm_att_mtl", *corpus)
    data = load_data(config, progress=False)
    part = train_part(config, data)
    cached = parts.compute_features(build_frontend(config.recipe, config.features), part)
    stats = parts.statistics(cached, config.recipe.normalization_axes(config.features))
    features = cached["features"].reshape(-1, 205)
    np.testing.assert_allclose(stats["features"][0], features.mean(0), rtol=1e-4, atol=1e-4)
    run_model = build_run_model(config.recipe, config, len(data.class_names), stats)
    norm = run_model.classifier.get_layer("normalize_features")
    normalised = np.asarray(norm(cached["features"])).reshape(-1, 205)
    assert np.allclose(normalised.mean(axis=0), 0, atol=1e-3)
    spread = features.std(axis=0) > 1e-2
    assert np.allclose(normalised.std(axis=0)[spread], 1, atol=1e-2)


def test_cldnn_normalises_per_mel_band(corpus):
    config = tiny_config("cldnn", *corpus)
    assert config.recipe.normalization_axes(config.features) == {"features": -2}
    data = load_data(config, progress=False)
    cached = parts.compute_features(build_frontend(config.recipe, config.features), train_part(config, data))
    mean, _ = parts.statistics(cached, {"features": -2})["features"]
    assert mean.shape == (128,) and np.ptp(mean) > 1.0  # bands differ: one scalar would hide that


def test_batches_are_seeded_fresh_every_epoch_and_bucketed():
    lengths = np.array([1, 9, 2, 8, 3, 7, 1, 9, 2, 8, 3, 7])
    source = Batches(lambda idx: (idx, idx), len(lengths), 2, shuffle=True, seed=3, lengths=lengths,
                     bucket_edges=[5])
    epochs = [np.concatenate(source.order(e)) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(len(lengths)))  # every item once per epoch
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    assert np.array_equal(np.concatenate(Batches(lambda i: (i, i), 12, 2, True, 3, lengths, [5]).order(1)),
                          epochs[1])  # the same seed and epoch replay the same order (resume)
    for batch in source.order(0):  # a batch never mixes short and long items
        assert len(set(lengths[batch] > 5)) == 1
    assert len(source) == len(source.order(5))
    plain = Batches(lambda i: (i, i), 5, 2)
    assert [b.tolist() for b in plain.order(0)] == [[0, 1], [2, 3], [4]] == [b.tolist() for b in plain.order(7)]


def test_real_ravdess_log_mel_windows(shared_ravdess, tmp_path):
    rows = sorted(shared_ravdess.glob("Actor_0[12]/*.flac"))[:12]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,speaker\n" + "".join(
        f"{p},{['neutral', 'happy', 'sad'][i % 3]},{p.parent.name}\n" for i, p in enumerate(rows)))
    config = resolve_config("cldnn", "csv", **{"data.data_dir": str(manifest), "data.cache_dir": str(tmp_path),
                                                "data.merges": []})
    data = load_data(config, progress=False)
    cached = parts.compute_features(build_frontend(config.recipe, config.features), train_part(config, data))
    values = cached["features"]
    assert values.shape[1:] == (8, 128, 128, 1)  # 5.0 s -> 626 frames -> 8 windows
    assert values.max() <= 0.0 + 1e-4 and values.min() >= -80.0 - 1e-3  # dB relative to each clip's max
