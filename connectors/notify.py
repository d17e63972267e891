"""Durable, ordered, at-least-once delivery of alert events to webhooks and CMMS.

Pipeline position: the ``alerts`` Kafka topic -> :func:`run_notify` -> SQLite
outbox (:class:`~predmaint.connectors.outbox.Outbox`) ->
:class:`~predmaint.connectors.deliverer.Deliverer` -> HTTP targets
(:func:`~predmaint.connectors.transport.attempt`).

This module is the Kafka consumer loop that runs the whole path, so the
guarantees of the path are documented here; the modules named above each
implement a part of them.

Guarantees
----------
* **Durable.** Events are written to a local SQLite outbox before any delivery
  attempt, idempotently by ``event_id`` (``INSERT OR IGNORE``). The next Kafka
  offset of each partition is stored *in the same transaction*, so a restart
  resumes exactly after the last ingested message: nothing lost, nothing
  ingested twice.
* **At-least-once.** A delivery is marked done only after a 2xx answer. A
  crash between the answer and the commit resends the event after restart;
  generic webhook receivers deduplicate on ``webhook-id`` (= ``event_id``).
  CMMS work orders go through the alert-id -> work-order map (create once,
  then update, then close). A create is recorded as in flight before it is
  sent; a create that follows an unconfirmed one (the process was killed
  before it recorded the answer) first searches the CMMS for the alert's work
  order and adopts it, so a restart creates none twice. What each CMMS API
  offers for this, and the cases it cannot cover, are in
  :mod:`predmaint.connectors.cmms`.
* **Ordered per asset and target.** An event is not sent to a target while an
  earlier event of the same asset is pending for that target (raise before
  clear). Different assets and targets proceed independently, so one stuck
  asset or one dead CMMS does not hold the others back.
* **Bounded retries.** Only 2xx is success. Timeouts, dropped connections,
  408/425/429/5xx are retried with exponential backoff and full jitter;
  ``Retry-After`` (seconds or HTTP date) on 429/503 is honoured and pauses the
  whole target. 3xx and other 4xx are permanent. After ``max_attempts`` (or at
  once for permanent errors) the event becomes a dead letter: a dict handed to
  the caller (``on_deadletter``) and formatted for InfluxDB by
  :func:`~predmaint.connectors.deadletters.deadletter_to_influx`.
* **Secrets stay secret.** Credentials are read from environment variables
  named by ``secret_env`` at send time. They are not stored in objects, reprs,
  the outbox, log records, exception messages or dead letters; failure
  reasons are built from status codes and exception class names only, never
  from server-supplied text, and are additionally scrubbed of every
  configured secret value.

How HTTP is done (standard library, one request per attempt, no redirects)
is described in :mod:`predmaint.connectors.transport`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from predmaint.connectors.deliverer import Deliverer
from predmaint.connectors.kafka_io import RecreatedTopicCheck, confluent_config
from predmaint.connectors.outbox import IngestRecord, Outbox
from predmaint.errors import TargetConfigError
from predmaint.settings import KafkaSettings
from predmaint.settings.targets import Target

__all__ = [
    "NotifyStats",
    "run_notify",
]

log = logging.getLogger(__name__)


@dataclass
class NotifyStats:
    """Counters of one :func:`run_notify` run."""

    consumed: int = 0
    inserted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: int = 0
    delivered: int = 0
    retries: int = 0
    dead_letters: int = 0
    partitions: list[int] = field(default_factory=list)


def _kafka_partitions(consumer: Any, topic: str, timeout_s: float) -> list[int]:
    md = consumer.list_topics(topic, timeout=timeout_s)
    tmd = md.topics.get(topic)
    if tmd is None or getattr(tmd, "error", None) is not None:
        return []
    return sorted(int(p) for p in tmd.partitions)


def run_notify(*, brokers: str | None = None, kafka: KafkaSettings | None = None, topic: str = "alerts",
               outbox_path: str | os.PathLike[str] | None = None,
               targets: Iterable[Mapping[str, Any] | Target] | None = None,
               stop_after_idle_s: float | None = None,
               on_deadletter: Callable[[dict[str, Any]], Any] | None = None,
               stop: threading.Event | None = None, max_workers: int = 4, batch_size: int = 500,
               poll_s: float = 0.5, metadata_refresh_s: float = 30.0,
               consumer_factory: Callable[[dict[str, Any]], Any] | None = None) -> NotifyStats:
    """Consume the alerts topic into the outbox and deliver to the targets.

    Parameters
    ----------
    brokers : str
        Kafka bootstrap servers (an unsecured cluster; or give ``kafka``).
    kafka : KafkaSettings, optional
        The ``kafka`` settings: bootstrap servers, TLS and SASL
        (:func:`predmaint.connectors.kafka_io.confluent_config`); overrides ``brokers``.
    topic : str
        Alerts topic (default ``"alerts"``).
    outbox_path : str or path
        SQLite outbox file (holds events, delivery state and offsets).
    targets : iterable of mapping
        Target configs.
    stop_after_idle_s : float, optional
        Return once no message arrived for this long *and* nothing is pending
        or in flight. ``None`` runs until ``stop`` is set.
    on_deadletter : callable, optional
        Receives each dead-letter dict (e.g. writes
        ``deadletter_to_influx(dl)`` to InfluxDB).
    stop : threading.Event, optional
        Set it (e.g. from a SIGTERM handler) to stop gracefully; in-flight
        requests are finished and recorded first.
    max_workers, batch_size, poll_s, metadata_refresh_s : optional
        Concurrency, messages per consume call, longest idle wait, and how
        often new partitions are looked for.
    consumer_factory : callable, optional
        Builds the consumer from its config dict (default
        ``confluent_kafka.Consumer``); lets tests substitute a fake.

    Returns
    -------
    NotifyStats

    Notes
    -----
    Partitions are taken with ``assign()``, not ``subscribe()``: no consumer
    group join (about 23 s on the test broker), and offsets come from the
    outbox, where they are committed atomically with the events. Nothing is
    committed to Kafka. A single instance per outbox is assumed.

    A partition whose next offset is beyond its end or below its start (the
    alerts topic was recreated: a broker that lost its data) is read again
    from its start, with a warning naming topic, partition, offset and range
    (:class:`~predmaint.connectors.kafka_io.RecreatedTopicCheck`): the events
    produced after the loss would otherwise be skipped, and an event read
    twice is ingested once (by ``event_id``).
    """
    if kafka is not None:
        brokers = kafka.bootstrap
    if not brokers:
        raise TargetConfigError("run_notify needs 'brokers'")
    if not outbox_path:
        raise TargetConfigError("run_notify needs 'outbox_path'")
    if not targets:
        raise TargetConfigError("run_notify needs at least one target")
    stop = stop or threading.Event()
    stats = NotifyStats()

    conf: dict[str, Any] = {
        **confluent_config(kafka if kafka is not None else KafkaSettings(bootstrap=brokers)),
        # librdkafka wants a group id even for assign(); no group is joined and
        # nothing is committed (offsets live in the outbox).
        "group.id": "predmaint-notify",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
    }
    if consumer_factory is None:
        import confluent_kafka

        consumer_factory = confluent_kafka.Consumer
    from_beginning = _offset_beginning()

    outbox = Outbox(outbox_path)
    deliverer = Deliverer(targets, outbox, max_workers=max_workers, on_deadletter=on_deadletter)
    consumer = consumer_factory(conf)
    assigned: set[int] = set()
    # Per partition: the next offset to read, the offset the first message should have, the range check.
    next_offset: dict[int, int] = {}
    first_expected: dict[int, int] = {}
    checks: dict[int, RecreatedTopicCheck] = {}
    try:
        def assign_new(parts: list[int], incremental: bool) -> None:
            new = [p for p in parts if p not in assigned]
            if not new:
                return
            stored = outbox.next_offsets(topic)
            for p in new:
                next_offset[p] = first_expected[p] = stored.get(p, from_beginning)
                checks[p] = RecreatedTopicCheck("predmaint notify", topic, p)
            tps = [_topic_partition(topic, p, next_offset[p]) for p in new]
            if incremental:
                consumer.incremental_assign(tps)
            else:
                consumer.assign(tps)
            assigned.update(new)
            stats.partitions = sorted(assigned)
            log.info("notify: consuming %s partitions %s from %s", topic, new,
                     {p: stored.get(p, "beginning") for p in new})

        last_message = time.monotonic()
        next_refresh = 0.0
        while not stop.is_set():
            mono = time.monotonic()
            if mono >= next_refresh:
                try:
                    parts = _kafka_partitions(consumer, topic, timeout_s=min(10.0, poll_s * 4))
                except Exception as exc:  # broker not reachable yet: keep delivering the outbox
                    log.warning("notify: cannot read metadata of topic %s (%s)", topic, type(exc).__name__)
                    parts = []
                assign_new(parts, incremental=bool(assigned))
                next_refresh = mono + (metadata_refresh_s if assigned else min(2.0, metadata_refresh_s))

            wait = poll_s
            if deliverer.in_flight:
                wait = min(wait, 0.05)
            due = deliverer.next_due_in()
            if due is not None:
                wait = min(wait, max(due, 0.0))
            if assigned:
                msgs = consumer.consume(num_messages=batch_size, timeout=wait)
            else:
                msgs = []
                stop.wait(wait)
            records = []
            for m in msgs or []:
                err = m.error()
                if err is not None:
                    # Partition EOF and transient broker errors arrive here;
                    # librdkafka recovers by itself.
                    log.debug("notify: consumer event on %s: %s", topic, err)
                    continue
                records.append(IngestRecord(m.value(), m.key(), m.topic(), m.partition(), m.offset()))
                part, offset = m.partition(), m.offset()
                assert part is not None and offset is not None  # a message (not an error event) has both
                if part in first_expected:
                    checks[part].jumped(first_expected.pop(part), offset)
                next_offset[part] = offset + 1
            # A partition that brought nothing may sit beyond the end of a recreated topic (Tansu says nothing).
            for p in sorted(assigned - {r.partition for r in records}):
                restart = checks[p].check(consumer, next_offset[p])
                if restart is not None:
                    # The outbox keeps the highest offset ingested; the recreated topic starts lower.
                    outbox.rewind_offset(topic, p, restart)
                    consumer.seek(_topic_partition(topic, p, restart))
                    next_offset[p] = first_expected[p] = restart
            if records:
                last_message = time.monotonic()
                stats.consumed += len(records)
                res = deliverer.ingest(records)
                stats.inserted += res.inserted
                stats.duplicates += res.duplicates
                stats.suppressed += res.suppressed
                stats.rejected += len(res.rejected)
            deliverer.pump(0.0)
            if (stop_after_idle_s is not None and not records
                    and time.monotonic() - last_message >= stop_after_idle_s
                    and not deliverer.in_flight and deliverer.pending() == 0):
                log.info("notify: idle for %.1f s with nothing pending; stopping", stop_after_idle_s)
                break
    finally:
        deliverer.close()
        stats.delivered = deliverer.stats["delivered"]
        stats.retries = deliverer.stats["retries"]
        stats.dead_letters = stats.rejected + deliverer.stats["dead"]
        try:
            consumer.close()
        finally:
            outbox.close()
    return stats


def _offset_beginning() -> int:
    try:
        import confluent_kafka

        return int(confluent_kafka.OFFSET_BEGINNING)
    except ImportError:  # pragma: no cover - confluent-kafka is a dependency
        return -2


def _topic_partition(topic: str, partition: int, offset: int) -> Any:
    import confluent_kafka

    return confluent_kafka.TopicPartition(topic, partition, offset)
