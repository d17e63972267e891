"""Tests for predmaint.models.skab_scoring: SKAB's outlier and changepoint metrics.

Synthetic label arrays with known answers, then the real experiments read in
place from ``$PREDMAINT_SHARED_DATA/skab`` (GPL-3.0: nothing of them is copied
into the repository, these tests only read the shared folder).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from predmaint.connectors.datasets.skab import load_skab
from predmaint.models.nab_scoring import CostMatrix
from predmaint.models.skab_scoring import (
    SKAB_PROFILES,
    TRAIN_ROWS,
    WINDOW_S,
    changepoint_score,
    changepoint_windows,
    changepoints_from_outliers,
    outlier_score,
    published_table,
    window_weight,
)
from tests.skab_files import skab_labels

N = 600
TS = np.arange(N, dtype=np.int64) * 1000 + 1_583_748_873_000  # 1 Hz
ANOMALY = np.zeros(N, dtype=np.int8)
ANOMALY[100:200] = 1
ANOMALY[400:500] = 1
CP = changepoints_from_outliers(ANOMALY)  # rows 100, 200, 400, 500


def _pred(*rows: int) -> np.ndarray:
    p = np.zeros(N, dtype=np.int8)
    p[list(rows)] = 1
    return p


# ----------------------------------------------------------------------------
# Outlier detection
# ----------------------------------------------------------------------------


def test_perfect_outlier_detector():
    s = outlier_score([(ANOMALY, ANOMALY)])
    assert (s.f1, s.far_pct, s.mar_pct) == (1.0, 0.0, 0.0)
    assert (s.tp, s.tn, s.fp, s.fn) == (200, 400, 0, 0)


def test_null_outlier_detector_misses_everything():
    s = outlier_score([(ANOMALY, np.zeros(N))])
    assert (s.f1, s.far_pct, s.mar_pct) == (0.0, 0.0, 100.0)


def test_always_alarming_detector():
    s = outlier_score([(ANOMALY, np.ones(N))])
    assert s.far_pct == 100.0 and s.mar_pct == 0.0
    assert s.f1 == pytest.approx(200 / (200 + 400 / 2))


def test_one_false_alarm():
    pred = ANOMALY.copy()
    pred[10] = 1
    s = outlier_score([(ANOMALY, pred)])
    assert (s.tp, s.fp, s.fn) == (200, 1, 0)
    assert s.far_pct == pytest.approx(100 / 400)
    assert s.f1 == pytest.approx(200 / 200.5)


def test_counts_are_summed_over_experiments_before_the_ratios():
    a = outlier_score([(ANOMALY, ANOMALY), (np.zeros(N), _pred(5, 6))])
    assert (a.tp, a.fp, a.tn, a.experiments) == (200, 2, 400 + 598, 2)
    assert a.far_pct == pytest.approx(100 * 2 / (2 + 998))


def test_no_positive_and_no_prediction_gives_nan_not_an_error():
    s = outlier_score([(np.zeros(5), np.zeros(5))])
    assert math.isnan(s.f1) and math.isnan(s.mar_pct) and s.far_pct == 0.0


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="rows"):
        outlier_score([(np.zeros(5), np.zeros(4))])


# ----------------------------------------------------------------------------
# Changepoint detection (NAB-style with SKAB's scoring function)
# ----------------------------------------------------------------------------


def test_changepoints_from_outliers_keeps_the_first_value():
    assert changepoints_from_outliers([0, 1, 1, 0]).tolist() == [0, 1, 0, 1]
    assert changepoints_from_outliers([1, 1, 0]).tolist() == [1, 0, 1]
    assert np.flatnonzero(CP).tolist() == [100, 200, 400, 500]


def test_window_weight_runs_from_tp_to_minus_fp():
    cm = SKAB_PROFILES["standard"]
    assert window_weight(0.0, cm) == 1.0
    assert window_weight(1.0, cm) == pytest.approx(-0.11, abs=1e-12)
    weights = [window_weight(x / 20, cm) for x in range(21)]
    assert all(a > b for a, b in itertools.pairwise(weights))
    assert window_weight(0.5, cm) == pytest.approx((1 - 0.11) / 2, abs=2e-3)  # symmetric about the middle


def test_windows_lie_to_the_right_and_overlaps_are_cut():
    assert changepoint_windows(TS, CP) == [(int(TS[r]), int(TS[r]) + 60_000) for r in (100, 200, 400, 500)]
    close = _pred(10, 40)
    assert changepoint_windows(TS, close) == [(int(TS[10]), int(TS[70])), (int(TS[70]), int(TS[100]))]


def test_perfect_changepoint_detector_scores_100():
    s = changepoint_score([(TS, CP, CP)])
    assert s.scores == {p: 100.0 for p in SKAB_PROFILES}
    assert (s.missed, s.false_positives, s.changepoints) == (0, 0, 4)


def test_null_changepoint_detector_scores_0():
    s = changepoint_score([(TS, CP, np.zeros(N))])
    assert s.scores == {p: 0.0 for p in SKAB_PROFILES}
    assert s.missed == 4 and s.raw["standard"] == -4.0 and s.raw["reward_low_FN_rate"] == -8.0


def test_one_false_alarm_costs_a_flat_fp_weight():
    pred = CP.copy()
    pred[300] = 1  # far from every window
    s = changepoint_score([(TS, CP, pred)])
    assert s.false_positives == 1
    assert s.standard == pytest.approx(100 * (4 - 0.11 + 4) / 8)
    assert s.low_fp == pytest.approx(100 * (4 - 0.22 + 4) / 8)
    assert s.low_fn == pytest.approx(100 * (4 - 0.11 + 8) / 12)
    near = CP.copy()
    near[261] = 1  # 1 s after window 200's end: as costly as far away (no distance weighting)
    assert changepoint_score([(TS, CP, near)]).standard == pytest.approx(s.standard)


def test_detections_at_the_window_edges():
    at_end = _pred(160, 260, 460, 560)  # 60 s after each changepoint: inside (inclusive), weight -fp
    s = changepoint_score([(TS, CP, at_end)])
    assert (s.missed, s.false_positives) == (0, 0)
    assert s.raw["standard"] == pytest.approx(-0.44)
    late = _pred(161, 261, 461, 561)  # 61 s after: missed and a false positive each
    s = changepoint_score([(TS, CP, late)])
    assert (s.missed, s.false_positives) == (4, 4)
    assert s.raw["standard"] == pytest.approx(-4 - 0.44)
    early = _pred(99)  # before the first window
    assert changepoint_score([(TS, CP, early)]).false_positives == 1


def test_only_the_first_detection_in_a_window_counts():
    one = changepoint_score([(TS, CP, _pred(110))])
    many = changepoint_score([(TS, CP, _pred(110, 111, 130, 159))])
    assert one.scores == many.scores and many.false_positives == 0


def test_changepoints_closer_than_the_window_cost_even_a_perfect_detector():
    """SKAB cuts the later window to start where the earlier ends: a detection at the later
    changepoint falls in the earlier window, so the later one is missed (SKAB's own behaviour)."""
    cp = _pred(100, 130)
    s = changepoint_score([(TS, cp, cp)])
    assert (s.missed, s.changepoints) == (1, 2)
    assert s.standard == pytest.approx(100 * (1 - 1 + 2) / 4)


def test_experiment_without_changepoints_only_adds_false_positives():
    s = changepoint_score([(TS, CP, CP), (TS, np.zeros(N), _pred(3))])
    assert s.changepoints == 4 and s.false_positives == 1
    assert s.standard == pytest.approx(100 * (4 - 0.11 + 4) / 8)
    assert math.isnan(changepoint_score([(TS, np.zeros(N), _pred(3))]).standard)


def test_custom_profile_and_window():
    s = changepoint_score([(TS, CP, _pred(100, 200, 400, 500, 300))], window_s=10.0,
                          profiles={"strict": CostMatrix(tp=1.0, fp=1.0, fn=1.0)})
    assert s.scores["strict"] == pytest.approx(100 * (4 - 1 + 4) / 8)


def test_published_table():
    t = published_table()
    assert t.experiments == 34 and "27" in t.note
    assert len(t.outlier) == 10 and len(t.changepoint) == 7
    assert t.outlier["Isolation forest"] == (0.29, 2.56, 82.89)
    assert t.changepoint["Conv-AE"] == (23.61, 21.54, 27.55, 82, 23)


# ----------------------------------------------------------------------------
# Real experiments, read in place
# ----------------------------------------------------------------------------



def test_a_real_experiment(skab_dir):
    (rec,) = load_skab(skab_dir, "valve1/0.csv", anomaly_free=False)
    ts, anomaly, cp = rec.labels.test_part()
    # Expected labels read from the shared file (SKAB is GPL-3.0: none is written here).
    file_anomaly, file_cp = skab_labels(skab_dir / "valve1" / "0.csv")
    assert ts.size == len(file_anomaly) - TRAIN_ROWS and int(anomaly.sum()) == sum(file_anomaly[TRAIN_ROWS:])
    assert int(cp.sum()) == sum(file_cp[TRAIN_ROWS:]) == 4  # four changepoints: the windows below rely on it
    perfect = outlier_score([(anomaly, anomaly)])
    assert (perfect.f1, perfect.far_pct, perfect.mar_pct) == (1.0, 0.0, 0.0)
    assert changepoint_score([(ts, cp, cp)]).scores == {p: 100.0 for p in SKAB_PROFILES}
    assert changepoint_score([(ts, cp, np.zeros_like(cp))]).standard == 0.0
    false_alarm = cp.copy()
    false_alarm[0] = 1  # the first test row, minutes before the first changepoint
    assert changepoint_score([(ts, cp, false_alarm)]).standard == pytest.approx(100 * (4 - 0.11 + 4) / 8)
    # SKAB turns outlier predictions into changepoints with |diff|: the label boundaries (the first
    # and the last changepoint). The changepoints come in pairs 60 s apart, so the last one starts
    # where the third one's window ends: it is the third window's first detection (at its end: -fp)
    # and the last window's (at its start: +tp); the second window is missed.
    derived = changepoint_score([(ts, cp, changepoints_from_outliers(anomaly))])
    assert (derived.missed, derived.false_positives) == (1, 0)
    assert derived.standard == pytest.approx(100 * (1 - 1 - 0.11 + 1 + 4) / 8)


def test_all_27_experiments_match_skabs_reference_implementation(skab_dir):
    """The labels themselves as the prediction, scored as SKAB's notebooks do. Expected values
    computed with SKAB's own ``core/metrics.py`` (``chp_score``, waico/SKAB b2c0d46, run outside
    this repository): binary (1.0, 0.0, 0.0); nab 53.74 / 53.13 / 55.63; 41 missed, 1 FP."""
    parts = [r.labels.test_part() for r in load_skab(skab_dir, anomaly_free=False)]
    assert len(parts) == 27
    o = outlier_score([(a, a) for _, a, _ in parts])
    assert (o.f1, o.far_pct, o.mar_pct) == (1.0, 0.0, 0.0)
    assert (o.tp, o.tn) == (sum(int(a.sum()) for _, a, _ in parts), sum(int((a == 0).sum()) for _, a, _ in parts))
    c = changepoint_score([(ts, cp, changepoints_from_outliers(a)) for ts, a, cp in parts], WINDOW_S)
    assert {p: round(v, 2) for p, v in c.scores.items()} == {
        "standard": 53.74, "reward_low_FP_rate": 53.13, "reward_low_FN_rate": 55.63}
    assert (c.missed, c.false_positives, c.changepoints) == (41, 1, 101)
    exact = changepoint_score([(ts, cp, cp) for ts, _, cp in parts])
    assert exact.missed == 7  # changepoints closer than 60 s (see the test above)
