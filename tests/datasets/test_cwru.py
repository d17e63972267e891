"""The CWRU adapter on the real recordings (CWRU Bearing Data Center), read in place from the shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.io import loadmat, savemat
from scipy.signal import decimate

from predmaint.connectors.datasets.cwru import (
    SKF_6205,
    G,
    load_cwru,
    parse_cwru_name,
    read_drive_end,
)
from predmaint.errors import EvaluationError
from predmaint.features.bearing import bearing_multipliers
from predmaint.settings import BearingSettings, load_settings
from predmaint.telemetry import decode_reading, encode_reading
from tests.conftest import shared_dataset

FILES = {
    "normal": "normal_0_97.mat",
    "inner_race": "12k_Drive_End_IR007_0_105.mat",
    "outer_race": "12k_Drive_End_OR007@6_0_130.mat",
    "ball": "12k_Drive_End_B007_0_118.mat",
}


@pytest.fixture(scope="module")
def cwru_dir() -> Path:
    return shared_dataset("cwru_bearing", *FILES.values())


@pytest.fixture(scope="module")
def recordings(cwru_dir):
    return {r.labels.fault: r for r in load_cwru(cwru_dir)}


def test_one_recording_per_file(recordings):
    assert set(recordings) == set(FILES)
    assert {f: r.name for f, r in recordings.items()} == FILES
    assert recordings["outer_race"].asset == "cwru-12k_Drive_End_OR007-6_0_130"
    assert {r.corpus for r in recordings.values()} == {"cwru"}


def test_labels(recordings):
    lab = recordings["outer_race"].labels
    assert (lab.diameter_in, lab.load_hp, lab.number, lab.clock, lab.rpm, lab.rpm_source) == (
        0.007, 0, 130, 6, 1796.0, "file")
    assert recordings["inner_race"].labels.rpm == 1797.0
    normal = recordings["normal"].labels
    assert (normal.recorded_rate_hz, normal.decimated_by, normal.snapshots) == (48000.0, 4, 14)
    assert all(recordings[f].labels.snapshots == 29 and recordings[f].labels.decimated_by == 1
               for f in ("inner_race", "outer_race", "ball"))


def test_registry_entry(recordings):
    r = recordings["ball"]
    assert r.registry == {
        "asset": r.asset, "rpm": 1796.0, "iso_group": 2, "iso_foundation": "rigid", "bearing": SKF_6205,
        "sensors": [{"sensor": "de-accel", "kind": "vibration", "unit": "g", "sample_rate_hz": 12000.0}]}


def test_defect_multipliers_agree_with_the_6205_geometry():
    """CWRU's table (bsf = half its 'rolling element' 4.7135) matches 9 balls of 7.94 mm on 39.04 mm."""
    table = bearing_multipliers(BearingSettings(**SKF_6205))
    geometry = bearing_multipliers(BearingSettings(9, 7.94, 39.04, 0.0))
    for name in ("bpfo", "bpfi", "bsf", "ftf"):
        assert getattr(table, name) == pytest.approx(getattr(geometry, name), rel=0.005), name


def test_readings_are_consecutive_snapshots(recordings, cwru_dir):
    r = recordings["inner_race"]
    readings = list(r.stream())
    assert len(readings) == 29
    assert all((x.asset, x.sensor, x.kind, x.unit, x.sample_rate_hz, x.channels) ==
               (r.asset, "de-accel", "vibration", "g", 12000.0, 1) for x in readings)
    assert all(x.samples.shape == (4096,) and x.samples.dtype == np.float64 for x in readings)
    assert np.diff([x.ts_ms for x in readings]).tolist() == [1000] * 28
    raw = loadmat(cwru_dir / FILES["inner_race"])["X105_DE_time"].ravel()
    np.testing.assert_array_equal(np.concatenate([x.samples for x in readings]), raw[: 29 * 4096])
    # The telemetry decoder converts g to m/s^2, as the stream expects.
    back = decode_reading(encode_reading(readings[0]))
    assert back.unit == "m/s2"
    np.testing.assert_allclose(back.samples, readings[0].samples * G, rtol=1e-6, atol=1e-6)


def test_normal_is_decimated_from_48_khz(recordings, cwru_dir):
    readings = list(recordings["normal"].stream())
    raw = loadmat(cwru_dir / FILES["normal"])["X097_DE_time"].ravel()
    expected = decimate(raw, 4)
    assert expected.size // 4096 == 14
    np.testing.assert_allclose(readings[3].samples, expected[3 * 4096: 4 * 4096])
    x, rpm = read_drive_end(cwru_dir / FILES["normal"], G, 4)
    assert rpm == 1796.0 and np.allclose(x[:4096] / G, readings[0].samples)


def test_fault_files_vibrate_more_than_normal(recordings):
    rms = {f: float(np.sqrt(np.mean(np.concatenate([x.samples for x in r.stream()]) ** 2)))
           for f, r in recordings.items()}
    assert all(rms[f] > 1.5 * rms["normal"] for f in ("inner_race", "outer_race", "ball"))


def test_names():
    assert parse_cwru_name("12k_Drive_End_IR021_3_212.mat") == {
        "fault": "inner_race", "diameter_in": 0.021, "load_hp": 3, "number": 212, "rate_hz": 12000.0, "clock": None}
    assert parse_cwru_name("48k_Drive_End_B014_1_227.mat")["rate_hz"] == 48000.0
    with pytest.raises(EvaluationError, match="not named"):
        parse_cwru_name("12k_Fan_End_IR007_0_278.mat")


def test_a_new_file_of_the_same_format_needs_no_change(tmp_path):
    x = np.sin(np.arange(3 * 4096 + 100) * 0.3)[:, None]
    savemat(tmp_path / "12k_Drive_End_IR014_1_170.mat", {"X170_DE_time": x})  # no RPM variable
    (r,) = load_cwru(tmp_path)
    assert (r.labels.fault, r.labels.diameter_in, r.labels.load_hp) == ("inner_race", 0.014, 1)
    assert (r.labels.rpm, r.labels.rpm_source, r.labels.snapshots) == (1772.0, "nominal", 3)
    assert r.registry["rpm"] == 1772.0
    (spaced,) = load_cwru(tmp_path, snapshot_spacing_s=300)
    assert np.diff([x.ts_ms for x in spaced.stream()]).tolist() == [300_000, 300_000]
    with pytest.raises(EvaluationError, match="no .mat"):
        load_cwru(tmp_path, "normal_*.mat")


def test_registry_entries_validate_in_the_settings(recordings, tmp_path):
    entries = [r.registry for r in recordings.values()]
    doc = {"fleet": [{"site": "evaluation", "lines": [{"line": "cwru", "assets": entries}]}]}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(doc))
    settings = load_settings(tmp_path / "fleet.yaml")
    a = settings.asset(recordings["outer_race"].asset)
    assert a.rpm == 1796.0 and a.bearing.bpfo == 3.5848 and a.bearing.bsf == pytest.approx(2.35675)
    assert (a.sensors[0].kind, a.sensors[0].unit, a.sensors[0].sample_rate_hz) == ("vibration", "g", 12000.0)
