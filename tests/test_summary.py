"""One definition of an asset's worst health, shared by the demo summary and the report.

A small embedded SQLite store with known health: two sensors of one asset, one of
which goes silent at a low value while the other recovers, plus baseline windows.
"""

from __future__ import annotations

import re

import pytest

from predmaint.connectors.storage import SQLiteStore
from predmaint.domain import Point
from predmaint.pipelines.report import render_report
from predmaint.pipelines.summary import latest_and_lowest, summarise, worst_health
from predmaint.settings import load_settings

T = 300 * 10**9  # one 5-minute window, ns

#: (window, sensor, phase, health); "temp" stops sending after window 4 at 20.
KNOWN = [
    (1, "accel", "baseline", 100.0), (1, "temp", "baseline", 100.0),
    (2, "accel", "monitoring", 90.0), (2, "temp", "monitoring", 70.0),
    (3, "accel", "monitoring", 60.0), (3, "temp", "monitoring", 45.0),
    (4, "accel", "monitoring", 50.0), (4, "temp", "monitoring", 20.0),
    (5, "accel", "monitoring", 85.0),
    (6, "accel", "monitoring", 95.0),
]


def points(asset: str, model: str) -> list[Point]:
    return [Point("health", {"asset": asset, "sensor": sensor, "model": model},
                  {"health": health, "phase": phase}, window * T) for window, sensor, phase, health in KNOWN]


def test_worst_health_is_the_lowest_sensor_per_window_end():
    worst = worst_health(reversed(points("pump", "m")))  # order does not matter
    assert worst == [(T, 100.0), (2 * T, 70.0), (3 * T, 45.0), (4 * T, 20.0), (5 * T, 85.0), (6 * T, 95.0)]
    # Latest: the last window's worst, not a silent sensor's last value (20); lowest: over every window.
    assert latest_and_lowest(worst) == (95.0, 20.0)
    assert worst_health([Point("health", {}, {"health": "n/a"}, T), Point("health", {}, {}, T)]) == []
    assert latest_and_lowest([]) == (None, None)


@pytest.fixture
def store(tmp_path):
    settings = load_settings()
    asset, quiet = settings.fleet[0], settings.fleet[1]
    settings = settings.replace(fleet=(asset, quiet))
    db = SQLiteStore(tmp_path / "store.sqlite")
    db.write(points(asset.asset, settings.model.label) + points(asset.asset, "challenger"))
    yield settings, db, asset.asset, quiet.asset
    db.close()


def test_summary_and_report_show_the_same_worst_health(store, tmp_path):
    settings, db, asset, quiet = store
    rows = {r.asset: r for r in summarise(settings, db, {})}
    assert (rows[asset].health_last, rows[asset].health_min) == (95.0, 20.0)
    assert (rows[quiet].health_last, rows[quiet].health_min) == (None, None)
    page = render_report(settings, db, tmp_path / "report").read_text()
    cells = re.findall(r"<td>(.*?)</td>", re.search(rf"<tr><td><a href='#{asset}'>.*?</tr>", page).group(0))
    assert cells[2:4] == ["95", "20"]  # after the asset link and site / line


def test_the_summary_names_a_fault_only_where_a_line_stands_out_of_the_noise(store):
    settings, db, asset, quiet = store
    vib = {"asset": asset, "sensor": "accel", "kind": "vibration"}
    # The healthy demo pumps' strongest lines read 2.0-2.4 (noise); the faulty one's BPFO 40.
    db.write([Point("features", vib, {"env_bpfo_ratio": 40.0, "env_bpfi_ratio": 2.3}, 6 * T),
              Point("features", {**vib, "asset": quiet}, {"env_bpfo_ratio": 2.0, "env_bpfi_ratio": 2.3}, 6 * T)])
    rows = {r.asset: r for r in summarise(settings, db, {})}
    assert rows[asset].fault_line == "outer_race BPFO x40.0"
    assert rows[quiet].fault_line == "-"
