"""Tests for the default detector's parts: RobustReference, TailCalibration and RobustDeviation.

River's own estimator checks run on RobustDeviation (:func:`river_checks`,
shared with tests/test_calibrated.py). ``river.checks.yield_checks`` gives
every check that applies to an anomaly detector; the ones that take a dataset
are given a synthetic one here instead of River's CreditCard, which River
downloads on first use (this machine has no network) -- 600 samples, and
4,000 for ``check_bounded_memory_growth`` instead of River's 10,000, to keep
the suite fast. No check is skipped for RobustDeviation.
"""

from __future__ import annotations

import functools
import math
import pickle
import random

import numpy as np
import pytest
from river import checks

from predmaint.models.reference import RobustReference
from predmaint.models.robust_deviation import RobustDeviation
from predmaint.models.tail_calibration import TailCalibration

VIBRATION = {"stats": ("level", "mean"), "unhealthy": "freeze", "calibrate_unhealthy": False, "rel_floor": 0.05,
             "reference_size": 192, "calibration_size": 256}


# ----------------------------------------------------------------------------
# River's estimator checks
# ----------------------------------------------------------------------------


def synthetic_stream(n: int, seed: int = 0) -> list[tuple[dict, bool]]:
    """8 Gaussian features; after the first 100 samples 2 % are anomalies (+8 sd on every third feature)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        anomalous = i > 100 and rng.random() < 0.02
        x = {f"f{j}": rng.gauss(10.0 * j, 1.0) + (8.0 if anomalous and j % 3 == 0 else 0.0) for j in range(8)}
        out.append((x, anomalous))
    return out


def river_checks(model, n: int = 600, n_memory: int = 4000, skip: dict[str, str] | None = None):
    """(name, check) for every River estimator check that applies to ``model``, datasets replaced by ours.

    ``skip`` maps check names to the reason they are not run.
    """
    seen = set()
    for check in checks.yield_checks(model):
        if isinstance(check, functools.partial) and "dataset" in check.keywords:
            name = check.func.__name__
            if name in seen:  # one run per check: River yields one per dataset
                continue
            seen.add(name)
            size = n_memory if name == "check_bounded_memory_growth" else n
            check = functools.partial(check.func, dataset=synthetic_stream(size))
        else:
            name = check.__name__
        if name in (skip or {}) or name in model._unit_test_skips():
            continue
        yield name, check


@pytest.mark.parametrize("params", [{}, VIBRATION], ids=["scalar-default", "vibration-default"])
def test_river_estimator_checks(params):
    model = RobustDeviation(**params)
    names = []
    for name, check in river_checks(model):
        check(model.clone())
        names.append(name)
    # The dataset checks ran, with anomaly detection's own (ROC AUC >= 0.5 on the synthetic anomalies).
    assert {"check_learn_one", "check_pickling", "check_shuffle_features_no_impact", "check_emerging_features",
            "check_disappearing_features", "check_no_state_aliasing_with_input", "check_clone_is_independent",
            "check_roc_auc", "check_bounded_memory_growth", "check_repr_roundtrips_clone",
            "check_clone_with_new_params_applies", "check_get_params_matches_signature"} <= set(names)


# ----------------------------------------------------------------------------
# RobustReference
# ----------------------------------------------------------------------------


def test_reference_gives_median_and_gaussian_scale_per_column():
    rng = np.random.default_rng(0)
    ref = RobustReference(size=2000)
    ref.add_columns(2)
    for _ in range(2000):
        ref.update(np.array([rng.normal(5.0, 2.0), rng.normal(-1.0, 0.1)]))
    assert ref.median == pytest.approx([5.0, -1.0], abs=0.1)
    assert ref.scale == pytest.approx([2.0, 0.1], rel=0.08)


def test_reference_rolls_and_a_burst_of_outliers_moves_it_by_at_most_clip_scales_each():
    ref = RobustReference(size=100, refresh=1)
    ref.add_columns(1)
    rng = np.random.default_rng(1)
    for _ in range(100):
        ref.update(np.array([rng.normal(0.0, 1.0)]))
    before = ref.median[0]
    for _ in range(10):  # ten huge values, winsorised
        ref.update(np.array([1e6]), clip=3.0)
    assert before < ref.median[0] < before + 1.0 and float(ref.buffer.max()) < 10.0
    for _ in range(100):  # the rolling buffer forgets: a new level entirely replaces the old
        ref.update(np.array([50.0 + rng.normal(0.0, 1.0)]))
    assert ref.median[0] == pytest.approx(50.0, abs=0.5)


def test_reference_columns_fill_independently():
    ref = RobustReference(size=64)  # young columns (< size / 4 values) are recomputed at every update
    ref.add_columns(1)
    for v in (1.0, 2.0, 3.0):
        ref.update(np.array([v]))
    ref.add_columns(1)  # a feature that appears later
    ref.update(np.array([4.0, 100.0]))
    ref.update(np.array([np.nan, 200.0]), mask=np.array([False, True]))
    assert ref.n.tolist() == [4, 2] and ref.median.tolist() == [2.5, 150.0]
    assert ref.z(np.array([2.5, 150.0])).tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------
# TailCalibration
# ----------------------------------------------------------------------------


def test_gpd_tail_of_exponential_scores_matches_the_truth():
    rng = np.random.default_rng(2)
    cal = TailCalibration(size=4000)
    for s in rng.exponential(1.0, 4000):
        cal.learn_one(float(s))
    assert cal.tail[0] == 2  # GPD
    for s in (3.0, 6.0, 9.0):  # true P(S > s) = exp(-s)
        assert cal.surprise(s) == pytest.approx(s / math.log(10.0), abs=0.35)


def test_young_calibration_is_more_cautious_than_a_mature_one():
    rng = np.random.default_rng(3)
    scores = np.abs(rng.standard_normal(1000))
    young, mature = TailCalibration(), TailCalibration()
    for s in scores[:12]:
        young.learn_one(float(s))
    for s in scores:
        mature.learn_one(float(s))
    assert young.ready[0] and young.surprise(5.0) < mature.surprise(5.0)


def test_folded_calibration_is_not_stretched_by_a_drift_of_growing_scores():
    rng = np.random.default_rng(4)
    folded, gpd = TailCalibration(folded=True, clip_surprise=3.0), TailCalibration(clip_surprise=3.0)
    for s in np.abs(rng.standard_normal(30)):
        folded.learn_one(float(s))
        gpd.learn_one(float(s))
    assert folded.tail[0] == 1 and gpd.tail[0] == 2  # half-normal while young, for folded scores only
    for s in (3.0, 4.0, 5.0, 6.0, 7.0, 8.0):  # a drift, each step learned (clipped at p = 1e-3)
        folded.learn_one(s)
        gpd.learn_one(s)
    # 9 robust scales: still beyond one in ten thousand for the folded tail, ordinary for the stretched GPD.
    assert folded.surprise(9.0) > 4.0 and gpd.surprise(9.0) < 2.0
    assert float(folded.buffer[:, 0].max()) < 7.0  # the largest drift steps entered clipped


def test_calibration_without_spread_is_not_ready_and_columns_are_independent():
    cal = TailCalibration()
    cal.add_columns(2)
    rng = np.random.default_rng(5)
    for _ in range(40):
        cal.learn(np.array([0.0, abs(rng.standard_normal())]))
    assert cal.ready.tolist() == [False, True]
    p = cal.p_values(np.array([5.0, 5.0]))
    assert p[0] == 1.0 and p[1] < 1e-3
    assert np.isinf(cal.scores_at(2.5)[0]) and cal.surprises(cal.scores_at(2.5))[1] == pytest.approx(2.5, abs=1e-6)
    with pytest.raises(ValueError, match="2 columns"):
        cal.surprise(1.0)


# ----------------------------------------------------------------------------
# RobustDeviation
# ----------------------------------------------------------------------------


def feed(model, xs):
    scores = []
    for x in xs:
        scores.append(model.score_one(x))
        model.learn_one(x)
    return scores


def gaussian(n, seed=0, **features):
    rng = random.Random(seed)
    return [{k: rng.gauss(mu, sd) for k, (mu, sd) in features.items()} for _ in range(n)]


def test_scores_zero_until_grace_and_calibration_then_a_probability_level():
    model = RobustDeviation()
    scores = feed(model, gaussian(24, temp=(50.0, 1.0)))
    assert scores == [0.0] * 24 and model.ready and model.calibration_problem() is None
    feed(model, gaussian(500, seed=1, temp=(50.0, 1.0)))
    assert model.score_one({"temp": 50.5}) < 1.0
    assert model.score_one({"temp": 62.0}) > 6.0


def test_bonferroni_more_features_make_the_same_deviation_less_surprising():
    temps = gaussian(400, temp=(50.0, 1.0))
    others = gaussian(400, seed=9, **{f"other{i}": (10.0, 1.0) for i in range(19)})
    one, many = RobustDeviation(), RobustDeviation()
    feed(one, temps)
    feed(many, [{**t, **o} for t, o in zip(temps, others)])
    x = {"temp": 57.0}
    sur_one = one.score_one(x)
    sur_many = many.score_one({**x, **{f"other{i}": 10.0 for i in range(19)}})
    # 20 features watched with 4 statistics each instead of 1 feature: p is multiplied by 20.
    assert sur_one > 4.0 and sur_one - sur_many == pytest.approx(math.log10(20), abs=1e-9)


def test_freeze_keeps_a_lasting_fault_abnormal_winsorise_accepts_it_gradually():
    healthy = gaussian(400, temp=(50.0, 1.0))
    shifted = gaussian(600, seed=2, temp=(58.0, 1.0))
    frozen, winsorised = RobustDeviation(unhealthy="freeze", calibrate_unhealthy=False), RobustDeviation()
    frozen_scores = feed(frozen, healthy + shifted)[400:]
    winsorised_scores = feed(winsorised, healthy + shifted)[400:]
    assert min(frozen_scores) > 4.0  # never learned: below health 50 throughout
    assert winsorised_scores[0] > 6.0 and max(winsorised_scores[-100:]) < 4.0  # a new normal, eventually
    # calibrate_unhealthy: the change is accepted once it fills part of the calibration's tail, not at once.
    settled = next(i for i in range(len(winsorised_scores)) if max(winsorised_scores[i:i + 10]) < 4.0)
    assert 10 < settled < 100


def test_an_unhealthy_window_is_not_learned_and_explain_names_the_feature_and_statistic():
    model = RobustDeviation()
    feed(model, gaussian(300, temp=(50.0, 1.0), current=(30.0, 0.5)))
    x = {"temp": 50.0, "current": 36.0}
    assert model.score_one(x) > 6.0
    model.learn_one(x)
    assert not model.last_learned
    top = model.explain({"temp": 50.0, "current": 36.0})[0]
    assert top["feature"] == "current" and top["stat"] in ("level", "mean", "diff")
    assert top["z"] == pytest.approx(12.0, rel=0.15) and top["baseline_mean"] == pytest.approx(30.0, abs=0.2)


def test_features_may_come_and_go_and_state_pickles():
    model = RobustDeviation()
    xs = gaussian(100, a=(1.0, 0.1), b=(2.0, 0.1))
    feed(model, xs)
    feed(model, [{"a": 1.0}, {"b": 2.0, "c": 5.0}, {"a": float("nan"), "b": 2.0}])
    assert model.features == ["a", "b", "c"]
    clone = pickle.loads(pickle.dumps(model))
    probe = {"a": 1.3, "b": 2.0, "c": 5.0}
    assert clone.score_one(probe) == model.score_one(probe)
    assert type(model.clone()) is RobustDeviation and model.clone().features == []


@pytest.mark.parametrize("kwargs, match", [
    ({"stats": ("level", "median")}, r"stats: \['median'\]"),
    ({"unhealthy": "ignore"}, "unhealthy must be"),
    ({"grace": 0}, "grace must be a whole number >= 1"),
    ({"calibration_min": 2000}, "exceeds calibration_size"),
])
def test_bad_arguments_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RobustDeviation(**kwargs)
