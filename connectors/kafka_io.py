"""Kafka outside the dataflow: topic admin and producing (kafka-python), reading a topic to its end.

Inside the dataflow, bytewax's own Kafka connectors (confluent-kafka) are used;
see :mod:`predmaint.pipelines.dataflow`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Iterable

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from predmaint.settings import KafkaSettings
from predmaint.telemetry import MAX_FIELD_CHARS, MAX_REASON_CHARS, clip, clip_original

log = logging.getLogger(__name__)


def ensure_topics(kafka: KafkaSettings, topics: Iterable[str] | None = None) -> None:
    """Create the pipeline's topics if they do not exist yet."""
    names = list(topics or (kafka.telemetry_topic, kafka.dead_letter_topic, kafka.alerts_topic))
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap, client_id="predmaint-admin")
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(n, kafka.partitions, kafka.replication_factor) for n in names if n not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def produce(kafka: KafkaSettings, topic: str, messages: Iterable, *, flush_every: int = 5000) -> int:
    """Produce ``(key, value)`` pairs (or objects with ``key``/``value``); return the count."""
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=20, acks="all",
                             max_request_size=8 << 20, batch_size=1 << 20)
    count = 0
    try:
        for m in messages:
            key, value = (m.key, m.value) if hasattr(m, "key") else m
            producer.send(topic, key=key, value=value)
            count += 1
            if count % flush_every == 0:
                producer.flush()
        producer.flush()
    finally:
        producer.close()
    return count


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0,
               idle_s: float = 1.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every message currently in ``topic``, read with assigned partitions (no consumer group).

    Reads until every partition has reported its end and nothing new arrived
    for ``idle_s``: Tansu's high watermarks are not reliable enough to stop at.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "predmaint-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        meta = consumer.list_topics(topic, timeout=10)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            raise RuntimeError(f"reading {topic}: topic not found on {bootstrap}")
        parts = list(meta.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[tuple[bytes | None, bytes | None]] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        last_message = time.monotonic()
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if len(at_end) == len(parts) and time.monotonic() - last_message > idle_s:
                    break
                continue
            error = msg.error()
            if error:
                if error.code() == KafkaError._PARTITION_EOF:
                    partition = msg.partition()
                    assert partition is not None  # an end-of-partition event names its partition
                    at_end.add(partition)
                    continue
                raise RuntimeError(f"reading {topic}: {error}")
            last_message = time.monotonic()
            out.append((msg.key(), msg.value()))
        return out
    finally:
        consumer.close()


def dead_letter_value(reason: str, step: str, *, asset: str | None, sensor: str | None,
                      topic: str | None, partition: int | None, offset: int | None,
                      original: bytes | None) -> bytes:
    """The dead-letter record: why, where it failed, and the original bytes as text.

    Every string is cut with a marker (:func:`predmaint.telemetry.clip`; the original to its
    first ``MAX_ORIGINAL_BYTES``), so the record stays far below the broker's default 1 MB
    message size whatever the input was.
    """

    def bounded(text: str | None, limit: int = MAX_FIELD_CHARS) -> str | None:
        return None if text is None else clip(text, limit)

    return json.dumps({
        "reason": bounded(reason, MAX_REASON_CHARS), "step": bounded(step), "asset": bounded(asset),
        "sensor": bounded(sensor), "source": {"topic": bounded(topic), "partition": partition, "offset": offset},
        "original": clip_original(original),
    }, separators=(",", ":")).encode()
