"""bilstm_att_mtl: BiLSTM + additive attention with emotion / speed / volume heads (paper 000).

22.05 kHz; 205 features per 10 ms frame, fixed 600 frames (the clip is cropped / zero-padded to
the 131,780 samples that make 600 frames); on-the-fly augmentation in the paper. Corpora without
speed / volume labels get them derived in `prepare` (training-part tertiles).
"""

from __future__ import annotations

from .base import FIXED, Recipe

MTL_FRAMES = 600


class BiLSTMAttMTL(Recipe):
    name = "bilstm_att_mtl"
    paper = "000 BiLSTM-attention multi-task"
    input_kind = FIXED
    frontends = ("mtl",)
    heads = {"speed": ("slow", "normal", "fast"), "volume": ("quiet", "normal", "loud")}
    presets = {
        "features": {"frontend": "mtl", "sample_rate": 22050, "augment": True},
        # Checkpoints and early stopping follow the emotion head's validation UA, as strl_ser's do: UA is the
        # figure SER reports, and val_loss also weighs the auxiliary heads. Set before the speaker run
        # bilstm_att_mtl-ravdess-20261123-124800 (README Results) was scored on its test part.
        "train": {"epochs": 50, "batch_size": 32, "learning_rate": 1e-3, "schedule": "cosine", "patience": 10,
                  "monitor": "val_unweighted_accuracy", "loss_weights": {"emotion": 1.0, "speed": 0.3, "volume": 0.3}},
    }
    dataset_presets = {"synthetic": {"train": {"epochs": 15, "patience": 5}}}
    paper_protocol = {"*": "official"}  # StyleTalk's train/eval; random 80/20 elsewhere

    def network_builder(self):
        from ..models.bilstm_att_mtl import build_bilstm_att_mtl

        return build_bilstm_att_mtl

    def frontend(self, features):
        from ..frontends import MTLFeatures

        return MTLFeatures(sample_rate=features.sample_rate, num_frames=MTL_FRAMES, name="mtl_features")

    def training_samples(self, features):
        hop = int(round(0.010 * features.sample_rate))
        return (MTL_FRAMES - 1) * hop

    def search_space(self, hp):
        beta = hp.Float("beta_speed", 0.0, 1.0, step=0.1)    # Table 6: loss weights of the
        gamma = hp.Float("gamma_volume", 0.0, 1.0, step=0.1)  # speed and volume heads
        return {**super().search_space(hp),
                "train.loss_weights": {"emotion": 1.0, "speed": beta, "volume": gamma}}


RECIPE = BiLSTMAttMTL()
