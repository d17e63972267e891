"""Tests for predmaint.models.nab_corpus: NAB normalised scores over a set of files.

Reads NAB's own files (MIT, numenta/NAB commit ea702d7) in place from
``$PREDMAINT_SHARED_DATA/nab`` (tests/conftest.py defaults it to ../shared/data),
through the adapter :mod:`predmaint.connectors.datasets.nab`.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from predmaint.connectors.datasets.nab import load_nab, load_nab_profiles, load_nab_published
from predmaint.errors import EvaluationError
from predmaint.models.nab_corpus import NAB_PROFILES, NabLabels, normalised_score, score_corpus, score_published
from predmaint.models.nab_scoring import label_rows

MACHINE = "realKnownCause/machine_temperature_system_failure.csv"
STANDARD = {"standard": NAB_PROFILES["standard"]}



@pytest.fixture(scope="module")
def labels(nab_dir) -> dict[str, NabLabels]:
    return {r.name: r.labels for r in load_nab(nab_dir)}


@pytest.fixture(scope="module")
def published_scores(nab_dir, labels):
    return score_published(labels, load_nab_published(nab_dir, files=list(labels)), load_nab_profiles(nab_dir))


def test_the_shared_corpus(labels):
    assert len(labels) == 47
    assert sum(len(lab.windows) for lab in labels.values()) == 93


@pytest.mark.parametrize("detector, standard, low_fp", [
    ("ARTime", 74.36, 64.12),
    ("numenta", 70.64, 63.09),
    ("contextOSE", 69.51, 66.63),
])
def test_published_normalised_scores_on_the_47_files(published_scores, detector, standard, low_fp):
    """nab/SOURCE.md's table, computed from the per-file CSVs with null and perfect over the same files."""
    s = published_scores[detector]
    assert round(s["standard"].score, 2) == standard
    assert round(s["reward_low_FP_rate"].score, 2) == low_fp
    assert (s["standard"].null, s["standard"].perfect, s["standard"].windows) == (-93.0, 93.0, 93)
    assert len(s["standard"].files) == 47 and s["standard"].missing == ()
    assert s["reward_low_FN_rate"].null == -186.0


def test_more_published_rows_of_source_md(published_scores):
    expected = {"htmjava": 64.31, "numentaTM": 63.37, "earthgeckoSkyline": 58.57, "knncad": 56.60,
                "relativeEntropy": 54.17, "randomCutForest": 47.74, "windowedGaussian": 38.64}
    assert {d: round(published_scores[d]["standard"].score, 2) for d in expected} == expected
    assert all(p.score == 0.0 for p in published_scores["null"].values())


def test_a_detector_without_every_file_is_scored_on_its_own_files(published_scores):
    rnd = published_scores["random"]["standard"]
    assert len(rnd.files) == 25 and len(rnd.missing) == 22
    assert rnd.perfect == 35.0 and rnd.null == -35.0  # over its 25 files, not the 47


def test_published_null_equals_the_null_computed_from_labels(nab_dir, labels):
    published = load_nab_published(nab_dir, files=list(labels), detectors=["null"])
    for profile, cost in NAB_PROFILES.items():
        for name, lab in labels.items():
            rows = label_rows(lab.timestamps, lab.windows, cost)
            assert rows.score(np.zeros(lab.rows, bool)) == published["null"][profile][name], (profile, name)


def test_categories(published_scores, labels):
    s = published_scores["numenta"]["standard"]
    assert set(s.by_category) == {lab.category for lab in labels.values()} == {
        "artificialNoAnomaly", "artificialWithAnomaly", "realAWSCloudwatch", "realAdExchange",
        "realKnownCause", "realTraffic", "realTweets"}
    assert math.isnan(s.by_category["artificialNoAnomaly"])  # no windows: no normalised score
    assert all(0 < v < 100 for c, v in s.by_category.items() if c != "artificialNoAnomaly")


# ----------------------------------------------------------------------------
# Our detections: the per-file raw scores of tests/test_nab_scoring.py, through timestamps
# ----------------------------------------------------------------------------


def _published_row(nab_dir: Path, detector: str) -> dict[str, str]:
    with open(nab_dir / "results" / "standard_scores_machine_temperature.csv", newline="") as fh:
        return next(r for r in csv.DictReader(fh) if r["Detector"] == detector)


def _detections(nab_dir: Path, detector: str, threshold: float) -> list[datetime]:
    path = nab_dir / "results" / detector / f"{detector}_machine_temperature_system_failure.csv"
    with open(path, newline="") as fh:
        return [datetime.fromisoformat(r["timestamp"]) for r in csv.DictReader(fh)
                if float(r["anomaly_score"]) >= threshold]


@pytest.mark.parametrize("detector", ["numenta", "ARTime", "randomCutForest"])
def test_per_file_raw_scores_of_test_nab_scoring_still_hold(nab_dir, labels, detector):
    """Thresholding at the published threshold and passing the detection *timestamps* reproduces
    the published raw score and counts of the machine-temperature file."""
    pub = _published_row(nab_dir, detector)
    dets = _detections(nab_dir, detector, float(pub["Threshold"]))
    lab = labels[MACHINE]
    s = score_corpus({MACHINE: lab}, {MACHINE: dets}, STANDARD, detector=detector)["standard"]
    assert s.per_file[MACHINE] == pytest.approx(float(pub["Score"]), abs=1e-9)
    counts = label_rows(lab.timestamps, lab.windows, NAB_PROFILES["standard"]).counts(lab.detection_rows(dets))
    assert counts == {k: int(pub[k.upper()]) for k in ("tp", "tn", "fp", "fn")}


def test_headline_raw_scores_and_null(nab_dir, labels):
    for detector, expected in [("ARTime", 2.556), ("numenta", 1.360)]:
        dets = _detections(nab_dir, detector, float(_published_row(nab_dir, detector)["Threshold"]))
        got = score_corpus({MACHINE: labels[MACHINE]}, {MACHINE: dets}, STANDARD)["standard"].raw
        assert got == pytest.approx(expected, abs=0.01)
    assert score_corpus({MACHINE: labels[MACHINE]}, {MACHINE: []}, STANDARD)["standard"].raw == -4.0


def test_silent_and_perfect_detectors_over_the_corpus(labels):
    silent = score_corpus(labels, {n: [] for n in labels})
    assert {p: s.score for p, s in silent.items()} == {p: 0.0 for p in NAB_PROFILES}
    perfect = score_corpus(labels, {n: [w[0] for w in lab.windows] for n, lab in labels.items()})
    for s in perfect.values():
        assert s.score == pytest.approx(100.0, abs=1e-9)
        assert s.raw == pytest.approx(93.0, abs=1e-9)


def test_detection_timestamps_map_to_the_first_row_at_or_after_them():
    t0 = datetime(2020, 1, 1)
    ts = np.array([t0 + timedelta(minutes=5 * i) for i in range(6)] + [t0 + timedelta(minutes=10)],
                  dtype="datetime64[ms]")  # the last row repeats row 2's time
    lab = NabLabels("c/x.csv", ts, ())
    assert lab.detection_rows([t0 + timedelta(minutes=7)]).nonzero()[0].tolist() == [2]  # not row 6
    assert lab.detection_rows([int((t0 - datetime(1970, 1, 1)).total_seconds() * 1000)]).nonzero()[0].tolist() == [0]
    assert not lab.detection_rows([t0 + timedelta(hours=1)]).any()  # after the last row: outside the series


def test_detections_must_name_the_labelled_files(labels):
    with pytest.raises(EvaluationError, match="no detections entry"):
        score_corpus(labels, {MACHINE: []})
    with pytest.raises(EvaluationError, match="unlabelled files"):
        score_corpus({MACHINE: labels[MACHINE]}, {MACHINE: [], "x/y.csv": []})


def test_normalised_score():
    assert normalised_score(0.0, -93.0, 93.0) == 50.0
    assert math.isnan(normalised_score(-0.22, 0.0, 0.0))
