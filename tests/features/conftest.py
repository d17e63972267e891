"""Real-data fixtures for the feature tests.

The datasets live outside the repository, in ``../shared/data`` next to it, or
wherever ``PREDMAINT_SHARED_DATA`` points. A missing dataset fails the tests
that need it with a message saying where it was looked for: it never skips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predmaint.connectors.datasets.cwru import G
from predmaint.connectors.datasets.cwru import read_drive_end as load_cwru
from predmaint.pipelines.evaluate import shared_data_dir

DATA_ROOT = shared_data_dir()

CWRU_FILES = {
    "normal": "normal_0_97.mat",
    "inner_race": "12k_Drive_End_IR007_0_105.mat",
    "outer_race": "12k_Drive_End_OR007@6_0_130.mat",
    "ball": "12k_Drive_End_B007_0_118.mat",
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
    out = {}
    for name, filename in CWRU_FILES.items():
        x, rpm = load_cwru(_require(DATA_ROOT / "cwru_bearing" / filename), G, 4 if name == "normal" else 1)
        out[name] = (x, 12000.0, rpm)
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
