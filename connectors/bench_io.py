"""The I/O that ``make bench`` needs besides the pipeline's own: a producer paced at a fixed rate,
health points as InfluxDB shows them, and the CPU time of processes.

Nothing here is used by ``predmaint run``; :mod:`predmaint.pipelines.bench` drives it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from predmaint.connectors.kafka_io import confluent_config
from predmaint.settings import KafkaSettings, StorageSettings

__all__ = ["cpu_seconds", "peak_rss_mb", "create_topic", "produce_all", "produce_at_rate", "processed_times", "HealthPoller"]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads), from ``/proc``; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of stat)


def peak_rss_mb() -> float:
    """This process's peak resident set size (MB) since it started its program.

    ``/proc/self/status`` VmHWM, not ``getrusage``'s ``ru_maxrss``: Linux keeps
    ``ru_maxrss`` across ``execve``, so a spawned child would report its parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def create_topic(kafka: KafkaSettings, topic: str, partitions: int) -> None:
    """Create ``topic`` with its retention stated (7 days, no size limit).

    Apache Kafka reports every topic's configuration; Tansu reports only what the
    topic was created with, and Quix Streams needs ``retention.ms`` to derive its
    changelog topics (``KeyError: 'retention.ms'`` otherwise).
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    client_config: dict[str, Any] = dict(confluent_config(kafka))  # confluent-kafka 2.13+ hints want a wider dict
    admin = AdminClient(client_config)
    config = {"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"}
    for future in admin.create_topics([NewTopic(topic, partitions, 1, config=config)]).values():
        future.result()


def produce_all(kafka: KafkaSettings, topic: str, messages: Sequence) -> int:
    """Produce ``messages`` as fast as the broker takes them (confluent-kafka: ~10x kafka-python here)."""
    from confluent_kafka import Producer

    producer = Producer({**confluent_config(kafka), "linger.ms": 20, "acks": "all", "batch.size": 1 << 20,
                         "message.max.bytes": 8 << 20, "queue.buffering.max.kbytes": 1 << 20})
    for m in messages:
        while True:
            try:
                producer.produce(topic, key=m.key, value=m.value)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError(f"bench: messages still undelivered to {topic} after 60 s")
    return len(messages)


def produce_at_rate(kafka: KafkaSettings, topic: str, messages: Sequence, rate_per_s: float,
                    sent_at: list[float]) -> None:
    """Produce ``messages`` (``.key``, ``.value``) at ``rate_per_s``, appending each one's wall time (s) to ``sent_at``.

    Message *i* is handed to the client at ``start + i / rate_per_s`` and flushed
    at once (no linger), so its wall time is its arrival at the broker within a
    millisecond or two on loopback.
    """
    from confluent_kafka import Producer

    producer = Producer({**confluent_config(kafka), "linger.ms": 0, "acks": "all",
                         "message.max.bytes": 8 << 20})
    start = time.time()
    for i, m in enumerate(messages):
        due = start + i / rate_per_s
        delay = due - time.time()
        if delay > 0:
            producer.flush()
            time.sleep(delay)
        producer.produce(topic, key=m.key, value=m.value)
        producer.poll(0)
        sent_at.append(time.time())
    producer.flush()


def _influx(storage: StorageSettings):
    from predmaint.connectors.storage import InfluxV1Writer

    return InfluxV1Writer(storage, create_database=False)


def processed_times(storage: StorageSettings) -> list[tuple[int, float]]:
    """``(window end ns, wall time s it was assessed)`` of every champion health point in ``storage``.

    The wall time is the window end plus the point's ``lag_s`` (the pipeline
    stamps the lag when it formats the point, right after ``assess``).
    """
    rows = _influx(storage).query('SELECT "lag_s" FROM "health" WHERE "champion" = true')
    if not rows:
        return []
    return [(int(t), int(t) / 1e9 + float(lag)) for t, lag in rows[0]["values"]]


class HealthPoller:
    """Polls InfluxDB every ``interval_s`` and records when each champion health point first became readable.

    ``seen[(asset, sensor, end_ns)]`` is the wall time (s) of the first poll that returned it.
    """

    def __init__(self, storage: StorageSettings, interval_s: float = 0.05):
        self.writer = _influx(storage)
        self.interval_s = interval_s
        self.seen: dict[tuple[str, str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-health-poller", daemon=True)
        self._since_ns = 0

    def _poll(self) -> None:
        q = (f'SELECT "health", "asset", "sensor" FROM "health" WHERE "champion" = true '
             f'AND time >= {self._since_ns}')
        try:
            rows = self.writer.query(q)
        except Exception:  # the database is created by the pipeline: not there yet
            return
        now = time.time()
        for t, _health, asset, sensor in (rows[0]["values"] if rows else []):
            key = (asset, sensor, int(t))
            if key not in self.seen:
                self.seen[key] = now
        if self.seen:
            # Windows close in event-time order per asset; look back an hour for slower assets.
            self._since_ns = max(0, max(k[2] for k in self.seen) - 3_600_000_000_000)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "HealthPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._poll()
