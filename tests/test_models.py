"""Architectures: paper parameter counts, masking, attention weights, .keras round trips."""

import keras
import numpy as np
import pytest

from ser_keras.assembly import summary_network, summary_text
from ser_keras.config import resolve_config
from ser_keras.errors import ConfigError
from ser_keras.labels import DATASET_CLASSES
from ser_keras.models import layers as L
from ser_keras.models.baselines import (SVMBaseline, build_bilstm, build_bilstm_att, build_lstm,
                                        build_lstm_att, utterance_statistics)
from ser_keras.recipes import get_recipe, names

ARCHS = tuple(names())
DATASETS = tuple(DATASET_CLASSES)


def build_model(arch, spec, num_classes, **hparams):
    return get_recipe(arch).build_network(spec, num_classes, **hparams)


def input_spec(arch, dataset):
    return get_recipe(arch).network_spec(resolve_config(arch, dataset).features)


def default_num_classes(arch, dataset):
    return get_recipe(arch).summary_classes.get(dataset, DATASET_CLASSES[dataset])


def count_params(arch, dataset, **hparams):
    return summary_network(arch, dataset, **hparams).count_params()

# Small but faithful inputs per arch, so every test takes seconds.
SMALL_SPECS = {
    "cldnn": {"features": (None, 128, 128, 1)},
    "bigru_mha": {"spectrogram": (None, 401), "mask": (None,)},
    "strl_ser": {"lld_segments": (76, 40, 1), "functionals": (1582,)},
    "bilstm_att_mtl": {"features": (12, 205)},
}


def small_batch(arch, rng, batch=2):
    if arch == "cldnn":
        return {"features": rng.normal(size=(batch, 2, 128, 128, 1)).astype("float32")}
    if arch == "bigru_mha":
        mask = np.ones((batch, 9), "float32")
        mask[0, 6:] = 0
        spectrogram = rng.normal(size=(batch, 9, 401)).astype("float32") * mask[..., None]
        return {"spectrogram": spectrogram, "mask": mask}
    if arch == "strl_ser":
        return {"lld_segments": rng.normal(size=(batch, 76, 40, 1)).astype("float32"),
                "functionals": rng.normal(size=(batch, 1582)).astype("float32")}
    return {"features": rng.normal(size=(batch, 12, 205)).astype("float32")}


def as_list(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    return [np.asarray(outputs)]


def test_cldnn_has_the_paper_parameter_count():
    model = build_model("cldnn", input_spec("cldnn", "ravdess"), 7)
    assert model.count_params() == 1_187_527
    assert default_num_classes("cldnn", "ravdess") == 7


def test_cldnn_iemocap_matches_the_papers_1_442m():
    # One window of 157 frames x 46 features, as the authors' code fed IEMOCAP.
    assert count_params("cldnn", "iemocap") == 1_446_596


def test_bilstm_att_mtl_is_within_3_percent_of_0_81m_with_three_heads():
    model = build_model("bilstm_att_mtl", input_spec("bilstm_att_mtl", "styletalk"), 5)
    assert abs(model.count_params() - 810_000) / 810_000 < 0.03
    assert {k: tuple(v.shape) for k, v in model.output.items()} == {
        "emotion": (None, 5), "speed": (None, 3), "volume": (None, 3)}


@pytest.mark.parametrize("arch", ARCHS)
def test_model_round_trips_through_keras_file_in_safe_mode(arch, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(arch, SMALL_SPECS[arch], 4)
    batch = small_batch(arch, np.random.default_rng(0))
    before = as_list(model.predict(batch, verbose=0))
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    after = as_list(loaded.predict(batch, verbose=0))
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert np.allclose(before[0].sum(axis=-1), 1.0, atol=1e-5)
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded._flatten_layers())


def _bigru_predict(model, utterances, length):
    spectrogram = np.zeros((len(utterances), length, 401), "float32")
    mask = np.zeros((len(utterances), length), "float32")
    for i, utterance in enumerate(utterances):
        spectrogram[i, :len(utterance)] = utterance
        mask[i, :len(utterance)] = 1
    return model.predict({"spectrogram": spectrogram, "mask": mask}, verbose=0)


def test_bigru_mha_prediction_ignores_zero_padding():
    keras.utils.set_random_seed(1)
    model = build_model("bigru_mha", input_spec("bigru_mha", "emodb"), 7)
    rng = np.random.default_rng(1)
    short, long = rng.normal(size=(7, 401)), rng.normal(size=(19, 401))
    alone = _bigru_predict(model, [short], 7)[0]
    padded = _bigru_predict(model, [short, long], 19)[0]
    np.testing.assert_allclose(padded, alone, atol=1e-5)
    # Padding itself is not ignored by accident: a different utterance differs.
    assert np.abs(_bigru_predict(model, [long[:7]], 7)[0] - alone).max() > 1e-4


def test_bigru_mha_regression_head_and_heads_sweep():
    spec = SMALL_SPECS["bigru_mha"]
    model = build_model("bigru_mha", spec, 4, regression_head=True, heads=32)
    out = model(small_batch("bigru_mha", np.random.default_rng(0)))
    assert tuple(out["emotion"].shape) == (2, 4) and tuple(out["sentiment"].shape) == (2, 1)
    # key_dim = 256 / heads: the attention's size does not depend on the head count.
    assert build_model("bigru_mha", spec, 4, heads=4).count_params() == model.count_params() - 129


def test_additive_attention_weights_are_a_distribution_over_valid_steps():
    states = np.random.default_rng(2).normal(size=(2, 6, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    context, alpha = L.AdditiveAttentionPooling(return_attention_weights=True)(states, mask=mask)
    alpha = np.asarray(alpha)
    assert (alpha >= 0).all()
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, atol=1e-6)
    assert (alpha[0, 4:] == 0).all()
    np.testing.assert_allclose(context, np.einsum("bt,btf->bf", alpha, states), atol=1e-5)


def test_bahdanau_and_spatial_attention_weights_sum_to_one():
    states = np.random.default_rng(3).normal(size=(2, 5, 16)).astype("float32")
    context, alpha = L.BahdanauAttention(8, return_attention_weights=True)(states)
    assert (np.asarray(alpha) >= 0).all()
    np.testing.assert_allclose(np.asarray(alpha).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(context, np.einsum("bt,btf->bf", alpha, states), atol=1e-5)
    fmap = np.random.default_rng(4).normal(size=(2, 3, 4, 6)).astype("float32")
    pooled, beta = L.SpatialAttentionPooling(return_attention_weights=True)(fmap)
    np.testing.assert_allclose(np.asarray(beta).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(pooled, np.einsum("bn,bnc->bc", beta, fmap.reshape(2, 12, 6)),
                               atol=1e-5)


def test_masked_mean_and_multiscale_conv():
    x = np.arange(12, dtype="float32").reshape(1, 4, 3)
    mean = L.MaskedMeanPooling()(x, mask=np.array([[1, 1, 0, 0]], "float32"))
    np.testing.assert_allclose(mean, x[:, :2].mean(axis=1))
    out = L.MultiScaleConv2D(16, 7, 5)(np.zeros((1, 76, 59, 1), "float32"))
    assert tuple(out.shape) == (1, 76, 59, 32)


@pytest.mark.parametrize("hparams", [
    {"variant": "blstm"}, {"variant": "blstm_att"}, {"variant": "conv_blstm"},
    {"conv_blocks": 3}, {"conv_blocks": 5}])
def test_cldnn_ablations_build_and_run(hparams):
    model = build_model("cldnn", {"features": (157, 46)}, 4, **hparams)
    assert tuple(model({"features": np.zeros((1, 157, 46), "float32")}).shape) == (1, 4)


def test_cldnn_ablations_change_the_network():
    spec = input_spec("cldnn", "ravdess")
    full = count_params("cldnn", "ravdess")
    # conv_blstm drops the attention projections (256 * 512 + 256) and the context input.
    assert count_params("cldnn", "ravdess", variant="conv_blstm") == full - 131_328 - 512 * 7
    with pytest.raises(ConfigError, match="conv_blocks"):
        build_model("cldnn", spec, 7, conv_blocks=1)


def test_cldnn_bn_momentum_reaches_every_conv_block_and_is_range_checked():
    from ser_keras.models.batchnorm import batch_norm_layers

    spec = input_spec("cldnn", "ravdess")
    assert [layer.momentum for layer in batch_norm_layers(build_model("cldnn", spec, 7))] == [0.99] * 4
    model = build_model("cldnn", spec, 7, bn_momentum=0.9)
    assert [layer.momentum for layer in batch_norm_layers(model)] == [0.9] * 4
    assert model.count_params() == 1_187_527  # momentum is not a weight
    with pytest.raises(ConfigError, match="bn_momentum"):
        build_model("cldnn", spec, 7, bn_momentum=1.0)


@pytest.mark.parametrize("hparams", [{"temporal": "lstm"}, {"temporal": "transformer"},
                                     {"use_functionals": False}, {"heads": 1},
                                     {"kernel_b": 3, "kernel_d": 5}])
def test_strl_ser_ablations_build_and_run(hparams):
    model = build_model("strl_ser", SMALL_SPECS["strl_ser"], 8, **hparams)
    batch = small_batch("strl_ser", np.random.default_rng(0))
    if hparams.get("use_functionals") is False:
        assert len(model.inputs) == 1
        batch = {"lld_segments": batch["lld_segments"]}
    assert tuple(model(batch).shape) == (2, 8)


def test_bad_arch_and_hparams_raise_config_error_with_choices():
    with pytest.raises(ConfigError, match="cldnn, bigru_mha, strl_ser, bilstm_att_mtl"):
        get_recipe("resnet")
    with pytest.raises(ConfigError, match="valid:.*heads"):
        build_model("bigru_mha", SMALL_SPECS["bigru_mha"], 4, head=8)
    with pytest.raises(ConfigError, match="blstm_att"):
        build_model("cldnn", SMALL_SPECS["cldnn"], 7, variant="cnn")
    with pytest.raises(ConfigError, match="transformer"):
        build_model("strl_ser", SMALL_SPECS["strl_ser"], 4, temporal="gru")
    with pytest.raises(ConfigError, match="functionals"):
        build_model("strl_ser", {"lld_segments": (76, 40, 1)}, 4)
    assert "conv_blocks" in get_recipe("cldnn").hparam_defaults()


def test_specs_cover_every_arch_and_dataset():
    assert input_spec("strl_ser", "iemocap")["lld_segments"] == (76, 59, 1)
    assert input_spec("strl_ser", "ravdess")["lld_segments"] == (76, 40, 1)
    assert input_spec("bilstm_att_mtl", "styletalk") == {"features": (600, 205)}
    expected = {"ravdess": 8, "iemocap": 4, "emodb": 7, "styletalk": 5, "tess": 7, "savee": 7,
                "cremad": 6, "synthetic": 4}
    assert {d: default_num_classes("bigru_mha", d) for d in DATASETS} == expected


def test_summary_text_ends_with_parameter_count():
    text = summary_text("bilstm_att_mtl", "styletalk")
    assert "AdditiveAttentionPooling" in text
    assert text.rstrip().splitlines()[-1] == f"params: {count_params('bilstm_att_mtl', 'styletalk')}"


@pytest.mark.parametrize("builder", [build_lstm, build_bilstm, build_lstm_att, build_bilstm_att])
def test_keras_baselines_build(builder):
    model = builder({"features": (10, 205)}, 5, units=8)
    assert tuple(model({"features": np.zeros((2, 10, 205), "float32")}).shape) == (2, 5)


def test_svm_baseline_uses_only_valid_frames():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 20)
    frames = rng.normal(size=(40, 15, 3)) + y[:, None, None] * 2.0
    lengths = rng.integers(5, 15, size=40)
    padded = frames.copy()
    for i, n in enumerate(lengths):
        padded[i, n:] = 100.0 * (1 - y[i])  # padding that would invert the classes if used
    stats = utterance_statistics(padded, lengths=lengths)
    np.testing.assert_allclose(stats[3, :3], frames[3, :lengths[3]].mean(axis=0))
    np.testing.assert_allclose(stats[3, 3:], frames[3, :lengths[3]].std(axis=0))
    svm = SVMBaseline().fit(padded, y, lengths=lengths)
    assert (svm.predict(padded, lengths=lengths) == y).mean() > 0.9
    assert svm.predict_proba(padded, lengths=lengths).shape == (40, 2)


def test_builders_are_deterministic_under_a_seed():
    batch = small_batch("bilstm_att_mtl", np.random.default_rng(0))
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        runs.append(build_model("bilstm_att_mtl", SMALL_SPECS["bilstm_att_mtl"], 5)(batch))
    np.testing.assert_array_equal(runs[0]["emotion"], runs[1]["emotion"])


def test_max_pooling_commutes_with_elu_as_cldnn_blocks_use_it():
    """cldnn pools before its ELU (the paper: ELU, then pool): the same function because ELU is
    increasing and 'same' pooling ignores its padding (odd sizes exercise the padding)."""
    x = np.random.default_rng(1).normal(0, 2, (3, 9, 11, 2)).astype("float32")
    pool = keras.layers.MaxPooling2D(4, strides=4, padding="same")
    elu = keras.layers.Activation("elu")
    np.testing.assert_allclose(np.asarray(elu(pool(x))), np.asarray(pool(elu(x))), rtol=1e-6, atol=1e-6)


def test_runs_load_model_registers_every_custom_class_in_a_fresh_process(tmp_path):
    """A run's model.keras loads in a process that imported nothing of ser_keras but runs.py
    (evaluate / predict / export start that way): ``runs.load_model`` must import every module
    that registers a class the builders use. Every architecture saved here, loaded elsewhere."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for arch in ARCHS:
        (tmp_path / arch).mkdir()
        build_model(arch, SMALL_SPECS[arch], 4).save(tmp_path / arch / "model.keras")
    code = ("import sys\nfrom ser_keras import runs\n"
            "for path in sys.argv[1:]:\n    print(runs.load_model(path).count_params())\n")
    done = subprocess.run([sys.executable, "-c", code, *(str(tmp_path / arch) for arch in ARCHS)], cwd=root,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.split()) == len(ARCHS)
