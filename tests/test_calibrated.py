"""Tests for predmaint.models.calibrated.CalibratedDetector: any River detector on the probability scale.

River's estimator checks run on CalibratedDetector around each detector of
its ``_unit_test_params`` (MinMaxScaler | HalfSpaceTrees, StandardScaler |
OneClassSVM, LocalOutlierFactor), with the synthetic datasets of
tests/test_robust_deviation.py (River's CreditCard is downloaded on first use;
this machine has no network). Skipped, for LocalOutlierFactor only:
``check_bounded_memory_growth``, because LOF keeps every sample it learns by
design (River's own LOF, not the wrapper) and scoring 4,000 of them takes
minutes; ``check_shuffle_features_no_impact``, which River's LOF skips itself
(its scores depend on the summation order of features).
"""

from __future__ import annotations

import logging
import math
import random

import pytest
from river import anomaly, compose, preprocessing

from predmaint.models.calibrated import CalibratedDetector, required_warmup
from predmaint.models.feature_deviation import FeatureDeviation
from predmaint.models.sensor_model import SensorModel, is_self_calibrated, needs_calibration
from predmaint.models.spec import ModelSpecError
from tests.test_robust_deviation import river_checks

LOF_SKIPS = {"check_bounded_memory_growth": "LOF keeps every sample: minutes on 4,000",
             "check_shuffle_features_no_impact": "skipped by River's own LocalOutlierFactor"}


@pytest.mark.parametrize("params", list(CalibratedDetector._unit_test_params()),
                         ids=["MinMaxScaler|HalfSpaceTrees", "StandardScaler|OneClassSVM", "LocalOutlierFactor"])
def test_river_estimator_checks(params):
    model = CalibratedDetector(**params)
    lof = isinstance(params["detector"], anomaly.LocalOutlierFactor)
    names = []
    for name, check in river_checks(model, n=300 if lof else 600, skip=LOF_SKIPS if lof else None):
        check(model.clone())
        names.append(name)
    assert "check_roc_auc" in names and "check_pickling" in names and "check_clone_is_independent" in names


def stream(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"a": rng.gauss(0.0, 1.0), "b": rng.gauss(5.0, 0.5)} for _ in range(n)]


def test_warmup_is_what_the_detector_needs():
    assert required_warmup(preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(window_size=80)) == 80
    assert required_warmup(compose.Pipeline(preprocessing.StandardScaler(), anomaly.OneClassSVM())) == 0
    assert CalibratedDetector(anomaly.HalfSpaceTrees(window_size=80)).warmup_needed == 80
    assert CalibratedDetector(anomaly.OneClassSVM(), min_warmup=20).warmup_needed == 20
    assert CalibratedDetector(anomaly.HalfSpaceTrees(), warmup=5).warmup_needed == 5


def test_scores_zero_while_warming_up_and_calibrating_then_the_probability_level():
    model = CalibratedDetector(preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(window_size=50, seed=1))
    scores = []
    for x in stream(62):
        scores.append(model.score_one(x))
        model.learn_one(x)
        if len(scores) == 49:
            assert math.isnan(model.last_raw) and "needs 50 learned samples" in model.calibration_problem()
    assert scores == [0.0] * 62 and model.ready and model.calibration_problem() is None
    for x in stream(400, seed=2):
        model.score_one(x)
        model.learn_one(x)
    healthy = [model.score_one(x) for x in stream(200, seed=3)]
    assert sum(s >= 4.0 for s in healthy) == 0  # health <= 50 on no healthy sample


def test_a_sample_beyond_the_learning_gate_is_not_learned():
    model = CalibratedDetector(anomaly.LocalOutlierFactor(n_neighbors=10))
    learned = []
    for x in stream(150):
        model.score_one(x)
        model.learn_one(x)
        learned.append(model.last_learned)
    assert sum(learned) >= 148
    learned_before, kept_before = int(model.calibration.n[0]), model.kept
    x = {"a": 30.0, "b": -30.0}
    assert model.score_one(x) > model.learn_max_surprise
    model.learn_one(x)
    assert not model.last_learned and model.calibration.n[0] == learned_before and model.kept == kept_before


def test_scores_that_are_all_equal_are_reported_not_turned_into_alarms():
    class Constant(anomaly.HalfSpaceTrees):
        def score_one(self, x):
            return 0.0

    model = CalibratedDetector(Constant(window_size=10))
    for x in stream(60):
        model.score_one(x)
        model.learn_one(x)
    assert not model.ready and model.score_one({"a": 1e6, "b": -1e6}) == 0.0
    # 60 samples: 12 of warm-up (min_warmup, more than its window_size of 10), then 48 scores.
    assert model.calibration_problem().startswith("all 48 scores of Constant since its warm-up are equal (0)")


def test_sensor_model_wraps_bare_river_detectors_only():
    assert needs_calibration(preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees())
    assert needs_calibration(anomaly.LocalOutlierFactor())
    assert not needs_calibration(FeatureDeviation())
    hst = SensorModel("MinMaxScaler | HalfSpaceTrees", {"HalfSpaceTrees": {"window_size": 30}}, baseline_windows=24,
                      learn_min_health=None)
    assert isinstance(hst.detector, CalibratedDetector) and is_self_calibrated(hst.detector)
    # Warm-up: what HalfSpaceTrees needs, at least the first half of the baseline; calibrated on the second half.
    assert hst.detector.warmup_needed == 30 and hst.detector.calibration_min == 12
    assert hst.learn_min_health == 70.0 and hst.detector.learn_max_surprise == pytest.approx(3.2)
    fd = SensorModel("FeatureDeviation", {}, baseline_windows=24, learn_min_health=None)
    assert type(fd.detector) is FeatureDeviation and fd.learn_min_health == 100.0


def test_the_known_failure_half_space_trees_with_window_24_no_longer_puts_a_healthy_sensor_in_critical(caplog):
    """Before: 12 baseline scores all 0, so every later score was infinitely abnormal (health 0 everywhere)."""
    m = SensorModel("MinMaxScaler | HalfSpaceTrees", {"HalfSpaceTrees": {"window_size": 24, "seed": 7}},
                    baseline_windows=24, learn_min_health=None, field="model.spec", sensor="pump-01/de-accel")
    with caplog.at_level(logging.WARNING, logger="predmaint.models.sensor_model"):
        assessed = [m.assess(x) for x in stream(400, seed=4)]
    # The baseline is what it needs, 24 windows of warm-up and 12 scores, so it is calibrated when monitoring starts.
    assert m.baseline_windows == 36 and {a.phase for a in assessed[:36]} == {"baseline"}
    assert {a.phase for a in assessed[36:]} == {"monitoring"} and m.detector.ready
    assert sum(a.health <= 50.0 for a in assessed[36:]) <= 2  # it was every window (two here, while it is young)
    assert caplog.records == []  # nothing to say per sensor: the start-up check said it (tests/test_sensor_model.py)


def test_half_space_trees_is_fed_features_inside_its_limits_and_the_given_pipeline_is_untouched():
    hst = anomaly.HalfSpaceTrees(seed=1, limits={"a": (0.0, 2.0)})
    given = preprocessing.MinMaxScaler() | hst
    model = CalibratedDetector(given)
    assert list(given.steps) == ["MinMaxScaler", "HalfSpaceTrees"] and model.detector is given
    scaler, bounded, last = model._model.steps.values()
    assert scaler is given["MinMaxScaler"] and last is hst and bounded.limits["a"] == (0.0, 2.0)
    # Far outside MinMaxScaler's range, a value still lands inside HalfSpaceTrees' limits.
    assert 0.0 <= bounded.transform_one({"a": -50.0})["a"] < bounded.transform_one({"a": 0.0})["a"] < 0.6
    assert 1.4 < bounded.transform_one({"a": 2.0})["a"] < bounded.transform_one({"a": 90.0})["a"] <= 2.0
    assert not hasattr(CalibratedDetector(anomaly.LocalOutlierFactor())._model, "steps")


def test_half_space_trees_calibrated_on_a_dozen_scores_rarely_raises_on_healthy_data():
    """Nominally p = 1e-4 per window at health 50: 0.56 of the 5,640 monitored windows; measured 4.

    A tail from 6 reference and 6 calibration scores (what a 24-window baseline
    leaves after HalfSpaceTrees' window) is more confident than it has reason to
    be while young (with another draw of the streams: 2 windows, both before window 100).
    """
    rng = random.Random(100)
    low = 0
    for seed in range(10):
        m = SensorModel("MinMaxScaler | HalfSpaceTrees", {"HalfSpaceTrees": {"window_size": 24, "seed": seed}},
                        baseline_windows=24, learn_min_health=None, sensor="s")
        for _ in range(600):
            low += m.assess({"a": rng.gauss(0.0, 1.0), "b": rng.gauss(5.0, 0.5), "c": rng.expovariate(1.0)}).health \
                <= 50.0
    assert low <= 5


def test_a_detector_that_keeps_every_sample_learns_at_most_max_kept():
    model = CalibratedDetector(anomaly.LocalOutlierFactor(n_neighbors=10), max_kept=40)
    default = CalibratedDetector(anomaly.LocalOutlierFactor())
    assert default.kept_max == 256 and CalibratedDetector(anomaly.HalfSpaceTrees()).kept_max is None
    for x in stream(100):
        model.score_one(x)
        model.learn_one(x)
    assert model.kept == 40 and model.n_learned == 100 and model.last_learned
    assert int(model.calibration.n[0]) == 100 - model.warmup_needed  # the calibration still learns
    assert model.score_one({"a": 30.0, "b": -30.0}) >= 4.0
    with pytest.raises(ValueError, match="max_kept"):
        CalibratedDetector(anomaly.LocalOutlierFactor(), max_kept=0)


def test_the_learning_gate_is_a_health_level_not_a_detector_parameter():
    with pytest.raises(ModelSpecError, match=r"^challengers\[1\]\.params\.RobustDeviation\.learn_max_surprise: "
                                             r"the learning gate is challengers\[1\]\.learn_min_health"):
        SensorModel("RobustDeviation", {"RobustDeviation": {"learn_max_surprise": 4.0}}, 24, None,
                    field="challengers[1].spec")
    m = SensorModel("RobustDeviation", {}, 24, learn_min_health=50.0)
    assert m.detector.learn_max_surprise == pytest.approx(4.0)
