"""Tests for predmaint.models.nab_scoring: NAB raw scores.

The published-figure tests read NAB's own files (MIT, numenta/NAB commit
ea702d7) from the shared data folder: ``$PREDMAINT_SHARED_DATA/nab`` or, by
default, ``<repo>/../shared/data/nab``.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from predmaint.models.nab_scoring import (
    CostMatrix,
    best_threshold,
    count_detections,
    load_profile,
    load_windows,
    probationary_length,
    row_weights,
    scaled_sigmoid,
    score_detections,
    score_series,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SERIES = "realKnownCause/machine_temperature_system_failure.csv"
STANDARD = CostMatrix(tp=1.0, fp=0.11, fn=1.0, tn=1.0)


# ----------------------------------------------------------------------------
# Shared NAB data
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nab_dir() -> Path:
    from predmaint.pipelines.evaluate import shared_data_dir

    d = shared_data_dir() / "nab"
    needed = [
        d / "config" / "profiles.json",
        d / "labels" / "combined_windows.json",
        d / "results" / "standard_scores_machine_temperature.csv",
    ]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        pytest.fail(
            "NAB shared data not found (set PREDMAINT_SHARED_DATA to the folder that "
            f"contains nab/): missing {missing}"
        )
    return d


@pytest.fixture(scope="module")
def windows(nab_dir):
    return load_windows(nab_dir / "labels" / "combined_windows.json", SERIES)


@pytest.fixture(scope="module")
def published(nab_dir) -> dict[str, dict[str, str]]:
    with open(nab_dir / "results" / "standard_scores_machine_temperature.csv", newline="") as fh:
        return {row["Detector"]: row for row in csv.DictReader(fh)}


def _read_results(nab_dir: Path, detector: str):
    path = nab_dir / "results" / detector / f"{detector}_machine_temperature_system_failure.csv"
    if not path.is_file():
        pytest.fail(f"NAB results file missing: {path}")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    timestamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    return timestamps, scores, rows


def test_load_profile_standard_and_low_fn(nab_dir):
    assert load_profile(nab_dir / "config" / "profiles.json") == STANDARD
    low_fn = load_profile(nab_dir / "config" / "profiles.json", "reward_low_FN_rate")
    assert (low_fn.tp, low_fn.fp, low_fn.fn) == (1.0, 0.11, 2.0)
    with pytest.raises(KeyError):
        load_profile(nab_dir / "config" / "profiles.json", "no_such_profile")


def test_load_windows_machine_temperature(windows):
    assert len(windows) == 4
    assert windows[0] == (datetime(2013, 12, 10, 6, 25), datetime(2013, 12, 12, 5, 35))
    assert windows[-1] == (datetime(2014, 2, 7, 14, 55), datetime(2014, 2, 9, 14, 5))


@pytest.mark.parametrize("detector", ["numenta", "ARTime", "randomCutForest"])
def test_reproduces_published_standard_raw_score(nab_dir, windows, published, detector):
    """Thresholding at NAB's published (corpus-optimised) threshold reproduces
    the published raw score and TP/TN/FP/FN counts of this file."""
    timestamps, scores, _ = _read_results(nab_dir, detector)
    pub = published[detector]
    threshold = float(pub["Threshold"])

    raw = score_series(timestamps, scores, threshold, windows, STANDARD)
    assert raw == pytest.approx(float(pub["Score"]), abs=1e-9)

    counts = count_detections(timestamps, scores >= threshold, windows)
    assert counts == {k: int(pub[k.upper()]) for k in ("tp", "tn", "fp", "fn")}


def test_published_headline_figures(nab_dir, windows, published):
    """The two figures quoted in GUIDE.md §7, within 0.01."""
    for detector, expected in [("ARTime", 2.556), ("numenta", 1.360)]:
        timestamps, scores, _ = _read_results(nab_dir, detector)
        thr = float(published[detector]["Threshold"])
        assert score_series(timestamps, scores, thr, windows, STANDARD) == pytest.approx(expected, abs=0.01)


def test_null_detector_matches_published(nab_dir, windows, published):
    timestamps, scores, _ = _read_results(nab_dir, "numenta")
    raw = score_detections(timestamps, np.zeros(len(timestamps), bool), windows, STANDARD)
    assert raw == float(published["null"]["Score"]) == -4.0


def test_row_weights_match_nab_per_row_column(nab_dir, windows):
    """ARTime's results file carries NAB's per-row sweep weights (S(t)_standard)."""
    timestamps, _, rows = _read_results(nab_dir, "ARTime")
    nab_weights = np.array([float(r["S(t)_standard"]) for r in rows])
    np.testing.assert_allclose(row_weights(timestamps, windows, STANDARD), nab_weights, rtol=0, atol=1e-12)


def test_single_file_optimum_differs_from_corpus_threshold(nab_dir, windows, published):
    """NAB's published threshold is optimised over the whole corpus, so the
    single-file sweep finds a different threshold and a higher score."""
    timestamps, scores, _ = _read_results(nab_dir, "numenta")
    pub_thr = float(published["numenta"]["Threshold"])
    thr, best = best_threshold(timestamps, scores, windows, STANDARD)
    assert thr != pub_thr
    assert best > float(published["numenta"]["Score"]) + 0.5
    assert score_series(timestamps, scores, thr, windows, STANDARD) == pytest.approx(best, abs=1e-9)


# ----------------------------------------------------------------------------
# Hand-made series with known answers (no probation unless stated)
# ----------------------------------------------------------------------------

T0 = datetime(2020, 1, 1)


def _ts(n: int) -> list[datetime]:
    return [T0 + timedelta(minutes=5 * i) for i in range(n)]


def _det(n: int, *idx: int) -> np.ndarray:
    d = np.zeros(n, dtype=bool)
    d[list(idx)] = True
    return d


N = 200
TS = _ts(N)
WIN = [(TS[50], TS[59]), (TS[120], TS[129])]  # two windows of 10 rows


def test_scaled_sigmoid_anchor_values():
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.986614298, abs=1e-9)
    assert scaled_sigmoid(1.0) == pytest.approx(-0.986614298, abs=1e-9)
    assert scaled_sigmoid(3.01) == -1.0


def test_probationary_length():
    assert probationary_length(22695) == 750  # capped at 0.15 * 5000
    assert probationary_length(1000) == 150
    assert probationary_length(1000, 0.0) == 0


def test_empty_detector_scores_minus_fn_per_window():
    assert score_detections(TS, _det(N), WIN, STANDARD, 0.0) == -2.0
    low_fn = CostMatrix(tp=1.0, fp=0.11, fn=2.0)
    assert score_detections(TS, _det(N), WIN, low_fn, 0.0) == -4.0


def test_detection_at_window_start_scores_full_tp_weight():
    # window 1 hit at its first row (+1), window 2 missed (-1)
    assert score_detections(TS, _det(N, 50), WIN, STANDARD, 0.0) == pytest.approx(0.0, abs=1e-12)
    # both hit at their first row
    assert score_detections(TS, _det(N, 50, 120), WIN, STANDARD, 0.0) == pytest.approx(2.0, abs=1e-12)


def test_later_detection_in_window_scores_less():
    start = score_detections(TS, _det(N, 50, 120), WIN, STANDARD, 0.0)
    middle = score_detections(TS, _det(N, 55, 120), WIN, STANDARD, 0.0)
    end = score_detections(TS, _det(N, 59, 120), WIN, STANDARD, 0.0)
    assert start > middle > end > 1.0
    # last row of a 10-row window: S(-1/10) / S(-1) + 1 (other window)
    assert end == pytest.approx(1.0 + scaled_sigmoid(-0.1) / scaled_sigmoid(-1.0), abs=1e-12)


def test_only_earliest_detection_in_window_counts():
    one = score_detections(TS, _det(N, 52, 120), WIN, STANDARD, 0.0)
    many = score_detections(TS, _det(N, 52, 53, 54, 58, 59, 120), WIN, STANDARD, 0.0)
    assert many == one
    counts = count_detections(TS, _det(N, 52, 53, 54, 58, 59, 120), WIN, 0.0)
    assert counts == {"tp": 6, "fn": 14, "fp": 0, "tn": 180}


def test_false_positive_far_after_window_costs_fp_weight():
    # row 100 is 41 rows after window 1's end: y = 41/9 > 3 -> -fp
    got = score_detections(TS, _det(N, 50, 120, 100), WIN, STANDARD, 0.0)
    assert got == pytest.approx(2.0 - 0.11, abs=1e-12)


def test_false_positive_before_any_window_costs_fp_weight():
    got = score_detections(TS, _det(N, 10), WIN, STANDARD, 0.0)
    assert got == pytest.approx(-2.0 - 0.11, abs=1e-12)


def test_false_positive_right_after_window_is_cheaper():
    near = score_detections(TS, _det(N, 60), WIN, STANDARD, 0.0)  # 1 row past window 1
    assert near == pytest.approx(-2.0 + 0.11 * scaled_sigmoid(1 / 9), abs=1e-12)
    assert -2.0 - 0.11 < near < -2.0


def test_probationary_rows_are_not_scored():
    # 0.15 * 200 = 30 probationary rows: an FP at row 5 is ignored, one at row 30 is not
    assert score_detections(TS, _det(N, 5), WIN, STANDARD) == -2.0
    assert score_detections(TS, _det(N, 30), WIN, STANDARD) == pytest.approx(-2.11, abs=1e-12)
    # a window inside the probationary period is neither hit nor miss
    early = [(TS[5], TS[9])] + WIN
    assert score_detections(TS, _det(N), early, STANDARD) == -2.0
    assert score_detections(TS, _det(N, 5), early, STANDARD) == -2.0


def test_score_series_uses_greater_or_equal():
    scores = np.full(N, 0.1)
    scores[50] = 0.7
    assert score_series(TS, scores, 0.7, WIN, STANDARD, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert score_series(TS, scores, 0.7000001, WIN, STANDARD, 0.0) == -2.0


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(7)
    scores = np.round(rng.random(N), 2)  # many ties
    scores[[53, 121]] = 0.995
    thr, best = best_threshold(TS, scores, WIN, STANDARD, 0.0)
    candidates = np.unique(scores)
    brute = {float(c): score_series(TS, scores, c, WIN, STANDARD, 0.0) for c in candidates}
    assert best == pytest.approx(max(brute.values()), abs=1e-12)
    assert brute[thr] == pytest.approx(best, abs=1e-12)
    assert best > 1.5


def test_best_threshold_prefers_silence_when_everything_is_a_false_positive():
    scores = np.zeros(N)
    scores[[10, 70, 150]] = 0.9
    thr, best = best_threshold(TS, scores, WIN, STANDARD, 0.0)
    assert thr == math.inf
    assert best == -2.0


def test_window_boundary_must_be_a_timestamp():
    with pytest.raises(ValueError, match="not one of the timestamps"):
        score_detections(TS, _det(N), [(T0 + timedelta(minutes=1), TS[10])], STANDARD, 0.0)


def test_string_and_datetime64_timestamps_agree():
    det = _det(N, 30, 55, 60, 140)
    ref = score_detections(TS, det, WIN, STANDARD)
    as_str = [t.strftime("%Y-%m-%d %H:%M:%S") for t in TS]
    assert score_detections(as_str, det, WIN, STANDARD) == ref
    assert score_detections(np.array(TS, dtype="datetime64[s]"), det, WIN, STANDARD) == ref
