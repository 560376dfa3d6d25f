import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pytest-xdist (pytest.ini runs the suite on several workers): librosa's numba functions cache
# their compiled code, and two processes writing one cache folder can read each other's
# half-written files, so each worker gets a folder of its own (set before librosa is imported).
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(os.environ["NUMBA_CACHE_DIR"], os.environ["PYTEST_XDIST_WORKER"])

# Real corpora live beside the repository (../shared/data) on development machines only.
SHARED_DATA = Path(os.environ.get("SER_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_ravdess():
    root = SHARED_DATA / "ravdess"
    if not (root / "Actor_01").is_dir():
        pytest.skip(f"real RAVDESS not found at {root} (set SER_SHARED_DATA)")
    return root


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set SER_SHARED_DATA)")
    return SHARED_DATA
