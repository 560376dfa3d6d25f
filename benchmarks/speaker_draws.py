#!/usr/bin/env python
"""How the speaker protocol's test speakers vary with --seed, beside two other ways to draw them.

    python benchmarks/speaker_draws.py --dataset csv --data-dir runs/proxy/varied --seeds 20

For seeds 0..N-1 it draws the speaker protocol's test part three ways and prints, for each,
how many speakers were ever tested, how often the most-tested one was, and how far the test
part's class shares stray from the corpus' (mean and worst, over the seeds; the largest
difference over the classes, in percentage points):
- ``ser_keras``: what `--protocol speaker` does (`splits.speaker_holdout`);
- ``StratifiedGroupKFold``: scikit-learn's, shuffled, fold one (what it did before);
- ``random speakers``: scikit-learn's GroupShuffleSplit, 20 % of the speakers, no balancing.
With five folds a speaker is expected in the test part for about 1 seed in 5.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser_keras.datasets import scan_dataset  # noqa: E402
from ser_keras.errors import SERError  # noqa: E402
from ser_keras.splits import speaker_holdout  # noqa: E402

TEST_SIZE = 0.2


def draws(manifest, seed: int) -> dict:
    """The test part's row positions, drawn each way with ``seed``."""
    labels, groups = manifest["label"].to_numpy(), manifest["speaker"].astype(str).to_numpy()
    n_folds = int(min(len(set(groups)), round(1 / TEST_SIZE)))
    sgkf = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
    shuffle = GroupShuffleSplit(1, test_size=TEST_SIZE, random_state=seed)
    return {
        "ser_keras": speaker_holdout(manifest, seed, TEST_SIZE, 0.1).test,
        "StratifiedGroupKFold": next(sgkf.split(labels, labels, groups))[1],
        "random speakers": next(shuffle.split(labels, labels, groups))[1],
    }


def summarise(manifest, seeds: int) -> dict:
    """Per way: speakers ever tested, the most-tested speaker's count, class-share strays."""
    overall = manifest["label"].value_counts(normalize=True)
    tested, strays = {}, {}
    for seed in range(seeds):
        for way, test in draws(manifest, seed).items():
            tested.setdefault(way, Counter()).update(set(manifest["speaker"].astype(str).iloc[test]))
            shares = manifest["label"].iloc[test].value_counts(normalize=True).reindex(overall.index).fillna(0)
            strays.setdefault(way, []).append(100 * float(np.abs(shares - overall).max()))
    return {way: {"tested": len(tested[way]), "most": tested[way].most_common(1)[0],
                  "stray_mean": float(np.mean(strays[way])), "stray_max": float(np.max(strays[way]))}
            for way in tested}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        manifest = scan_dataset(args.dataset, args.data_dir).manifest
        if args.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
        summary = summarise(manifest, args.seeds)
    except (SERError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    speakers = manifest["speaker"].nunique()
    print(f"{len(manifest)} utterances of {speakers} speakers, seeds 0-{args.seeds - 1}")
    print("| draw | speakers ever tested | most-tested speaker | class-share stray, mean / worst (points) |")
    print("|---|---|---|---|")
    for way, row in summary.items():
        name, count = row["most"]
        print(f"| {way} | {row['tested']} of {speakers} | {name}, {count} of {args.seeds} seeds "
              f"| {row['stray_mean']:.1f} / {row['stray_max']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
