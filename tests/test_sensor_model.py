"""Tests for predmaint.models.sensor_model.SensorModel and predmaint.models.health.HealthCalibration state."""

from __future__ import annotations

import pickle

import numpy as np

from predmaint.models.health import HealthCalibration
from predmaint.models.sensor_model import SensorModel


def windows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"rms": 1.0 + 0.05 * rng.standard_normal(), "kurtosis": 3.0 + 0.1 * rng.standard_normal()}
            for _ in range(n)]


def test_feature_deviation_shares_its_baseline_with_the_explanations_and_counts_each_window_once():
    m = SensorModel("FeatureDeviation", {}, baseline_windows=10, learn_min_health=100.0)
    for x in windows(10):
        m.assess(x)
    assert m.baseline is m.detector.baseline
    assert m.baseline.n == {"rms": 10, "kurtosis": 10}  # a second update per window would count 20
    restored = pickle.loads(pickle.dumps(m))
    assert restored.baseline is restored.detector.baseline
    a = restored.assess({"rms": 2.0, "kurtosis": 3.0})
    assert a.explanation[0]["feature"] == "rms"
    assert a.explanation[0]["baseline_mean"] == restored.detector.baseline.mean["rms"]


def test_other_detectors_keep_their_own_baseline_for_explanations():
    m = SensorModel("MinMaxScaler | HalfSpaceTrees", {"HalfSpaceTrees": {"n_trees": 5, "height": 4,
                                                                          "window_size": 5, "seed": 1}},
                    baseline_windows=10, learn_min_health=100.0)
    for x in windows(10):
        m.assess(x)
    assert m.baseline.n == {"rms": 10, "kurtosis": 10}
    a = m.assess({"rms": 5.0, "kurtosis": 3.0})
    assert a.explanation[0]["feature"] == "rms" and a.explanation[0]["z"] > 10


def test_calibration_follows_every_added_score():
    cal = HealthCalibration(max_scores=1000)
    for s in range(101):  # median 50, 99th percentile 99
        cal.add(float(s))
    assert cal.health(50.0 + 3 * 49.0) == 50.0
    for s in range(101, 301):  # now 0..300: median 150, 99th percentile 297
        cal.add(float(s))
    assert cal.distance(297.0) == 1.0
    assert cal.health(150.0 + 3 * 147.0) == 50.0


def test_calibration_stops_at_max_scores():
    cal = HealthCalibration(max_scores=3)
    for s in (1.0, 2.0, 3.0, 1000.0):
        cal.add(s)
    assert cal.scores == [1.0, 2.0, 3.0]


def test_a_snapshot_from_before_the_shared_baseline_and_lazy_calibration_still_runs():
    m = SensorModel("FeatureDeviation", {}, baseline_windows=10, learn_min_health=100.0)
    for x in windows(10):
        m.assess(x)
    m.calibration.distance(0.0)  # median and spread computed, as the old eager add() left them
    old = pickle.loads(pickle.dumps(m))
    # What an older snapshot holds: its own copy of the baseline, and a calibration without _stale.
    old.baseline = pickle.loads(pickle.dumps(old.detector.baseline))
    del old.calibration.__dict__["_stale"]
    a = old.assess(dict(old.detector.baseline.mean))  # the baseline mean itself: surely healthy
    assert a.learned and a.health == 100.0
    assert old.baseline.n == old.detector.baseline.n == {"rms": 11, "kurtosis": 11}
