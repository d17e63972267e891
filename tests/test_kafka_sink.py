"""The dataflow's alert and dead-letter output waits for a broker that is away, and never drops a message.

Against a real broker (Tansu) of the test's own, stopped and started again on
its port. bytewax's own ``KafkaSink`` let librdkafka drop a message after
``message.timeout.ms`` and returned as if it had been delivered.
"""

from __future__ import annotations

import threading
import time

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage

from predmaint.connectors import kafka_io
from predmaint.connectors.kafka_sink import DeliveredKafkaSink
from predmaint.connectors.local_services import EmbeddedBroker
from predmaint.errors import BrokerError
from predmaint.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker():
    with EmbeddedBroker() as b:
        yield b


def _messages(n: int, tag: str) -> list[KafkaSinkMessage]:
    return [KafkaSinkMessage(key=b"pump-01", value=f"{tag}-{i}".encode()) for i in range(n)]


def test_a_batch_waits_for_the_broker_and_is_delivered_once_it_is_back(own_broker):
    kafka = KafkaSettings(bootstrap=own_broker.bootstrap, alerts_topic="sink.alerts", retry_for_s=120)
    kafka_io.ensure_topics(kafka, [kafka.alerts_topic])
    part = DeliveredKafkaSink(kafka, kafka.alerts_topic).build("alerts_out", 0, 1)
    try:
        part.write_batch(_messages(3, "before"))  # delivered: the batch returns
        own_broker.halt()
        failure: list[BaseException] = []

        def write() -> None:
            try:
                part.write_batch(_messages(5, "during"))
            except BaseException as exc:  # reported to the test thread
                failure.append(exc)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(5.0)
        assert writer.is_alive(), f"the batch returned while the broker was away: {failure}"
        own_broker.start()  # empty (memory only): the topic is created again, as an operator would
        kafka_io.ensure_topics(kafka, [kafka.alerts_topic])
        writer.join(90.0)
        assert not writer.is_alive(), "the batch did not return once the broker was back"
        assert not failure, failure
    finally:
        part.close()
    values = sorted(v.decode() for _, v in kafka_io.read_topic(kafka, kafka.alerts_topic))
    assert values == sorted(f"during-{i}" for i in range(5))  # every one, once (the earlier ones were lost with the broker)


def test_a_broker_away_longer_than_retry_for_s_stops_the_batch_naming_the_topic(own_broker):
    kafka = KafkaSettings(bootstrap=own_broker.bootstrap, dead_letter_topic="sink.dead", retry_for_s=2)
    kafka_io.ensure_topics(kafka, [kafka.dead_letter_topic])
    part = DeliveredKafkaSink(kafka, kafka.dead_letter_topic).build("dead_letters_out", 0, 1)
    try:
        own_broker.halt()
        started = time.monotonic()
        with pytest.raises(BrokerError, match=r"1 message\(s\) for topic sink\.dead not taken by the broker "
                                              r"127\.0\.0\.1:\d+ within 2 s \(kafka\.retry_for_s\)"):
            part.write_batch(_messages(1, "dead"))
        assert time.monotonic() - started < 30
    finally:
        part.close()
