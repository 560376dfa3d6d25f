"""Evaluation protocols: which utterances train, which validate, which test.

Every protocol yields ``Fold`` objects holding row positions into the manifest. The
validation part is always carved out of the training part, never out of the test part:
early stopping and checkpoint selection see only training speakers / utterances.

- ``paper``: what the architecture's paper did (its recipe's ``paper_protocol``): a random stratified
  80/20 hold-out (speakers shared by both sides), leave-one-speaker-out, or the corpus'
  official split (a ``split`` column, e.g. StyleTalk's train/eval).
- ``speaker``: speaker-independent hold-out: about 20 % of the speakers are test speakers.
- ``loso``: leave-one-speaker-out over all speakers (IEMOCAP: leave-one-session-out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, ShuffleSplit, StratifiedShuffleSplit

from .errors import ConfigError, DataError

PROTOCOLS = ("paper", "speaker", "loso")

# The concrete rules a recipe's paper protocol may name. "official" falls back to "random"
# when the corpus has no split column.
PAPER_KINDS = ("random", "official", "speaker", "loso")


@dataclass(frozen=True)
class Fold:
    """Row positions (into the manifest) of one train / validation / test partition."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict:
        return {"train": int(len(self.train)), "val": int(len(self.val)), "test": int(len(self.test))}


def make_folds(manifest: pd.DataFrame, protocol: str, paper_kind: str = "random", seed: int = 0,
               test_size: float = 0.2, val_size: float = 0.1) -> list[Fold]:
    """All folds of ``protocol`` for this manifest (one fold for hold-out protocols)."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown --protocol '{protocol}'; choose one of: {', '.join(PROTOCOLS)}")
    if len(manifest) < 4:
        raise DataError(f"only {len(manifest)} utterances: too few to split into train, validation and test")
    kind = resolve_protocol(manifest, protocol, paper_kind)
    if kind == "random":
        folds = [random_holdout(manifest, seed, test_size, val_size)]
    elif kind == "official":
        folds = [official_split(manifest, seed, val_size)]
    elif kind == "speaker":
        folds = [speaker_holdout(manifest, seed, test_size, val_size)]
    else:
        folds = leave_one_group_out(manifest, seed, val_size)
    for fold in folds:
        check_fold(manifest, fold, speaker_independent=kind in ("speaker", "loso"))
    return folds


def resolve_protocol(manifest: pd.DataFrame, protocol: str, paper_kind: str = "random") -> str:
    """The concrete splitting rule: random, official, speaker or loso (``paper_kind``: what the
    architecture's paper did, from its recipe)."""
    if protocol == "speaker":
        return "speaker"
    if protocol == "loso":
        return "loso"
    if paper_kind not in PAPER_KINDS:
        raise ConfigError(f"unknown paper protocol '{paper_kind}'; a recipe names one of {', '.join(PAPER_KINDS)}")
    kind = paper_kind
    has_official = "split" in manifest and manifest["split"].isin(["test"]).any()
    if has_official:
        # A corpus that ships its own split (StyleTalk, a csv with a split column) is
        # evaluated on it under the paper protocol whatever the architecture.
        return "official"
    return "random" if kind == "official" else kind


def random_holdout(manifest, seed, test_size, val_size) -> Fold:
    """Stratified random hold-out of utterances (speakers appear on both sides)."""
    positions = np.arange(len(manifest))
    labels = manifest["label"].to_numpy()
    train, test = _stratified_split(positions, labels, test_size, seed)
    train, val = _stratified_split(train, labels[train], val_size, seed + 1)
    return Fold("random", np.sort(train), np.sort(val), np.sort(test))


def official_split(manifest, seed, val_size) -> Fold:
    """The corpus' own split column; validation carved from 'train' unless a 'val' part exists."""
    split = manifest["split"].astype(str).str.lower().to_numpy()
    positions = np.arange(len(manifest))
    test = positions[split == "test"]
    val = positions[np.isin(split, ["val", "valid", "validation", "dev"])]
    train = positions[split == "train"]
    if len(train) == 0:
        raise DataError("the corpus' split column has no 'train' rows")
    if len(val) == 0:
        labels = manifest["label"].to_numpy()
        train, val = _stratified_split(train, labels[train], val_size, seed + 1)
    return Fold("official", np.sort(train), np.sort(val), np.sort(test))


def speaker_holdout(manifest, seed, test_size, val_size) -> Fold:
    """About ``test_size`` of the speakers become test speakers; validation speakers are
    drawn from the remaining ones, so all three parts are speaker-disjoint."""
    groups = manifest["speaker"].astype(str).to_numpy()
    if len(np.unique(groups)) < 3:
        raise DataError("the speaker protocol needs at least 3 speakers (train, validation, test)")
    positions = np.arange(len(manifest))
    labels = manifest["label"].to_numpy()
    train, test = _group_split(positions, labels, groups, test_size, seed)
    train, val = _group_split(train, labels[train], groups[train], val_size, seed + 1)
    return Fold(f"speaker-test-{'+'.join(sorted(set(groups[test])))}", np.sort(train), np.sort(val), np.sort(test))


def leave_one_group_out(manifest, seed, val_size) -> list[Fold]:
    """One fold per speaker (or per IEMOCAP session): that group is the test set."""
    groups = _loso_groups(manifest)
    if len(np.unique(groups)) < 3:
        raise DataError("leave-one-speaker-out needs at least 3 speakers (train, validation, test)")
    labels = manifest["label"].to_numpy()
    folds = []
    for train, test in LeaveOneGroupOut().split(labels, labels, groups):
        train, val = _group_split(train, labels[train], groups[train], val_size, seed + 1)
        folds.append(Fold(f"loso-{groups[test[0]]}", np.sort(train), np.sort(val), np.sort(test)))
    return folds


def _loso_groups(manifest) -> np.ndarray:
    # IEMOCAP's convention is leave-one-session-out: both speakers of a session go together.
    column = "session" if manifest["corpus"].eq("iemocap").all() and "session" in manifest else "speaker"
    return manifest[column].astype(str).to_numpy()


def _stratified_split(positions, labels, fraction, seed):
    """Split positions into (kept, held) with ``fraction`` held, stratified when possible."""
    n_held = max(1, int(round(fraction * len(positions))))
    if n_held >= len(positions):
        raise DataError(f"cannot hold out {fraction:.0%} of {len(positions)} utterances and keep any for training")
    _, counts = np.unique(labels, return_counts=True)
    # Stratification needs two examples of every class and room for each class on both sides.
    can_stratify = counts.min() >= 2 and n_held >= len(counts) and len(positions) - n_held >= len(counts)
    splitter = (StratifiedShuffleSplit if can_stratify else ShuffleSplit)(n_splits=1, test_size=n_held, random_state=seed)
    kept, held = next(splitter.split(positions, labels))
    return positions[kept], positions[held]


def _group_split(positions, labels, groups, fraction, seed):
    """Hold out whole groups (speakers), about ``fraction`` of them, class-balanced.

    Not scikit-learn's StratifiedGroupKFold: that class orders the groups by the spread of
    their class counts and shuffles only ties, so on a corpus whose speakers differ in class
    mix the same speakers are held out whatever the seed (on the Emo-DB-shaped corpus, two
    speakers were in the test part for all of 20 seeds). Here the speakers are dealt to the
    folds in a seeded random order by StratifiedGroupKFold's own rule (the fold that keeps
    the class shares most even), then held-out speakers are swapped with others while that
    makes the shares more even. Where all speakers tie (RAVDESS) no swap helps and the
    folds are exactly StratifiedGroupKFold's, so the recorded --seed splits stand.
    """
    names, group_of = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise DataError("need at least two speakers to carve a speaker-disjoint part")
    n_folds = int(min(len(names), max(2, round(1 / fraction))))
    _, class_of = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(names), class_of.max() + 1))
    np.add.at(counts, (group_of, class_of), 1)
    order = np.arange(len(names))
    np.random.RandomState(seed).shuffle(order)  # the draw StratifiedGroupKFold makes
    fold_counts, fold_of = _deal_groups(counts, order, n_folds)
    _swap_held_groups(counts, order, fold_counts, fold_of)
    held = fold_of[group_of] == 0
    return positions[~held], positions[held]


def _spreads(trials, class_totals) -> np.ndarray:
    """For each trial assignment (class counts per fold), how unevenly the classes are shared
    out over the folds: StratifiedGroupKFold's criterion, scored for many trials at once."""
    return np.mean(np.std(trials / class_totals, axis=1), axis=-1)


def _spread_of(sum_sq, mean, n_folds) -> np.ndarray:
    """The same criterion from each class' sum of squared shares and mean share, so that a swap
    updates the sums alone. The deal keeps ``_spreads``: its exact ties (RAVDESS) are broken by
    fold size, and this form's rounding would turn some of them into strict wins."""
    return np.mean(np.sqrt(np.maximum(sum_sq / n_folds - mean ** 2, 0.0)), axis=-1)


def _deal_groups(counts, order, n_folds):
    """Class counts per fold and each group's fold: the groups taken in ``order``, each to the
    fold where it leaves the shares most even, ties (np.isclose's tolerances) to the smaller fold."""
    fold_counts = np.zeros((n_folds, counts.shape[1]))
    fold_of = np.zeros(len(counts), dtype=int)
    totals = counts.sum(axis=0)
    for group in order:
        trial = np.repeat(fold_counts[None], n_folds, axis=0)
        trial[np.arange(n_folds), np.arange(n_folds)] += counts[group]  # trial k: the group in fold k
        spreads = _spreads(trial, totals)
        best, best_spread, best_size = 0, np.inf, np.inf
        for fold, (spread, size) in enumerate(zip(spreads, fold_counts.sum(axis=1))):
            tie = abs(spread - best_spread) <= 1e-8 + 1e-5 * abs(best_spread)
            if spread < best_spread or (tie and size < best_size):
                best, best_spread, best_size = fold, spread, size
        fold_counts[best] += counts[group]
        fold_of[group] = best
    return fold_counts, fold_of


def _swap_held_groups(counts, order, fold_counts, fold_of) -> None:
    """Swap two groups of different folds, one of them held out (fold 0), whenever that makes
    the shares strictly more even, until no swap does. A deal in random order leaves the
    held-out part's class mix to chance; this evens it out, visiting the groups in the same
    random order so that no speaker is favoured by its place in the corpus. For each group the
    swaps with all others are scored at once; the first that helps (in that order) is made.

    Scored incrementally: a swap leaves each class' total, so its mean share over the folds, as
    it was, and changes the shares of two folds only; the spread is then
    mean_c sqrt(mean_f share_fc^2 - mean_c^2), kept as each class' sum of squared shares. On 91
    speakers this made leave-one-speaker-out's validation draws about 2x faster (same folds)."""
    totals = counts.sum(axis=0)
    n_folds, shares = len(fold_counts), fold_counts / totals
    mean = np.full(len(totals), 1.0 / n_folds)  # every class' mean share over the folds, all groups dealt
    sum_sq = (shares ** 2).sum(axis=0)
    current, improved = _spread_of(sum_sq, mean, n_folds), True
    while improved:
        improved = False
        for a in order:
            start = 0
            while start < len(order):
                others = order[start:]
                fa, fb = fold_of[a], fold_of[others]
                moved = (counts[others] - counts[a]) / totals  # shares from fold fb to fold fa
                trial = (sum_sq - shares[fa] ** 2 - shares[fb] ** 2
                         + (shares[fa] + moved) ** 2 + (shares[fb] - moved) ** 2)
                trial_spreads = _spread_of(trial, mean, n_folds)
                helps = (fb != fa) & ((fa == 0) | (fb == 0)) & (trial_spreads < current - 1e-12)
                if not helps.any():
                    break
                k = int(np.argmax(helps))
                b = others[k]
                fold_counts[fa] += counts[b] - counts[a]
                fold_counts[fb[k]] -= counts[b] - counts[a]
                shares[fa], shares[fb[k]] = fold_counts[fa] / totals, fold_counts[fb[k]] / totals
                sum_sq = (shares ** 2).sum(axis=0)
                fold_of[a], fold_of[b], current, improved = fb[k], fa, trial_spreads[k], True
                start += k + 1


def check_fold(manifest: pd.DataFrame, fold: Fold, speaker_independent: bool) -> None:
    """Refuse a fold that leaks: overlapping parts, or shared speakers when they must not be."""
    parts = {"train": set(fold.train), "val": set(fold.val), "test": set(fold.test)}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if parts[a] & parts[b]:
            raise AssertionError(f"fold {fold.name}: {a} and {b} share utterances")
    if not fold.train.size or not fold.val.size:
        raise DataError(f"fold {fold.name}: empty training or validation part; the corpus is too small")
    if speaker_independent:
        speakers = manifest["speaker"].astype(str).to_numpy()
        test_speakers = set(speakers[fold.test])
        for part in ("train", "val"):
            shared = test_speakers & set(speakers[getattr(fold, part)])
            if shared:
                raise AssertionError(f"fold {fold.name}: test speakers {sorted(shared)} also in {part}")
