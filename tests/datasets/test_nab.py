"""The NAB adapter on the real corpus (MIT, numenta/NAB ea702d7), read in place from the shared data."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
import yaml

from predmaint.connectors.datasets.base import PROCESS_KIND, safe_id
from predmaint.connectors.datasets.nab import (
    load_nab,
    load_nab_profiles,
    load_nab_published,
    nab_asset_id,
    nab_detectors,
    nab_series,
)
from predmaint.errors import EvaluationError
from predmaint.models.nab_corpus import NAB_PROFILES
from predmaint.settings import load_settings

MACHINE = "realKnownCause/machine_temperature_system_failure.csv"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)



@pytest.fixture(scope="module")
def recordings(nab_dir):
    return {r.name: r for r in load_nab(nab_dir)}


@pytest.fixture(scope="module")
def streams(recordings):
    return {name: list(r.stream()) for name, r in recordings.items()}


def test_every_series_is_a_recording(recordings):
    assert len(recordings) == 47
    cats = Counter(name.split("/")[0] for name in recordings)
    assert cats == {"artificialNoAnomaly": 4, "artificialWithAnomaly": 5, "realAWSCloudwatch": 14,
                    "realAdExchange": 5, "realKnownCause": 4, "realTraffic": 6, "realTweets": 9}
    assert sum(r.labels.rows for r in recordings.values()) == 309_579
    assert sum(len(r.labels.windows) for r in recordings.values()) == 93
    assert {r.corpus for r in recordings.values()} == {"nab"}
    assets = [r.asset for r in recordings.values()]
    assert len(set(assets)) == 47 and all(safe_id(a) == a for a in assets)


def test_machine_temperature(recordings, streams):
    r = recordings[MACHINE]
    assert r.asset == "nab-realKnownCause-machine_temperature_system_failure"
    assert r.registry == {"asset": r.asset, "sensors": [
        {"sensor": "value", "kind": "process", "unit": "1", "sample_rate_hz": 1 / 300}]}
    assert r.labels.rows == 22_695 and len(r.labels.windows) == 4
    assert r.labels.windows[0] == (datetime(2013, 12, 10, 6, 25), datetime(2013, 12, 12, 5, 35))
    # Labels keep NAB's row order, which steps back once (0-based data row 10,149 is 02:00 after 02:55) ...
    steps = np.diff(r.labels.timestamps.astype(np.int64))
    assert np.flatnonzero(steps < 0).tolist() == [10_148] and int(steps[10_148]) == -55 * 60_000
    # ... while the readings are in event-time order, every row kept: 12 timestamps twice.
    ts = np.array([x.ts_ms for x in streams[MACHINE]])
    assert ts.size == 22_695 and np.all(np.diff(ts) >= 0) and int((np.diff(ts) == 0).sum()) == 12
    assert ts[0] == _ms("2013-12-02 21:15:00") and ts[-1] == _ms("2014-02-19 15:25:00")
    first = streams[MACHINE][0]
    assert first.samples.tolist() == [73.96732207] and first.samples.dtype == np.float64


def test_readings_match_the_registry_and_keep_real_time(recordings, streams):
    for name, r in recordings.items():
        (sensor,) = r.registry["sensors"]
        readings = streams[name]
        assert len(readings) == r.labels.rows, name  # no value is missing in NAB
        assert {(x.asset, x.sensor, x.kind, x.unit, x.sample_rate_hz, x.channels) for x in readings} == {
            (r.asset, "value", "process", "1", sensor["sample_rate_hz"], 1)}
        assert all(x.samples.shape == (1,) for x in readings[:50])
        ts = np.array([x.ts_ms for x in readings])
        assert np.all(np.diff(ts) >= 0), name
        assert sorted(ts.tolist()) == sorted(r.labels.timestamps.astype(np.int64).tolist())


def test_cadences_are_the_series_own(recordings):
    rate = {n: r.registry["sensors"][0]["sample_rate_hz"] for n, r in recordings.items()}
    assert rate["realKnownCause/nyc_taxi.csv"] == 1 / 1800
    assert rate["realAdExchange/exchange-2_cpc_results.csv"] == 1 / 3600
    assert Counter(rate.values())[1 / 300] == 39


def test_gaps_stay_gaps(streams):
    ts = np.array([x.ts_ms for x in streams["realKnownCause/rogue_agent_key_hold.csv"]])
    assert int(np.diff(ts).max()) == 164_100_000  # 45.6 h without data, not resampled


def test_series_globs(nab_dir):
    assert nab_series(nab_dir, "realKnownCause/*") == [
        "realKnownCause/cpu_utilization_asg_misconfiguration.csv", MACHINE,
        "realKnownCause/nyc_taxi.csv", "realKnownCause/rogue_agent_key_hold.csv"]
    assert [r.name for r in load_nab(nab_dir, "*machine_temperature*")] == [MACHINE]
    assert len(nab_series(nab_dir, ["realTweets/*", "realTraffic/*"])) == 15
    with pytest.raises(EvaluationError, match="no series"):
        nab_series(nab_dir, "realNothing/*")


def test_profiles_and_published_results(nab_dir, recordings):
    assert load_nab_profiles(nab_dir) == NAB_PROFILES
    detectors = nab_detectors(nab_dir)
    assert len(detectors) == 16 and "null" in detectors and "ARTime" in detectors
    pub = load_nab_published(nab_dir, files=list(recordings))
    assert set(pub) == set(detectors)
    assert all(set(p) == set(NAB_PROFILES) for p in pub.values())
    assert len(pub["numenta"]["standard"]) == 47 and len(pub["random"]["standard"]) == 25
    assert pub["numenta"]["standard"][MACHINE] == pytest.approx(1.36013273774)
    assert pub["null"]["reward_low_FN_rate"][MACHINE] == -8.0


def test_a_new_series_in_the_same_layout_needs_no_change(tmp_path):
    (tmp_path / "data" / "newCat").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    rows = ["timestamp,value"] + [f"2020-01-01 {h:02d}:{m:02d}:00,{h + m / 60:.3f}" for h in range(3) for m in (0, 20, 40)]
    (tmp_path / "data" / "newCat" / "pump_01.csv").write_text("\n".join(rows) + "\n")
    windows = {"newCat/pump_01.csv": [["2020-01-01 01:00:00.000000", "2020-01-01 01:40:00.000000"]]}
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (r,) = load_nab(tmp_path)
    assert (r.name, r.asset, r.labels.category, r.labels.rows) == ("newCat/pump_01.csv", "nab-newCat-pump_01", "newCat", 9)
    assert r.registry["sensors"][0]["sample_rate_hz"] == 1 / 1200
    assert [x.samples[0] for x in r.stream()][:2] == [0.0, pytest.approx(0.333)]
    (tmp_path / "data" / "newCat" / "unlabelled.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(EvaluationError, match="no entry"):
        load_nab(tmp_path)


def test_missing_folder_is_an_evaluation_error(tmp_path):
    with pytest.raises(EvaluationError, match="not found"):
        load_nab(tmp_path / "nowhere")


def test_asset_ids():
    assert nab_asset_id("realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv") == \
        "nab-realAWSCloudwatch-iio_us-east-1_i-a2eb1cd9_NetworkIn"


def test_registry_entries_validate_in_the_settings(recordings, tmp_path):
    entries = [r.registry for r in recordings.values()]
    doc = {"fleet": [{"site": "evaluation", "lines": [{"line": "nab", "assets": entries}]}]}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(doc))
    settings = load_settings(tmp_path / "fleet.yaml")
    assert [a.asset for a in settings.fleet] == [r.asset for r in recordings.values()]
    assert all(a.sensors[0].kind == PROCESS_KIND for a in settings.fleet)
