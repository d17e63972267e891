"""The dataflow's step functions: registry checks on decode, window features edge cases."""

from collections import namedtuple
from dataclasses import replace

import numpy as np
import pytest

from predmaint.pipelines import intake, steps
from predmaint.settings import load_settings
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
    assert isinstance(dead, steps.DeadLetter) and dead.step == "decode" and reason in dead.reason
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
    acc = steps.SensorWindow("temperature", "pump-01", "bearing-temp", times_s=[0.0], values=[(50.0, 24.0)])
    w = steps.sensor_window_features(SETTINGS, SETTINGS.window.length_s, (0, acc))
    assert w.features["temp_level_c"] == 50.0 and w.features["temp_rise_over_ambient_c"] == 26.0


def test_window_features_that_cannot_be_computed_become_a_dead_letter():
    broken = steps.SensorWindow("current", "pump-01", "motor-current", times_s=[0.0], values=[(1.0, 2.0)])
    dead = steps.sensor_window_features(SETTINGS, SETTINGS.window.length_s, (0, broken))
    assert isinstance(dead, steps.DeadLetter) and dead.step == "window_features" and dead.asset == "pump-01"


def test_an_asset_rule_watches_the_worst_sensor_and_opens_one_alert():
    from dataclasses import replace as dc_replace

    from predmaint.settings import AlertRuleSettings

    rule = AlertRuleSettings(name="temp_rise", metric="temp_level_c", direction="above", alarm=60.0,
                             clear_at=55.0, on_delay_windows=1, off_delay_windows=1)
    settings = dc_replace(SETTINGS, alert_rules=(rule,))
    state, events = None, []
    for i, (a, b) in enumerate([(50.0, 50.0), (61.0, 70.0), (62.0, 40.0), (50.0, 50.0)]):
        windows = tuple(steps.WindowFeatures("pump-01", s, "temperature", (i + 1) * 300_000_000_000,
                                             {"temp_level_c": v}) for s, v in (("t-a", a), ("t-b", b)))
        state, scored = steps.assess(settings, None, state, steps.AssetWindowFeatures("pump-01", windows[0].end_ns,
                                                                                       windows))
        events += scored.events
    assert [(e.state, e.sensor, e.value) for e in events] == [("raised", "t-b", 70.0), ("cleared", "t-b", 50.0)]
    assert len({e.alert_id for e in events}) == 1
