"""The IMS adapter on the real feature tables of tests 1 and 2, read in place from the shared data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from predmaint.connectors.datasets.ims import IMS_RUNS, ims_column, ims_tables, load_ims
from predmaint.errors import EvaluationError
from predmaint.settings import load_settings
from tests.conftest import shared_dataset


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def data() -> Path:
    shared_dataset("ims_bearing_test2")
    return shared_dataset("ims_bearing_test1").parent


@pytest.fixture(scope="module")
def test2(data):
    return load_ims(data / "ims_bearing_test2")


@pytest.fixture(scope="module")
def test1(data):
    return load_ims(data / "ims_bearing_test1" / "test1_raw.csv")


def _check_readings(rec) -> list:
    readings = list(rec.stream())
    sensors = rec.sensors
    assert all(x.asset == rec.asset and x.kind == "vibration" and sensors[x.sensor]["reports"] == "features"
               and x.samples.shape == (0,) and x.features and not {"mean", "rms"} & set(x.features) for x in readings)
    ts = np.array([x.ts_ms for x in readings])
    assert np.all(np.diff(ts) >= 0)
    return readings


def test_test2_run_with_spectral_features(data, test2):
    assert ims_tables(data / "ims_bearing_test2") == [[data / "ims_bearing_test2/features/test2_raw.csv",
                                                        data / "ims_bearing_test2/features/test2_spectral.csv"]]
    assert [r.asset for r in test2] == [f"ims-test2-bearing{b}" for b in (1, 2, 3, 4)]
    for r in test2:
        assert [s["sensor"] for s in r.registry["sensors"]] == ["ch1"]  # one accelerometer per bearing
        assert r.registry["rpm"] == 2000.0 and r.registry["bearing"]["n_elements"] == 16
        readings = _check_readings(r)
        assert len(readings) == 982  # snapshots 0-981: 982 and 983 were after the rig stopped
        assert all(len(x.features) == 4 + 18 for x in readings)  # 6 + 18 statistics but the DC mean and rms
        assert r.labels.file_index.tolist() == list(range(982))
    b1 = test2[0].labels
    assert (b1.run, b1.known, b1.failed, b1.fault, b1.failed_bearings) == ("test2", True, True, "outer_race", (1,))
    assert (b1.last_live_snapshot, b1.last_live_ts_ms) == (981, _ms("2004-02-19 06:02:39"))
    assert (b1.quiet_before_snapshot, b1.quiet_before_ts_ms) == (500, _ms("2004-02-12 10:32:39") + 500 * 600_000)
    assert b1.dropped_after_stop == 2 and "outer-race" in b1.sources["failed"]
    assert [(r.labels.failed, r.labels.fault) for r in test2[1:]] == [(False, "none")] * 3


def test_test2_values_and_units(test2):
    r = test2[0]
    assert r.sensors["ch1"]["unit"] == "g" and r.sensors["ch1"]["sample_rate_hz"] == 20480.0
    (at_700,) = [x for x in r.stream() if x.ts_ms == _ms("2004-02-17 07:12:39")]
    # SOURCE.md: snapshot 700, RMS 0.1128 (about zero); test 2's DC offset is small, so the AC RMS is close
    assert at_700.features["std"] == pytest.approx(0.1128, abs=2e-3)
    assert at_700.features["kurt"] == pytest.approx(1.08, abs=5e-3)  # SOURCE.md: excess kurtosis 1.08


def test_after_stop_snapshots_on_request(data):
    (b1, *_) = load_ims([data / "ims_bearing_test2/features/test2_raw.csv"], include_after_stop=True)
    assert len(b1.registry["sensors"]) == 1 and b1.labels.dropped_after_stop == 0
    assert b1.labels.file_index[-1] == 983 and b1.labels.last_live_snapshot == 981
    assert set(next(iter(b1.stream())).features) == {"std", "max", "kurt", "skew"}
    last_rms = [x.features["std"] for x in b1.stream()][-2:]
    assert max(last_rms) < 0.005  # the rig had stopped


def test_test1_two_channels_and_real_gaps(test1):
    assert [r.asset for r in test1] == [f"ims-test1-bearing{b}" for b in (1, 2, 3, 4)]
    for r in test1:
        assert [s["sensor"] for s in r.registry["sensors"]] == ["ch1", "ch2"]  # x and y accelerometers
        assert len(_check_readings(r)) == 2156 * 2
    lab = test1[2].labels
    assert (lab.failed, lab.fault) == (True, "inner_race")
    assert (test1[3].labels.failed, test1[3].labels.fault) == (True, "roller")
    assert [r.labels.failed for r in test1[:2]] == [False, False]
    assert lab.last_live_snapshot == 2155 and lab.dropped_after_stop == 0
    assert lab.quiet_before_snapshot == 1000 and lab.quiet_before_ts_ms > _ms("2003-11-01 00:00:00")
    assert lab.ts_ms[367] < _ms("2003-11-01 00:00:00")
    steps = np.diff(lab.ts_ms)
    assert int((steps > 15 * 60_000).sum()) == 24  # SOURCE.md: 24 gaps longer than 15 min
    assert int(steps.max()) == (6 * 86400 + 4 * 3600 + 25 * 60 + 33) * 1000  # 2003-10-23 -> 10-29
    assert int((steps == 300_000).sum()) == 145
    ts = sorted({x.ts_ms for x in test1[2].stream()})
    assert int(np.diff(ts).max()) == int(steps.max())  # the readings keep the gap
    last = [x for x in test1[2].stream() if x.sensor == "ch1"][-1]
    # SOURCE.md: bearing 3 ch1 RMS 0.594 at the end, about zero: with its DC mean removed, the std
    assert last.features["std"] == pytest.approx(np.sqrt(0.594 ** 2 - 0.114 ** 2), abs=0.01)


def test_rms_of_the_tables_carries_the_dc_offset(data, test1):
    """Why the tables' ``rms`` is left out: a DC step moves it while the vibration (``std``) stays."""
    from predmaint.connectors.datasets.ims import _join

    _, _, _, cols = _join([data / "ims_bearing_test1/test1_raw.csv"])
    rms, mean, std = (cols[f"Bearing4_ch2_{s}"] for s in ("rms", "mean", "std"))
    assert np.allclose(rms ** 2, mean ** 2 + std ** 2, rtol=1e-6)
    assert rms[885] - rms[880] > 0.04 and abs(std[885] - std[880]) < 0.002  # the offset stepped, not the vibration
    b4_y = [x.features for x in test1[3].stream() if x.sensor == "ch2"]
    assert b4_y[885]["std"] == pytest.approx(std[885]) and "rms" not in b4_y[885]


def test_fingerprints():
    assert {f.run for f in IMS_RUNS.values()} == {"test1", "test2", "test3"}
    assert all(key == f.first_snapshot and set(f.sources) >= {"failed", "last_live_snapshot",
                                                            "quiet_before_snapshot"} for key, f in IMS_RUNS.items())
    assert ims_column("Bearing2_ch1_env_bpfo_energy") == (2, "ch1_env_bpfo_energy", "env_bpfo_energy")


def test_an_unknown_run_still_loads(tmp_path):
    lines = ["file_index,timestamp,Bearing1_ch1_rms,Bearing1_ch1_kurt,Bearing2_ch1_rms,Bearing2_ch1_kurt"]
    times = ["2005-01-01 00:00:00", "2005-01-01 00:10:00", "2005-01-01 06:10:00", "2005-01-01 06:20:00"]
    lines += [f"{i},{t},{0.1 + i / 100},{0.2},{0.3},{0.4}" for i, t in enumerate(times)]
    (tmp_path / "test9_raw.csv").write_text("\n".join(lines) + "\n")
    recs = load_ims(tmp_path)
    assert [r.asset for r in recs] == ["ims-test9-bearing1", "ims-test9-bearing2"]
    lab = recs[0].labels
    assert (lab.run, lab.known, lab.failed, lab.fault, lab.failed_bearings) == ("test9", False, None, "unknown", None)
    assert (lab.last_live_snapshot, lab.last_live_ts_ms, lab.quiet_before_snapshot) == (3, _ms(times[-1]), None)
    ts = [x.ts_ms for x in recs[0].stream() if x.sensor == "ch1"]
    assert np.diff(ts).tolist() == [600_000, 21_600_000, 600_000]  # the 6 h gap is kept


def test_inconsistent_tables_are_refused(tmp_path, data):
    (tmp_path / "a.csv").write_text("file_index,timestamp,Bearing1_ch1_rms\n0,2005-01-01 00:00:00,0.1\n")
    (tmp_path / "b.csv").write_text("file_index,Bearing1_ch1_kurt\n1,0.2\n")
    with pytest.raises(EvaluationError, match="file_index"):
        load_ims([tmp_path / "a.csv", tmp_path / "b.csv"])
    with pytest.raises(EvaluationError, match="not found"):
        load_ims(tmp_path / "missing.csv")


def test_registry_entries_validate_in_the_settings(test1, test2, tmp_path):
    entries = [r.registry for r in (*test1, *test2)]
    doc = {"fleet": [{"site": "evaluation", "lines": [{"line": "ims", "assets": entries}]}]}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(doc))
    settings = load_settings(tmp_path / "fleet.yaml")
    assert len(settings.fleet) == 8
    a = settings.asset("ims-test2-bearing1")
    assert a.rpm == 2000.0 and a.bearing.n_elements == 16 and a.bearing.contact_angle_deg == 15.17
    assert [(s.kind, s.reports) for s in a.sensors] == [("vibration", "features")]


def test_test_3_is_known_by_its_first_snapshot_and_judged_on_its_facts(tmp_path):
    """Test 3 is not in the shared data; a table of it (here a synthetic one, its rows' file names as the
    run's) is labelled from IMS_RUNS: bearing 3 failed (outer race), snapshot 6323 after the stop is
    dropped, the quiet period ends at 4,448."""
    index = [0, 1, 4448, 6322, 6323]
    names = ["2004.03.04.09.27.46", "2004.03.04.09.37.46", "2004.04.04.19.01.57", "2004.04.18.02.32.55",
             "2004.04.18.02.42.55"]
    header = ["file_index", "timestamp", "filename"] + [f"Bearing{b}_ch1_{s}" for b in range(1, 5)
                                                        for s in ("rms", "std", "kurt")]
    lines = [",".join(header)]
    for i, name in zip(index, names):
        when = datetime.strptime(name, "%Y.%m.%d.%H.%M.%S").strftime("%Y-%m-%d %H:%M:%S")
        lines.append(",".join([str(i), when, name] + ["0.07,0.07,0.1"] * 4))
    (tmp_path / "test3_raw.csv").write_text("\n".join(lines) + "\n")
    recs = load_ims(tmp_path)
    assert [r.name for r in recs] == [f"test3/bearing{b}" for b in range(1, 5)]
    labels = [r.labels for r in recs]
    assert all(lab.known and lab.run == "test3" and lab.failed_bearings == (3,) for lab in labels)
    assert [(lab.failed, lab.fault) for lab in labels] == [(False, "none"), (False, "none"), (True, "outer_race"),
                                                           (False, "none")]
    lab = labels[2]
    assert (lab.last_live_snapshot, lab.dropped_after_stop, lab.file_index.tolist()) == (6322, 1, index[:-1])
    assert lab.quiet_before_ts_ms == _ms("2004-04-04 19:01:57") and lab.quiet_before_snapshot == 4448
    assert len([x for x in recs[2].stream()]) == 4  # one reading per live snapshot
