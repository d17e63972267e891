"""The dataflow's Kafka outputs (alerts, dead letters): a sink that waits for the broker, and never drops a message.

bytewax's own ``KafkaSink`` hands each batch to librdkafka and calls
``flush()`` with no timeout and no delivery report. librdkafka gives up on a
message after ``message.timeout.ms`` (300 s by default), and ``flush()`` then
returns as if it had been delivered: an alert raised during a broker outage of
more than five minutes was lost without a word, and until then the whole flow
sat inside that ``flush()``.

Here librdkafka never gives up on its own (``message.timeout.ms`` 0). A batch
is produced, then waited for in steps of :data:`_POLL_S` (so that Ctrl-C
reaches the flow), with a warning naming the topic and the count while the
broker does not take it, for at most ``kafka.retry_for_s``: the same
backpressure and the same bound as the storage sink. After that, or when the
broker refuses a message for good (too large, not authorised), the batch
raises :class:`~predmaint.errors.BrokerError` naming the topic and the cause;
the flow stops before the epoch is committed, and a restart writes the batch
again (alert ids are deterministic, so the notifier delivers each alert once).
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from predmaint.connectors.kafka_io import confluent_config
from predmaint.errors import BrokerError
from predmaint.settings import KafkaSettings

__all__ = ["DeliveredKafkaSink"]

log = logging.getLogger(__name__)

#: The longest wait inside librdkafka before Python runs again (signals, the bound, the warning).
_POLL_S = 0.5
#: How often a warning repeats while a batch waits for the broker.
_WARN_EVERY_S = 30.0


class _DeliveredPartition(StatelessSinkPartition[KafkaSinkMessage]):
    def __init__(self, kafka: KafkaSettings, topic: str):
        from confluent_kafka import Producer

        self.kafka, self.topic = kafka, topic
        self._producer = Producer({**confluent_config(kafka), "acks": "all", "message.timeout.ms": 0,
                                   "linger.ms": 5})
        self._refused: list[str] = []

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._refused.append(str(err))

    def write_batch(self, items: list[KafkaSinkMessage]) -> None:
        started = time.monotonic()
        for msg in items:
            while True:
                try:
                    self._producer.produce(msg.topic or self.topic, value=msg.value, key=msg.key,
                                           headers=cast(list, msg.headers), timestamp=msg.timestamp,
                                           on_delivery=self._delivered)
                    break
                except BufferError:  # librdkafka's queue is full: the broker is behind or away
                    self._producer.poll(_POLL_S)
                    self._wait(started, len(self._producer))
            self._producer.poll(0)
        self._wait_all(started)

    def _wait_all(self, started: float) -> None:
        warned = started
        while (left := self._producer.flush(_POLL_S)) > 0:
            self._wait(started, left)
            if time.monotonic() - warned >= _WARN_EVERY_S:
                warned = time.monotonic()
                log.warning("kafka output: %d message(s) for topic %s not taken by the broker %s after %.0f s: "
                            "the flow waits, for up to %g s in all (kafka.retry_for_s)", left, self.topic,
                            self.kafka.bootstrap, warned - started, self.kafka.retry_for_s)
        if self._refused:
            causes, self._refused = self._refused, []
            raise BrokerError(f"kafka output: the broker {self.kafka.bootstrap} refused {len(causes)} message(s) "
                              f"for topic {self.topic}: {causes[0]}")

    def _wait(self, started: float, pending: int) -> None:
        if time.monotonic() - started > self.kafka.retry_for_s:
            raise BrokerError(f"kafka output: {pending} message(s) for topic {self.topic} not taken by the broker "
                              f"{self.kafka.bootstrap} within {self.kafka.retry_for_s:g} s (kafka.retry_for_s); "
                              "a restart writes them again")

    def close(self) -> None:
        # Everything written was waited for in write_batch; close() may run while the worker unwinds,
        # where an exception becomes a Rust panic, so what is left is only logged.
        left = self._producer.flush(_POLL_S)
        if left:
            log.info("kafka output: closing with %d message(s) for topic %s not delivered; their epoch is "
                     "replayed on restart", left, self.topic)


class DeliveredKafkaSink(DynamicSink[KafkaSinkMessage]):
    """``KafkaSinkMessage`` items to ``topic``, each confirmed by the broker before the batch returns.

    Parameters
    ----------
    kafka : KafkaSettings
        The cluster (bootstrap, TLS, SASL) and ``retry_for_s``, how long a
        batch may wait for the broker.
    topic : str
        The topic of a message that names none.

    Examples
    --------
    >>> from predmaint.settings import KafkaSettings
    >>> sink = DeliveredKafkaSink(KafkaSettings(bootstrap="kafka:9092", retry_for_s=60), "alerts")
    >>> sink.topic, sink.kafka.retry_for_s
    ('alerts', 60)
    """

    def __init__(self, kafka: KafkaSettings, topic: str):
        self.kafka = kafka
        self.topic = topic

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DeliveredPartition:
        return _DeliveredPartition(self.kafka, self.topic)
