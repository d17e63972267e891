"""Fault naming: known answers for every branch of the line -> fault tables, and noise stays unnamed."""

from __future__ import annotations

import numpy as np
import pytest

from predmaint.features.bearing import BearingGeometry
from predmaint.features.diagnosis import DEFECT_RATIO_MIN, LINE_FAULTS, ORDER_FAULTS, diagnose, named_fault
from predmaint.features.vibration import vibration_features

BEARING = BearingGeometry(9, 0.3126, 1.537, 0.0).multipliers()


@pytest.mark.parametrize("line, fault", sorted(LINE_FAULTS.items()))
def test_each_envelope_line_names_its_bearing_fault(line, fault):
    features = {f"env_{other}_ratio": 2.0 for other in LINE_FAULTS}
    features[f"env_{line}_ratio"] = DEFECT_RATIO_MIN + 4.0
    d = diagnose(features)
    assert d["fault"] == fault and d["feature"] == f"env_{line}_ratio" and d["ratio"] == DEFECT_RATIO_MIN + 4.0


@pytest.mark.parametrize("order, fault", sorted(ORDER_FAULTS.items()))
def test_a_changed_shaft_order_names_its_fault(order, fault):
    explanation = [{"feature": order, "value": 4.0, "baseline_mean": 1.0, "z": 12.0}]
    d = diagnose({order: 4.0, "env_bpfo_ratio": 2.0}, explanation)
    assert d["fault"] == fault and d["ratio"] == 4.0


def test_a_shaft_order_that_did_not_change_is_not_named():
    # 1x dominates every healthy machine's spectrum: without the explanation pointing at it, no fault.
    assert diagnose({"amp_1x": 5.0, "amp_2x": 0.5, "env_bpfo_ratio": 2.5},
                    [{"feature": "kurtosis", "value": 6.0, "baseline_mean": 3.0, "z": 5.0}]) is None


def test_white_noise_names_no_bearing_fault():
    rng = np.random.default_rng(3)
    named = [diagnose(vibration_features(rng.standard_normal(4096), 12_000.0, shaft_hz=29.95, bearing=BEARING))
             for _ in range(50)]
    assert sum(d is not None for d in named) <= 1  # the noise p95 is ~3, the threshold 6


def test_a_seeded_outer_race_fault_is_named_with_its_line():
    fs, fr = 12_000.0, 29.95
    t = np.arange(4096) / fs
    bpfo = BEARING.bpfo * fr
    impulses = np.zeros_like(t)
    impulses[(np.arange(0, t[-1], 1 / bpfo) * fs).astype(int)] = 1.0
    ring = np.exp(-np.arange(60) / 8.0) * np.sin(2 * np.pi * 3000 * np.arange(60) / fs)
    x = np.convolve(impulses, ring)[: t.size] * 5 + 0.2 * np.random.default_rng(0).standard_normal(t.size)
    d = diagnose(vibration_features(x, fs, shaft_hz=fr, bearing=BEARING))
    assert d is not None and d["fault"] == "outer_race" and d["feature"] == "env_bpfo_ratio" \
        and d["ratio"] > DEFECT_RATIO_MIN


def test_named_fault_reads_the_diagnosis_item():
    assert named_fault([{"feature": "rms"}, {"feature": "env_2bsf_ratio", "fault": "ball"}]) == "ball"
    assert named_fault([]) == ""


def test_real_cwru_faults_are_named_and_the_normal_recording_is_not(cwru):
    """Every 4,096-sample window of the CWRU inner- and outer-race files names its fault; normal names none.

    (The ball-fault file shows no clean BSF line, GUIDE.md section 7: it is not asserted.)
    """
    from predmaint.features.bearing import DefectMultipliers

    skf_6205 = DefectMultipliers(3.5848, 5.4152, 2.35675, 0.39828)  # CWRU's table (ball spin = 4.7135 / 2)
    for name, (x, fs, rpm) in cwru.items():
        windows = [x[i:i + 4096] for i in range(0, len(x) - 4095, 4096)]
        named = [diagnose(vibration_features(w, fs, shaft_hz=rpm / 60, bearing=skf_6205)) for w in windows]
        faults = [d["fault"] if d else None for d in named]
        expected = None if name == "normal" else name
        assert len(windows) >= 10 and sum(f == expected for f in faults) >= 0.9 * len(windows), (name, faults)
