"""ser_keras: a Keras 3 / TensorFlow toolkit for speech emotion recognition."""

import os as _os
import platform as _platform

# oneDNN on for TensorFlow on every x86-64 CPU. TensorFlow turns it on by itself only on CPUs with
# AVX-512 VNNI / BF16 / AMX; on an AVX2 CPU (AMD EPYC here) it stays off, and cldnn then trains
# 1.95x slower (benchmarks/training_throughput.py, variant onednn_on; README "Speed"). Set before
# anything imports TensorFlow; a user's own TF_ENABLE_ONEDNN_OPTS=0 is kept. Other CPUs (ARM)
# keep TensorFlow's own choice: nothing was measured there.
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
