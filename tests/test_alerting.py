"""Alert lifecycle: on-delay, escalation, hysteresis, off-delay, re-notify, flood limit, suppression."""

import dataclasses
import pickle

import pytest

from predmaint.connectors.shelves import Suppressions, add_shelf
from predmaint.models.alerting import (
    ROUTINE_MAX_KEPT,
    ROUTINE_REASON,
    ROUTINE_TOLERANCE_NS,
    AlertState,
    breached_severities,
)
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


def test_a_raise_at_the_time_of_day_of_raises_on_two_of_the_last_three_days_is_a_routine():
    rule = AlertRuleSettings(name="r", warning=50, critical=20, clear_at=70, on_delay_windows=1,
                             off_delay_windows=1, routine_days=2)
    s = AlertState(rule)
    hour, day = 3_600_000_000_000, 86_400_000_000_000

    def episode(t_ns):  # one bad window, then one healthy window clears it
        return s.update("p", "x", t_ns, 10.0, []) + s.update("p", "x", t_ns + hour // 12, 90.0, [])

    days = [episode(d * day + 3 * hour + (d % 2) * hour // 4) for d in range(4)]  # 03:00 or 03:15 each day
    assert [[(e.state, e.notify) for e in ev] for ev in days[:2]] == [[("raised", True), ("cleared", True)]] * 2
    for ev in days[2:]:  # the third and fourth day: recorded, every event withheld with the reason
        assert [(e.state, e.notify) for e in ev] == [("raised", False), ("cleared", False)]
        assert all(e.suppressed_by.startswith(ROUTINE_REASON) for e in ev), ev
    assert "on 2 of the last 3 days" in days[2][0].suppressed_by
    assert "on 3 of the last 3 days" in days[3][0].suppressed_by
    # Another time of day on the same day is news.
    other = episode(3 * day + 9 * hour)
    assert [(e.state, e.notify, e.suppressed_by) for e in other] == [("raised", True, ""), ("cleared", True, "")]
    # A routine that gets worse than it was raised at is news from its escalation on.
    worse = s.update("p", "x", 4 * day + 3 * hour, 45.0, []) + s.update("p", "x", 4 * day + 3 * hour + 1, 10.0, []) \
        + s.update("p", "x", 4 * day + 3 * hour + 2, 90.0, [])
    assert [(e.state, e.severity, e.notify) for e in worse] == [
        ("raised", "warning", False), ("escalated", "critical", True), ("cleared", "critical", True)]
    # Off (the default): the same days all notify.
    off = AlertState(dataclasses.replace(rule, routine_days=0))
    assert all(e.notify for d in range(4) for e in off.update("p", "x", d * day + 3 * hour, 10.0, [])
               + off.update("p", "x", d * day + 3 * hour + hour // 12, 90.0, []))
    # Only three days of raises are kept (day 0's is gone by day 4), at most ROUTINE_MAX_KEPT.
    assert min(s.raised_ns) >= 4 * day + 3 * hour - 3 * day - ROUTINE_TOLERANCE_NS and len(s.raised_ns) == 5
    many = AlertState(rule)
    for i in range(3 * ROUTINE_MAX_KEPT):
        many.update("p", "x", i * hour // 12, 10.0 if i % 2 == 0 else 90.0, [])
    assert len(many.raised_ns) <= ROUTINE_MAX_KEPT


def test_a_rule_state_pickled_before_routines_existed_resumes():
    rule = AlertRuleSettings(name="r", warning=50, clear_at=70, on_delay_windows=1, off_delay_windows=1,
                             routine_days=2)
    s = AlertState(rule)
    old = s.__dict__.copy()
    del old["raised_ns"], old["open_routine"]
    resumed = AlertState.__new__(AlertState)
    resumed.__dict__.update(old)
    assert [e.state for e in resumed.update("p", "x", 0, 10.0, [])] == ["raised"]
    assert resumed.raised_ns == (0,) and resumed.open_routine == ""


@pytest.mark.parametrize("days", [-1, 4])
def test_routine_days_is_0_to_3(days):
    with pytest.raises(SettingsError, match="routine_days"):
        AlertRuleSettings(name="r", warning=50, routine_days=days)
