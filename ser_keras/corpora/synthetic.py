"""The synthetic demo corpus: seeded emotional-prosody utterances in the RAVDESS layout.

Every file is a source-filter "speech" signal: a jittered glottal pulse train (low-passed
for spectral tilt) gated into syllable-like bursts, each burst shaped by a vowel's
formant resonators, with a little aspiration noise. Classes differ in F0 level, F0
range and contour, speaking rate, loudness, spectral tilt and jitter; every speaker
has its own base F0 and formant scale, so speaker-independent splits mean something.
Within-class parameters are drawn widely and speed / volume labels are drawn only
partly from the emotion, so no single cue separates the classes.

Files: ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (16 kHz, 16-bit), plus ``metadata.csv``
(per-file speed / volume labels and the drawn parameters) and ``generator.json`` (the
settings, used to recognise an already generated corpus).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import lfilter, sosfilt

from ..errors import ConfigError, DataError
from . import ravdess
from .base import CorpusScan

VERSION = "synthetic-v1"
SAMPLE_RATE = 16000
DEFAULT_EMOTIONS = ("neutral", "happy", "sad", "angry")
EMOTION_CODES = {name: int(code) for code, name in ravdess.EMOTIONS.items()}
SPEEDS = ("slow", "normal", "fast")
VOLUMES = ("quiet", "normal", "loud")
SPEED_FACTOR = {"slow": 0.7, "normal": 1.0, "fast": 1.4}      # x syllable rate
VOLUME_DB = {"quiet": -8.0, "normal": 0.0, "loud": 7.0}       # + active-speech level
BASE_RATE = 4.2        # syllables per second of a neutral "normal" speaker
BASE_LEVEL_DB = -27.0  # active-speech RMS in dBFS before emotion / volume offsets


@dataclass(frozen=True)
class Prosody:
    """Class-mean prosody; ``strength`` (intensity) scales the departure from neutral."""

    f0_ratio: float      # F0 level relative to the speaker's base
    range_st: float      # F0 excursion (semitones, peak to peak)
    slope_st: float      # global contour over the utterance (semitones; < 0 falls)
    rate: float          # x BASE_RATE
    gain_db: float       # + BASE_LEVEL_DB
    tilt_hz: float       # glottal low-pass corner: lower is darker
    jitter: float        # relative period perturbation (std)
    breath: float        # aspiration noise relative to the voiced source
    speed_p: tuple       # P(slow, normal, fast)
    volume_p: tuple      # P(quiet, normal, loud)


PROSODY = {
    "neutral":   Prosody(1.00, 2.5, -1.5, 1.00, 0.0, 300, 0.006, 0.05, (.25, .5, .25), (.25, .5, .25)),
    "calm":      Prosody(0.95, 2.0, -2.0, 0.90, -2.0, 250, 0.005, 0.08, (.4, .45, .15), (.4, .45, .15)),
    "happy":     Prosody(1.22, 6.0, 1.5, 1.10, 2.0, 450, 0.010, 0.05, (.15, .45, .4), (.15, .45, .4)),
    "sad":       Prosody(0.90, 1.5, -3.0, 0.82, -3.0, 200, 0.014, 0.15, (.5, .4, .1), (.5, .4, .1)),
    "angry":     Prosody(1.30, 4.5, -0.5, 1.12, 3.5, 700, 0.018, 0.04, (.15, .45, .4), (.1, .4, .5)),
    "fearful":   Prosody(1.35, 3.0, 1.0, 1.15, -1.0, 400, 0.024, 0.12, (.1, .4, .5), (.35, .45, .2)),
    "disgust":   Prosody(0.92, 3.5, -2.5, 0.85, 0.5, 350, 0.012, 0.08, (.45, .4, .15), (.25, .5, .25)),
    "surprised": Prosody(1.35, 7.0, 3.0, 1.05, 1.5, 450, 0.010, 0.06, (.25, .45, .3), (.2, .45, .35)),
}

# (F1, F2, F3) of five vowels for an adult male; speakers scale them.
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])
STATEMENT_VOWELS = {1: [1, 0, 0, 4, 1, 3, 4, 2, 0, 3], 2: [4, 0, 1, 1, 3, 4, 2, 0, 1, 3]}
BANDWIDTHS = (90.0, 110.0, 160.0, 250.0)


def default_root() -> Path:
    """Where ``--dataset synthetic`` lives when no folder is given (inside the cache)."""
    from ..prepare import cache_root

    return cache_root() / f"{VERSION}-seed0"


def _settings(speakers, emotions, seed, intensities, statements, repetitions) -> dict:
    if not 1 <= speakers <= 99:
        raise ConfigError(f"synthetic: speakers must be 1..99, not {speakers}")
    unknown = [e for e in emotions if e not in EMOTION_CODES]
    if unknown or not emotions:
        raise ConfigError(f"synthetic: unknown emotion(s) {unknown}; choose from {', '.join(EMOTION_CODES)}")
    if not (intensities in (1, 2) and statements in (1, 2) and repetitions in (1, 2)):
        raise ConfigError("synthetic: intensities, statements and repetitions must each be 1 or 2")
    return {"version": VERSION, "sample_rate": SAMPLE_RATE, "seed": int(seed), "speakers": int(speakers),
            "emotions": list(emotions), "intensities": intensities, "statements": statements,
            "repetitions": repetitions}


def speaker_voice(seed: int, actor: int) -> dict:
    """Base F0 and formant scale of one speaker (odd actors male, as in RAVDESS)."""
    rng = np.random.default_rng([seed, actor, 7])
    male = actor % 2 == 1
    return {
        "f0": rng.uniform(85, 145) if male else rng.uniform(165, 255),
        "formant_scale": rng.normal(1.0 if male else 1.17, 0.04),
        "level_db": rng.normal(0.0, 1.5),
        "tilt": rng.uniform(0.8, 1.25),
    }


def _towards(neutral: float, value: float, strength: float) -> float:
    return neutral + (value - neutral) * strength


def draw_utterance(rng, voice: dict, emotion: str, strong: bool) -> dict:
    """Per-file parameters: class means, intensity, speed/volume labels and wide noise."""
    p, n = PROSODY[emotion], PROSODY["neutral"]
    s = 1.5 if strong else 1.0
    speed = SPEEDS[rng.choice(3, p=p.speed_p)]
    volume = VOLUMES[rng.choice(3, p=p.volume_p)]
    rate = BASE_RATE * _towards(1.0, p.rate, s) * SPEED_FACTOR[speed] * np.exp(rng.normal(0, 0.12))
    level = BASE_LEVEL_DB + voice["level_db"] + p.gain_db * s + VOLUME_DB[volume] + rng.normal(0, 2.0)
    return {
        "speed": speed, "volume": volume, "rate": rate, "level_db": level,
        "f0": voice["f0"] * _towards(1.0, p.f0_ratio, s) * np.exp(rng.normal(0, 0.08)),
        "range_st": _towards(n.range_st, p.range_st, s) * rng.uniform(0.5, 1.5),
        "slope_st": _towards(n.slope_st, p.slope_st, s) + rng.normal(0, 1.5),
        "tilt_hz": _towards(n.tilt_hz, p.tilt_hz, s) * voice["tilt"] * np.exp(rng.normal(0, 0.25)),
        "jitter": _towards(n.jitter, p.jitter, s) * rng.uniform(0.5, 1.5),
        "breath": _towards(n.breath, p.breath, s) * rng.uniform(0.5, 1.5),
    }


def _syllable_plan(rng, rate: float):
    """(start, voiced length, total length) in samples per syllable, plus leading silence."""
    lead, tail = rng.uniform(0.1, 0.3, size=2)
    budget = 3.0 - lead - tail
    count = int(np.clip(round(rate * rng.uniform(1.0, 2.2)), 3, 14))
    lengths = rng.uniform(0.75, 1.25, size=count) / rate
    while lengths.sum() > budget and count > 3:
        count -= 1
        lengths = lengths[:count]
    lengths *= min(1.0, budget / lengths.sum())
    total = max(1.5, lead + lengths.sum() + tail)
    starts = lead + np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    voiced = lengths * rng.uniform(0.55, 0.8, size=count)
    to_n = lambda v: np.round(np.asarray(v) * SAMPLE_RATE).astype(int)  # noqa: E731
    return to_n(starts), to_n(voiced), to_n(lengths), int(total * SAMPLE_RATE)


def _f0_track(rng, u: dict, n: int, starts) -> np.ndarray:
    """F0 in Hz per sample: a global slope plus a random pitch target per syllable."""
    t = np.arange(n) / n
    targets = rng.uniform(-0.5, 0.5, size=len(starts)) * u["range_st"]
    accent = np.interp(np.arange(n), starts, targets)
    return u["f0"] * 2.0 ** ((u["slope_st"] * (t - 0.5) + accent) / 12.0)


def _pulse_train(rng, f0: np.ndarray, jitter: float) -> np.ndarray:
    """Glottal impulses with per-period jitter and shimmer."""
    x = np.zeros(f0.size)
    pos = rng.uniform(0, SAMPLE_RATE / f0[0])
    while pos < f0.size - 1:
        i = int(pos)
        frac = pos - i  # linear split keeps sub-sample timing
        amp = 1.0 + rng.normal(0, 4 * jitter)
        x[i] += amp * (1 - frac)
        x[i + 1] += amp * frac
        pos += SAMPLE_RATE / f0[i] * (1.0 + rng.normal(0, jitter))
    return x


def _formant_sos(formants) -> np.ndarray:
    """Cascade of two-pole resonators (unit gain at DC) as second-order sections."""
    sos = []
    for f, bw in zip(formants, BANDWIDTHS):
        r = np.exp(-np.pi * bw / SAMPLE_RATE)
        a1, a2 = -2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), r * r
        sos.append([1 + a1 + a2, 0, 0, 1, a1, a2])
    return np.array(sos)


def synthesize(rng, voice: dict, u: dict, statement: int) -> np.ndarray:
    """One utterance as float32 in [-1, 1] at SAMPLE_RATE."""
    starts, voiced, lengths, n = _syllable_plan(rng, u["rate"])
    u["duration"] = n / SAMPLE_RATE
    f0 = _f0_track(rng, u, n, starts)
    pole = np.exp(-2 * np.pi * u["tilt_hz"] / SAMPLE_RATE)
    source = lfilter([1 - pole], [1, -pole], _pulse_train(rng, f0, u["jitter"]))
    source = lfilter([1 - pole], [1, -pole], source)
    source = source / (np.std(source) + 1e-12) + u["breath"] * rng.standard_normal(n)
    out = np.zeros(n)
    vowels = STATEMENT_VOWELS[statement]
    tail = int(0.03 * SAMPLE_RATE)
    for k, (start, length) in enumerate(zip(starts, voiced)):
        env = np.sin(np.pi * np.linspace(0, 1, length)) ** 0.7  # a soft attack and decay per syllable
        formants = np.append(VOWELS[vowels[k % len(vowels)]], 3500) * voice["formant_scale"]
        piece = np.concatenate([source[start:start + length] * env, np.zeros(tail)])
        piece = sosfilt(_formant_sos(formants * rng.uniform(0.95, 1.05)), piece)
        stop = min(n, start + piece.size)
        out[start:stop] += piece[:stop - start]
    out = np.diff(out, prepend=0.0)  # lip radiation
    active = np.concatenate([out[s:s + v] for s, v in zip(starts, voiced)])
    out *= 10 ** (u["level_db"] / 20) / (np.sqrt(np.mean(active ** 2)) + 1e-12)
    out += 10 ** (-66 / 20) * rng.standard_normal(n)  # room noise: never digital silence
    peak = np.max(np.abs(out))
    return (out / peak * 0.98 if peak > 0.98 else out).astype(np.float32)


def _file_plan(settings: dict):
    codes = [EMOTION_CODES[e] for e in settings["emotions"]]
    for actor in range(1, settings["speakers"] + 1):
        for code in codes:
            for intensity in range(1, settings["intensities"] + 1):
                for statement in range(1, settings["statements"] + 1):
                    for repetition in range(1, settings["repetitions"] + 1):
                        yield actor, code, intensity, statement, repetition


def _write_corpus(folder: Path, settings: dict) -> None:
    rows = []
    seed = settings["seed"]
    for actor, code, intensity, statement, repetition in _file_plan(settings):
        voice = speaker_voice(seed, actor)
        rng = np.random.default_rng([seed, actor, code, intensity, statement, repetition])
        emotion = ravdess.EMOTIONS[f"{code:02d}"]
        u = draw_utterance(rng, voice, emotion, strong=intensity == 2)
        x = synthesize(rng, voice, u, statement)
        rel = f"Actor_{actor:02d}/03-01-{code:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(folder / rel), x, SAMPLE_RATE, format="WAV", subtype="PCM_16")
        rows.append({"path": rel, "label": emotion, "speed": u["speed"], "volume": u["volume"],
                     "f0_hz": round(u["f0"], 2), "syllable_rate": round(u["rate"], 3),
                     "level_db": round(u["level_db"], 2), "duration": round(u["duration"], 4)})
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    (folder / "generator.json").write_text(json.dumps(settings, indent=2) + "\n")


def _holds(root: Path, settings: dict) -> bool:
    try:
        return json.loads((root / "generator.json").read_text()) == settings and (root / "metadata.csv").is_file()
    except (OSError, ValueError):
        return False


def generate(root, speakers: int = 8, emotions=DEFAULT_EMOTIONS, seed: int = 0,
             intensities: int = 2, statements: int = 2, repetitions: int = 2) -> Path:
    """Write the corpus to ``root`` (atomically) and return it; reuse an identical one."""
    settings = _settings(speakers, tuple(emotions), seed, intensities, statements, repetitions)
    root = Path(root).expanduser()
    if root.exists():
        if _holds(root, settings):
            return root
        if not root.is_dir() or any(root.iterdir()):
            raise DataError(f"synthetic: '{root}' exists and is not this synthetic corpus; choose an empty or new folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        _write_corpus(tmp, settings)
        if root.is_dir():
            root.rmdir()  # only ever an empty folder here
        os.rename(tmp, root)
    except OSError:
        if _holds(root, settings):  # another process finished the same corpus first
            return root
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def read(data_dir=None, **options) -> CorpusScan:
    """Scan a synthetic corpus (generated into ``default_root()`` when no folder is given)."""
    if data_dir is None:
        data_dir = generate(default_root())
    root = Path(data_dir).expanduser()
    meta_path = root / "metadata.csv"
    if root.is_dir() and not meta_path.is_file():
        raise DataError(f"synthetic: '{root}' has no metadata.csv; make the corpus with `cli.py synth --to DIR`")
    scan = ravdess.read(root, **options)
    meta = pd.read_csv(meta_path, dtype=str)[["path", "speed", "volume"]]
    meta["path"] = [str((root / p).absolute()) for p in meta["path"]]
    manifest = scan.manifest.drop(columns=["speed", "volume"], errors="ignore").merge(meta, on="path", how="left")
    missing = manifest["speed"].isna()
    if missing.any():
        scan.skipped.extend((p, "not listed in metadata.csv") for p in manifest.loc[missing, "path"])
        manifest = manifest[~missing].reset_index(drop=True)
    manifest["corpus"] = "synthetic"
    scan.manifest = manifest
    return scan
