"""The live simulator's timing and the pipeline's counters, without servers (tests/test_live.py runs them for real)."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from pathlib import Path

import pytest
import yaml

from predmaint.connectors.fleet_simulator import Message, fleet_messages, ground_truth, paced, realtime_settings
from predmaint.connectors.metrics import PipelineMetrics, Status, format_status
from predmaint.errors import SettingsError
from predmaint.settings import default_config_text, load_settings


def test_realtime_starts_the_backfill_before_now_and_the_fault_after_it():
    settings = load_settings()
    now_ms = 1_796_000_000_123
    live = realtime_settings(settings, now_ms)
    start_ms = int(live.simulator.start_time.timestamp() * 1000)
    assert start_ms == (now_ms - int(settings.simulator.realtime_backfill_h * 3_600_000)) // 1000 * 1000
    (fault,) = ground_truth(live)["faults"]
    # The default fault (3 h after the simulation start) begins 15 minutes after the live start.
    assert fault["start_ms"] - now_ms == pytest.approx(15 * 60_000, abs=1000)


def test_the_live_stream_never_ends_and_begins_like_the_batch():
    settings = load_settings()
    short = settings.replace(simulator=dataclasses.replace(settings.simulator, hours=0.05))
    batch = [(m.key, m.ts_ms) for m in fleet_messages(short)]
    live = [(m.key, m.ts_ms) for m in itertools.islice(fleet_messages(short, unbounded=True), 3 * len(batch))]
    assert live[:len(batch)] == batch and len(live) == 3 * len(batch)
    assert max(ts for _, ts in live) > max(ts for _, ts in batch)


def test_paced_releases_a_message_only_when_its_time_has_come_and_stops_on_request():
    clock = [100]
    stop = threading.Event()
    seen = []

    def now() -> int:
        return clock[0]

    messages = [Message(b"a", b"", t) for t in (50, 100, 150, 200)]
    it = paced(messages, now_ms=now, stop=stop)
    seen += [next(it).ts_ms, next(it).ts_ms]  # already due: at once
    assert seen == [50, 100]
    clock[0] = 150
    assert next(it).ts_ms == 150
    stop.set()  # the next one is not due, and the stop ends the stream without it
    assert list(it) == []


def test_counters_from_many_threads_add_up_and_the_newest_event_is_a_maximum():
    m = PipelineMetrics()

    def work(offset: int) -> None:
        for i in range(1000):
            m.reading("vibration", partition=offset % 2, ts_ms=(offset * 1000 + i) * 1000)
            if i % 100 == 0:
                m.dead_letter("decode")
        m.window("vibration")
        m.alert_event("raised")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = m.status()
    assert (s.readings, s.windows, s.alert_events, s.dead_letters) == (4000, 4, 4, 40)
    # Partition 0 got offsets 0 and 2, partition 1 got 1 and 3: the newest of each, whatever the order.
    assert s.newest_event_s == {"0": 2999.0, "1": 3999.0}
    assert set(s.lag_s) == {"0", "1"} and all(v > 0 for v in s.lag_s.values())


def test_the_kafka_position_is_the_highest_offset_read_valid_or_dead_lettered():
    m = PipelineMetrics()
    for offset in (0, 2, 1):
        m.reading("current", partition=3, ts_ms=1000, offset=offset)
    m.dead_letter("decode", partition=3, offset=3)
    m.dead_letter("window")  # a window's dead letter has no message behind it
    m.reading("current", partition=None, ts_ms=1000, offset=7)
    assert m.status().offsets == {"3": 3}


def test_an_unused_counter_exports_zero_not_nothing():
    s = PipelineMetrics().status()
    assert s == Status() and "0 alert events" in format_status(s)
    names = {sample.name for family in PipelineMetrics().registry.collect() for sample in family.samples}
    assert {"predmaint_readings_total", "predmaint_windows_closed_total", "predmaint_alert_events_total",
            "predmaint_dead_letters_total"} <= names


@pytest.mark.parametrize(("section", "values", "message"), [
    ("simulator", {"mode": "live"}, "simulator: mode: 'live' is not 'batch' or 'realtime'"),
    ("simulator", {"realtime_backfill_h": -1}, "realtime_backfill_h: must be a number of hours >= 0"),
    ("metrics", {"port": 70000}, "metrics: port: must be a TCP port 0-65535"),
    ("metrics", {"status_interval_s": -5}, "metrics: status_interval_s: must be a number of seconds >= 0"),
])
def test_bad_live_and_metrics_settings_name_the_field(tmp_path: Path, section, values, message):
    doc = yaml.safe_load(default_config_text())
    doc[section] = {**doc.get(section, {}), **values}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SettingsError, match="bad.yaml") as err:
        load_settings(path)
    assert message in str(err.value)
