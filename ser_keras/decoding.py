"""Decode and measure many audio files, in worker processes when it pays (``prepare``, ``predict``).

Ctrl-C reaches every process of the terminal's foreground group, workers included. Workers
therefore ignore SIGINT (else each prints its own KeyboardInterrupt traceback before the
one-line error); the parent gets the KeyboardInterrupt and ends the workers at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from itertools import repeat

from . import audio
from .acoustic import IS10_SAMPLE_RATE, is10_extractors, is10_features, speech_measures
from .errors import AudioError

PARALLEL_FROM = 64  # files; below this, decoding in-process is quicker than starting workers
CHUNK_SIZE = 4  # files per task sent to a worker


def decode_one(path, sample_rate: int, is10: bool):
    """Decode one file and measure it -> dict of results, or (path, reason) when unusable."""
    try:
        x = audio.load_audio(path, sample_rate)
    except AudioError as error:
        return str(path), getattr(error, "reason", str(error))
    rms_db, rate = speech_measures(x, sample_rate)
    result = {"x": x, "active_rms_db": rms_db, "syllable_rate": rate}
    if is10:
        global _EXTRACTORS
        _EXTRACTORS = _EXTRACTORS or is10_extractors()
        result["lld"], result["func"] = is10_features(audio.resample(x, sample_rate, IS10_SAMPLE_RATE), _EXTRACTORS)
    return result


_EXTRACTORS = None  # openSMILE extractors, created once per worker process


def _ignore_sigint() -> None:
    """Worker initializer: leave Ctrl-C to the parent. Setting SIG_IGN also discards a SIGINT
    that arrived while the worker was starting (held back by ``_sigint_held``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def _sigint_held():
    """Block SIGINT in this thread while workers are spawned. Children inherit the blocked mask,
    so a Ctrl-C during their (seconds-long) start stays pending until ``_ignore_sigint`` drops
    it; the parent receives its own pending SIGINT as soon as the block is lifted."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, no process groups
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Fresh ``spawn`` workers that ignore SIGINT (openSMILE must not share a process with TF)."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_sigint)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Drop the queued files and end the workers now, instead of waiting for the files they are
    on (seconds each with IS10) after Ctrl-C or an error."""
    # The executor has no public way to kill its workers; ``_processes`` exists since 3.2 and
    # is cleared by shutdown(), hence read first.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()


def decoded(paths: list, sample_rate: int, is10: bool):
    """Results of ``decode_one`` in order. openSMILE corrupts the heap when TensorFlow is loaded
    in the same process, so IS10 (and any large corpus, for speed) runs in fresh worker processes."""
    if not is10 and len(paths) < PARALLEL_FROM:
        yield from (decode_one(p, sample_rate, is10) for p in paths)
        return
    workers = max(1, min(os.cpu_count() or 1, len(paths)))
    pool = worker_pool(workers)
    try:
        with _sigint_held():  # map() submits every task, which spawns every worker
            results = pool.map(decode_one, paths, repeat(sample_rate), repeat(is10), chunksize=CHUNK_SIZE)
        yield from results  # (a Ctrl-C held back above is raised here, on leaving the block)
    except BaseException:  # KeyboardInterrupt, an error, or GeneratorExit: the caller gave up
        stop_pool(pool)
        raise
    pool.shutdown()
