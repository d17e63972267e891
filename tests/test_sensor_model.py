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


# ----------------------------------------------------------------------------
# Self-calibrated detectors (the default) and what SensorModel reports
# ----------------------------------------------------------------------------


def test_a_self_calibrated_detector_gives_health_from_its_surprise_and_gates_its_own_learning():
    from predmaint.models.health import health_from_surprise

    m = SensorModel("RobustDeviation", {}, baseline_windows=24, learn_min_health=70.0)
    assert m.calibrated and m.detector.learn_max_surprise == 3.2
    assessments = [m.assess(x) for x in windows(300)]
    assert {a.phase for a in assessments[:24]} == {"baseline"} and {a.health for a in assessments[:24]} == {100.0}
    assert all(a.health == health_from_surprise(a.raw_score) for a in assessments[24:])
    assert sum(a.learned for a in assessments[24:]) >= 270  # healthy windows are learned
    fault = m.assess({"rms": 2.0, "kurtosis": 3.0})
    assert fault.health == 0.0 and not fault.learned and fault.explanation[0]["feature"] == "rms"
    assert m.baseline.n == {}  # the detector explains itself: no second baseline is kept


def test_a_model_whose_baseline_scores_are_all_equal_is_reported_once_naming_field_and_sensor(caplog):
    import logging

    flat = [{"rms": 1.0, "kurtosis": 3.0}] * 40
    m = SensorModel("FeatureDeviation", {}, baseline_windows=10, learn_min_health=100.0,
                    field="challengers[0].spec", sensor="pump-01/de-accel")
    with caplog.at_level(logging.WARNING, logger="predmaint.models.sensor_model"):
        for x in flat:
            m.assess(x)
    assert [r.getMessage() for r in caplog.records] == [
        ("challengers[0] (FeatureDeviation) on sensor pump-01/de-accel: all 5 baseline scores equal 0: the detector "
         "does not tell windows apart, so its health cannot either")]
    caplog.clear()
    quiet = SensorModel("RobustDeviation", {}, baseline_windows=24, learn_min_health=None, sensor="pump-01/t")
    with caplog.at_level(logging.WARNING, logger="predmaint.models.sensor_model"):
        for x in windows(40):
            quiet.assess(x)
    assert caplog.records == []  # calibrated when monitoring starts: nothing to say


def test_a_snapshot_from_before_self_calibrated_detectors_still_runs():
    m = SensorModel("FeatureDeviation", {}, baseline_windows=10, learn_min_health=100.0)
    for x in windows(10):
        m.assess(x)
    old = pickle.loads(pickle.dumps(m))
    for name in ("calibrated", "sensor", "field"):  # attributes an older SensorModel did not have
        del old.__dict__[name]
    a = old.assess(dict(old.detector.baseline.mean))
    assert a.learned and a.health == 100.0


def test_the_baseline_is_as_long_as_a_river_detector_needs_and_the_start_up_check_says_so(caplog):
    import logging

    spec, params = "MinMaxScaler | HalfSpaceTrees", {"HalfSpaceTrees": {"seed": 1}}  # River's window_size: 250
    with caplog.at_level(logging.WARNING, logger="predmaint.models.sensor_model"):
        checked = SensorModel(spec, params, baseline_windows=24, learn_min_health=None,
                              params_field="model.kind_params.vibration")  # as steps.check_registry builds it
        per_sensor = SensorModel(spec, params, baseline_windows=24, learn_min_health=None, sensor="pump-01/de-accel")
    assert checked.baseline_windows == per_sensor.baseline_windows == 262
    assert [r.getMessage() for r in caplog.records] == [
        "model.baseline_windows: MinMaxScaler | HalfSpaceTrees needs 250 learned windows before it scores "
        "(model.kind_params.vibration.HalfSpaceTrees.window_size) and 12 to calibrate: its baseline is 262 windows, "
        "not the configured one; health stays 100 (phase baseline) until then"]
    for x in windows(262):
        assert per_sensor.assess(x).phase == "baseline"
    assert per_sensor.detector.ready and per_sensor.assess(windows(1, seed=1)[0]).phase == "monitoring"
    # A detector that needs no more than the baseline keeps the configured one.
    assert SensorModel("LocalOutlierFactor", {}, baseline_windows=24, learn_min_health=None).baseline_windows == 24


def test_a_baseline_too_short_to_calibrate_a_river_detector_fails_naming_the_field():
    import pytest

    from predmaint.errors import ModelSpecError

    with pytest.raises(ModelSpecError, match=r"^challengers\[0\]\.baseline_windows: 'LocalOutlierFactor' is warmed "
                                             r"up on the first half .* at least 4 windows; got baseline_windows 6"):
        SensorModel("LocalOutlierFactor", {}, baseline_windows=6, learn_min_health=None, field="challengers[0].spec")
    assert SensorModel("LocalOutlierFactor", {}, baseline_windows=8, learn_min_health=None).detector.calibration_min == 4


def test_a_river_detector_whose_baseline_scores_are_all_equal_is_reported_when_monitoring_starts(caplog):
    import logging

    m = SensorModel("MinMaxScaler | HalfSpaceTrees", {"HalfSpaceTrees": {"window_size": 12, "seed": 1}},
                    baseline_windows=24, learn_min_health=None, sensor="pump-01/de-accel")
    with caplog.at_level(logging.WARNING, logger="predmaint.models.sensor_model"):
        healths = [m.assess({"rms": 1.0, "kurtosis": 3.0}).health for _ in range(40)]  # a signal that never moves
        m.assess({"rms": 9.0, "kurtosis": 30.0})
    assert [r.getMessage() for r in caplog.records] == [
        "model (MinMaxScaler | HalfSpaceTrees) on sensor pump-01/de-accel: monitoring starts, but all 12 scores of "
        "MinMaxScaler | HalfSpaceTrees since its warm-up are equal (0): it does not tell samples apart, so "
        "nothing can be scored; its health stays 100 until it is calibrated"]
    assert set(healths) == {100.0}
