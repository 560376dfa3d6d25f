"""openSMILE IS10 in ONE openSMILE run per clip: the IS10 configuration with three external sinks
(``is10_sinks.conf.inc``: LLDs, their deltas, functionals). Three ``opensmile.Smile`` objects,
one per feature level, would each recompute every LLD: about 3x the time, too slow for STRL-SER
inference at 50x real time on one thread.

The run repeats what ``opensmile.Smile.process_signal`` does (opensmile 2.6: ``Smile._extract``,
``_options``, ``_smile``, ``_series_to_frame``) step by step, so each stream is bit-identical to
that level's ``Smile`` output: same configuration options, same int16 conversion, same start times,
a NaN row where the clip is too short to give a frame. No TensorFlow here: openSMILE must not
share a process with it.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import pandas as pd

SINK_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "is10_sinks.conf.inc")
SINKS = {"lld": "is10sink_lld", "delta": "is10sink_lld_de", "functionals": "is10sink_func"}
LOGLEVEL = 2  # opensmile.Smile's default


class IS10Extractor:
    """``run(x, rate)``: one openSMILE IS10 run -> the LLD, delta and functional streams."""

    def __init__(self):
        import opensmile
        from opensmile.core.config import config

        root = os.path.join(os.path.dirname(os.path.realpath(inspect.getfile(opensmile.Smile))), config.CONFIG_ROOT)
        self.config_path = os.path.join(root, opensmile.FeatureSet.IS10.value + config.CONFIG_EXT)
        # Smile._options and _extract's options, with our three sinks in place of its single one
        # (so no sinkLevel: our sinks name their levels)
        self.options = {"sink": SINK_CONFIG,
                        "bufferModeRbConf": os.path.join(root, "shared/BufferModeRb.conf.inc"),
                        "frameModeFunctionalsConf": os.path.join(root, "shared/FrameModeFunctionals.conf.inc"),
                        "source": os.path.join(root, config.EXTERNAL_INPUT_CONFIG)}
        self.source = config.EXTERNAL_SOURCE_COMPONENT
        smile = self._smile(self.options)  # as Smile._feature_names: the width of each stream
        self.sizes = {name: smile.external_sink_get_num_elements(sink) for name, sink in SINKS.items()}
        smile.free()

    def _smile(self, options: dict):
        from opensmile.core.lib import OpenSMILE

        smile = OpenSMILE()
        smile.initialize(config_file=self.config_path, options=options, loglevel=LOGLEVEL, log_file=None, debug=False)
        return smile

    def run(self, x: np.ndarray, sample_rate: int) -> dict:
        """name -> (frame start times in ms, int64 [frames]; values [frames, size]) of a mono clip."""
        pcm = np.atleast_2d(x)[0].copy()  # process_signal takes channel 0; then Smile._extract's
        pcm *= 32768                      # conversion, in the input's dtype: scaled in place and
        pcm = pcm.astype(np.int16)        # truncated (not rounded) to int16
        streams = {name: ([], []) for name in SINKS}
        smile = self._smile({**self.options, "sampleRate": sample_rate, "nBits": 16})
        try:
            for name, (rows, times) in streams.items():
                smile.external_sink_set_callback_ex(SINKS[name], _collector(rows, times))
            smile.external_audio_source_write_data(self.source, bytes(pcm))
            smile.external_audio_source_set_eoi(self.source)
            smile.run()
        finally:
            smile.free()
        return {name: _stream(rows, times, self.sizes[name]) for name, (rows, times) in streams.items()}


def _collector(rows: list, times: list):
    """Sink callback as Smile._sink_callback: openSMILE reuses its buffer, so copy the frame."""
    def collect(data, meta):
        rows.append(data.copy())
        times.append(meta.time)
    return collect


def _stream(rows: list, times: list, size: int) -> tuple[np.ndarray, np.ndarray]:
    if not rows:  # Smile._extract's "Segment too short, filling with NaN": one NaN frame at 0 s
        return np.zeros(1, dtype=np.int64), np.full((1, size), np.nan)
    # process_signal's index: seconds -> Timedelta (ns), the first start set to the segment's (0)
    seconds = pd.to_timedelta(np.asarray(times, dtype=np.float64), "s").total_seconds().to_numpy()
    starts_ms = np.round(seconds * 1000).astype(np.int64)
    starts_ms[0] = 0
    return starts_ms, np.vstack(rows)
