"""``predmaint report`` renders HTML and PNG plots from whatever storage holds the points.

A small embedded SQLite store is filled by hand: one healthy asset, and one
whose health falls over the last hours with a raised alert.
"""

from __future__ import annotations

import argparse
import re

import pytest
import yaml

from predmaint.connectors.storage import SQLiteStore
from predmaint.domain import Point
from predmaint.pipelines import cli
from predmaint.pipelines.report import BAND_COLOURS, HEALTH_YLIM, _health_axes, add_parser, render_report
from predmaint.pipelines.summary import health_levels
from predmaint.settings import AlertRuleSettings, default_config_text, load_settings

WINDOW_NS = 300 * 10**9
START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALERT_ID = "a1b2c3d4e5f60718"


@pytest.fixture
def store(tmp_path):
    settings = load_settings()
    healthy, faulty = settings.fleet[0], settings.fleet[1]
    settings = settings.replace(fleet=(healthy, faulty))
    champion = settings.model.label
    points = []
    for asset, falls in ((healthy, False), (faulty, True)):
        tags = {"site": asset.site, "line": asset.line, "asset": asset.asset}
        for i in range(36):  # 3 h of 5-minute windows
            t = START_NS + (i + 1) * WINDOW_NS
            health = max(0.0, 100.0 - 8.0 * (i - 20)) if falls and i > 20 else 100.0
            for sensor in ("de-accel", "bearing-temp"):
                points.append(Point("health", {**tags, "sensor": sensor, "model": champion},
                                    {"health": health, "raw_score": 1.0, "phase": "monitoring"}, t))
                # A challenger's points must not leak into the champion's plots.
                points.append(Point("health", {**tags, "sensor": sensor, "model": "challenger"},
                                    {"health": 0.0, "raw_score": 9.0, "phase": "monitoring"}, t))
            points.append(Point("features", {**tags, "sensor": "de-accel", "kind": "vibration"},
                                {"velocity_rms_mm_s": 1.0 + (0.1 * (i - 20) if falls and i > 20 else 0.0),
                                 "env_bpfo_ratio": 2.0 + (3.0 * (i - 20) if falls and i > 20 else 0.0),
                                 "iso_zone": 1.0, "snapshots": 5.0}, t))
            points.append(Point("features", {**tags, "sensor": "bearing-temp", "kind": "temperature"},
                                {"temp_level_c": 50.0 + (0.3 * i if falls else 0.0), "readings": 30.0}, t))
    raised_at = START_NS + 25 * WINDOW_NS
    points.append(Point("alerts", {"site": faulty.site, "line": faulty.line, "asset": faulty.asset,
                                   "sensor": "de-accel", "rule": "health_low", "severity": "alarm"},
                        {"alert_id": ALERT_ID, "event_id": f"{ALERT_ID}:0", "state": "raised", "health": 20.0,
                         "explanation": "[]"}, raised_at))
    db = SQLiteStore(tmp_path / "store.sqlite")
    db.write(points)
    yield settings, db, healthy.asset, faulty.asset
    db.close()


def images(page: str) -> list[str]:
    return re.findall(r"<img src='([^']+)'", page)


def test_report_references_existing_plots_and_names_the_alert(store, tmp_path):
    settings, db, healthy, faulty = store
    index = render_report(settings, db, tmp_path / "report")
    page = index.read_text()
    srcs = images(page)
    assert len(srcs) == 3  # the fleet plot and one per asset
    for src in srcs:
        png = index.parent / src
        assert png.is_file() and png.read_bytes().startswith(PNG_SIGNATURE), src
    assert f"asset_{faulty}.png" in srcs and (index.parent / f"asset_{faulty}.png").stat().st_size > 10_000
    assert ALERT_ID in page and "raised" in page
    # Summary: the faulty asset raised one alert and its health fell to 0; the healthy one did neither.
    row = {a: re.search(rf"<tr><td><a href='#{a}'>{a}</a></td>(.*?)</tr>", page).group(1) for a in (healthy, faulty)}
    cells = {a: re.findall(r"<td>(.*?)</td>", r) for a, r in row.items()}
    assert cells[faulty][1:4] == ["0", "0", "1"]
    assert cells[healthy][1:4] == ["100", "100", "0"]


def test_report_command_reads_a_given_sqlite_store(store, tmp_path, capsys):
    settings, db, healthy, faulty = store
    # A fleet with one more asset than the store holds: it gets a plot without data, not an error.
    doc = yaml.safe_load(default_config_text())
    line = doc["fleet"][0]["lines"][0]
    line["assets"] = [a for a in line["assets"] if a["asset"] in (healthy, faulty)] + \
        [{**line["assets"][0], "asset": "pump-new"}]
    doc["fleet"] = [{**doc["fleet"][0], "lines": [line]}]
    doc["simulator"]["faults"] = []
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump(doc))
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    args = parser.parse_args(["--config", str(config), "report", "--sqlite", str(db.path), "--out", str(out)])
    assert args.func(args) == 0
    assert str(out / "index.html") in capsys.readouterr().out
    assert {p.name for p in out.glob("*.png")} == {"fleet_health.png", f"asset_{healthy}.png",
                                                    f"asset_{faulty}.png", "asset_pump-new.png"}
    # Errors become exit codes in the command line (predmaint.errors): 2 for a bad argument.
    assert cli.main(["report", "--sqlite", str(tmp_path / "missing.sqlite")]) == 2


def shaded(settings) -> list[tuple[float, float, str]]:
    """The horizontal bands the report draws behind a health plot: (low, high, colour)."""
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    _health_axes(ax, health_levels(settings))
    return [(p.get_y(), p.get_y() + p.get_height(), to_hex(p.get_facecolor())) for p in ax.patches]


def test_health_bands_and_their_caption_follow_the_health_alert_rule(store, tmp_path):
    settings, db, _, _ = store
    packaged = health_levels(settings).rule
    bottom, top = HEALTH_YLIM
    assert shaded(settings) == [(bottom, packaged.critical, BAND_COLOURS["critical"]),
                                (packaged.critical, packaged.alarm, BAND_COLOURS["alarm"]),
                                (packaged.alarm, packaged.warning, BAND_COLOURS["warning"]),
                                (packaged.warning, packaged.clear_at, BAND_COLOURS["clearing"])]
    strict = AlertRuleSettings(name="health_strict", warning=80.0, alarm=60.0, clear_at=90.0)
    iso = next(r for r in settings.alert_rules if r.metric != "health")
    other = settings.replace(alert_rules=(iso, strict))
    assert shaded(other) == [(bottom, 60.0, BAND_COLOURS["alarm"]), (60.0, 80.0, BAND_COLOURS["warning"]),
                             (80.0, 90.0, BAND_COLOURS["clearing"])]
    page = render_report(other, db, tmp_path / "strict").read_text()
    assert "alert rule health_strict: warning at or below 80, alarm at or below 60, clears above 90" in page
    page = render_report(settings.replace(alert_rules=(iso,)), db, tmp_path / "none").read_text()
    assert "no alert rule watches health" in page


def test_the_report_shows_every_defect_line_each_baseline_and_why_an_alert_was_raised(store, tmp_path):
    from predmaint.pipelines.report import ENVELOPE_FIELDS, load

    settings, db, healthy, faulty = store
    tags = {"site": "plant-1", "line": "line-a", "asset": faulty}
    evidence = "envelope line at BPFI is 14.0 x the envelope floor"
    db.write([
        # An inner-race line: plotted beside BPFO, not left out because it is not BPFO.
        Point("features", {**tags, "sensor": "de-accel", "kind": "vibration"}, {"env_bpfi_ratio": 14.0},
              START_NS + 30 * WINDOW_NS),
        Point("health", {**tags, "sensor": "de-accel", "model": settings.model.label},
              {"health": 100.0, "raw_score": 0.0, "phase": "baseline"}, START_NS),
        Point("alerts", {**tags, "sensor": "de-accel", "rule": "health_low", "severity": "warning"},
              {"alert_id": "f" * 16, "event_id": "f" * 16 + ":0", "state": "raised", "health": 40.0,
               "fault": "inner_race",
               "explanation": f'[{{"feature": "env_bpfi_ratio", "fault": "inner_race", "evidence": "{evidence}"}}]'},
              START_NS + 30 * WINDOW_NS)])
    data = {d.asset.asset: d for d in load(settings, db)}
    assert set(data[faulty].features) >= {"env_bpfo_ratio", "env_bpfi_ratio"} and "env_bpfi_ratio" in ENVELOPE_FIELDS
    assert data[faulty].baseline == {"de-accel": (START_NS, START_NS)} and data[healthy].baseline == {}
    page = render_report(settings, db, tmp_path / "report").read_text()
    row = re.search(r"<tr><td>[^<]*</td><td>de-accel</td><td>health_low</td><td>warning</td>.*?</tr>", page).group(0)
    assert "<td>inner_race</td>" in row and evidence in row
    assert "<th>time (UTC)</th>" in page
