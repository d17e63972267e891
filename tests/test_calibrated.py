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
    learned_before = int(model.calibration.n[0])
    x = {"a": 30.0, "b": -30.0}
    assert model.score_one(x) > model.learn_max_surprise
    model.learn_one(x)
    assert not model.last_learned and model.calibration.n[0] == learned_before


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
        healths = [m.assess(x).health for x in stream(400, seed=4)]
    assert min(healths[24:]) > 50.0
    # Monitoring started before it was calibrated (24 warm-up + 12 scores): said once, naming field and sensor.
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("model (MinMaxScaler | HalfSpaceTrees) on sensor "
                                                         "pump-01/de-accel: monitoring starts, but")


def test_the_learning_gate_is_a_health_level_not_a_detector_parameter():
    with pytest.raises(ModelSpecError, match=r"^challengers\[1\]\.params\.RobustDeviation\.learn_max_surprise: "
                                             r"the learning gate is challengers\[1\]\.learn_min_health"):
        SensorModel("RobustDeviation", {"RobustDeviation": {"learn_max_surprise": 4.0}}, 24, None,
                    field="challengers[1].spec")
    m = SensorModel("RobustDeviation", {}, 24, learn_min_health=50.0)
    assert m.detector.learn_max_surprise == pytest.approx(4.0)
