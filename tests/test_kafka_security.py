"""TLS and SASL settings reach every Kafka client predmaint creates.

Two functions build the client configuration (``kafka_io.confluent_config``
for confluent-kafka/librdkafka, ``kafka_io.kafka_python_config`` for
kafka-python); these tests check what they build, that the libraries accept it,
and what each call site hands to its client: the topic admin and producer
(kafka-python), ``read_topic`` and ``predmaint notify`` (confluent-kafka), the
dataflow's bytewax source and sinks, and the start-up probe. The clients are
stand-ins that record their configuration and stop there: unit tests, no broker.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import confluent_kafka
import kafka
import pytest
import yaml
from bytewax.connectors.kafka import KafkaSource

from predmaint.connectors import kafka_io
from predmaint.connectors.kafka_sink import DeliveredKafkaSink
from predmaint.connectors.notify import run_notify
from predmaint.errors import SettingsError
from predmaint.pipelines.dataflow import build_flow
from predmaint.settings import KafkaSettings, load_settings

#: A CA bundle every Debian machine has: librdkafka loads the file when a client is created.
CA = next((p for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt") if Path(p).exists()),
          None)

SASL_ENV = {"PLANT_KAFKA_USER": "predmaint-pipeline", "PLANT_KAFKA_PASSWORD": "n0t-a-real-secret"}


@pytest.fixture
def plant(monkeypatch) -> KafkaSettings:
    """SASL_SSL with SCRAM-SHA-512 and a CA file, as in the README's plant example."""
    for name, value in SASL_ENV.items():
        monkeypatch.setenv(name, value)
    return KafkaSettings(bootstrap="kafka-1.plant.example:9093,kafka-2.plant.example:9093",
                         security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                         sasl_username_env="PLANT_KAFKA_USER", sasl_password_env="PLANT_KAFKA_PASSWORD",
                         ssl_cafile=CA or "/etc/ssl/certs/ca-certificates.crt")


EXPECTED_CONFLUENT = {
    "bootstrap.servers": "kafka-1.plant.example:9093,kafka-2.plant.example:9093",
    "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "predmaint-pipeline", "sasl.password": "n0t-a-real-secret",
}
EXPECTED_KAFKA_PYTHON = {
    "bootstrap_servers": "kafka-1.plant.example:9093,kafka-2.plant.example:9093",
    "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "ssl_check_hostname": True,
    "sasl_plain_username": "predmaint-pipeline", "sasl_plain_password": "n0t-a-real-secret",
}


def test_both_builders_carry_tls_and_sasl(plant):
    assert kafka_io.confluent_config(plant) == {**EXPECTED_CONFLUENT, "ssl.ca.location": plant.ssl_cafile}
    assert kafka_io.kafka_python_config(plant) == {**EXPECTED_KAFKA_PYTHON, "ssl_cafile": plant.ssl_cafile}


@pytest.mark.parametrize("protocol, mechanism", [("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "PLAIN"),
                                                 ("SASL_SSL", "SCRAM-SHA-256"), ("SASL_PLAINTEXT", "SCRAM-SHA-512")])
def test_every_sasl_mechanism(plant, protocol, mechanism):
    k = dataclasses.replace(plant, security_protocol=protocol, sasl_mechanism=mechanism,
                            ssl_cafile=plant.ssl_cafile if protocol == "SASL_SSL" else "")
    conf, py = kafka_io.confluent_config(k), kafka_io.kafka_python_config(k)
    assert (conf["security.protocol"], conf["sasl.mechanism"]) == (protocol, mechanism)
    assert (py["security_protocol"], py["sasl_mechanism"]) == (protocol, mechanism)
    assert conf["sasl.password"] == py["sasl_plain_password"] == "n0t-a-real-secret"
    assert ("ssl.ca.location" in conf) == ("ssl_cafile" in py) == (protocol == "SASL_SSL")


def test_mutual_tls_with_an_encrypted_key(monkeypatch, tmp_path):
    monkeypatch.setenv("PLANT_KEY_PASSWORD", "key-pass")
    k = KafkaSettings(bootstrap="k:9093", security_protocol="SSL", ssl_cafile="/ca.pem", ssl_certfile="/c.pem",
                      ssl_keyfile="/k.pem", ssl_key_password_env="PLANT_KEY_PASSWORD", ssl_check_hostname=False)
    assert kafka_io.confluent_config(k) == {
        "bootstrap.servers": "k:9093", "security.protocol": "SSL", "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/c.pem", "ssl.key.location": "/k.pem", "ssl.key.password": "key-pass",
        "ssl.endpoint.identification.algorithm": "none"}
    assert kafka_io.kafka_python_config(k) == {
        "bootstrap_servers": "k:9093", "security_protocol": "SSL", "ssl_check_hostname": False,
        "ssl_cafile": "/ca.pem", "ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem", "ssl_password": "key-pass"}
    with pytest.raises(SettingsError, match=r"^kafka\.ssl_cafile: /ca\.pem does not exist$"):
        kafka_io.check_files(k)


def test_plaintext_adds_nothing():
    k = KafkaSettings(bootstrap="localhost:9092")
    assert kafka_io.confluent_config(k) == {"bootstrap.servers": "localhost:9092", "security.protocol": "PLAINTEXT"}
    assert kafka_io.kafka_python_config(k) == {"bootstrap_servers": "localhost:9092", "security_protocol": "PLAINTEXT"}


def test_the_libraries_accept_the_configuration(plant):
    """librdkafka refuses unknown keys and bad values when a client is made; kafka-python lists its keys."""
    if CA is None:
        pytest.skip("no system CA bundle to point ssl.ca.location at")
    confluent_kafka.Producer(kafka_io.confluent_config(plant))  # raises KafkaException on a bad key or value
    with pytest.raises(confluent_kafka.KafkaException):
        confluent_kafka.Producer({**kafka_io.confluent_config(plant), "sasl.mechanism": "SCRAM-SHA-1024"})
    keys = set(kafka_io.kafka_python_config(plant))
    for client in (kafka.KafkaProducer, kafka.KafkaAdminClient, kafka.KafkaConsumer):
        assert keys <= set(client.DEFAULT_CONFIG), (client.__name__, keys - set(client.DEFAULT_CONFIG))


def test_a_missing_secret_names_the_setting(plant, monkeypatch):
    monkeypatch.delenv("PLANT_KAFKA_PASSWORD")
    for build in (kafka_io.confluent_config, kafka_io.kafka_python_config):
        with pytest.raises(SettingsError, match=r"^kafka\.sasl_password_env: PLANT_KAFKA_PASSWORD is not set$"):
            build(plant)
    monkeypatch.delenv("PLANT_KAFKA_USER")
    with pytest.raises(SettingsError, match=r"^kafka\.sasl_username_env: PLANT_KAFKA_USER is not set$"):
        kafka_io.confluent_config(plant)


def test_secrets_never_print(plant):
    for conf in (kafka_io.confluent_config(plant), kafka_io.kafka_python_config(plant)):
        assert "n0t-a-real-secret" not in repr(kafka_io.redacted(conf))
    assert "n0t-a-real-secret" not in repr(plant) and "PLANT_KAFKA_PASSWORD" in repr(plant)
    assert repr(plant.sasl_password) == "Secret(PLANT_KAFKA_PASSWORD=***)"


@pytest.mark.parametrize("section, message", [
    ({"security_protocol": "TLS"}, r"kafka\.security_protocol: 'TLS' is not one of \['PLAINTEXT', 'SSL', "),
    ({"security_protocol": "SASL_SSL"}, r"kafka\.sasl_mechanism: security_protocol SASL_SSL needs one of"),
    ({"sasl_mechanism": "PLAIN"}, r"kafka\.sasl_mechanism: PLAIN needs security_protocol SASL_SSL or SASL_PLAINTEXT"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, r"kafka\.sasl_mechanism: 'GSSAPI' is not one of"),
    ({"ssl_cafile": "/ca.pem"}, r"kafka\.ssl_cafile: needs security_protocol SSL or SASL_SSL, not PLAINTEXT"),
    ({"security_protocol": "SSL", "ssl_certfile": "/c.pem"}, r"kafka\.ssl_certfile, kafka\.ssl_keyfile: give both"),
])
def test_the_file_is_validated(tmp_path, section, message):
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump({"kafka": section}))
    with pytest.raises(SettingsError, match=rf"^{path}: {message}"):
        load_settings(path)


# --- each call site receives the configuration -------------------------------------------------


class Recorded(Exception):
    """Raised by a stand-in client once it has recorded its configuration."""


def recorder(calls: list):
    def client(*args, **kwargs):
        calls.append(args[0] if args else kwargs)
        raise Recorded
    return client


def test_kafka_python_call_sites(plant, monkeypatch):
    calls: list = []
    monkeypatch.setattr(kafka_io, "KafkaAdminClient", recorder(calls))
    monkeypatch.setattr(kafka_io, "KafkaProducer", recorder(calls))
    with pytest.raises(Recorded):
        kafka_io.ensure_topics(plant)
    with pytest.raises(Recorded):
        kafka_io.produce(plant, "telemetry", [])
    admin, producer = calls
    for conf in (admin, producer):
        assert conf.items() >= {**EXPECTED_KAFKA_PYTHON, "ssl_cafile": plant.ssl_cafile}.items()
    assert producer["acks"] == "all" and admin["client_id"] == "predmaint-admin"


def test_confluent_call_sites(plant, monkeypatch, tmp_path):
    calls: list = []
    monkeypatch.setattr(confluent_kafka, "Consumer", recorder(calls))
    with pytest.raises(Recorded):
        kafka_io.read_topic(plant, "alerts")
    with pytest.raises(Recorded):
        run_notify(kafka=plant, topic="alerts", outbox_path=tmp_path / "outbox.sqlite",
                   targets=[{"name": "t", "kind": "webhook", "url": "http://127.0.0.1:9"}],
                   consumer_factory=recorder(calls))
    reader, notify = calls
    for conf in (reader, notify):
        assert conf.items() >= EXPECTED_CONFLUENT.items() and conf["ssl.ca.location"] == plant.ssl_cafile
    assert notify["group.id"] == "predmaint-notify" and reader["group.id"] == "predmaint-reader"


def test_the_probe_uses_the_configuration(plant, monkeypatch):
    import confluent_kafka.admin

    calls: list = []
    monkeypatch.setattr(confluent_kafka.admin, "AdminClient", recorder(calls))
    with pytest.raises(Recorded):
        kafka_io.probe(plant)
    assert calls[0].items() >= EXPECTED_CONFLUENT.items()


def test_the_dataflow_source_and_sinks(plant, monkeypatch):
    import confluent_kafka

    settings = load_settings().replace(kafka=plant)
    flow = build_flow(settings)
    found = {}

    def walk(step):
        subs = getattr(step, "substeps", [])
        for s in subs.values() if isinstance(subs, dict) else subs:
            for attr in ("source", "sink"):
                connector = getattr(s, attr, None)
                if isinstance(connector, (KafkaSource, DeliveredKafkaSink)):  # the telemetry source is a subclass
                    found[s.step_id] = connector
            walk(s)

    walk(flow)
    assert sorted(found) == ["predmaint.alerts_out", "predmaint.dead_letters_out",
                             "predmaint.telemetry_in.kafka_input"]
    source = found.pop("predmaint.telemetry_in.kafka_input")
    assert source._add_config.items() >= EXPECTED_CONFLUENT.items()
    assert source._add_config["ssl.ca.location"] == plant.ssl_cafile
    # The sinks build their producer in each worker: what it is given is recorded there.
    calls: list = []
    monkeypatch.setattr(confluent_kafka, "Producer", recorder(calls))
    for step_id, sink in found.items():
        with pytest.raises(Recorded):
            sink.build(step_id, 0, 1)
        assert calls[-1].items() >= EXPECTED_CONFLUENT.items(), step_id
        assert calls[-1]["ssl.ca.location"] == plant.ssl_cafile
        assert calls[-1]["message.timeout.ms"] == 0, "librdkafka must not drop an alert on its own"


def test_every_kafka_client_goes_through_the_builders():
    """No module creates a Kafka client from a bare bootstrap string (grep of the package's sources)."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in ("connectors", "pipelines", "predmaint", "dashboards"):
        for path in (root / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if ("bootstrap_servers=" in line or '"bootstrap.servers":' in line) and "def " not in line \
                        and path.name != "kafka_io.py":
                    offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_environment_overrides_for_compose():
    s = load_settings(environ={"PREDMAINT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                               "PREDMAINT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"})
    assert (s.kafka.security_protocol, s.kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    with pytest.raises(SettingsError, match=r"kafka\.security_protocol: 'sasl_ssl' is not one of"):
        load_settings(environ={"PREDMAINT_KAFKA_SECURITY_PROTOCOL": "sasl_ssl"})
