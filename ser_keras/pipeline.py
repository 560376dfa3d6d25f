"""tf.data input pipelines, one per input kind, fed from the prepared cache.

cached waveform -> pad / crop (or full length) -> on-the-fly augmentation (training only)
-> in-graph front end -> batch (or length buckets with a padding mask) -> prefetch.

Normalisation is not done here: it is a Keras ``Normalization`` layer adapted on the
training split (``adapt_normalizers``) that sits at the head of the trained model, so the
statistics travel with the model into evaluation, prediction and the SavedModel export.
The front ends are the same layers the export uses, so there is no train/serve skew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .errors import ConfigError

AUTOTUNE = tf.data.AUTOTUNE

MTL_FRAMES = 600
BUCKET_BOUNDARIES_SECONDS = (2.0, 3.0, 4.0, 5.0, 7.0, 10.0)


@dataclass
class Targets:
    """Per-utterance integer targets: emotion, and for the multi-task model speed / volume."""

    emotion: np.ndarray
    speed: np.ndarray | None = None
    volume: np.ndarray | None = None


def build_frontend(features):
    """The in-graph front end for ``features.frontend`` (None for precomputed IS10)."""
    from . import frontends

    kind = features.frontend
    if kind == "logmel":
        return keras_sequential([frontends.LogMelSpectrogram(sample_rate=features.sample_rate),
                                 frontends.FrameWindows(window=128, hop=64)], "logmel_windows")
    if kind == "cldnn_frames":
        return frontends.CLDNNFrameFeatures(sample_rate=features.sample_rate)
    if kind == "log_power":
        return frontends.LogPowerSpectrogram(sample_rate=features.sample_rate)
    if kind == "mtl":
        return frontends.MTLFeatures(sample_rate=features.sample_rate, num_frames=MTL_FRAMES)
    if kind == "is10":
        return None
    raise ConfigError(f"unknown features.frontend '{kind}'; choose logmel, cldnn_frames, log_power, mtl or is10")


def keras_sequential(layers, name):
    import keras

    return keras.Sequential(layers, name=name)


def build_augmentation(features, seed):
    from .augment import WaveformAugmentation

    return WaveformAugmentation(seed=seed) if features.augment else None


def fixed_samples(features) -> int | None:
    """Waveform length every example is padded / cropped to, or None for full length."""
    if features.frontend == "mtl":
        hop = int(round(0.010 * features.sample_rate))
        return (MTL_FRAMES - 1) * hop
    if features.clip_seconds:
        return int(round(features.clip_seconds * features.sample_rate))
    return None


def waveforms(prepared, positions) -> tf.data.Dataset:
    """(waveform float32 [samples], position int32) for the given manifest rows, in order."""
    positions = np.asarray(positions, dtype=np.int64)

    def generate():
        for p in positions:
            yield prepared.waveform(int(p)), np.int32(p)

    ds = tf.data.Dataset.from_generator(
        generate,
        output_signature=(tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)),
    )
    # A known length lets Keras count steps (no "ran out of data" guessing on the first epoch).
    return ds.apply(tf.data.experimental.assert_cardinality(len(positions)))


def pad_or_crop(wave, length):
    wave = wave[:length]
    return tf.pad(wave, [[0, length - tf.shape(wave)[0]]])


def _targets_lookup(targets: Targets, multitask: bool):
    """A function position -> target structure, reading constant tensors (graph-friendly)."""
    tables = {"emotion": tf.constant(targets.emotion, tf.int32)}
    if multitask:
        tables["speed"] = tf.constant(targets.speed, tf.int32)
        tables["volume"] = tf.constant(targets.volume, tf.int32)

    def lookup(position):
        if not multitask:
            return tf.gather(tables["emotion"], position)
        return {k: tf.gather(t, position) for k, t in tables.items()}

    return lookup


def waveform_dataset(config, prepared, positions, targets: Targets, training: bool, seed: int = 0,
                     frontend=None, augmentation=None, cache: bool = True):
    """Batches of (features, targets) for the waveform front ends (cldnn, bigru_mha, bilstm_att_mtl).

    ``targets`` is indexed by manifest position. Training batches are shuffled and augmented;
    evaluation batches keep manifest order. bigru_mha's variable-length batches come as
    ``({"spectrogram": x, "mask": m}, y)`` with ``m`` 0.0 on padding frames, 1.0 on real ones.
    """
    features, batch = config.features, config.train.batch_size
    frontend = frontend or build_frontend(features)
    lookup = _targets_lookup(targets, config.arch == "bilstm_att_mtl")
    ds = waveforms(prepared, positions)
    length = fixed_samples(features)
    if length is not None:
        ds = ds.map(lambda w, p: (pad_or_crop(w, length), p), num_parallel_calls=AUTOTUNE)
    bucketed = features.frontend == "log_power"
    if training and augmentation is not None:
        ds = ds.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
        if not bucketed:
            # Fixed length: one vectorised augmentation call per batch (per-example random draws
            # inside), run in order so that the seeded draws replay exactly; then the front end.
            ds = ds.batch(batch).map(lambda w, p: (frontend(augmentation(w, training=True)), lookup(p)))
            return ds.prefetch(AUTOTUNE)
        # Variable length: per example, in order.
        ds = ds.map(lambda w, p: (_augment(augmentation, w, length), p))
        ds = ds.map(lambda w, p: (frontend(w[None, :])[0], p), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.map(lambda w, p: (frontend(w[None, :])[0], p), num_parallel_calls=AUTOTUNE)
        if cache:
            ds = ds.cache()  # without augmentation the features never change: compute them once
        if training:  # after the cache, so every epoch gets a new order
            ds = ds.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
    if bucketed:
        return _bucketed(ds, lookup, batch, training)
    return ds.batch(batch).map(lambda x, p: (x, lookup(p)), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def _augment(augmentation, wave, length):
    out = augmentation(wave[None, :], training=True)[0]
    return out if length is None else pad_or_crop(out, length)


def _bucketed(ds, lookup, batch, training):
    """Per-utterance spectrograms, grouped by length into zero-padded batches with a mask."""
    ds = ds.map(lambda x, p: ({"spectrogram": x, "mask": tf.ones(tf.shape(x)[:1], tf.float32)}, lookup(p)))
    if not training:
        # Evaluation keeps manifest order (predictions line up with files); padding is masked.
        return ds.padded_batch(batch).prefetch(AUTOTUNE)
    frames_per_second = 100  # 10 ms hop
    boundaries = [int(s * frames_per_second) for s in BUCKET_BOUNDARIES_SECONDS]
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda x, y: tf.shape(x["spectrogram"])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch] * (len(boundaries) + 1),
    )
    return ds.prefetch(AUTOTUNE)


# ----------------------------------------------------------------------------- strl_ser (IS10)

def is10_segments(lld: np.ndarray, frames: int, hop: int) -> np.ndarray:
    """Cut an utterance's [T, 76] LLDs into overlapping [n, 76, frames, 1] segments (last padded)."""
    total = lld.shape[0]
    starts = list(range(0, max(total - frames, 0) + 1, hop))
    if starts[-1] + frames < total:
        starts.append(total - frames)  # cover the tail with one more full-length segment
    out = np.zeros((len(starts), frames, lld.shape[1]), np.float32)
    for i, s in enumerate(starts):
        piece = lld[s:s + frames]
        out[i, :len(piece)] = piece
    return np.transpose(out, (0, 2, 1))[..., None]


def segment_geometry(segment_seconds: float, hop_seconds: float | None) -> tuple[int, int]:
    """(frames per segment, hop in frames) at IS10's pooled 32 ms rate: 1.4 s -> 40, 2.0 s -> 59."""
    from .prepare import IS10_HOP_MS, is10_frame_count

    hop_seconds = hop_seconds or segment_seconds
    return is10_frame_count(segment_seconds), max(1, int(round(hop_seconds * 1000 / IS10_HOP_MS)))


def segment_table(config, prepared, positions):
    """All segments of the given utterances: (lld_segments, functionals, utterance position)."""
    frames, hop = segment_geometry(config.features.segment_seconds, config.features.segment_hop_seconds)
    segs, funcs, owners = [], [], []
    for p in positions:
        s = is10_segments(prepared.is10_lld(int(p)), frames, hop)
        segs.append(s)
        funcs.append(np.repeat(prepared.is10_functionals[int(p)][None, :], len(s), axis=0))
        owners.append(np.full(len(s), int(p), np.int32))
    return np.concatenate(segs), np.concatenate(funcs).astype(np.float32), np.concatenate(owners)


def segment_dataset(config, prepared, positions, targets: Targets, training: bool, seed: int = 0):
    """Batches of ({"lld_segments", "functionals"}, label) for strl_ser; returns (ds, owners)."""
    lld, functionals, owners = segment_table(config, prepared, positions)
    labels = targets.emotion[owners]
    ds = tf.data.Dataset.from_tensor_slices(({"lld_segments": lld, "functionals": functionals}, labels))
    if training:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(config.train.batch_size).prefetch(AUTOTUNE), owners


# ----------------------------------------------------------------------------- normalisation

def adapt_normalizers(feature_batches, input_names, max_batches: int | None = None) -> dict:
    """Keras ``Normalization`` layers adapted on training features (one per normalised input).

    Statistics are per feature (last axis: mel band, spectrogram bin, frame feature or
    functional; strl_ser's LLDs are normalised per LLD, i.e. axis 1 of [76, T, 1]).
    Padding frames of bucketed batches are excluded through the mask.
    """
    import keras

    normalizers = {}
    for name in input_names:
        axis = 1 if name == "lld_segments" else -1
        layer = keras.layers.Normalization(axis=axis, name=f"normalize_{name}")
        layer.adapt(_feature_stream(feature_batches, name, max_batches))
        normalizers[name] = layer
    return normalizers


def _feature_stream(batches, name, max_batches):
    ds = batches.take(max_batches) if max_batches else batches

    def pick(x, y):
        if not isinstance(x, dict):
            return x
        if name == "spectrogram":  # only real frames count towards the statistics
            return tf.boolean_mask(x["spectrogram"], x["mask"] > 0)
        return x[name]

    return ds.map(pick)
