#!/usr/bin/env python
"""Write a manifest CSV of a corpus cut down to its first N speakers, for `--dataset csv`.

    python benchmarks/speaker_subset.py --dataset ravdess --data-dir ../shared/data/ravdess \
        --speakers 10 --out runs/proxy/ravdess10.csv

Used to ask whether a result holds on a smaller corpus: RAVDESS's first 10 actors (600
utterances, 5 male and 5 female) are about Emo-DB's size (535 utterances, 10 speakers), and the
speaker protocol then trains on 7 speakers, validates on 1 and tests on 2, as it would on Emo-DB.
Speakers are taken in sorted order, so the subset is the same on every machine. Paths are
written absolute, so the CSV can live anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser_keras.datasets import scan_dataset  # noqa: E402
from ser_keras.errors import SERError  # noqa: E402
from ser_keras.reports import write_atomically  # noqa: E402


def first_speakers(manifest, count: int):
    """Rows of the first ``count`` speakers in sorted order (path, label, speaker columns)."""
    speakers = sorted(manifest["speaker"].astype(str).unique())
    if not 3 <= count <= len(speakers):
        raise ValueError(f"--speakers must be 3..{len(speakers)} (the corpus has {len(speakers)}), got {count}")
    kept = manifest[manifest["speaker"].astype(str).isin(speakers[:count])]
    return kept[["path", "label", "speaker"]].assign(path=kept["path"].map(lambda p: str(Path(p).resolve())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--speakers", type=int, required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        subset = first_speakers(scan_dataset(args.dataset, args.data_dir).manifest, args.speakers)
    except (SERError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_atomically(args.out, lambda tmp: subset.to_csv(tmp, index=False))  # never half-written
    counts = ", ".join(f"{label} {n}" for label, n in subset["label"].value_counts().sort_index().items())
    print(f"{len(subset)} utterances of {args.speakers} speakers ({counts}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
