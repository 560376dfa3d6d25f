#!/usr/bin/env python
"""Write an Emo-DB-shaped corpus made from RAVDESS: clips of varied length, Emo-DB's unequal classes.

    python benchmarks/varied_corpus.py --dataset ravdess --data-dir ../shared/data/ravdess \
        --out runs/proxy/varied

The accuracy issue's held-out corpus (Emo-DB-like) differs from RAVDESS in ways this project
could not test: its clips run from about 1 to 9 s (RAVDESS: 3-5 s, half of it silence) and its
classes differ in size (anger 127 utterances, disgust 46). This script makes such a corpus from
RAVDESS itself, so the question "does that regime open a gap between strl_ser and the SVM, and
do the opt-in weightings close it" can be measured:

- every utterance is trimmed of its leading and trailing silence (librosa.effects.trim, 30 dB);
- each speaker's utterances of one emotion are shuffled and joined in groups of 1, 2 or 3
  (probabilities 0.5 / 0.3 / 0.2), with 0.2 s of silence between them, so a clip is one speaker
  saying one emotion for about 1 to 10 s; every utterance is used once;
- the 7 classes that have an Emo-DB counterpart are kept (``calm`` stands for Emo-DB's
  boredom; ``surprised`` has none and is dropped) and cut to Emo-DB's class proportions, as many
  clips as the scarcest class allows.

Writes ``OUT/manifest.csv`` (path, label, speaker, seconds, sources) and ``OUT/<speaker>/*.wav``
(16 kHz, 16-bit) for ``--dataset csv --data-dir OUT``; the folder appears only when complete.
The draw is seeded (``--seed``), so the corpus is the same on every machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser_keras.audio import load_audio  # noqa: E402
from ser_keras.datasets import scan_dataset  # noqa: E402
from ser_keras.errors import SERError  # noqa: E402

SAMPLE_RATE = 16000
# Emo-DB's utterances per class (Burkhardt et al., 2005), on RAVDESS's label names.
EMODB_COUNTS = {"angry": 127, "calm": 81, "disgust": 46, "fearful": 69, "happy": 71, "neutral": 79, "sad": 62}
GROUP_SIZES, GROUP_P = (1, 2, 3), (0.5, 0.3, 0.2)
GAP_SECONDS, TRIM_DB = 0.2, 30


def group_utterances(manifest: pd.DataFrame, rng: np.random.Generator) -> list[dict]:
    """Each (speaker, label) group of Emo-DB classes, shuffled and cut into runs of 1-3 paths."""
    kept = manifest[manifest["label"].isin(EMODB_COUNTS)]
    clips = []
    for (speaker, label), rows in sorted(kept.groupby(["speaker", "label"]), key=lambda item: item[0]):
        paths = list(rng.permutation(sorted(rows["path"].map(str))))
        while paths:
            size = min(int(rng.choice(GROUP_SIZES, p=GROUP_P)), len(paths))
            clips.append({"label": label, "speaker": str(speaker), "sources": paths[:size]})
            paths = paths[size:]
    return clips


def emodb_proportions(clips: list[dict], rng: np.random.Generator) -> list[dict]:
    """A seeded draw of clips per class in Emo-DB's proportions, scaled to the scarcest class."""
    by_label: dict[str, list[dict]] = {}
    for clip in clips:
        by_label.setdefault(clip["label"], []).append(clip)
    if not by_label:
        raise ValueError(f"the corpus has none of the labels {sorted(EMODB_COUNTS)}")
    scale = min(len(group) / EMODB_COUNTS[label] for label, group in by_label.items())
    chosen = []
    for label in sorted(by_label):
        group = by_label[label]
        keep = max(1, int(round(scale * EMODB_COUNTS[label])))
        chosen += [group[i] for i in sorted(rng.choice(len(group), size=min(keep, len(group)), replace=False))]
    return chosen


def joined_waveform(sources: list[str]) -> np.ndarray:
    """The sources' speech (silence trimmed) end to end, with a short gap between them."""
    import librosa

    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts = []
    for path in sources:
        speech, _ = librosa.effects.trim(load_audio(path, SAMPLE_RATE), top_db=TRIM_DB)
        parts += [gap, speech] if parts else [speech]
    return np.concatenate(parts)


def write_corpus(clips: list[dict], out: Path) -> pd.DataFrame:
    """Every clip as a WAV and the manifest, written in a temporary folder renamed to ``out``."""
    import soundfile as sf

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    rows = []
    try:
        for index, clip in enumerate(clips):
            path = tmp / clip["speaker"] / f"{index:04d}-{clip['label']}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            wave = joined_waveform(clip["sources"])
            sf.write(path, wave, SAMPLE_RATE, subtype="PCM_16")
            rows.append({"path": str(path.relative_to(tmp)), "label": clip["label"], "speaker": clip["speaker"],
                         "seconds": round(len(wave) / SAMPLE_RATE, 3),
                         "sources": ";".join(Path(p).name for p in clip["sources"])})
        manifest = pd.DataFrame(rows)
        manifest.to_csv(tmp / "manifest.csv", index=False)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out.expanduser()
    try:
        if out.exists():
            raise ValueError(f"--out {out} exists; choose a new folder")
        rng = np.random.default_rng(args.seed)
        clips = emodb_proportions(group_utterances(scan_dataset(args.dataset, args.data_dir).manifest, rng), rng)
        out.parent.mkdir(parents=True, exist_ok=True)
        manifest = write_corpus(clips, out)
    except (SERError, ValueError) as error:  # AudioError is a SERError
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{label} {n}" for label, n in manifest["label"].value_counts().sort_index().items())
    seconds = manifest["seconds"]
    print(f"{len(manifest)} clips of {manifest['speaker'].nunique()} speakers ({counts}); "
          f"{seconds.min():.1f}-{seconds.max():.1f} s, median {seconds.median():.1f} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
