"""A broker that lost its data: topics recreated empty under a running or resumed ``predmaint run`` / ``notify``.

Tansu keeps topics in memory, so restarting it is exactly that broker. Before,
a consumer whose offsets were beyond the new topic's end read nothing and said
nothing (Tansu answers such a fetch with no records and no error): the
streaming run stalled, ``--until-end`` never ended, notify delivered nothing.
Now each partition is read again from its start, with a warning naming it.

Every period of telemetry here starts where the previous one ended and is
shorter, so each partition of a recreated topic ends below the offsets
already read from it.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.connectors.local_services import EmbeddedBroker
from predmaint.connectors.notify import run_notify
from predmaint.connectors.storage import InfluxV1Writer, open_query_reader
from predmaint.models.alerting import AlertEvent, alert_id
from predmaint.pipelines import points
from predmaint.settings import load_settings
from tests.pipeline_runs import REPO, write_config

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: (start hour, hours) of the telemetry produced before each broker restart; each shorter than the one before.
PERIODS = [(0.0, 1.5), (1.5, 0.75), (2.25, 0.5)]
WARNING = re.compile(r"topic (\S+) partition (\d+): the next offset to read, (\d+), is beyond its end "
                     r"\(the partition holds offsets 0 to (-?\d+)\)")


@pytest.fixture
def own_broker():
    """A broker of this test's own: restarting it empties it, which the session's broker must not be."""
    with EmbeddedBroker() as b:
        yield b


def _restart_empty(broker: EmbeddedBroker) -> None:
    broker.halt()
    broker.start()  # memory only: every topic is gone


def _period(settings, start_h: float, hours: float):
    sim = dataclasses.replace(settings.simulator, start=(START + timedelta(hours=start_h)).isoformat(),
                              hours=hours)
    return list(fleet_messages(settings.replace(simulator=sim)))


def _health_since(settings, start_h: float) -> int:
    since = (START + timedelta(hours=start_h)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reader = open_query_reader(settings.storage)
    try:
        res = reader.query(f"SELECT count(\"health\") FROM \"health\" WHERE time >= '{since}'")
        return int(res[0]["values"][0][1]) if res else 0
    finally:
        reader.close()


def _wait_for(cond, what: str, proc: subprocess.Popen, limit_s: float = 240.0) -> None:
    """Wait until ``cond()`` holds; fail naming ``what`` if the run ended or ``limit_s`` passed first."""
    deadline = time.monotonic() + limit_s
    while not cond():
        assert proc.poll() is None, f"the streaming run ended (exit code {proc.returncode}) before {what}"
        if time.monotonic() > deadline:
            pytest.fail(f"not seen within {limit_s:.0f} s: {what}")
        time.sleep(0.5)


def _interrupt(proc: subprocess.Popen, log, broker: EmbeddedBroker) -> None:
    """Ctrl-C the streaming run; if it has not stopped within 60 s, kill it and fail with what it and the broker said."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("predmaint run did not stop within 60 s of SIGINT:\n"
                    + log.read_text(errors="replace")[-3000:]
                    + f"\nbroker log {broker.log_path}:\n" + broker.log_path.read_text(errors="replace")[-2000:])


def _run(config, *args: str, stderr) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), "run",
                             *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


def test_run_reads_a_recreated_topic_from_its_start_while_streaming_and_when_resumed(own_broker, influxdb,
                                                                                     tmp_path):
    config = write_config(tmp_path, "recreated", own_broker, influxdb, "recreated_topic", "recreated")
    doc = yaml.safe_load(config.read_text())
    doc["simulator"]["faults"] = []
    doc["recovery"]["snapshot_interval_s"] = 1.0
    config.write_text(yaml.safe_dump(doc))
    settings = load_settings(config)
    topic = settings.kafka.telemetry_topic
    assets = {a.asset for a in settings.fleet}
    (start1, hours1), (start2, hours2), (start3, hours3) = PERIODS
    stream_log, final_log = tmp_path / "stream.stderr", tmp_path / "final.stderr"

    InfluxV1Writer(settings.storage).close()  # creates the database: it is queried before the run writes
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, topic, _period(settings, start1, hours1))
    with open(stream_log, "wb") as err:
        proc = _run(config, stderr=err)
        try:
            # Most of the first period read: every asset's windows up to 15 minutes before its end are stored.
            _wait_for(lambda: _assets_since(settings, start2 - 0.25) == assets, "the first period was read", proc)
            time.sleep(2 * settings.recovery.snapshot_interval_s)  # its offsets in a snapshot too
            _restart_empty(own_broker)
            kafka_io.ensure_topics(settings.kafka)
            kafka_io.produce(settings.kafka, topic, _period(settings, start2, hours2))
            # The running pipeline consumes the recreated topic: windows of the second period are stored,
            # up to 6 minutes before its end for every asset (so that the third period ends below its offsets).
            _wait_for(lambda: _assets_since(settings, start3 - 0.1) == assets,
                      "windows of the data produced after the topic was recreated", proc)
            time.sleep(2 * settings.recovery.snapshot_interval_s)
        finally:
            _interrupt(proc, stream_log, own_broker)

    streaming_warnings = WARNING.findall(stream_log.read_text(errors="replace"))
    assert streaming_warnings, stream_log.read_text(errors="replace")[-3000:]
    assert {t for t, *_ in streaming_warnings} == {topic}

    # Lost again, under a stopped pipeline: --until-end resumes from offsets beyond the new ends, and ends.
    _restart_empty(own_broker)
    kafka_io.ensure_topics(settings.kafka)
    third = _period(settings, start3, hours3)
    kafka_io.produce(settings.kafka, topic, third)
    after3 = start3 + 0.1  # windows that end after the third period started (5-minute windows)
    assert _health_since(settings, after3) == 0
    with open(final_log, "wb") as err:
        final = _run(config, "--until-end", stderr=err)
        try:
            rc = final.wait(timeout=300)
        except subprocess.TimeoutExpired:
            final.kill()
            pytest.fail("predmaint run --until-end did not end on a recreated topic:\n"
                        + final_log.read_text(errors="replace")[-3000:])
    text = final_log.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    resumed = WARNING.findall(text)
    # Every partition that holds data of the third period had been read further than that: each is warned about.
    assert {int(p) for _, p, _, _ in resumed} == _partitions_holding(settings, topic), text[-3000:]
    assert all(int(stored) > int(last) + 1 for _, _, stored, last in resumed)
    # Read from the start: every asset's windows of the third period are stored.
    assert _assets_since(settings, after3) == assets


def _partitions_holding(settings, topic: str) -> set[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**kafka_io.confluent_config(settings.kafka), "group.id": "predmaint-test",
                         "enable.partition.eof": True})
    try:
        parts = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        holding, at_end = set(), set()
        while len(at_end | holding) < len(parts):
            for m in consumer.consume(100, 0.5):
                (at_end if m.error() else holding).add(m.partition())
        return holding
    finally:
        consumer.close()


def _assets_since(settings, start_h: float) -> set[str]:
    since = (START + timedelta(hours=start_h)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reader = open_query_reader(settings.storage)
    try:
        res = reader.query(f"SELECT count(\"health\") FROM \"health\" WHERE time >= '{since}' GROUP BY \"asset\"")
        return {s["tags"]["asset"] for s in res}
    finally:
        reader.close()


class _Hook(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append(self.headers["webhook-id"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def _alert_events(settings, first: int, n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(first, first + n):
        asset = settings.fleet[i % len(settings.fleet)]
        t = int(START.timestamp() * 1e9) + i * 600 * 10**9
        event = AlertEvent(alert_id(asset.asset, "health_low", t), 0, "raised", "warning", "health_low",
                           asset.asset, asset.sensors[0].sensor, t, 40.0, [])
        out.append(points.alert_message(settings, event, 40.0))
    return out


def test_notify_reads_a_recreated_alerts_topic_from_its_start_running_and_resumed(own_broker, tmp_path,
                                                                                   monkeypatch, caplog):
    monkeypatch.setenv("PREDMAINT_TEST_HOOK_SECRET", "whsec_dGVzdC1ub3RpZnktc2VjcmV0LTAxMjM0NTY3ODk=")
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Hook", (_Hook,), {"seen": []}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = server.RequestHandlerClass
    target = {"name": "hook", "kind": "webhook", "url": f"http://127.0.0.1:{server.server_port}/hook",
              "secret_env": "PREDMAINT_TEST_HOOK_SECRET", "timeout_s": 2.0}
    settings = load_settings()
    kafka = dataclasses.replace(settings.kafka, bootstrap=own_broker.bootstrap, alerts_topic="recreated.alerts")
    outbox = tmp_path / "outbox.sqlite"
    topic = kafka.alerts_topic

    def notify(**kw):
        return run_notify(kafka=kafka, topic=topic, outbox_path=outbox, targets=[target], poll_s=0.1,
                          metadata_refresh_s=1.0, **kw)

    try:
        kafka_io.ensure_topics(kafka, [topic])
        kafka_io.produce(kafka, topic, _alert_events(settings, 0, 60))
        assert notify(stop_after_idle_s=2.0).delivered == 60

        # Running: the broker loses the topic under notify, new events follow on the recreated topic.
        stop, stats = threading.Event(), []
        runner = threading.Thread(target=lambda: stats.append(notify(stop=stop)), daemon=True)
        with caplog.at_level("INFO"):
            runner.start()
            while not any("notify: consuming" in r.getMessage() for r in caplog.records):
                assert runner.is_alive(), "notify ended before it consumed"
                time.sleep(0.1)
            time.sleep(1.0)  # fetching: at its end of each partition
            _restart_empty(own_broker)
            kafka_io.ensure_topics(kafka, [topic])
            kafka_io.produce(kafka, topic, _alert_events(settings, 60, 20))
            deadline = time.monotonic() + 120
            while len(set(hook.seen)) < 80 and time.monotonic() < deadline and runner.is_alive():
                time.sleep(0.2)
            stop.set()
            runner.join(timeout=60)
        assert len(set(hook.seen)) == 80, "events produced after the topic was recreated were not delivered"
        warned = [r.getMessage() for r in caplog.records if "beyond its end" in r.getMessage()]
        assert warned and all(f"topic {topic} partition" in w for w in warned)

        # Resumed: lost again while notify was stopped; its outbox offsets are beyond the new ends.
        caplog.clear()
        _restart_empty(own_broker)
        kafka_io.ensure_topics(kafka, [topic])
        kafka_io.produce(kafka, topic, _alert_events(settings, 80, 5))
        with caplog.at_level("WARNING", logger="predmaint.connectors.kafka_io"):
            assert notify(stop_after_idle_s=4.0).delivered == 5
        assert len(set(hook.seen)) == len(hook.seen) == 85  # each event once: nothing sent twice
        assert any("beyond its end" in r.getMessage() for r in caplog.records)
    finally:
        server.shutdown()
        server.server_close()
