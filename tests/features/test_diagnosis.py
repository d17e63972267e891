"""Fault naming: known answers for every branch of the line -> fault tables, and noise stays unnamed."""

from __future__ import annotations

import numpy as np
import pytest

from predmaint.features.bearing import BearingGeometry
from predmaint.features.diagnosis import (
    BALL_PATTERN_MIN,
    DEFECT_RATIO_MIN,
    LINE_FAULTS,
    ORDER_FAULTS,
    diagnose,
    named_fault,
)
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


FS, FR = 12_000.0, 29.95


def ball_defect(seed, *, zone_power=1, noise=0.5, jitter=0.0, n=4096):
    """A simulated ball defect: 3 kHz ring-downs at 2 x BSF (the defect strikes both races once per spin),
    weighted by the load zone as the cage carries the ball round at FTF (``cos**zone_power`` of the cage
    angle: 1 a broad zone, 4 a narrow one), with ``jitter`` relative timing scatter, on white noise."""
    rng = np.random.default_rng(seed)
    period = 1.0 / (2.0 * BEARING.bsf * FR)
    times = rng.uniform(0, period) + np.cumsum(period * (1 + jitter * rng.standard_normal(int(n / FS / period) + 2)))
    times = times[times < (n - 1) / FS]
    impulses = np.zeros(n)
    impulses[(times * FS).astype(int)] = (0.5 * (1 + np.cos(2 * np.pi * BEARING.ftf * FR * times))) ** zone_power
    ring = np.exp(-np.arange(60) / 8.0) * np.sin(2 * np.pi * 3000 * np.arange(60) / FS)
    return np.convolve(impulses, ring)[:n] * 5 + noise * rng.standard_normal(n)


@pytest.mark.parametrize("zone_power, jitter", [(1, 0.0), (4, 0.0), (4, 0.01)])
def test_a_simulated_ball_defect_is_named_ball(zone_power, jitter):
    # A narrow load zone makes the FTF line as strong as 2 x BSF: it is a ball defect, not the cage.
    named = [diagnose(vibration_features(ball_defect(seed, zone_power=zone_power, jitter=jitter), FS,
                                         shaft_hz=FR, bearing=BEARING)) for seed in range(10)]
    faults = [d["fault"] if d else None for d in named]
    # On 9 balls BPFI (5.415 x shaft) lies within 2 % of 2 x BSF + 2 x FTF (5.510 x), the second cage
    # sideband: a narrow zone lights it up too, and it can edge past 2 x BSF in a window.
    assert faults.count("ball") >= 9 and "cage" not in faults, faults
    assert all(d["feature"] in ("env_2bsf_ratio", "env_bsf_ratio") for d in named if d["fault"] == "ball")


def test_a_noisy_ball_defect_is_named_from_2bsf_and_its_ftf_sidebands():
    # Noise buries the single lines (2 x BSF under 6 in most windows) but the line with both FTF
    # sidebands above the noise level still reads as a ball defect.
    feats = [vibration_features(ball_defect(seed, noise=1.5), FS, shaft_hz=FR, bearing=BEARING) for seed in range(20)]
    by_line = [f for f in feats if max(f[f"env_{k}_ratio"] for k in LINE_FAULTS) < DEFECT_RATIO_MIN]
    by_pattern = [diagnose(f) for f in by_line]
    assert len(by_line) >= 10
    assert sum(d is not None and d["fault"] == "ball" for d in by_pattern) >= 3
    assert all(d is None or d["fault"] == "ball" for d in by_pattern)


def test_noise_never_shows_the_ball_pattern():
    # White and red-tinted noise: 2 x BSF passes 3 about one window in 20, its weaker FTF sideband
    # about one in 1,000; both together are not seen.
    rng = np.random.default_rng(17)
    hits = 0
    for i in range(300):
        x = rng.standard_normal(4096)
        if i % 2:
            x += 0.05 * np.cumsum(x)
        f = vibration_features(x, FS, shaft_hz=FR, bearing=BEARING)
        hits += f["env_2bsf_ratio"] >= BALL_PATTERN_MIN and f["env_2bsf_sb_ratio"] >= BALL_PATTERN_MIN
        d = diagnose(f)
        assert d is None or d["ratio"] >= DEFECT_RATIO_MIN  # only ever a single strong line, never the pattern
    assert hits == 0


def test_the_ball_pattern_needs_the_line_and_both_sidebands_above_noise():
    at = BALL_PATTERN_MIN
    assert diagnose({"env_2bsf_ratio": at + 1.0, "env_2bsf_sb_ratio": at})["fault"] == "ball"
    assert diagnose({"env_2bsf_ratio": at - 0.1, "env_2bsf_sb_ratio": at + 3.0}) is None
    assert diagnose({"env_2bsf_ratio": at + 2.0, "env_2bsf_sb_ratio": at - 0.1}) is None
    assert diagnose({"env_2bsf_ratio": at + 2.0, "env_2bsf_sb_ratio": float("nan")}) is None


def test_a_leading_ftf_line_is_the_cage_unless_the_ball_pattern_is_there():
    ftf = {"env_ftf_ratio": DEFECT_RATIO_MIN + 2.0, "env_2bsf_ratio": 2.0, "env_2bsf_sb_ratio": 1.2}
    assert diagnose(ftf)["fault"] == "cage"
    d = diagnose({**ftf, "env_2bsf_ratio": 4.5, "env_2bsf_sb_ratio": 3.5})
    assert d["fault"] == "ball" and d["feature"] == "env_2bsf_ratio" and d["ratio"] == 4.5
    assert "FTF" in d["evidence"] and "2xBSF" in d["evidence"]


def test_a_race_line_outranks_the_ball_pattern():
    d = diagnose({"env_bpfi_ratio": DEFECT_RATIO_MIN + 5.0, "env_2bsf_ratio": 4.0, "env_2bsf_sb_ratio": 3.5})
    assert d["fault"] == "inner_race"


def test_named_fault_reads_the_diagnosis_item():
    assert named_fault([{"feature": "rms"}, {"feature": "env_2bsf_ratio", "fault": "ball"}]) == "ball"
    assert named_fault([]) == ""


def test_real_cwru_faults_are_named_and_the_normal_recording_is_not(cwru):
    """Every 4,096-sample window of the CWRU inner- and outer-race files names its fault; normal names none.

    Windows start every 1,024 samples, as ``predmaint evaluate cwru`` cuts them. The ball-fault file
    shows no clean BSF line (GUIDE.md section 7; Smith & Randall 2015): its windows may go unnamed,
    but none may be named a race or cage fault.
    """
    from predmaint.features.bearing import DefectMultipliers

    skf_6205 = DefectMultipliers(3.5848, 5.4152, 2.35675, 0.39828)  # CWRU's table (ball spin = 4.7135 / 2)
    for name, (x, fs, rpm) in cwru.items():
        windows = [x[i:i + 4096] for i in range(0, len(x) - 4095, 1024)]
        named = [diagnose(vibration_features(w, fs, shaft_hz=rpm / 60, bearing=skf_6205)) for w in windows]
        faults = [d["fault"] if d else None for d in named]
        assert len(windows) >= 50, name
        if name == "normal":  # a healthy sensor's noise-level lines are never named
            assert faults == [None] * len(windows), faults
        elif name == "ball":
            assert set(faults) <= {None, "ball"}, faults
        else:
            assert faults == [name] * len(windows), (name, faults)
