"""strl_ser: STRL-SER on openSMILE IS10 features (Chen et al., KBS 2024; paper 003).

openSMILE cannot run in a graph, so this is the one recipe whose model takes features:
per segment (1.4 s RAVDESS, 2.0 s IEMOCAP; 50 % overlap) the 76 LLDs pooled to 32 ms frames
and the utterance's 1582 functionals. Utterances are predicted by averaging their segments.
"""

from __future__ import annotations

from .base import SEGMENTS, Recipe

HEAD_CHOICES = [1, 2, 4, 8, 16, 32]  # the paper's head sweep


class STRLSER(Recipe):
    name = "strl_ser"
    paper = "003 STRL-SER"
    input_kind = SEGMENTS
    frontends = ("is10",)
    presets = {
        "features": {"frontend": "is10", "sample_rate": 16000, "segment_seconds": 1.4, "segment_hop_seconds": 0.7},
        "train": {"epochs": 150, "batch_size": 128, "learning_rate": 1e-3, "schedule": "exponential",
                  "decay_rate": 0.95, "patience": 30, "monitor": "val_unweighted_accuracy"},
        # paper Tables 10-11 (RAVDESS kernels); utterance_dropout is ours: without it the
        # functionals branch memorises ~1,000 training utterances within 3 epochs
        "model": {"kernel_b": 7, "kernel_d": 3, "utterance_dropout": 0.5},
    }
    dataset_presets = {
        "iemocap": {"features": {"segment_seconds": 2.0, "segment_hop_seconds": 1.0}, "model": {"kernel_d": 5}},
        "synthetic": {"train": {"epochs": 25, "batch_size": 32, "patience": 8}},
    }
    paper_protocol = {"*": "random"}

    def network_builder(self):
        from ..models.strl_ser import build_strl_ser

        return build_strl_ser

    def frontend(self, features):
        return None

    def training_samples(self, features):
        return None

    def network_spec(self, features):
        from ..data.segments import segment_geometry
        from ..prepare import IS10_FUNCTIONALS_DIM, IS10_LLD_DIM

        frames, _ = segment_geometry(features.segment_seconds, features.segment_hop_seconds)
        return {"lld_segments": (IS10_LLD_DIM, frames, 1), "functionals": (IS10_FUNCTIONALS_DIM,)}

    def normalization_axes(self, features):
        return {"lld_segments": 1, "functionals": -1}  # per LLD, per functional

    def search_space(self, hp):
        seconds = hp.Choice("segment_seconds", [1.0, 1.4, 2.0])
        return {**super().search_space(hp),
                "model.heads": hp.Choice("heads", HEAD_CHOICES),
                "model.kernel_b": hp.Choice("kernel_b", [3, 5, 7, 9]),     # Tables 10-11: b x 1
                "model.kernel_d": hp.Choice("kernel_d", [1, 3, 5, 7]),     # and 1 x d
                "model.utterance_dropout": hp.Float("utterance_dropout", 0.0, 0.7, step=0.1),
                "features.segment_seconds": seconds,
                "features.segment_hop_seconds": seconds / 2}  # the paper's 50 % overlap


RECIPE = STRLSER()
