"""SavedModel export: TF Serving layout, the raw-audio signature, parity with the Keras model.

Each architecture is trained once per session on the tiny synthetic corpus (tests/trained_runs.py).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from audio_fixtures import tone
from ser_keras.errors import ConfigError, RunDirError, SERError

pytest_plugins = ["trained_runs"]

ARCHS = ("cldnn", "bigru_mha", "strl_ser", "bilstm_att_mtl")
EXPECTED_OUTPUTS = {"probabilities": "DT_FLOAT", "label": "DT_STRING"}
MTL_OUTPUTS = {f"{h}_{k}": t for h in ("speed", "volume") for k, t in EXPECTED_OUTPUTS.items()}


def keras_reference(run_dir):
    """The run's own model.keras, loaded as a user would (safe_mode)."""
    import keras

    import ser_keras.augment  # noqa: F401
    import ser_keras.frontends  # noqa: F401
    import ser_keras.models.layers  # noqa: F401

    return keras.saving.load_model(run_dir / "model.keras", safe_mode=True)


def keras_probabilities(model, audio, lengths=None):
    """model.keras on raw audio (graph mode: an eager BiLSTM call takes seconds)."""
    x = audio.astype(np.float32) if lengths is None else {"audio": audio.astype(np.float32), "length": lengths}
    out = model.predict_on_batch(x)
    return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else {"emotion": np.asarray(out)}


def librosa_features(arch, audio, sample_rate, length=None):
    """The network's input computed by librosa, independently of the project's front-end layers."""
    import librosa

    rows = []
    for y in audio:
        if length is not None:
            y = np.pad(y[:length], (0, max(0, length - y.size)))
        if arch == "cldnn":
            mel = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=512, win_length=256, hop_length=128,
                                                 window="hamming", n_mels=128, fmax=4000, pad_mode="constant")
            db = librosa.power_to_db(mel, ref=np.max, top_db=80).T
            count = (db.shape[0] - 128) // 64 + 1
            rows.append(np.stack([db[i * 64: i * 64 + 128] for i in range(count)])[..., None])
        else:  # bigru_mha: log power spectrogram, 10 Hz bins up to 4 kHz
            power = np.abs(librosa.stft(y, n_fft=1600, hop_length=160, win_length=640, window="hamming",
                                        pad_mode="constant")) ** 2
            rows.append(librosa.power_to_db(power[:401], ref=1.0, top_db=80).T)
    features = np.stack(rows).astype(np.float32)
    if arch == "cldnn":
        return {"features": features}
    return {"spectrogram": features, "mask": np.ones(features.shape[:2], np.float32)}


def audio_batch(sample_rate, seconds, rows=2):
    return np.stack([tone(seconds, sample_rate, freq=180.0 + 60 * i, seed=i) for i in range(rows)])


def signature_block(cli_output: str, name: str) -> str:
    start = cli_output.index(f"signature_def['{name}']")
    rest = cli_output[start + 1:]
    ends = [i for i in (rest.find("signature_def['"), rest.find("Concrete Functions")) if i >= 0]
    return rest[:min(ends)] if ends else rest


def test_saved_model_cli_lists_documented_signature(trained_runs):
    exports = {arch: trained_runs.export(arch) for arch in ARCHS}
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--all", "--dir"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    jobs = {arch: subprocess.Popen(cli + [str(d)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for arch, d in exports.items()}
    for arch, job in jobs.items():
        out, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
        block = signature_block(out, "serving_default")
        classes = len(json.loads((trained_runs.run(arch) / "classes.json").read_text()))
        if arch == "strl_ser":
            assert "inputs['lld_segments']" in block and "shape: (-1, 76, 40, 1)" in block
            assert "inputs['functionals']" in block and "shape: (-1, 1582)" in block
        else:
            assert "inputs['audio']" in block and "shape: (-1, -1)" in block
            assert block.count("inputs[") == (2 if arch == "bigru_mha" else 1)
            if arch == "bigru_mha":
                assert "inputs['length']" in block and "dtype: DT_INT32" in block
        outputs = {**EXPECTED_OUTPUTS, **(MTL_OUTPUTS if arch == "bilstm_att_mtl" else {})}
        assert block.count("outputs[") == len(outputs)
        for key, dtype in outputs.items():
            section = block[block.index(f"outputs['{key}']"):]
            assert f"dtype: {dtype}" in section.split("name:")[0]
        assert f"shape: (-1, {classes})" in block[block.index("outputs['probabilities']"):]
        assert "Method name is: tensorflow/serving/predict" in block


@pytest.mark.parametrize("arch", ["cldnn", "bigru_mha", "bilstm_att_mtl"])
def test_reloaded_signature_matches_model_keras_for_any_length(trained_runs, arch):
    run_dir, export_dir = trained_runs.run(arch), trained_runs.export(arch)
    names = json.loads((run_dir / "classes.json").read_text())
    meta = json.loads((export_dir / "assets" / "ser_keras.json").read_text())
    signature, model = trained_runs.signature(arch), keras_reference(run_dir)
    train_seconds = (meta["training_samples"] or meta["sample_rate"]) / meta["sample_rate"]
    for seconds in (0.5 * train_seconds, 1.3 * train_seconds):  # shorter and longer than training
        audio = audio_batch(meta["sample_rate"], seconds)
        lengths = np.full(len(audio), audio.shape[1], np.int32) if arch == "bigru_mha" else None
        feed = {"audio": tf.constant(audio)} if lengths is None else {"audio": tf.constant(audio),
                                                                      "length": tf.constant(lengths)}
        served = signature(**feed)
        expected = keras_probabilities(model, audio, lengths)
        np.testing.assert_allclose(served["probabilities"].numpy(), expected["emotion"], atol=1e-5)
        labels = [b.decode() for b in served["label"].numpy()]
        assert labels == [names[i] for i in expected["emotion"].argmax(1)]
        if arch == "bilstm_att_mtl":
            for head, head_names in (("speed", ["slow", "normal", "fast"]), ("volume", ["quiet", "normal", "loud"])):
                np.testing.assert_allclose(served[f"{head}_probabilities"].numpy(), expected[head], atol=1e-5)
                assert [b.decode() for b in served[f"{head}_label"].numpy()] == [
                    head_names[i] for i in expected[head].argmax(1)]


@pytest.mark.parametrize("arch", ["cldnn", "bigru_mha"])
def test_savedmodel_agrees_with_librosa_features_and_the_network(trained_runs, arch):
    """An independent path: librosa computes the features, the run's classifier (normalisation +
    network, no project front-end code) scores them; the SavedModel on raw audio must agree."""
    run_dir = trained_runs.run(arch)
    meta = json.loads((trained_runs.export(arch) / "assets" / "ser_keras.json").read_text())
    classifier = keras_reference(run_dir).get_layer("classifier")
    audio = audio_batch(meta["sample_rate"], 1.2)
    expected = np.asarray(classifier.predict_on_batch(
        librosa_features(arch, audio, meta["sample_rate"], meta["training_samples"])))
    feed = {"audio": tf.constant(audio)}
    if arch == "bigru_mha":
        feed["length"] = tf.constant(np.full(len(audio), audio.shape[1], np.int32))
    served = trained_runs.signature(arch)(**feed)["probabilities"].numpy()
    np.testing.assert_allclose(served, expected, atol=2e-3)  # librosa vs in-graph dB: ~1e-4 dB apart


def test_bigru_batch_with_lengths_equals_each_clip_alone(trained_runs):
    model, signature = keras_reference(trained_runs.run("bigru_mha")), trained_runs.signature("bigru_mha")
    short, long = tone(0.9, 16000, freq=200.0, seed=1), tone(1.7, 16000, freq=310.0, seed=2)
    batch = np.zeros((2, long.size), np.float32)
    batch[0, :short.size], batch[1] = short, long
    lengths = np.array([short.size, long.size], np.int32)
    together = keras_probabilities(model, batch, lengths)["emotion"]
    served = signature(audio=tf.constant(batch), length=tf.constant(lengths))["probabilities"].numpy()
    for row, clip in enumerate((short, long)):
        alone = keras_probabilities(model, clip[None, :], np.array([clip.size], np.int32))["emotion"][0]
        np.testing.assert_allclose(together[row], alone, atol=1e-5)
        np.testing.assert_allclose(served[row], alone, atol=1e-5)


def strl_features(rows=3, frames=40, seed=0):
    rng = np.random.default_rng(seed)
    return {"lld_segments": rng.normal(size=(rows, 76, frames, 1)).astype(np.float32),
            "functionals": rng.normal(size=(rows, 1582)).astype(np.float32)}


def test_strl_ser_feature_signature_matches_keras(trained_runs):
    model = keras_reference(trained_runs.run("strl_ser"))
    features = strl_features()
    served = trained_runs.signature("strl_ser")(**{k: tf.constant(v) for k, v in features.items()})
    expected = np.asarray(model.predict_on_batch(features))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    names = json.loads((trained_runs.run("strl_ser") / "classes.json").read_text())
    assert [b.decode() for b in served["label"].numpy()] == [names[i] for i in expected.argmax(1)]


@pytest.mark.parametrize("arch", ["cldnn", "strl_ser"])
def test_tf_serving_predict_request_maps_onto_signature(trained_runs, arch):
    from tensorflow_serving.apis import predict_pb2

    from ser_keras.export import serve_request

    export_dir = trained_runs.export(arch)
    inputs = strl_features(rows=2, seed=3) if arch == "strl_ser" else {"audio": audio_batch(16000, 2.2).astype(np.float32)}
    request = predict_pb2.PredictRequest()
    request.model_spec.name = export_dir.parent.name
    request.model_spec.signature_name = "serving_default"
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # as it arrives over gRPC

    response = serve_request(export_dir, wire)

    assert isinstance(response, predict_pb2.PredictResponse)
    assert response.model_spec.name == export_dir.parent.name
    direct = trained_runs.signature(arch)(**{k: tf.constant(v) for k, v in inputs.items()})
    assert set(response.outputs) == set(direct)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), direct["probabilities"].numpy(),
                               atol=1e-6)
    assert list(tf.make_ndarray(response.outputs["label"])) == list(direct["label"].numpy())
    names = (export_dir / "assets" / "labels.txt").read_text().split()
    assert {b.decode() for b in tf.make_ndarray(response.outputs["label"])} <= set(names)


def test_grpc_client_round_trip(trained_runs):
    """The README's gRPC client against a PredictionService answering with ``serve_request``."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from ser_keras.export import serve_request

    export_dir = trained_runs.export("cldnn")
    signature = trained_runs.signature("cldnn")

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return serve_request(export_dir, request, signature=signature)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        audio = audio_batch(16000, 1.0, rows=1)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "cldnn-synthetic"
        request.model_spec.signature_name = "serving_default"
        request.inputs["audio"].CopyFrom(tf.make_tensor_proto(audio))
        with grpc.insecure_channel(f"localhost:{port}") as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    finally:
        server.stop(None)
    direct = signature(audio=tf.constant(audio))
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), direct["probabilities"].numpy(),
                               atol=1e-6)
    assert tf.make_ndarray(response.outputs["label"])[0] == direct["label"].numpy()[0]


def test_request_missing_an_input_is_refused(trained_runs):
    from tensorflow_serving.apis import predict_pb2

    from ser_keras.export import serve_request

    request = predict_pb2.PredictRequest()
    request.inputs["lld_segments"].CopyFrom(tf.make_tensor_proto(strl_features()["lld_segments"]))
    with pytest.raises(SERError, match="functionals"):
        serve_request(trained_runs.export("strl_ser"), request)


def test_layout_labels_and_models_config(trained_runs):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    export_dir = trained_runs.export("cldnn")
    root = export_dir.parent.parent
    assert export_dir.name.isdigit() and export_dir.parent.name == "cldnn-synthetic"
    assert (export_dir / "saved_model.pb").is_file() and (export_dir / "variables").is_dir()
    names = json.loads((trained_runs.run("cldnn") / "classes.json").read_text())
    assert (export_dir / "assets" / "labels.txt").read_text().splitlines() == names

    config = text_format.Parse((root / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert "cldnn-synthetic" in entries
    assert entries["cldnn-synthetic"].base_path == str(export_dir.parent.resolve())
    assert entries["cldnn-synthetic"].model_platform == "tensorflow"
    assert set(entries) == {p.name for p in root.iterdir() if p.is_dir()}


def test_versions_force_and_refusal(trained_runs, tmp_path):
    from ser_keras.export import export_run

    run_dir = trained_runs.run("cldnn")
    (tmp_path / "demo" / "1").mkdir(parents=True)  # an earlier version
    (tmp_path / "demo" / ".tmp-7-123-abc").mkdir()  # a dead temporary is not a version
    second = export_run(run_dir, name="demo", root=tmp_path)
    assert second.name == "2"  # the next free version

    marker = second / "assets" / "stale.txt"
    marker.write_text("from an earlier export")
    with pytest.raises(SERError, match="--force"):
        export_run(run_dir, name="demo", version=2, root=tmp_path)
    assert marker.exists()  # refused: untouched
    export_run(run_dir, name="demo", version=2, force=True, root=tmp_path)
    assert not marker.exists() and (second / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "demo").iterdir() if not p.name.startswith(".")) == ["1", "2"]


def test_interrupted_export_leaves_no_version(trained_runs, tmp_path, monkeypatch):
    from ser_keras.export import export_run

    real_save = tf.saved_model.save

    def save_then_fail(obj, export_dir, *args, **kwargs):
        real_save(obj, export_dir, *args, **kwargs)  # files are on disk ...
        raise KeyboardInterrupt  # ... when the user presses Ctrl-C

    monkeypatch.setattr(tf.saved_model, "save", save_then_fail)
    with pytest.raises(KeyboardInterrupt):
        export_run(trained_runs.run("cldnn"), name="demo", version=3, root=tmp_path)
    assert list((tmp_path / "demo").iterdir()) == []  # no version, no temporary left over
    assert not (tmp_path / "models.config").exists()


def test_bad_run_dir_and_name(trained_runs, tmp_path):
    from ser_keras.export import export_run

    with pytest.raises(RunDirError, match="not a run directory"):
        export_run(tmp_path, root=tmp_path / "out")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "classes.json", "model.keras"):
        (unfinished / name).write_bytes((trained_runs.run("cldnn") / name).read_bytes())
    with pytest.raises(RunDirError, match="unfinished run"):
        export_run(unfinished, root=tmp_path / "out")
    with pytest.raises(ConfigError, match="model name"):
        export_run(trained_runs.run("cldnn"), name="../escape", root=tmp_path / "out")
    assert not (tmp_path / "out").exists()
