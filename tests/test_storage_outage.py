"""Storage outages and refusals against a real InfluxDB 1.x: ride out a restart, fail clearly otherwise.

* A database restart (process stopped, then started on the same port and data)
  or a hung server (SIGSTOP, SIGCONT) is ridden out: writes block meanwhile
  (backpressure) and every point is stored once it is back, none lost, none
  duplicated.
* A refusal (HTTP 4xx other than 408/429) fails at once; an outage longer than
  ``storage.retry_for_s`` fails after it; ``predmaint run`` then exits 1 with one
  line naming the cause on stderr, never a Rust panic.

These tests stop and freeze their own InfluxDB, never the session's.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages, invalid_messages
from predmaint.connectors.local_services import LocalInfluxDB, free_ports
from predmaint.connectors.storage import InfluxV1Writer
from predmaint.connectors.storage_sink import _PipelinedPartition
from predmaint.domain import Point
from predmaint.errors import StorageError, StorageUnavailable
from predmaint.pipelines.runner import replay
from predmaint.settings import StorageSettings, load_settings
from predmaint.telemetry import decode_reading
from tests.pipeline_runs import REPO, write_config

pytestmark = pytest.mark.integration

OUTAGE_S = 6.0


@pytest.fixture(scope="module")
def own_influxdb():
    """An InfluxDB of these tests alone: they stop and freeze it."""
    with LocalInfluxDB() as db:
        yield db


def _settings(url: str, database: str, **kw) -> StorageSettings:
    return StorageSettings(kind="influx-v1", url=url, database=database, **{"retry_for_s": 20.0, "timeout_s": 2.0, **kw})


def _health(i: int) -> Point:
    return Point("health", {"asset": f"a{i % 3}"}, {"health": float(i)}, 1_000_000_000 * (i + 1))


def _stored(writer: InfluxV1Writer) -> list[tuple]:
    return sorted((p.tags["asset"], p.fields["health"], p.time_ns) for p in writer.points("health"))


def test_sink_rides_out_a_database_restart_and_stores_every_point(own_influxdb, caplog):
    caplog.set_level(logging.INFO, logger="predmaint.connectors.storage")
    settings = _settings(own_influxdb.url, "outage_restart")
    part = _PipelinedPartition(InfluxV1Writer(settings), max_queued_batches=2)
    outage_over = threading.Event()

    def restart_after_outage():
        own_influxdb.halt()
        time.sleep(OUTAGE_S)
        own_influxdb.start()
        outage_over.set()

    returned_at = []
    for i in range(60):
        if i == 10:
            threading.Thread(target=restart_after_outage, daemon=True).start()
        part.write_batch([_health(i)])
        returned_at.append(time.monotonic())
        time.sleep(0.02)
    part.snapshot()  # every queued batch stored before the epoch may commit
    part.close()
    assert outage_over.is_set()
    # write_batch blocked while the database was down: the dataflow waited.
    longest_wait = max(b - a for a, b in zip(returned_at, returned_at[1:]))
    assert longest_wait > OUTAGE_S - 2
    reader = InfluxV1Writer(settings, create_database=False)
    assert _stored(reader) == sorted((p.tags["asset"], p.fields["health"], p.time_ns)
                                     for p in map(_health, range(60)))
    reader.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # one per 30 s of outage, not one per attempt
    # The cause varies with the moment: HTTP 500 from the stopping server, its
    # pooled connection closed, or the connection refused while it is down.
    assert warnings[0].startswith(f"storage: InfluxDB at {own_influxdb.url}: ") and " on /write" in warnings[0]
    assert "writes on hold, retrying for up to 20 s more (storage.retry_for_s)" in warnings[0]
    resumed = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "answers again" in r.getMessage()]
    assert len(resumed) == 1 and "writes resumed" in resumed[0]


def test_writer_waits_for_a_hung_server_and_stores_the_batch_once(own_influxdb):
    settings = _settings(own_influxdb.url, "outage_frozen", timeout_s=1.0)
    writer = InfluxV1Writer(settings)
    points = [_health(i) for i in range(5)]
    own_influxdb.freeze()
    timer = threading.Timer(4.0, own_influxdb.thaw)
    timer.start()
    try:
        started = time.monotonic()
        writer.write(points)  # times out, retries; requests queued while frozen are answered late
        waited = time.monotonic() - started
    finally:
        timer.join()
        own_influxdb.thaw()
    assert waited > 3.5
    assert _stored(writer) == sorted((p.tags["asset"], p.fields["health"], p.time_ns) for p in points)
    writer.close()


def test_a_refusal_fails_at_once_naming_the_cause(own_influxdb, caplog):
    # InfluxDB 1.6 answers CREATE DATABASE "a/b" with "invalid name" (a warning
    # here), and the write with 404: a permanent error, not retried.
    caplog.set_level(logging.WARNING, logger="predmaint.connectors.storage")
    writer = InfluxV1Writer(_settings(own_influxdb.url, "a/b"))
    assert any("invalid name" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    started = time.monotonic()
    with pytest.raises(StorageError) as err:
        writer.write([_health(0)])
    assert time.monotonic() - started < 1.0
    assert str(err.value) == (f'storage: InfluxDB at {own_influxdb.url}: HTTP 404 on /write: '
                              'database not found: "a/b"')
    writer.close()


def test_an_outage_longer_than_retry_for_s_fails_with_the_cause():
    port, = free_ports(1)  # nothing listens there
    writer = InfluxV1Writer(_settings(f"http://127.0.0.1:{port}", "x", retry_for_s=1.5), create_database=False)
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"^storage: InfluxDB at http://127\.0\.0\.1:\d+: cannot connect "
                                           r"\(Connection refused\) on /write; gave up after retrying for 2 s "
                                           r"\(\d+ attempts, storage\.retry_for_s = 1\.5\)$"):
        writer.write([_health(0)])
    assert 1.5 <= time.monotonic() - started < 3.0


def _config(tmp_path, broker, influxdb, name: str, **sections) -> Path:
    """The default config on the test broker and ``influxdb`` (database ``outage_<name>``), sections updated."""
    config = write_config(tmp_path, name, broker, influxdb, f"outage_{name}", f"outage-{name}")
    doc = yaml.safe_load(config.read_text())
    for section, values in sections.items():
        doc[section].update(values)
    config.write_text(yaml.safe_dump(doc))
    return config


def _run_until_end(tmp_path, broker, influxdb, name: str, **storage) -> subprocess.CompletedProcess:
    """``predmaint run --until-end`` on a few invalid messages (dead letters: points at once)."""
    config = _config(tmp_path, broker, influxdb, name, storage=storage)
    settings = load_settings(config)
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, invalid_messages(settings))
    return subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), "run",
                           "--until-end"], cwd=REPO, capture_output=True, text=True, timeout=120)


def _stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """Non-blank stderr lines of a run that must not show a Rust panic or a traceback."""
    for word in ("panic", "Rust", "thread '", "Traceback"):
        assert word not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.strip()]


def test_predmaint_run_stops_on_a_refused_write_with_one_line(broker, influxdb, tmp_path):
    # A field stored as a string in this week's shard: InfluxDB refuses the
    # integer "count" of the dead letters (stamped with their arrival time): HTTP 400.
    conflict = InfluxV1Writer(_settings(influxdb.url, "outage_refused"))
    conflict.write([Point("deadletters", {"step": "decode"}, {"count": "not a number"}, time.time_ns())])
    conflict.close()
    started = time.monotonic()
    proc = _run_until_end(tmp_path, broker, influxdb, "refused", retry_for_s=20)
    assert proc.returncode == 1 and time.monotonic() - started < 20  # not retried
    (line,) = _stderr_lines(proc)
    assert line.startswith(f"predmaint run: StorageError: storage: InfluxDB at {influxdb.url}: HTTP 400 on /write: "
                           'partial write: field type conflict: input field "count" on measurement "deadletters"')


def test_predmaint_run_stops_after_retry_for_s_with_one_line(broker, tmp_path):
    port, = free_ports(1)  # no InfluxDB there

    class Nowhere:
        url = f"http://127.0.0.1:{port}"

    started = time.monotonic()
    proc = _run_until_end(tmp_path, broker, Nowhere, "nowhere", retry_for_s=3)
    assert proc.returncode == 1 and time.monotonic() - started >= 3
    *warnings, error = _stderr_lines(proc)
    # The sink's first partition creates the database: the outage shows there.
    assert re.fullmatch(rf"predmaint run: StorageError: storage: InfluxDB at {re.escape(Nowhere.url)}: cannot connect "
                        r"\(Connection refused\) on /query; gave up after retrying for 3 s "
                        r"\(\d+ attempts, storage\.retry_for_s = 3\)", error), error
    assert len(warnings) == 1 and "start-up on hold, retrying for up to 3 s more" in warnings[0], proc.stderr


def test_predmaint_run_rides_out_a_database_restart_mid_run(broker, own_influxdb, tmp_path):
    config = _config(tmp_path, broker, own_influxdb, "midrun", storage={"retry_for_s": 30, "timeout_s": 2},
                     simulator={"hours": 1.5, "faults": []})
    doc = yaml.safe_load(config.read_text())  # two pumps and the champion model: enough to write for a while
    site, line = doc["fleet"][0], doc["fleet"][0]["lines"][0]
    doc["fleet"] = [{**site, "lines": [{**line, "assets": line["assets"][:2]}]}]
    doc["challengers"] = []
    config.write_text(yaml.safe_dump(doc))
    settings = load_settings(config)
    messages = list(fleet_messages(settings))
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, messages)
    proc = subprocess.Popen([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), "run",
                             "--until-end"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = InfluxV1Writer(_settings(own_influxdb.url, settings.storage.database), create_database=False)
    try:
        while proc.poll() is None and not _has_health(reader):
            time.sleep(0.05)
        running_at_outage = proc.poll() is None  # the first windows are stored, most are still to come
        own_influxdb.halt()
        time.sleep(OUTAGE_S)
        own_influxdb.start()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert running_at_outage
    assert proc.returncode == 0, err
    for word in ("panic", "Rust", "thread '", "Traceback"):
        assert word not in err, err
    warnings = err.strip().splitlines()
    # One warning per writer that met the outage (the sink has two partitions), not one per attempt.
    assert 1 <= len(warnings) <= 2 and all(own_influxdb.url in w and "retry_for_s" in w for w in warnings), err
    # Every health point of the run, once: the same as the dataflow gives without any outage.
    readings = [decode_reading(m.value, m.key) for m in messages]
    expected = sorted(_health_key(p) for p in replay(settings, readings).health())
    stored = sorted(_health_key(p) for p in reader.points("health"))
    reader.close()
    assert len(stored) > 100 and stored == expected


def _has_health(reader: InfluxV1Writer) -> bool:
    try:
        return bool(reader.query('SELECT count("health") FROM "health"'))
    except StorageError:  # not created yet
        return False


def _health_key(p: Point) -> tuple:
    return p.tags["asset"], p.tags["sensor"], p.tags["model"], p.time_ns, p.fields["health"]


def test_a_missing_retention_policy_fails_at_once_although_influxdb_says_500(own_influxdb):
    writer = InfluxV1Writer(_settings(own_influxdb.url, "outage_rp", retention_policy="nosuch"))
    started = time.monotonic()
    with pytest.raises(StorageError) as err:
        writer.write([_health(0)])
    assert time.monotonic() - started < 1.0 and not isinstance(err.value, StorageUnavailable)
    assert str(err.value) == (f"storage: InfluxDB at {own_influxdb.url}: HTTP 500 on /write: "
                              "retention policy not found: nosuch")
    writer.close()
