"""Robustness of prepare's cache and workers: damaged caches, racing runs, Ctrl-C."""

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audio_fixtures import write_tone

from ser_keras import decoding, prepare
from ser_keras.cachefiles import DamagedCache, check_arrays, npy_layout

ROOT = Path(__file__).resolve().parents[1]


def manifest_of(paths):
    return pd.DataFrame({"path": [str(p) for p in paths], "corpus": "test", "label": "neutral", "speaker": "s0"})


@pytest.fixture
def good(tmp_path):
    return [write_tone(tmp_path / "audio" / f"g{i}.wav", seconds=0.3 + 0.1 * i, seed=i) for i in range(3)]


def entries(cache):
    return sorted(p.name for p in (cache / "prepared").iterdir())


# --- a damaged cache is rebuilt, never read ---------------------------------------------------

@pytest.mark.parametrize("damage", ["truncate waveforms", "truncate scales", "drop offsets", "garble settings"])
def test_damaged_cache_is_rebuilt_with_a_note(tmp_path, good, capsys, damage):
    cache = tmp_path / "cache"
    first = prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=cache, progress=False)
    expected = [first.waveform(i) for i in range(3)]
    del first  # let go of the memory maps
    folder = cache / "prepared" / entries(cache)[0]
    if damage.startswith("truncate"):
        path = folder / f"{damage.split()[1]}.npy"
        path.write_bytes(path.read_bytes()[:-7])  # settings.json still intact
    elif damage == "drop offsets":
        (folder / "offsets.npy").unlink()
    else:
        (folder / "settings.json").write_text("{")
    with pytest.raises(DamagedCache):
        prepare.load_prepared(folder, manifest_of(good))
    capsys.readouterr()
    again = prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=cache, progress=False)
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and re.fullmatch(rf"prepare: prepared cache '{re.escape(str(folder))}' is damaged \(.+\); rebuilding it",
                                            note[0]), note
    assert again.directory == folder and entries(cache) == [folder.name]
    for i in range(3):
        np.testing.assert_array_equal(again.waveform(i), expected[i])


def test_truncated_array_is_found_by_size(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(10, dtype=np.int16))
    assert npy_layout(tmp_path / "a.npy") == ((10,), np.dtype(np.int16))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[:-1])
    with pytest.raises(ValueError, match="holds"):
        npy_layout(tmp_path / "a.npy")
    (tmp_path / "a.npy").write_bytes(data + b"\0\0")
    with pytest.raises(ValueError, match="holds"):
        npy_layout(tmp_path / "a.npy")


def test_is10_arrays_are_checked_too(tmp_path):
    n, frames = 2, [3, 4]
    np.save(tmp_path / "offsets.npy", np.array([0, 5, 9], np.int64))
    np.save(tmp_path / "waveforms.npy", np.zeros(9, np.int16))
    np.save(tmp_path / "scales.npy", np.ones(n, np.float32))
    np.save(tmp_path / "is10_offsets.npy", np.cumsum([0, *frames]).astype(np.int64))
    np.save(tmp_path / "is10_lld.npy", np.zeros((sum(frames), prepare.IS10_LLD_DIM), np.float32))
    np.save(tmp_path / "is10_functionals.npy", np.zeros((n, prepare.IS10_FUNCTIONALS_DIM), np.float32))
    check_arrays(tmp_path, n, is10=True)
    with pytest.raises(ValueError, match=r"offsets.npy is int64 \(3,\), expected int64 \(4,\)"):
        check_arrays(tmp_path, 3, is10=False)  # offsets for 2 utterances, the manifest has 3
    np.save(tmp_path / "waveforms.npy", np.zeros(8, np.int16))
    with pytest.raises(ValueError, match="waveforms.npy"):
        check_arrays(tmp_path, n, is10=False)  # offsets end past the waveforms
    np.save(tmp_path / "waveforms.npy", np.zeros(9, np.int16))
    np.save(tmp_path / "is10_lld.npy", np.zeros((sum(frames) - 1, prepare.IS10_LLD_DIM), np.float32))
    with pytest.raises(ValueError, match="is10_lld.npy"):
        check_arrays(tmp_path, n, is10=True)


# --- two runs preparing the same corpus -------------------------------------------------------

def test_second_publisher_keeps_the_first_cache(tmp_path, good):
    paths = [str(p) for p in good]
    fp = prepare.fingerprint(paths, 16000, False)
    final = tmp_path / "cache" / "prepared" / fp
    prepare._create(final, paths, 16000, False, False, fp)
    stamp = (final / "settings.json").stat().st_mtime_ns
    prepare._create(final, paths, 16000, False, False, fp)  # the twin finishing second
    assert (final / "settings.json").stat().st_mtime_ns == stamp  # the first one was kept
    assert entries(tmp_path / "cache") == [fp]  # and the loser's temporary folder is gone
    assert len(prepare.load_prepared(final, manifest_of(good))) == 3


def test_publishing_replaces_a_damaged_cache(tmp_path, good):
    paths = [str(p) for p in good]
    fp = prepare.fingerprint(paths, 16000, False)
    final = tmp_path / "cache" / "prepared" / fp
    final.mkdir(parents=True)
    (final / "settings.json").write_text("{}")  # a half-deleted or foreign folder under our name
    (final / "junk").write_text("x")
    prepare._create(final, paths, 16000, False, False, fp)
    assert len(prepare.load_prepared(final, manifest_of(good))) == 3
    assert entries(tmp_path / "cache") == [fp]


def test_concurrent_prepares_agree(tmp_path, good):
    results, errors = [], []
    barrier = threading.Barrier(4)

    def run():
        try:
            barrier.wait()
            results.append(prepare.prepare_corpus(manifest_of(good), 16000, cache_dir=tmp_path / "cache", progress=False))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 4
    assert len({r.directory for r in results}) == 1 and entries(tmp_path / "cache") == [results[0].fingerprint]
    for r in results:
        np.testing.assert_array_equal(r.waveform(2), results[0].waveform(2))


# --- Ctrl-C reaches the parent only ------------------------------------------------------------

def test_workers_ignore_sigint():
    with decoding.worker_pool(1) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result(timeout=120) == signal.SIG_IGN


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no signal masks on this platform")
def test_workers_start_with_sigint_held_back():
    # A Ctrl-C while a worker is still importing stays pending until its initializer ignores it.
    context = multiprocessing.get_context("spawn")
    with decoding._sigint_held():
        pool = ProcessPoolExecutor(1, mp_context=context)
        future = pool.submit(signal.pthread_sigmask, signal.SIG_BLOCK, [])
    with pool:
        assert signal.SIGINT in future.result(timeout=120)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


CTRL_C_SCRIPT = """
import os, signal, sys
from pathlib import Path
# A terminal's Ctrl-C, whatever this process inherited from the test runner (an ignored or
# blocked SIGINT is inherited across exec, and Python then installs no KeyboardInterrupt handler).
signal.signal(signal.SIGINT, signal.default_int_handler)
if hasattr(signal, "pthread_sigmask"):
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
from ser_keras.decoding import decoded

paths = sorted(str(p) for p in Path(sys.argv[1]).glob("*.wav"))
results = decoded(paths, 16000, is10=False)
try:
    for i, result in enumerate(results):
        if i == len(paths) - 1:  # every task done: workers wait for more, where SIGINT used to print
            os.killpg(os.getpgrp(), signal.SIGINT)  # what the terminal sends on Ctrl-C: every process
            signal.pause()
except KeyboardInterrupt:
    results.close()
    print("interrupted after", i + 1)
"""


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_ctrl_c_during_parallel_decoding_prints_no_worker_tracebacks(tmp_path):
    for i in range(decoding.PARALLEL_FROM):
        write_tone(tmp_path / f"{i:03d}.wav", seconds=0.05, seed=i)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            check=False, env=env, timeout=120, start_new_session=True)  # its own group: pytest is not signalled
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"interrupted after {decoding.PARALLEL_FROM}"
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
