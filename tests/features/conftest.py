"""Real-data fixtures for the feature tests.

The datasets live outside the repository, in ``../shared/data`` next to it, or
wherever ``PREDMAINT_SHARED_DATA`` points. A missing dataset fails the tests
that need it with a message saying where it was looked for: it never skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

G = 9.80665  # both datasets record acceleration in g
REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = Path(os.environ.get("PREDMAINT_SHARED_DATA", REPO.parent / "shared" / "data"))

CWRU_FILES = {
    "normal": "normal_0_97.mat",
    "inner_race": "12k_Drive_End_IR007_0_105.mat",
    "outer_race": "12k_Drive_End_OR007@6_0_130.mat",
}
IMS_FILES = ("2004.02.16.04.32.39", "2004.02.17.07.12.39")


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(
            f"real dataset file not found: {path} (data root {DATA_ROOT}: set "
            "PREDMAINT_SHARED_DATA, or put the shared data in ../shared/data next to the repo)"
        )
    return path


@pytest.fixture(scope="session")
def cwru() -> dict[str, tuple[np.ndarray, float, float]]:
    """Drive-end acceleration (m/s^2), sample rate (Hz) and rpm per CWRU file.

    The normal baseline is recorded at 48 kHz (see its SOURCE.md) and is
    decimated by 4 here so every file is at 12 kHz.
    """
    from scipy.io import loadmat
    from scipy.signal import decimate

    out = {}
    for name, filename in CWRU_FILES.items():
        mat = loadmat(_require(DATA_ROOT / "cwru_bearing" / filename))
        de = [k for k in mat if k.endswith("_DE_time")]
        rpm = [k for k in mat if k.endswith("RPM")]  # e.g. X105RPM
        assert len(de) == 1 and len(rpm) == 1, f"unexpected variables in {filename}: {list(mat)}"
        x = mat[de[0]].ravel() * G
        if name == "normal":
            x = decimate(x, 4)
        out[name] = (x, 12000.0, float(mat[rpm[0]].ravel()[0]))
    return out


@pytest.fixture(scope="session")
def ims() -> dict[str, np.ndarray]:
    """IMS test-2 raw snapshots, (20480, 4) in m/s^2, keyed by file name."""
    out = {}
    for filename in IMS_FILES:
        x = np.loadtxt(_require(DATA_ROOT / "ims_bearing_test2" / "raw" / filename))
        assert x.shape == (20480, 4), f"{filename}: expected 20480 x 4, got {x.shape}"
        out[filename] = x * G
    return out
