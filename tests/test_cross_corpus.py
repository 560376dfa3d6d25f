"""Cross-corpus evaluation on a shifted regime: louder, longer clips from other speakers."""

import json

import numpy as np
import soundfile as sf

pytest_plugins = ["trained_runs"]


def shifted_corpus(root):
    """Other speakers (another seed), 4x louder (clipped) and twice as long (the clip repeated)."""
    from ser_keras.corpora import synthetic

    corpus = synthetic.generate(root, speakers=2, seed=11, intensities=1, statements=1, repetitions=1)
    for path in corpus.rglob("*.wav"):
        audio, rate = sf.read(str(path), dtype="float32")
        sf.write(str(path), np.clip(4.0 * np.concatenate([audio, audio]), -1, 1), rate)
    return corpus


def test_target_statistics_remove_the_level_shift(trained_runs, tmp_path):
    from ser_keras.evaluation import evaluate_run, utterance_items, with_target_statistics
    from ser_keras.loading import prepare_for, scan_for
    from ser_keras.runs import load_model, read_classes, read_config

    run_dir = trained_runs.run("bilstm_att_mtl")
    corpus = shifted_corpus(tmp_path / "shifted")
    plain, plain_dir = evaluate_run(run_dir, dataset="synthetic", data_dir=corpus, progress=False)
    adapted, adapted_dir = evaluate_run(run_dir, dataset="synthetic", data_dir=corpus, progress=False,
                                        target_norm=True)
    assert plain["n"] == adapted["n"] == 8  # both variants score every utterance
    assert json.loads((adapted_dir / "metrics.json").read_text())["normalisation"].startswith("statistics of")
    assert "normalisation" not in json.loads((plain_dir / "metrics.json").read_text())

    # What the option changes: the network's input on the shifted corpus is centred again.
    config, classes = read_config(run_dir), read_classes(run_dir)
    prepared = prepare_for(config, scan_for(config, "synthetic", corpus).manifest, progress=False)
    items = utterance_items(config.recipe, prepared, np.arange(len(prepared.manifest)))
    model = load_model(run_dir)
    features = np.asarray(model.get_layer("frontend").predict_on_batch(np.stack(
        [np.pad(w[:131780], (0, max(0, 131780 - w.size))) for w in items]))["features"])

    def centred(m):
        return np.asarray(m.get_layer("classifier").get_layer("normalize_features")(features)).mean(axis=(0, 1))

    shifted_mean = np.abs(centred(model)).mean()
    adapted_mean = np.abs(centred(with_target_statistics(model, config, items, len(classes)))).mean()
    assert adapted_mean < 1e-3 < shifted_mean
