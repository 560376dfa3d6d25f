"""bigru_mha: Bi-GRU + multi-head self-attention (Xu et al., Sensors 2024; paper 002).

16 kHz, full length: audio [batch, samples] + length [batch]; log power spectrogram (Hamming
40 ms, hop 10 ms, 10 Hz bins to 4 kHz); padding frames are masked all the way to the pooling,
so a clip's answer does not depend on what it was batched with. Protocol: LOSO.
"""

from __future__ import annotations

from .base import VARIABLE, Recipe

HEAD_CHOICES = [1, 2, 4, 8, 16, 32]  # the paper's Table 3 swept 4-32


class BiGRUMHA(Recipe):
    name = "bigru_mha"
    paper = "002 Bi-GRU + multi-head attention"
    input_kind = VARIABLE
    frontends = ("log_power",)
    presets = {
        "features": {"frontend": "log_power", "sample_rate": 16000},
        # 1e-4 also won on RAVDESS validation against 1e-3 (README "Results", speaker protocol)
        "train": {"epochs": 80, "batch_size": 32, "learning_rate": 1e-4, "patience": 20, "monitor": "val_loss"},
        "model": {"heads": 8, "dropout": 0.2},  # Emo-DB values (paper Table 2)
    }
    dataset_presets = {
        "iemocap": {"train": {"epochs": 100, "learning_rate": 1e-5}, "model": {"heads": 16, "dropout": 0.3}},
        "synthetic": {"train": {"epochs": 15, "learning_rate": 1e-3, "patience": 5}},
    }
    paper_protocol = {"*": "loso"}

    def network_builder(self):
        from ..models.bigru_mha import build_bigru_mha

        return build_bigru_mha

    def frontend(self, features):
        from ..frontends import LogPowerSpectrogram

        return LogPowerSpectrogram(sample_rate=features.sample_rate, name="log_power")

    def frame_hop(self, features) -> int:
        """Samples per spectrogram frame: a clip of n samples has 1 + n // hop valid frames."""
        return int(round(0.010 * features.sample_rate))

    def network_spec(self, features):
        return {"spectrogram": (None, self.frontend(features).num_bins), "mask": (None,)}

    def normalization_axes(self, features):
        return {"spectrogram": -1}

    def search_space(self, hp):
        return {**super().search_space(hp), "model.heads": hp.Choice("heads", HEAD_CHOICES)}


RECIPE = BiGRUMHA()
