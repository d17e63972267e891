"""The dataflow's step functions: registry checks on decode, window features edge cases."""

from collections import namedtuple
from dataclasses import replace

import numpy as np
import pytest

from predmaint.domain import DeadLetter
from predmaint.pipelines import intake, steps, windows
from predmaint.settings import load_settings
from predmaint.settings.loading import parse_fleet
from predmaint.telemetry import Reading, encode_reading

Msg = namedtuple("Msg", "topic partition offset key value timestamp")
SETTINGS = load_settings()


def message(**kw):
    base = dict(asset="pump-01", sensor="de-accel", kind="vibration", ts_ms=1_767_225_600_000,
                sample_rate_hz=12800.0, unit="m/s2", samples=np.zeros(4096, dtype=np.float32))
    base.update(kw)
    r = Reading(**base)
    return Msg("telemetry", 2, 17, r.asset.encode(), encode_reading(r), (1, 1_767_225_600_123))


@pytest.mark.parametrize("kw, reason", [
    (dict(asset="ghost", ), "asset 'ghost' is not in the registry"),
    (dict(sensor="nde-accel"), "sensor 'nde-accel' is not registered for asset 'pump-01'"),
    (dict(sensor="bearing-temp"), "kind 'vibration' differs from the registry's 'temperature'"),
    (dict(sample_rate_hz=25600.0), "sample rate 25600.0 Hz differs from the registry's 12800.0 Hz"),
    (dict(sensor="bearing-temp", kind="temperature", unit="degC", sample_rate_hz=0.1,
          samples=np.array([50.0], dtype=np.float32)), "temperature needs 2 channel(s)"),
    (dict(sensor="motor-current", kind="current", unit="A", sample_rate_hz=0.1,
          samples=np.array([30.0, 30.0], dtype=np.float32), channels=2), "current needs 3 phase channels"),
])
def test_decode_rejects_what_the_registry_does_not_allow(kw, reason):
    dead = intake.decode(SETTINGS, message(**kw))
    assert isinstance(dead, DeadLetter) and dead.step == "decode" and reason in dead.reason
    assert (dead.partition, dead.offset) == (2, 17) and dead.original


def test_decode_requires_rpm_when_speed_comes_from_messages():
    asset = replace(SETTINGS.fleet[0], rpm_source="message")
    settings = SETTINGS.replace(fleet=(asset, *SETTINGS.fleet[1:]))
    assert "'rpm' is missing" in intake.decode(settings, message()).reason
    assert isinstance(intake.decode(settings, message(rpm=1500.0)), Reading)


def test_rpm_from_the_message_moves_the_defect_lines():
    asset = SETTINGS.fleet[0]
    fast = intake.vibration_parameters(asset, 3000.0)
    assert fast["shaft_hz"] == 50.0 and intake.vibration_parameters(asset)["shaft_hz"] == asset.rpm / 60


def test_a_window_with_a_single_temperature_reading_has_a_level():
    acc = windows.SensorWindow("temperature", "pump-01", "bearing-temp", times_s=[0.0], values=[(50.0, 24.0)])
    w = windows.sensor_window_features(SETTINGS, SETTINGS.window.length_s, (0, acc))
    assert w.features["temp_level_c"] == 50.0 and w.features["temp_rise_over_ambient_c"] == 26.0


def test_window_features_that_cannot_be_computed_become_a_dead_letter():
    broken = windows.SensorWindow("current", "pump-01", "motor-current", times_s=[0.0], values=[(1.0, 2.0)])
    dead = windows.sensor_window_features(SETTINGS, SETTINGS.window.length_s, (0, broken))
    assert isinstance(dead, DeadLetter) and dead.step == "window_features" and dead.asset == "pump-01"


def test_an_asset_rule_watches_the_worst_sensor_and_opens_one_alert():
    from dataclasses import replace as dc_replace

    from predmaint.settings import AlertRuleSettings

    rule = AlertRuleSettings(name="temp_rise", metric="temp_level_c", direction="above", alarm=60.0,
                             clear_at=55.0, on_delay_windows=1, off_delay_windows=1)
    settings = dc_replace(SETTINGS, alert_rules=(rule,))
    state, events = None, []
    for i, (a, b) in enumerate([(50.0, 50.0), (61.0, 70.0), (62.0, 40.0), (50.0, 50.0)]):
        both = tuple(windows.WindowFeatures("pump-01", s, "temperature", (i + 1) * 300_000_000_000,
                                            {"temp_level_c": v}) for s, v in (("t-a", a), ("t-b", b)))
        state, scored = steps.assess(settings, None, state, windows.AssetWindowFeatures("pump-01", both[0].end_ns,
                                                                                       both))
        events += scored.events
    assert [(e.state, e.sensor, e.value) for e in events] == [("raised", "t-b", 70.0), ("cleared", "t-b", 50.0)]
    assert len({e.alert_id for e in events}) == 1


def test_a_raise_while_an_absorbing_rule_is_open_is_part_of_its_episode():
    from predmaint.settings import AlertRuleSettings

    # "news" is listed first: it still advances after "high", so a raise in the same window is absorbed.
    news = AlertRuleSettings(name="news", metric="temp_level_c", direction="above", warning=55.0, clear_at=52.0,
                             on_delay_windows=1, off_delay_windows=1, absorbed_by=("high",))
    high = AlertRuleSettings(name="high", metric="temp_level_c", direction="above", warning=60.0, clear_at=55.0,
                             on_delay_windows=1, off_delay_windows=1)
    settings = replace(SETTINGS, alert_rules=(news, high))
    state, events = None, []
    for i, v in enumerate([50.0, 70.0, 58.0, 50.0, 58.0, 50.0]):
        w = windows.WindowFeatures("pump-01", "t", "temperature", (i + 1) * 300_000_000_000, {"temp_level_c": v})
        state, scored = steps.assess(settings, None, state, windows.AssetWindowFeatures("pump-01", w.end_ns, (w,)))
        events += [(i, e.rule, e.state) for e in scored.events]
    # 70: "high" opens and takes in the raise of "news" in the same window (rules that can be absorbed
    # advance last); 58 while "high" is still open is absorbed too; 58 with nothing open raises "news".
    assert events == [(1, "high", "raised"), (3, "high", "cleared"), (4, "news", "raised"), (5, "news", "cleared")]


def _overall_settings(**model):
    fleet = parse_fleet([{"site": "s", "lines": [{"line": "l", "assets": [{
        "asset": "rig-1", "rpm": 2000,
        "sensors": [{"sensor": "ch1", "kind": "vibration", "unit": "g", "reports": "features"},
                    {"sensor": "ch2", "kind": "vibration", "unit": "g", "reports": "features"}]}]}]}], "test")
    s = SETTINGS.replace(fleet=fleet)
    return s.replace(model=replace(s.model, **model)) if model else s


def _features_msg(sensor="ch1", **features):
    r = Reading("rig-1", sensor, "vibration", 1_767_225_600_000, 0.0, "", np.empty(0),
                features=features or {"rms": 0.07})
    return Msg("telemetry", 0, 3, b"rig-1", encode_reading(r), (1, 1_767_225_600_123))


def test_a_features_sensor_takes_overall_values_and_refuses_waveforms():
    settings = _overall_settings()
    r = intake.decode(settings, _features_msg(rms=0.07, kurt=0.3))
    assert isinstance(r, Reading)
    snap = intake.snapshot_features(settings, r)
    assert snap.features == {"rms": 0.07, "kurt": 0.3}
    waveform = Reading("rig-1", "ch1", "vibration", 1_767_225_600_000, 20480.0, "g", np.zeros(64, np.float32))
    broker = (1, 1_767_225_600_123)
    dead = intake.decode(settings, Msg("telemetry", 0, 4, b"rig-1", encode_reading(waveform), broker))
    assert isinstance(dead, DeadLetter) and "carries samples but" in dead.reason
    overall = Reading("pump-01", "de-accel", "vibration", 1_767_225_600_000, 0.0, "", np.empty(0),
                      features={"rms": 1.0})
    dead = intake.decode(SETTINGS, Msg("telemetry", 0, 5, b"pump-01", encode_reading(overall), broker))
    assert isinstance(dead, DeadLetter) and "carries features but the registry's sensor reports samples" \
        in dead.reason


def _run_windows(settings, ends_s, values=lambda i: 0.07):
    state, out = None, []
    for i, end_s in enumerate(ends_s):
        w = windows.WindowFeatures("rig-1", "ch1", "vibration", int(end_s * 1e9),
                                 {"rms": values(i), "kurt": 0.2 + 0.01 * (i % 3)})
        state, scored = steps.assess(settings, None, state, windows.AssetWindowFeatures("rig-1", w.end_ns, (w,), (),
                                                                                       300.0))
        out.append(scored.sensors[0].assessment.phase)
    return out


def test_a_sensor_silent_longer_than_the_gap_starts_a_new_baseline():
    settings = _overall_settings(rebaseline_after_gap_s={"vibration": 86400}, rebaseline_healthy_after_gap_s={},
                                 baseline_windows=4)
    steady = [300.0 * (i + 1) for i in range(6)]
    after_day = steady + [steady[-1] + 86400 + 300 + 300.0 * i for i in range(1, 6)]
    after_night = steady + [steady[-1] + 12 * 3600 + 300.0 * i for i in range(1, 6)]
    assert _run_windows(settings, after_day)[6:] == ["baseline"] * 4 + ["monitoring"]
    assert _run_windows(settings, after_night)[6:] == ["monitoring"] * 5
    unlisted = _overall_settings(rebaseline_after_gap_s={"process": 1.0}, rebaseline_healthy_after_gap_s={},
                                 baseline_windows=4)
    assert _run_windows(unlisted, after_day)[6:] == ["monitoring"] * 5


def _across_a_stop(settings, silence_s, last_rms, after_rms, iso_zone_after=None):
    """60 steady windows (the last with ``last_rms``), ``silence_s`` of silence, then ``after_rms``.

    Returns the health of the last window before the stop and the (phase, health) of each after it.
    """
    rng = np.random.default_rng(7)
    rms = [0.07 * (1 + 0.02 * rng.standard_normal()) for _ in range(59)] + [last_rms] + list(after_rms)
    ends = [300.0 * (i + 1) for i in range(60)]
    ends += [ends[-1] + 300 + silence_s + 300.0 * i for i in range(len(after_rms))]
    state, out = None, []
    for i, (end_s, value) in enumerate(zip(ends, rms)):
        zone = {} if iso_zone_after is None or i < 60 else {"iso_zone": iso_zone_after}
        w = windows.WindowFeatures("rig-1", "ch1", "vibration", int(end_s * 1e9), {"rms": value, **zone})
        state, scored = steps.assess(settings, None, state, windows.AssetWindowFeatures("rig-1", w.end_ns, (w,), (),
                                                                                       300.0))
        a = scored.sensors[0].assessment
        out.append((a.phase, a.health))
    return out[59][1], out[60:]


def test_a_sensor_healthy_when_it_stopped_starts_afresh_if_it_restarts_changed():
    settings = _overall_settings(rebaseline_after_gap_s={"vibration": 86400},
                                 rebaseline_healthy_after_gap_s={"vibration": 43200}, restart_check_windows=3)
    steady, stepped = [0.07] * 4, [0.09] * 4
    healthy, after = _across_a_stop(settings, 13 * 3600, 0.07, steady)
    assert healthy == 100.0 and [p for p, _ in after] == ["monitoring"] * 4  # as before: the model is kept
    # Changed across the stop: the first window that shows it is the new model's first (no alert).
    after = _across_a_stop(settings, 13 * 3600, 0.07, stepped)[1]
    assert [p for p, _ in after] == ["baseline"] * 4
    # A shorter stop is not checked: the old model sees the step.
    after = _across_a_stop(settings, 11 * 3600, 0.07, stepped)[1]
    assert after[0][0] == "monitoring" and max(h for _, h in after) < 50
    # A change after restart_check_windows windows is news, not the stop.
    after = _across_a_stop(settings, 13 * 3600, 0.07, steady[:3] + stepped)[1]
    assert [p for p, _ in after] == ["monitoring"] * 7 and after[3][1] < 50
    # The ISO zone caps health (here to 30) but is the iso_severity rule's: the model itself sees no change.
    after = _across_a_stop(settings, 13 * 3600, 0.07, steady, iso_zone_after=4.0)[1]
    assert after == [("monitoring", 30.0)] * 4
    # A fault open when it stopped is not forgotten overnight; after more than a day, it was likely repaired.
    faulty, after = _across_a_stop(settings, 13 * 3600, 0.7, [0.7] * 3)
    assert faulty < 70 and [p for p, _ in after] == ["monitoring"] * 3
    assert [p for p, _ in _across_a_stop(settings, 25 * 3600, 0.7, [0.7] * 3)[1]] == ["baseline"] * 3


def test_an_asset_health_rule_counts_the_sensors_it_watches():
    settings = _overall_settings()
    rule = next(r for r in settings.alert_rules if r.name == "health_low")
    assert steps.watched_sensors(settings, "rig-1", rule) == 2
    # Bonferroni: the worst of two sensors at p = 1e-4 (health 50) is p = 2e-4 for the asset.
    assert steps.asset_health(50.0, 2) == pytest.approx(100 * (1 - (4 - np.log10(2) - 2) / 4), abs=1e-3)
    assert steps.asset_health(50.0, 1) == 50.0


def _velocity_run(rise_per_window: float, windows_n: int = 2400):
    """A vibration sensor of pump-01 (ISO group 2, rigid: zone B ends at 2.8 mm/s, the ALERT margin is
    0.7 mm/s) whose velocity starts at 1.0 mm/s (2 % noise) and rises by ``rise_per_window`` mm/s a window.

    Returns each monitored window's (iso_alert_ratio, champion health) and the iso_change rule's events.
    """
    rng = np.random.default_rng(11)
    state, rows, events = None, [], []
    for i in range(windows_n):
        v = (1.0 + rise_per_window * i) * (1 + 0.02 * rng.standard_normal())
        w = windows.WindowFeatures("pump-01", "de-accel", "vibration", (i + 1) * 300_000_000_000,
                                   {"velocity_rms_mm_s": v, "accel_rms": 0.5 * v, "kurtosis": 3.0})
        state, scored = steps.assess(SETTINGS, None, state, windows.AssetWindowFeatures("pump-01", w.end_ns, (w,)))
        s = scored.sensors[0]
        if s.assessment.phase == "monitoring":
            rows.append((s.window.features[steps.ISO_ALERT_FEATURE], s.assessment.health))
        events += [(i, e.state) for e in scored.events if e.rule == "iso_change" and e.state in ("raised", "cleared")]
    return rows, events


def test_a_level_rising_too_slowly_for_the_champion_raises_iso_change_at_the_isos_alert():
    """1.0 -> 2.2 mm/s over 2,400 windows (8 days, 15 % a day): the champion's rolling reference follows
    it (health 100 at the end) but its baseline does not: iso_change raises once, when the velocity
    passes the baseline plus 0.7 mm/s (ratio 1.0) for 3 windows, and stays open (reminded every 6 h, not
    raised again). A steady sensor raises nothing."""
    rows, events = _velocity_run(0.0005)
    assert rows[-1][1] == 100.0 and rows[-1][0] > 1.5
    assert [state for _, state in events] == ["raised"]
    raised_at = events[0][0]
    assert 1.0 + 0.0005 * raised_at == pytest.approx(1.7, abs=0.05)  # baseline 1.0 + 0.25 x 2.8
    steady_rows, steady_events = _velocity_run(0.0, 600)
    assert steady_events == [] and max(abs(r) for r, _ in steady_rows) < 0.2
