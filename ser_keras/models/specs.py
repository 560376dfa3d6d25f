"""Input shapes, class counts and per-dataset model presets of every (arch, dataset).

``input_spec(arch, dataset)`` is the contract between the feature pipeline and the model
builders: a dict of named input shapes without the batch dimension (``None`` = variable).
"""

import keras

from ..errors import ConfigError

DATASETS = ("ravdess", "iemocap", "emodb", "styletalk", "tess", "savee", "cremad", "synthetic")
NUM_CLASSES = {"ravdess": 8, "iemocap": 4, "emodb": 7, "styletalk": 5, "tess": 7, "savee": 7,
               "cremad": 6, "synthetic": 4}

# cldnn: 16 kHz, 5.0 s. Log-mel (hop 128) -> 626 frames -> windows of 128 frames, hop 64
# -> 8 windows of (128 frames, 128 mel bands). IEMOCAP: 46 features per frame at hop 512
# -> 1 + 80000 // 512 = 157 frames (librosa centred frames).
CLDNN_WINDOWS = (None, 128, 128, 1)
CLDNN_IEMOCAP_FRAMES = (157, 46)
# bigru_mha: log power spectrogram, 10 ms hop, 10 Hz bins up to 4 kHz -> 401 bins.
SPECTROGRAM_BINS = 401
# strl_ser: IS10 LLDs + deltas (76) pooled to 32 ms frames; 1.4 s -> 40, 2.0 s -> 59 frames.
LLD_FEATURES = 76
SEGMENT_FRAMES = {"ravdess": 40, "iemocap": 59}
IS10_FUNCTIONALS = 1582
# bilstm_att_mtl: 205 features per frame, fixed 600 frames.
MTL_FRAMES, MTL_FEATURES = 600, 205


def _check(arch, dataset):
    from . import ARCHS  # late import: the registry imports this module

    if arch not in ARCHS:
        raise ConfigError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if dataset not in DATASETS:
        raise ConfigError(f"unknown --dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def input_spec(arch, dataset):
    """Named input shapes (no batch dim) of ``arch`` on ``dataset``."""
    _check(arch, dataset)
    if arch == "cldnn":
        return {"features": CLDNN_IEMOCAP_FRAMES if dataset == "iemocap" else CLDNN_WINDOWS}
    if arch == "bigru_mha":
        return {"spectrogram": (None, SPECTROGRAM_BINS), "mask": (None,)}
    if arch == "strl_ser":
        frames = SEGMENT_FRAMES.get(dataset, SEGMENT_FRAMES["ravdess"])
        return {"lld_segments": (LLD_FEATURES, frames, 1), "functionals": (IS10_FUNCTIONALS,)}
    return {"features": (MTL_FRAMES, MTL_FEATURES)}


def default_num_classes(arch, dataset):
    """Emotion classes of ``arch`` on ``dataset`` (cldnn merges RAVDESS calm into neutral)."""
    _check(arch, dataset)
    if arch == "cldnn" and dataset == "ravdess":
        return 7
    return NUM_CLASSES[dataset]


def default_hparams(arch, dataset):
    """Paper presets that depend on the dataset (builder defaults cover the rest)."""
    _check(arch, dataset)
    if arch == "bigru_mha":  # paper 002, Table 2: Emo-DB values unless IEMOCAP
        return {"heads": 16, "dropout": 0.3} if dataset == "iemocap" else {"heads": 8,
                                                                           "dropout": 0.2}
    if arch == "strl_ser":  # paper 003, Tables 10-11: best parallel kernels per corpus
        return {"kernel_b": 7, "kernel_d": 5 if dataset == "iemocap" else 3}
    return {}


def model_inputs(input_spec, names):
    """{name: keras.Input} (float32) for ``names``, checking the spec provides each one.

    Models take this dict as their inputs, so every model is fed ``{name: array}`` exactly
    as ``input_spec`` names them, whatever the number of inputs.
    """
    missing = [name for name in names if name not in input_spec]
    if missing:
        raise ConfigError(f"input spec lacks {', '.join(missing)}; it must name "
                          f"{', '.join(names)} (see ser_keras.models.specs.input_spec)")
    return {name: keras.Input(shape=tuple(input_spec[name]), name=name, dtype="float32")
            for name in names}

