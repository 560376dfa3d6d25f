"""How long drawing every leave-one-speaker-out fold takes on a corpus with many speakers.

    python benchmarks/split_timing.py [--speakers 91] [--rounds 2]

A synthetic manifest (60-99 utterances per speaker, 6 classes, each speaker its own class mix;
91 speakers is CREMA-D's count). Each round times ser_keras' LOSO folds (whose validation
speakers are drawn by ser_keras.splits' deal and swaps) and, in the same process, scikit-learn's
StratifiedGroupKFold drawing each fold's validation speakers instead.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def manifest(n_speakers: int, seed: int = 0) -> pd.DataFrame:
    rng, rows = np.random.default_rng(seed), []
    for s in range(n_speakers):
        mix = rng.dirichlet(np.ones(6) * 3)
        for i in range(rng.integers(60, 100)):
            rows.append({"path": f"{s}/{i}.wav", "speaker": f"spk{s:03d}", "label": f"c{rng.choice(6, p=mix)}",
                         "corpus": "csv"})
    return pd.DataFrame(rows)


def main():
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

    from ser_keras.splits import make_folds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=91)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.speakers < 3 or args.rounds < 1:
        parser.error("--speakers must be at least 3 and --rounds at least 1")
    m = manifest(args.speakers)
    labels, groups = m["label"].to_numpy(), m["speaker"].to_numpy()
    print(f"{args.speakers} speakers, {len(m)} utterances")
    for r in range(args.rounds):
        start = time.perf_counter()
        make_folds(m, "loso", seed=0)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        for train, _ in LeaveOneGroupOut().split(labels, labels, groups):
            next(StratifiedGroupKFold(10, shuffle=True, random_state=1).split(train, labels[train], groups[train]))
        theirs = time.perf_counter() - start
        print(f"round {r + 1}: ser_keras LOSO folds {ours:.1f} s; StratifiedGroupKFold validation draws {theirs:.1f} s")


if __name__ == "__main__":
    main()
