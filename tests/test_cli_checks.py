"""Validation before connection and the start-up probes, through ``predmaint`` as users run it.

Every command runs as a subprocess against the real loopback servers (Tansu,
InfluxDB 1.6 from connectors/local_services.py). The real InfluxDB 1.6 answers
404 on /api/v2, which is exactly ``storage.kind: influx-v2`` against a 1.x server.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.connectors.local_services import free_ports
from predmaint.connectors.storage import InfluxV1Writer
from predmaint.settings import StorageSettings, load_settings
from tests.pipeline_runs import REPO, write_config

#: Environment variables a developer's shell may set that would change what these tests see.
_SCRUBBED = ("PREDMAINT_CONFIG", "PREDMAINT_INFLUX_TOKEN", "PREDMAINT_INFLUX_USERNAME", "PREDMAINT_INFLUX_PASSWORD",
             "PREDMAINT_KAFKA_BOOTSTRAP", "PREDMAINT_STORAGE_KIND", "PREDMAINT_STORAGE_URL",
             "PREDMAINT_KAFKA_USERNAME", "PREDMAINT_KAFKA_PASSWORD")


def predmaint(*argv: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    return subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**base, **(env or {})})


def one_line(stderr: str) -> str:
    """The single line of ``stderr`` (fails the test if there are more, or a traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and "panicked" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def config(tmp_path: Path, broker, influxdb, database: str, name: str = "c", **sections) -> Path:
    path = write_config(tmp_path, name, broker, influxdb, database, f"checks-{name}")
    doc = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        doc[section] = {**doc.get(section, {}), **values}
    path.write_text(yaml.safe_dump(doc))
    return path


def closed_port() -> str:
    port, = free_ports(1)
    return f"127.0.0.1:{port}"


def test_check_config_against_the_real_servers(tmp_path, broker, influxdb):
    InfluxV1Writer(StorageSettings(kind="influx-v1", url=influxdb.url, database="checks_ok")).close()
    cfg = config(tmp_path, broker, influxdb, "checks_ok")
    proc = predmaint("check-config", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"Kafka at {broker.bootstrap}: 1 broker(s) answered (PLAINTEXT)" in out
    assert "database 'checks_ok' found" in out and "InfluxDB 1." in out
    assert out.rstrip().endswith(f"check-config: {cfg}: OK")


def test_the_storage_probe_checks_the_retention_policy(influxdb):
    from predmaint.connectors import storage
    from predmaint.errors import StorageError

    InfluxV1Writer(StorageSettings(kind="influx-v1", url=influxdb.url, database="checks_rp")).close()
    ok = StorageSettings(kind="influx-v1", url=influxdb.url, database="checks_rp", retention_policy="autogen")
    assert storage.probe(ok).endswith("database 'checks_rp', retention policy 'autogen' found")
    with pytest.raises(StorageError, match=r"^storage\.retention_policy: database 'checks_rp' on .* has no retention "
                                           r"policy 'weekly' \(it has \['autogen'\]\)$"):
        storage.probe(StorageSettings(kind="influx-v1", url=influxdb.url, database="checks_rp",
                                      retention_policy="weekly"))


def test_check_config_names_a_missing_database(tmp_path, broker, influxdb):
    proc = predmaint("check-config", "--config", str(config(tmp_path, broker, influxdb, "checks_never_created")))
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert line.startswith("predmaint check-config: StorageError: storage.database: ")
    assert "'checks_never_created'" in line


def test_missing_influx_v2_token_is_one_line_before_any_connection(tmp_path, broker, influxdb):
    cfg = config(tmp_path, broker, influxdb, "v2", storage={"kind": "influx-v2"})
    for command in (("check-config",), ("run", "--until-end")):
        proc = predmaint(*command, "--config", str(cfg))
        assert proc.returncode == 2, proc.stderr
        assert one_line(proc.stderr) == (
            f"predmaint {command[0]}: configuration error: storage.token_env: PREDMAINT_INFLUX_TOKEN is not set "
            "(storage.kind influx-v2 needs an InfluxDB API token; for InfluxDB 1.8, PREDMAINT_INFLUX_USERNAME and "
            "PREDMAINT_INFLUX_PASSWORD instead)")


def test_unreachable_broker_is_one_line(tmp_path, broker, influxdb):
    cfg = config(tmp_path, broker, influxdb, "nobroker", kafka={"bootstrap": closed_port()})
    started = time.monotonic()
    proc = predmaint("check-config", "--config", str(cfg), "--skip", "storage", "--timeout", "5")
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert line.startswith("predmaint check-config: BrokerError: kafka.bootstrap: no Kafka broker answered at 127.0.0.1:")
    assert "Connection refused" in line
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("command", [("run", "--until-end"), ("notify", "--exit-when-idle", "1")])
def test_commands_that_need_the_broker_say_it_is_unreachable_in_one_line(tmp_path, broker, influxdb, command):
    # The start-up probe, before kafka-python's own connection retries (run) or a daemon that would
    # retry an absent broker without a word (notify).
    cfg = config(tmp_path, broker, influxdb, "nobroker", kafka={"bootstrap": closed_port()},
                 notify={"outbox_path": str(tmp_path / "never" / "outbox.sqlite"),
                         "targets": [{"name": "webhook", "kind": "webhook", "url": "http://127.0.0.1:9/alerts",
                                      "secret_env": "PREDMAINT_WEBHOOK_SECRET"}]})
    proc = predmaint(*command, "--config", str(cfg), env={"PREDMAINT_WEBHOOK_SECRET": "s3cret"})
    assert proc.returncode == 1, proc.stderr
    line = one_line(proc.stderr)
    # run says it after kafka-python's retries (creating topics), notify after the 10 s probe.
    assert re.match(rf"predmaint {command[0]}: BrokerError: kafka\.bootstrap: (creating topics: )?"
                    r"no Kafka broker answered at 127\.0\.0\.1:", line), line


class CountingListener:
    """A loopback port that accepts connections and counts them, and never answers: a broker that hangs."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:  # closed
                return

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_wrong_model_or_sample_rate_fails_at_once_without_a_broker(tmp_path, broker, influxdb):
    # Not a word with the broker: the configuration is refused before any connection (a client
    # that connected first would hang on this port, or be counted).
    listener = CountingListener()
    try:
        cfg = config(tmp_path, broker, influxdb, "badmodel", kafka={"bootstrap": listener.address},
                     model={"spec": "NoSuchDetector"})
        for command in ("run", "simulate", "notify", "check-config"):
            proc = predmaint(command, "--config", str(cfg))
            assert proc.returncode == 2, proc.stderr
            assert "model.spec: unknown model step 'NoSuchDetector'" in one_line(proc.stderr)
            assert listener.accepted == [], f"predmaint {command} connected to the broker before refusing"
    finally:
        listener.close()

    doc = yaml.safe_load(cfg.read_text())
    doc.pop("model")
    asset = doc["fleet"][0]["lines"][0]["assets"][0]
    vib = next(s for s in asset["sensors"] if s["kind"] == "vibration")
    vib["sample_rate_hz"] = 1000
    cfg.write_text(yaml.safe_dump(doc))
    proc = predmaint("run", "--config", str(cfg))
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert f"asset {asset['asset']} sensor {vib['sensor']}" in line


def test_influx_v2_against_influxdb_1x_ends_in_one_line(tmp_path, broker, influxdb):
    """No /api/v2 on InfluxDB 1.6: check-config says so; predmaint run ends naming HTTP 404 on /api/v2/write."""
    cfg = config(tmp_path, broker, influxdb, "v2on1", storage={"kind": "influx-v2", "bucket": "v2on1"},
                 simulator={"hours": 0.5, "invalid_messages": 0})
    token = {"PREDMAINT_INFLUX_TOKEN": "any-token"}
    proc = predmaint("check-config", "--config", str(cfg), "--skip", "kafka", env=token)
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "storage.kind: influx-v2" in line and "HTTP 404 on /health" in line and "influx-v1" in line

    settings = load_settings(cfg)
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, fleet_messages(settings))
    proc = predmaint("run", "--until-end", "--no-recovery", "--config", str(cfg), env=token, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = one_line(proc.stderr)
    assert line.startswith(f"predmaint run: StorageError: storage: InfluxDB at {influxdb.url}: HTTP 404 on "
                           "/api/v2/write"), line


def test_demo_stops_its_broker_on_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "predmaint.pipelines.cli", "demo", "--workdir",
                             str(tmp_path / "demo")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**{k: v for k, v in os.environ.items() if k not in _SCRUBBED},
                                            "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "embedded Kafka-protocol broker (Tansu) on 127.0.0.1:" in first, first + proc.stderr.read()
        port = int(first.rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), 2).close()  # the broker is up
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130
    assert one_line(proc.stderr.read()) == "predmaint demo: interrupted"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 2).close()
