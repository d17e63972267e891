"""The SKAB adapter on the real experiments, read in place from the shared data.

SKAB is GPL-3.0: nothing of it is copied into the repository. These tests only
read ``$PREDMAINT_SHARED_DATA/skab``; the "new experiment" test writes made-up
numbers in SKAB's layout to a temporary folder.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
import yaml

from predmaint.connectors.datasets.skab import TRAIN_ROWS, load_skab, skab_asset_id, skab_experiments
from predmaint.errors import EvaluationError
from predmaint.settings import load_settings
from tests.skab_files import skab_columns, skab_labels

SENSORS = [("accelerometer1rms", "g"), ("accelerometer2rms", "g"), ("current", "A"), ("pressure", "bar"),
           ("temperature", "degC"), ("thermocouple", "degC"), ("voltage", "V"), ("volumeflowraterms", "l/min")]



@pytest.fixture(scope="module")
def recordings(skab_dir):
    return {r.name: r for r in load_skab(skab_dir)}


def test_experiments_found(recordings):
    assert len(recordings) == 28
    assert Counter(n.split("/")[0] for n in recordings) == {"valve1": 16, "other": 11, "anomaly-free": 1}
    valve1 = [n for n in recordings if n.startswith("valve1/")]
    assert valve1[:3] == ["valve1/0.csv", "valve1/1.csv", "valve1/2.csv"] and valve1[-1] == "valve1/15.csv"
    assert recordings["valve1/0.csv"].asset == "skab-valve1-0"


def test_label_counts(recordings, skab_dir):
    labelled = [r for n, r in recordings.items() if r.labels.labelled]
    assert len(labelled) == 27
    for r in labelled:
        anomaly, changepoint = skab_labels(skab_dir / r.name)
        lab = r.labels
        assert lab.rows == len(anomaly), r.name
        assert lab.anomaly.tolist() == anomaly and lab.changepoint.tolist() == changepoint, r.name
        assert lab.train_rows == TRAIN_ROWS == 400
        ts, a, cp = lab.test_part()
        assert ts.size == len(anomaly) - TRAIN_ROWS
        assert a.tolist() == anomaly[TRAIN_ROWS:] and cp.tolist() == changepoint[TRAIN_ROWS:], r.name
    # An experiment whose anomaly starts inside the 400 training rows keeps those labels in its
    # training part (the protocol's, not ours to drop); the shared data has one such experiment.
    early = [r.name for r in labelled if r.labels.anomaly[:TRAIN_ROWS].any()]
    assert len(early) >= 1


def test_valve1_0(recordings, skab_dir):
    r = recordings["valve1/0.csv"]
    assert r.registry == {"asset": "skab-valve1-0", "sensors": [
        {"sensor": s, "kind": "process", "unit": u, "sample_rate_hz": 1.0} for s, u in SENSORS]}
    # Every expected value is read from the shared file here, not written in: SKAB (GPL-3.0) is
    # never copied into the repository.
    cols = skab_columns(skab_dir / "valve1" / "0.csv")
    lab = r.labels
    assert lab.rows == len(cols["datetime"])
    assert np.flatnonzero(lab.changepoint).tolist() == [i for i, v in enumerate(cols["changepoint"]) if float(v)]
    start = int(datetime.strptime(cols["datetime"][0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)
    assert int(lab.ts_ms[0]) == start
    first = list(r.stream())[:8]
    assert [(x.sensor, x.ts_ms) for x in first] == [(s, start) for s, _ in SENSORS]
    assert first[0].samples.tolist() == [float(cols["Accelerometer1RMS"][0])] and first[0].samples.dtype == np.float64


def test_readings_match_the_registry_and_keep_real_time(recordings, skab_dir):
    for name, r in recordings.items():
        readings = list(r.stream())
        assert len(readings) == 8 * r.labels.rows, name  # no missing value in SKAB
        units = dict(SENSORS)
        assert all(x.asset == r.asset and x.kind == "process" and x.unit == units[x.sensor] and x.channels == 1
                   and x.sample_rate_hz == 1.0 and x.samples.shape == (1,) for x in readings), name
        ts = np.array([x.ts_ms for x in readings[::8]])
        assert np.array_equal(ts, r.labels.ts_ms) and np.all(np.diff(ts) > 0), name
    # A pause in the recording (other/2 has one of minutes) stays a pause: the same gaps as the file's.
    stamps = skab_columns(skab_dir / "other" / "2.csv")["datetime"]
    file_s = np.diff([datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() for t in stamps])
    gaps = np.diff(recordings["other/2.csv"].labels.ts_ms)
    assert np.array_equal(gaps, (file_s * 1000).astype(np.int64)) and int(gaps.max()) > 60_000


def test_anomaly_free_run(recordings, skab_dir):
    lab = recordings["anomaly-free/anomaly-free.csv"].labels
    assert recordings["anomaly-free/anomaly-free.csv"].asset == "skab-anomaly-free"
    rows = len(skab_columns(skab_dir / "anomaly-free" / "anomaly-free.csv")["datetime"])
    assert (lab.labelled, lab.rows, lab.train_rows) == (False, rows, rows)
    assert lab.test_part()[0].size == 0 and not lab.anomaly.any()


def test_globs(skab_dir):
    assert skab_experiments(skab_dir, "other/1*.csv") == ["other/1.csv", "other/10.csv", "other/11.csv",
                                                          "other/12.csv", "other/14.csv"]
    assert "anomaly-free/anomaly-free.csv" not in skab_experiments(skab_dir, anomaly_free=False)
    with pytest.raises(EvaluationError):
        skab_experiments(skab_dir, "valve9/*")


def test_a_new_experiment_in_the_same_format_needs_no_change(tmp_path, skab_dir):
    (tmp_path / "valve2").mkdir()
    # The shared file's column names, made-up values (1..8 plus the second): nothing of SKAB's rows.
    header = ";".join(skab_columns(skab_dir / "valve1" / "0.csv"))
    rows = [header] + [";".join([f"2000-01-01 00:00:{s:02d}", *(str(c + s) for c in range(1, 9)),
                                 str(int(s >= 5)), str(int(s == 5))]) for s in range(10)]
    (tmp_path / "valve2" / "1.csv").write_text("\n".join(rows) + "\n")
    (r,) = load_skab(tmp_path)
    assert (r.name, r.asset, r.labels.rows, int(r.labels.changepoint.sum())) == ("valve2/1.csv", "skab-valve2-1", 10, 1)
    assert len(list(r.stream())) == 80
    (tmp_path / "valve2" / "2.csv").write_text("\n".join(rows[:1] + rows[2:1:-1] + rows[1:2]) + "\n")
    with pytest.raises(EvaluationError, match="not strictly increasing"):
        load_skab(tmp_path)


def test_asset_ids():
    assert skab_asset_id("other/14.csv") == "skab-other-14"


def test_registry_entries_validate_in_the_settings(recordings, tmp_path):
    entries = [r.registry for r in recordings.values()]
    doc = {"fleet": [{"site": "evaluation", "lines": [{"line": "skab", "assets": entries}]}]}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(doc))
    settings = load_settings(tmp_path / "fleet.yaml")
    assert [a.asset for a in settings.fleet] == [r.asset for r in recordings.values()]
    assert [(s.sensor, s.kind, s.unit) for s in settings.fleet[0].sensors] == [(s, "process", u) for s, u in SENSORS]
