"""A corpus loaded for a run: read, labels merged, prepared (cached), split, targets derived."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError

# Where a corpus has no speed / volume labels, they are derived from prepare's measures.
DERIVED_FROM = {"speed": "syllable_rate", "volume": "active_rms_db"}


@dataclass
class DataBundle:
    """Everything a run needs from the corpus: prepared audio, classes, folds."""

    prepared: object
    class_names: list
    folds: list

    @property
    def manifest(self) -> pd.DataFrame:
        return self.prepared.manifest


def scan_for(config, dataset=None, data_dir=None):
    from .datasets import scan_dataset

    options = {"audio_dir": config.data.audio_dir}
    if config.data.vocal_channel is not None:
        options["vocal_channel"] = config.data.vocal_channel
    return scan_dataset(dataset or config.data.dataset, data_dir if dataset else config.data.data_dir,
                        merges=config.data.merges, **options)


def prepare_for(config, manifest: pd.DataFrame, progress: bool = True):
    from .prepare import prepare_corpus
    from .recipes.base import SEGMENTS

    return prepare_corpus(manifest, config.features.sample_rate, cache_dir=config.data.cache_dir,
                          is10=config.recipe.input_kind == SEGMENTS, progress=progress)


def load_data(config, progress: bool = True) -> DataBundle:
    """Read, merge labels, prepare (cached) and split the corpus named in ``config``."""
    from .labels import class_names
    from .splits import make_folds

    prepared = prepare_for(config, scan_for(config).manifest, progress)
    names = class_names(prepared.manifest["label"])
    if len(names) < 2:
        raise DataError(f"only one class ({names[0]}) in the corpus: nothing to recognise")
    folds = make_folds(prepared.manifest, config.data.protocol, config.recipe.paper_kind(config.data.dataset),
                       seed=config.data.seed, test_size=config.data.test_size, val_size=config.data.val_size)
    return DataBundle(prepared, names, folds)


def make_targets(recipe, manifest: pd.DataFrame, class_names: list, train_positions) -> dict:
    """{head: int array over manifest rows}: emotion, plus the recipe's extra heads.

    Corpora without speed / volume labels get them from prepare's measures, cut into tertiles
    whose cut points come from the training part only (a test corpus alone: its own)."""
    from .prepare import tertile_labels

    lookup = {n: i for i, n in enumerate(class_names)}
    targets = {"emotion": manifest["label"].map(lookup).fillna(-1).to_numpy(np.int32)}
    for head, names in recipe.heads.items():
        if head in manifest and manifest[head].isin(names).all():
            text = manifest[head].to_numpy()
        else:
            values = manifest[DERIVED_FROM[head]].to_numpy(float)
            reference = values[train_positions] if len(train_positions) else values
            text = tertile_labels(values, reference, names)
        targets[head] = pd.Series(text).map({n: i for i, n in enumerate(names)}).to_numpy(np.int32)
    return targets


def head_label_columns(recipe, targets: dict) -> dict:
    """The extra heads' labels as text columns for split.csv (so evaluate needs no re-derivation)."""
    return {head: np.asarray(names)[targets[head]] for head, names in recipe.heads.items()}
