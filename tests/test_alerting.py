"""Alert lifecycle: on-delay, escalation, hysteresis, off-delay, re-notify, flood limit, suppression."""

import pickle

import pytest

from predmaint.connectors.shelves import Suppressions, add_shelf
from predmaint.models.alerting import AlertState, breached_severities
from predmaint.settings import AlertRuleSettings, SettingsError, SuppressionSettings, SuppressionWindow, parse_utc

MIN5 = 300_000_000_000


def run(rule, values, suppressed=lambda i: ""):
    s = AlertState(rule)
    out = []
    for i, v in enumerate(values):
        out += [(i, e) for e in s.update("pump-03", "de-accel", i * MIN5, v, [{"feature": "x"}], suppressed(i))]
    return out


def test_on_delay_needs_consecutive_windows():
    rule = AlertRuleSettings(alarm=40, clear_at=70, on_delay_windows=3)
    assert run(rule, [30, 30, 50, 30, 30]) == []
    events = run(rule, [30, 30, 30])
    assert [(i, e.state, e.severity) for i, e in events] == [(2, "raised", "alarm")]


def test_escalation_and_clear_with_hysteresis_and_off_delay():
    rule = AlertRuleSettings(warning=50, alarm=30, critical=10, clear_at=70, on_delay_windows=2,
                             off_delay_windows=2)
    values = [45, 45, 25, 25, 5, 5, 60, 60, 60, 75, 65, 75, 75]
    events = run(rule, values)
    assert [(i, e.state, e.severity) for i, e in events] == [
        (1, "raised", "warning"), (3, "escalated", "alarm"), (5, "escalated", "critical"), (12, "cleared", "critical")]
    assert len({e.alert_id for _, e in events}) == 1
    assert [e.seq for _, e in events] == [0, 1, 2, 3]


def test_a_new_alert_after_clear_gets_a_new_deterministic_id():
    rule = AlertRuleSettings(alarm=40, clear_at=70, on_delay_windows=1, off_delay_windows=1)
    first = run(rule, [30, 80, 30])
    again = run(rule, [30, 80, 30])
    ids = [e.alert_id for _, e in first]
    assert ids[0] == ids[1] != ids[2]
    assert ids == [e.alert_id for _, e in again]


def test_above_direction_on_iso_zone():
    rule = AlertRuleSettings(metric="iso_zone", direction="above", warning=3, critical=4, clear_at=2.5,
                             on_delay_windows=1, off_delay_windows=1)
    assert breached_severities(rule, 2.0) == [] and breached_severities(rule, 4.0) == ["warning", "critical"]
    assert [(e.state, e.severity) for _, e in run(rule, [2, 3, 4, 3, 2])] == \
        [("raised", "warning"), ("escalated", "critical"), ("cleared", "critical")]


def test_renotify_interval_in_event_time():
    rule = AlertRuleSettings(alarm=40, clear_at=70, on_delay_windows=1, renotify_s=900)  # 3 windows
    events = run(rule, [30] * 8)
    assert [(i, e.state) for i, e in events] == [(0, "raised"), (3, "renotified"), (6, "renotified")]


def test_flood_limit_records_but_does_not_notify():
    rule = AlertRuleSettings(alarm=40, clear_at=70, on_delay_windows=1, off_delay_windows=1,
                             flood_limit_per_hour=2)
    events = run(rule, [30, 80, 30, 80, 30, 80])
    assert [e.notify for _, e in events] == [True, True, False, False, False, False]
    assert all("flood limit" in e.suppressed_by for _, e in events[2:])


def test_suppressed_events_are_recorded_with_the_reason():
    rule = AlertRuleSettings(alarm=40, clear_at=70, on_delay_windows=1, off_delay_windows=1)
    events = run(rule, [30, 80], suppressed=lambda i: "maintenance: regrease" if i == 0 else "")
    assert [(e.state, e.notify, e.suppressed_by) for _, e in events] == \
        [("raised", False, "maintenance: regrease"), ("cleared", True, "")]


def parse_instant(text, where):
    return int(parse_utc(text, where).timestamp() * 1e9)


def test_suppressions_from_config_and_shelves_file(tmp_path):
    shelves = tmp_path / "shelves.yaml"
    s = Suppressions(SuppressionSettings(
        maintenance_windows=(SuppressionWindow("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", asset="fan-02",
                                               reason="regrease"),),
        shelves_path=str(shelves)), recheck_s=0.0)
    t = parse_instant("2026-01-01T00:30:00Z", "t")
    assert s.reason("fan-02", "health_low", t) == "maintenance: regrease"
    assert s.reason("fan-02", "health_low", parse_instant("2026-01-01T01:00:00Z", "t")) == ""
    assert s.reason("pump-03", "health_low", t) == ""
    add_shelf(shelves, asset="pump-03", rule="health_low", start="2026-01-01T00:00:00Z",
              until="2026-01-01T06:00:00Z", reason="known, parts ordered")
    assert s.reason("pump-03", "health_low", t) == "shelved: known, parts ordered"
    assert s.reason("pump-03", "iso_severity", t) == ""
    with pytest.raises(SettingsError, match="needs a time zone"):
        add_shelf(shelves, asset="pump-03", rule="", until="2026-01-02T00:00:00", reason="")


def test_the_shelves_file_is_looked_at_once_per_recheck_interval(tmp_path, monkeypatch):
    shelves = tmp_path / "shelves.yaml"
    clock = [1000.0]
    monkeypatch.setattr("predmaint.connectors.shelves.time.monotonic", lambda: clock[0])
    s = Suppressions(SuppressionSettings(shelves_path=str(shelves)), recheck_s=1.0)
    t = parse_instant("2026-01-01T00:30:00Z", "t")
    assert s.reason("pump-03", "health_low", t) == ""
    add_shelf(shelves, asset="pump-03", rule="", until="2999-01-01T00:00:00Z", reason="on order")
    clock[0] += 0.5
    assert s.reason("pump-03", "health_low", t) == ""  # not looked at again yet
    clock[0] += 0.6
    assert s.reason("pump-03", "health_low", t) == "shelved: on order"
    again = pickle.loads(pickle.dumps(s))
    assert again.recheck_s == 1.0 and again.reason("pump-03", "health_low", t) == "shelved: on order"


def test_a_shelf_without_start_covers_event_times_before_it_was_added(tmp_path):
    # Alerts are judged in event time: a backlog replayed after the shelf was added carries older
    # stamps, and "shelved until Y" must withhold those too (a wall-clock "now" start would not).
    shelves = tmp_path / "shelves.yaml"
    s = Suppressions(SuppressionSettings(shelves_path=str(shelves)), recheck_s=0.0)
    add_shelf(shelves, asset="pump-03", rule="", until="2999-01-01T00:00:00Z", reason="bearing on order")
    assert s.reason("pump-03", "health_low", parse_instant("2026-01-01T00:30:00Z", "t")) == "shelved: bearing on order"
    assert s.reason("pump-03", "health_low", parse_instant("2999-01-01T00:00:00Z", "t")) == ""
    assert s.reason("pump-02", "health_low", parse_instant("2026-01-01T00:30:00Z", "t")) == ""


def test_a_cleared_event_says_when_the_value_came_back_and_the_message_carries_it():
    import json

    from predmaint.pipelines import points
    from predmaint.settings import load_settings

    rule = AlertRuleSettings(warning=50, clear_at=70, on_delay_windows=1, off_delay_windows=3)
    state, m = AlertState(rule), 300_000_000_000
    # Back at 4, dips again at 5 (the healthy run restarts), back for good from 6.
    events = [e for i, h in enumerate((40, 40, 60, 60, 80, 60, 80, 80, 80)) for e in state.update("pump-01", "s", i * m, h, [])]
    assert [(e.state, e.time_ns // m, e.recovered_ns // m) for e in events] == [("raised", 0, 0), ("cleared", 8, 6)]
    raised, cleared = (json.loads(points.alert_message(load_settings(), e, 90.0)[1]) for e in events)
    assert "recovered_at" not in raised and cleared["recovered_at"] == "1970-01-01T00:30:00Z"
    point = points.alert_point({"asset": "pump-01"}, events[1], 90.0)
    assert point.fields["recovered_at"] == "1970-01-01T00:30:00Z"
