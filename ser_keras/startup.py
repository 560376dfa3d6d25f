"""Start Keras without TensorFlow's start-up lines on stderr, where errors are one line.

TensorFlow 2.21 writes its CPU-feature and oneDNN notes through absl before its own log level
(TF_CPP_MIN_LOG_LEVEL) applies, so the level alone cannot hide them; turning oneDNN off would
hide one of them at a 2-3x training-speed cost. Instead the import (and the first op, which
prints the oneDNN note again) runs with the process's stderr pointed at /dev/null for that
moment only; anything later, and any import error, is shown as usual.
"""

from __future__ import annotations

import os
import sys


def import_keras_quietly() -> None:
    """Import Keras (and TensorFlow, when it is the backend) with start-up chatter silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" in sys.modules:
        import keras  # noqa: F401
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import keras

        keras.ops.add(1.0, 1.0)  # the first op prints the oneDNN note a second time
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
