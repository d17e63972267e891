"""A restarted ``predmaint simulate --realtime`` goes on where the telemetry topic ends (real Tansu broker).

Before, a restart (compose restarts the simulator on failure) sent its whole
backfill again: hours of readings older than the pipeline's watermark, each
dead-lettered as late, and readings of windows still open a second time.
"""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

from predmaint.connectors import kafka_io
from predmaint.pipelines.runner import newest_event_ms, simulate
from predmaint.settings import load_settings
from predmaint.telemetry import decode_reading

pytestmark = pytest.mark.integration


def _readings(settings) -> list[tuple[str, str, int]]:
    out = []
    for _, value in kafka_io.read_topic(settings.kafka, settings.kafka.telemetry_topic):
        try:
            r = decode_reading(value)
        except Exception:  # the simulator's deliberately invalid messages
            continue
        out.append((r.asset, r.sensor, r.ts_ms))
    return out


def _run_for(settings, seconds: float) -> dict:
    event = threading.Event()
    stop = threading.Timer(seconds, event.set)
    stop.start()
    try:
        return simulate(settings, stop=event)
    finally:
        stop.cancel()


def test_a_restarted_realtime_simulator_sends_no_reading_twice_and_nothing_older(broker, tmp_path):
    base = load_settings()
    kafka = dataclasses.replace(base.kafka, bootstrap=broker.bootstrap, telemetry_topic="simulator_resume.telemetry",
                                dead_letter_topic="simulator_resume.deadletter",
                                alerts_topic="simulator_resume.alerts")  # not test_end_to_end's "resume.*"
    sim = dataclasses.replace(base.simulator, mode="realtime", realtime_backfill_h=0.05, vibration_interval_s=2,
                              scalar_interval_s=1, ground_truth_path=str(tmp_path / "truth.json"))
    settings = base.replace(kafka=kafka, simulator=sim)
    assert newest_event_ms(settings) is None  # no topic yet
    first = _run_for(settings, 4.0)
    before = _readings(settings)
    newest = max(ts for *_, ts in before)
    assert newest_event_ms(settings) == newest
    assert first["invalid_messages"] > 0

    second = _run_for(settings, 4.0)
    after = _readings(settings)
    added = set(after) - set(before)
    assert second["invalid_messages"] == 0  # sent by the first run already
    assert len(after) == len(set(after)), "a reading was sent twice"
    assert added and min(ts for *_, ts in added) > newest, "the restart sent readings older than the topic's end"
    assert json.loads((tmp_path / "truth.json").read_text())["hours"] is None
