"""CWRU bearing data: the seeded faults show as their defect lines.

Data: Case Western Reserve University Bearing Data Center (see
../shared/data/cwru_bearing/SOURCE.md). Drive-end channel, 0 hp, 12 kHz (the
48 kHz normal baseline is decimated by 4 in the fixture). Each file is cut into
non-overlapping 4,096-sample windows, as the pipeline would see it, and the
per-window features are summarised by their median.

Only BPFI and BPFO are asserted: CWRU's 0.007" ball-fault file has no clean
ball-spin line (Smith & Randall 2015), so no test claims one.
"""

import numpy as np
import pytest

from predmaint.features.bearing import BearingGeometry
from predmaint.features.vibration import ENVELOPE_LINES, strongest_defect_line, vibration_features

SKF_6205 = BearingGeometry(9, 0.3126, 1.537, 0.0).multipliers()
WINDOW = 4096


def windows_features(x, fs, rpm):
    return [
        vibration_features(x[i : i + WINDOW], fs, shaft_hz=rpm / 60.0, bearing=SKF_6205)
        for i in range(0, x.size - WINDOW + 1, WINDOW)
    ]


def median_features(feats):
    return {k: float(np.median([f[k] for f in feats])) for k in feats[0]}


@pytest.fixture(scope="module")
def cwru_features(cwru):
    return {name: windows_features(*cwru[name]) for name in cwru}


def test_rpm_is_read_from_the_files(cwru):
    assert cwru["inner_race"][2] == 1797.0
    assert cwru["outer_race"][2] == 1796.0
    assert cwru["normal"][2] == 1796.0


@pytest.mark.parametrize("fault, line", [("inner_race", "bpfi"), ("outer_race", "bpfo")])
def test_fault_file_shows_its_defect_line(cwru_features, fault, line):
    feats = cwru_features[fault]
    assert len(feats) >= 25
    median = median_features(feats)
    assert strongest_defect_line(median)[0] == line
    per_window = [strongest_defect_line(f)[0] for f in feats]
    assert per_window.count(line) >= 0.9 * len(per_window), per_window
    assert median[f"env_{line}_ratio"] > 5.0


@pytest.mark.parametrize("fault, line", [("inner_race", "bpfi"), ("outer_race", "bpfo")])
def test_defect_line_is_at_least_3x_the_normal_baseline(cwru_features, fault, line):
    fault_median = median_features(cwru_features[fault])
    normal_median = median_features(cwru_features["normal"])
    key = f"env_{line}_ratio"
    assert fault_median[key] >= 3.0 * normal_median[key], (fault_median[key], normal_median[key])
    # In absolute terms (m/s^2) the gap is far larger still.
    assert fault_median[f"env_{line}"] >= 3.0 * normal_median[f"env_{line}"]


def test_normal_baseline_has_no_standout_line(cwru_features):
    median = median_features(cwru_features["normal"])
    assert max(median[f"env_{k}_ratio"] for k in ENVELOPE_LINES) < 3.0
