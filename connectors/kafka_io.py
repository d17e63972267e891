"""Kafka outside the dataflow: topic admin and producing (kafka-python), reading a topic to its end.

Inside the dataflow, bytewax's Kafka connectors (confluent-kafka) are used
(:mod:`predmaint.pipelines.dataflow`); the telemetry source is
:class:`TelemetrySource`, bytewax's source with a check for a topic that was
recreated or truncated under it (:class:`RecreatedTopicCheck`, also used by
``predmaint notify``).

Every Kafka client predmaint creates takes its configuration from one
function per library, built from the ``kafka`` settings (bootstrap servers,
TLS, SASL): :func:`confluent_config` for confluent-kafka / librdkafka (the
bytewax source and sinks, ``predmaint notify``, :func:`read_topic`, the
start-up probe) and :func:`kafka_python_config` for kafka-python (topic
admin, the producers). Secrets are read from the environment variables the
settings name; a missing one fails at once, naming the setting.
:func:`redacted` hides them for printing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Iterable, Iterator, cast

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import StatefulSourcePartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError as KafkaPythonError
from kafka.errors import TopicAlreadyExistsError

from predmaint.errors import BrokerError, SettingsError
from predmaint.settings import KafkaSettings
from predmaint.telemetry import MAX_FIELD_CHARS, MAX_REASON_CHARS, clip, clip_original

log = logging.getLogger(__name__)

#: Client configuration keys whose values are secrets (both libraries).
SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password", "sasl_plain_password", "ssl_password"})


def _secret(env: str, value: str | None, setting: str) -> str:
    if not value:
        raise SettingsError(f"kafka.{setting}: {env} is not set")
    return value


def _sasl_credentials(kafka: KafkaSettings) -> tuple[str, str]:
    password = kafka.sasl_password
    return (_secret(kafka.sasl_username_env, kafka.sasl_username, "sasl_username_env"),
            _secret(kafka.sasl_password_env, password.get() if password else None, "sasl_password_env"))


def _ssl_key_password(kafka: KafkaSettings) -> str | None:
    if not kafka.ssl_key_password_env:
        return None
    secret = kafka.ssl_key_password
    return _secret(kafka.ssl_key_password_env, secret.get() if secret else None, "ssl_key_password_env")


def confluent_config(kafka: KafkaSettings) -> dict[str, str]:
    """The confluent-kafka (librdkafka) client configuration for ``kafka``: bootstrap servers, TLS, SASL.

    bytewax's ``KafkaSource``/``KafkaSink`` take it as ``add_config``;
    :func:`read_topic` and ``predmaint notify`` add their consumer settings to it.

    Examples
    --------
    >>> import os
    >>> os.environ.update(PLANT_KAFKA_USER="predmaint", PLANT_KAFKA_PASSWORD="s3cret")
    >>> k = KafkaSettings(bootstrap="kafka-1.plant:9093", security_protocol="SASL_SSL",
    ...                   sasl_mechanism="SCRAM-SHA-512", sasl_username_env="PLANT_KAFKA_USER",
    ...                   sasl_password_env="PLANT_KAFKA_PASSWORD", ssl_cafile="/etc/predmaint/plant-ca.pem")
    >>> redacted(confluent_config(k))  # doctest: +NORMALIZE_WHITESPACE
    {'bootstrap.servers': 'kafka-1.plant:9093', 'security.protocol': 'SASL_SSL',
     'ssl.ca.location': '/etc/predmaint/plant-ca.pem', 'sasl.mechanism': 'SCRAM-SHA-512',
     'sasl.username': 'predmaint', 'sasl.password': '***'}
    >>> confluent_config(KafkaSettings(bootstrap="localhost:9092"))
    {'bootstrap.servers': 'localhost:9092', 'security.protocol': 'PLAINTEXT'}
    """
    conf = {"bootstrap.servers": kafka.bootstrap, "security.protocol": kafka.security_protocol}
    if kafka.uses_tls:
        if kafka.ssl_cafile:
            conf["ssl.ca.location"] = kafka.ssl_cafile
        if kafka.ssl_certfile:
            conf["ssl.certificate.location"] = kafka.ssl_certfile
            conf["ssl.key.location"] = kafka.ssl_keyfile
        key_password = _ssl_key_password(kafka)
        if key_password is not None:
            conf["ssl.key.password"] = key_password
        if not kafka.ssl_check_hostname:
            conf["ssl.endpoint.identification.algorithm"] = "none"
    if kafka.uses_sasl:
        username, password = _sasl_credentials(kafka)
        conf.update({"sasl.mechanism": kafka.sasl_mechanism, "sasl.username": username, "sasl.password": password})
    return conf


def kafka_python_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The kafka-python client configuration for ``kafka`` (keyword arguments of its clients).

    Examples
    --------
    >>> import os
    >>> os.environ.update(PLANT_KAFKA_USER="predmaint", PLANT_KAFKA_PASSWORD="s3cret")
    >>> k = KafkaSettings(bootstrap="kafka-1.plant:9093", security_protocol="SASL_SSL",
    ...                   sasl_mechanism="SCRAM-SHA-256", sasl_username_env="PLANT_KAFKA_USER",
    ...                   sasl_password_env="PLANT_KAFKA_PASSWORD", ssl_cafile="/etc/predmaint/plant-ca.pem")
    >>> redacted(kafka_python_config(k))  # doctest: +NORMALIZE_WHITESPACE
    {'bootstrap_servers': 'kafka-1.plant:9093', 'security_protocol': 'SASL_SSL',
     'ssl_check_hostname': True, 'ssl_cafile': '/etc/predmaint/plant-ca.pem', 'sasl_mechanism': 'SCRAM-SHA-256',
     'sasl_plain_username': 'predmaint', 'sasl_plain_password': '***'}
    """
    conf: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap, "security_protocol": kafka.security_protocol}
    if kafka.uses_tls:
        conf["ssl_check_hostname"] = kafka.ssl_check_hostname
        if kafka.ssl_cafile:
            conf["ssl_cafile"] = kafka.ssl_cafile
        if kafka.ssl_certfile:
            conf["ssl_certfile"] = kafka.ssl_certfile
            conf["ssl_keyfile"] = kafka.ssl_keyfile
        key_password = _ssl_key_password(kafka)
        if key_password is not None:
            conf["ssl_password"] = key_password
    if kafka.uses_sasl:
        username, password = _sasl_credentials(kafka)
        conf.update({"sasl_mechanism": kafka.sasl_mechanism, "sasl_plain_username": username,
                     "sasl_plain_password": password})
    return conf


def redacted(conf: dict[str, Any]) -> dict[str, Any]:
    """``conf`` with every secret shown as ``***`` (for printing a client configuration)."""
    return {k: "***" if k in SECRET_KEYS and v else v for k, v in conf.items()}


def check_files(kafka: KafkaSettings) -> None:
    """Fail, naming the setting, if a TLS file the settings name cannot be read."""
    for setting in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(kafka, setting)
        if path and kafka.uses_tls and not os.access(path, os.R_OK):
            problem = "does not exist" if not os.path.exists(path) else "cannot be read"
            raise SettingsError(f"kafka.{setting}: {path} {problem}")


def _unreachable(kafka: KafkaSettings, what: str, exc: BaseException) -> BrokerError:
    return BrokerError(f"kafka.bootstrap: {what}: no Kafka broker answered at {kafka.bootstrap} "
                       f"({type(exc).__name__}; kafka.security_protocol {kafka.security_protocol})")


def kafka_python_client(kafka: KafkaSettings, factory: Any, what: str, **options: Any) -> Any:
    """A kafka-python client (``KafkaAdminClient``, ``KafkaProducer``...) for ``kafka``, or one line if none answers."""
    check_files(kafka)
    try:
        return factory(**kafka_python_config(kafka), **options)
    except KafkaPythonError as exc:
        raise _unreachable(kafka, what, exc) from None


#: How long a command waits for a broker to answer before it says so (the start-up probe).
STARTUP_PROBE_TIMEOUT_S = 10.0


def ensure_topics(kafka: KafkaSettings, topics: Iterable[str] | None = None) -> None:
    """Create the pipeline's topics if they do not exist yet."""
    names = list(topics or (kafka.telemetry_topic, kafka.dead_letter_topic, kafka.alerts_topic))
    admin = kafka_python_client(kafka, KafkaAdminClient, "creating topics", client_id="predmaint-admin")
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
    producer = kafka_python_client(kafka, KafkaProducer, f"producing to {topic}", linger_ms=20, acks="all",
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


def _reader(kafka: KafkaSettings, group: str):
    """A consumer for reading with assigned partitions: no commits, an event at each partition's end."""
    from confluent_kafka import Consumer

    return Consumer({**confluent_config(kafka), "group.id": group,
                     "enable.auto.commit": False, "enable.partition.eof": True})


def _read_to_end(consumer, partitions: int, timeout_s: float, idle_s: float, reading: str) -> Iterator[Any]:
    """The messages of the ``partitions`` assigned to ``consumer`` up to each one's end (at most ``timeout_s``).

    Stops once every partition has reported its end and nothing arrived for
    ``idle_s``; an error other than an end is a :class:`BrokerError` naming what was ``reading``.
    """
    from confluent_kafka import KafkaError

    at_end: set[int] = set()
    deadline = time.monotonic() + timeout_s
    last_message = time.monotonic()
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and (error := msg.error()) is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise BrokerError(f"kafka: {reading}: {error}")
            at_end.add(msg.partition() or 0)
        elif msg is not None:
            last_message = time.monotonic()
            yield msg
            continue
        if len(at_end) == partitions and time.monotonic() - last_message >= idle_s:
            return


def read_topic(kafka: KafkaSettings | str, topic: str, timeout_s: float = 30.0,
               idle_s: float = 1.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every message currently in ``topic``, read with assigned partitions (no consumer group).

    ``kafka`` is the settings (or, for an unsecured cluster, just its
    bootstrap servers). Reads until every partition has reported its end and
    nothing new arrived for ``idle_s``: Tansu's high watermarks are not
    reliable enough to stop at.
    """
    from confluent_kafka import TopicPartition

    if isinstance(kafka, str):
        kafka = KafkaSettings(bootstrap=kafka)
    consumer = _reader(kafka, "predmaint-reader")
    try:
        meta = consumer.list_topics(topic, timeout=10)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            raise BrokerError(f"kafka: reading topic {topic!r}: not found on {kafka.bootstrap}")
        parts = list(meta.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        return [(msg.key(), msg.value()) for msg in _read_to_end(
            consumer, len(parts), timeout_s, idle_s, f"reading topic {topic!r} on {kafka.bootstrap}")]
    finally:
        consumer.close()


def tail_values(kafka: KafkaSettings, topic: str, per_partition: int = 200, timeout_s: float = 15.0) -> list[bytes]:
    """The values of the last ``per_partition`` messages of each partition of ``topic`` (none if it does not exist).

    For a producer that resumes where it stopped (``predmaint simulate
    --realtime`` after a restart): the newest event times are among them.
    Reads from a little before each partition's high watermark to its end.
    """
    from confluent_kafka import TopicPartition

    consumer = _reader(kafka, "predmaint-tail")
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            return []
        starts = []
        for p in meta.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s, cached=False)
            if high > low:
                starts.append(TopicPartition(topic, p, max(low, high - per_partition)))
        if not starts:
            return []
        consumer.assign(starts)
        messages = _read_to_end(consumer, len(starts), timeout_s, 0.0,
                                f"reading the end of topic {topic!r} on {kafka.bootstrap}")
        return [value for msg in messages if (value := msg.value()) is not None]
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


def probe(kafka: KafkaSettings, timeout_s: float = 10.0) -> str:
    """Reach the brokers with the configured TLS/SASL and read the cluster's metadata; say what was found.

    Raises :class:`BrokerError` in one line naming ``kafka.bootstrap`` (nothing
    answered), the SASL settings (authentication refused) or the topic a
    broker refuses to describe (authorisation); librdkafka's own log lines
    are kept off stderr.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    check_files(kafka)
    errors: list[Any] = []
    quiet = logging.getLogger("predmaint.kafka.librdkafka")  # the probe's errors say it in one line
    quiet.propagate = False
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    # Typed loosely: confluent-kafka's own hints (2.13+) allow only scalar values, yet it takes callbacks.
    config: dict[str, Any] = {**confluent_config(kafka), "error_cb": errors.append, "logger": quiet,
                              "socket.connection.setup.timeout.ms": str(int(timeout_s * 1000))}
    admin = AdminClient(config)
    try:
        meta = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        admin.poll(0)  # serves error_cb: the connection's own error says more than "Failed to get metadata"
        from confluent_kafka import KafkaError

        telling = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN]
        cause = (telling or errors or [exc.args[0]])[0]
        raise _probe_error(kafka, cause) from None
    ours = (kafka.telemetry_topic, kafka.dead_letter_topic, kafka.alerts_topic)
    for name in ours:
        topic = meta.topics.get(name)
        if topic is not None and topic.error is not None:
            raise BrokerError(f"kafka: topic {name!r} on {kafka.bootstrap}: {topic.error.str()} "
                              f"(check the ACLs of the SASL user)")
    missing = [name for name in ours if name not in meta.topics]
    present = f"topics {', '.join(n for n in ours if n in meta.topics) or 'none yet'}"
    created = f"; {', '.join(missing)} created at start-up" if missing else ""
    return (f"Kafka at {kafka.bootstrap}: {len(meta.brokers)} broker(s) answered "
            f"({kafka.security_protocol}{'/' + kafka.sasl_mechanism if kafka.sasl_mechanism else ''}); "
            f"{present}{created}")


def _probe_error(kafka: KafkaSettings, cause: Any) -> BrokerError:
    from confluent_kafka import KafkaError

    code = cause.code() if hasattr(cause, "code") else None
    text = cause.str() if hasattr(cause, "str") else str(cause)
    if code == KafkaError._AUTHENTICATION or "SASL" in text or "uthentication" in text:
        return BrokerError(f"kafka.sasl_username_env, kafka.sasl_password_env: the broker at {kafka.bootstrap} "
                           f"refused the credentials ({kafka.sasl_mechanism or 'no SASL'}): {text}")
    if code == KafkaError._SSL or "SSL" in text or "certificate" in text:
        return BrokerError(f"kafka.ssl_cafile: TLS with {kafka.bootstrap} failed: {text}")
    return BrokerError(f"kafka.bootstrap: no Kafka broker answered at {kafka.bootstrap} "
                       f"(kafka.security_protocol {kafka.security_protocol}): {text}")


# -- a topic that was recreated or truncated under a consumer -------------------------------------------------

#: How long a next offset must stay outside its partition's offsets before it counts as a recreated topic.
#: Tansu answers at once; a real Kafka's new partition leader can report a high watermark below a valid
#: offset for a moment (until its followers catch up), which must not restart a partition.
OUT_OF_RANGE_CONFIRM_S = 2.0


class RecreatedTopicCheck:
    """Whether one partition's next offset lies outside the offsets the broker holds; warns once per restart.

    A broker that lost its data (Tansu restarted: it keeps topics in memory;
    a topic deleted and created again; retention that removed what was not
    read yet) leaves a consumer with an offset beyond the partition's end or
    below its start. Apache Kafka answers such a fetch with
    ``OFFSET_OUT_OF_RANGE`` (then librdkafka applies ``auto.offset.reset``),
    but Tansu answers with no records and no error: the consumer waits
    forever (seen in ``predmaint chaos``, scenario ``broker_restarted_empty``:
    a streaming run that stalls, a ``--until-end`` run that never ends).

    The partition's offsets are read from the high and low watermarks that
    every fetch response carries (``get_watermark_offsets(cached=True)``, no
    request): measured on Tansu 0.6, those are right, while the ListOffsets
    answer (``get_watermark_offsets(cached=False)``, ``list_offsets``) said 1
    for 166 messages and must not be relied on.

    :meth:`check` is called when a poll brought nothing. It returns the
    offset to read from instead (the partition's start) once the next offset
    stayed outside ``low..high`` for :data:`OUT_OF_RANGE_CONFIRM_S`, after one
    warning naming the topic, partition, offset and range. Reading the
    recreated partition from its start is the safe choice for both
    consumers: what was produced after the loss is new data that would
    otherwise be skipped, and a message read twice is harmless (the dataflow
    drops repeated readings in ``dedupe`` and dead-letters readings for
    windows it already closed; the notify outbox ingests each ``event_id``
    once). What the old topic held beyond the last snapshot is gone with the
    broker and cannot be recovered by any choice made here.
    """

    def __init__(self, what: str, topic: str, partition: int, *, confirm_s: float = OUT_OF_RANGE_CONFIRM_S):
        self.what, self.topic, self.partition, self.confirm_s = what, topic, partition, confirm_s
        self._since: float | None = None

    def check(self, consumer: Any, next_offset: int) -> int | None:
        """The offset to restart this partition from, or None while ``next_offset`` is within the partition."""
        from confluent_kafka import TopicPartition

        if next_offset < 0:  # a logical offset (beginning, end): librdkafka resolves it itself
            return None
        low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, self.partition), cached=True)
        if high < 0 or low < 0 or low <= next_offset <= high:  # no fetch answered yet, or within the range
            self._since = None
            return None
        now = time.monotonic()
        if self._since is None:
            self._since = now
        if now - self._since < self.confirm_s:
            return None
        self._since = None
        where = "beyond its end" if next_offset > high else "below its start"
        log.warning("%s: topic %s partition %d: the next offset to read, %d, is %s (the partition holds "
                    "offsets %d to %d): the topic was recreated or truncated (a broker that lost its data?); "
                    "reading the partition again from its start, offset %d", self.what, self.topic,
                    self.partition, next_offset, where, low, high - 1, low)
        return low

    def jumped(self, expected: int, got: int) -> None:
        """Warn if the first message after (re)assignment is not at the offset asked for.

        A broker that answers ``OFFSET_OUT_OF_RANGE`` (Apache Kafka) makes
        librdkafka reset the offset itself (``auto.offset.reset``); the jump is
        only seen here.
        """
        if 0 <= expected != got:
            cause = ("the topic was recreated or truncated" if got < expected
                     else "deleted by retention or compaction, or the topic was recreated")
            log.warning("%s: topic %s partition %d: asked for offset %d, the first message read is at offset %d "
                        "(%s): reading on from there", self.what, self.topic, self.partition, expected, got, cause)


class _CheckedKafkaPartition(StatefulSourcePartition[Any, int | None]):
    """One Kafka partition of :class:`TelemetrySource`; its state is the next offset to read.

    bytewax's own partition, with :class:`RecreatedTopicCheck` on every empty
    poll, and the offset advanced only by messages (an error event carries no
    position of its own).
    """

    def __init__(self, config: dict[str, Any], topic: str, partition: int, offset: int, batch_size: int):
        from confluent_kafka import Consumer

        self._consumer = Consumer(config)
        self._topic, self._partition, self._batch_size = topic, partition, batch_size
        self._check = RecreatedTopicCheck("predmaint run", topic, partition)
        self._offset = offset
        self._assign(offset)
        self._eof = False

    def _assign(self, offset: int) -> None:
        from confluent_kafka import TopicPartition

        self._consumer.assign([TopicPartition(self._topic, self._partition, offset)])
        self._offset, self._first = offset, True

    def next_batch(self) -> list[Any]:
        from bytewax.connectors.kafka import KafkaError as SourceError
        from bytewax.connectors.kafka import KafkaSourceMessage
        from confluent_kafka import KafkaError

        if self._eof:
            raise StopIteration()
        batch: list[Any] = []
        for msg in self._consumer.consume(self._batch_size, 0.001):
            error = msg.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                self._eof = True  # StopIteration at the next call, so that this batch is emitted
                break
            offset = msg.offset()
            item = KafkaSourceMessage(key=msg.key(), value=msg.value(), topic=msg.topic(),
                                      headers=cast(list, msg.headers() or []), latency=msg.latency(),
                                      offset=offset, partition=msg.partition(), timestamp=msg.timestamp())
            if error is not None:
                batch.append(SourceError(error, item))
                continue
            assert offset is not None  # a message (not an error event) has its offset
            if self._first:
                self._check.jumped(self._offset, offset)
                self._first = False
            batch.append(item)
            self._offset = offset + 1
        if not batch and not self._eof:
            restart = self._check.check(self._consumer, self._offset)
            if restart is not None:
                self._assign(restart)
        return batch

    def snapshot(self) -> int | None:
        return self._offset

    def close(self) -> None:
        self._consumer.close()


class TelemetrySource(KafkaSource):
    """bytewax's ``KafkaSource`` for the telemetry topic, which notices a recreated or truncated topic.

    A resumed or running pipeline whose offsets are beyond a partition's end
    (or below its start) reads that partition again from its start, with a
    warning; see :class:`RecreatedTopicCheck` for why that, and not a stop, is
    the right thing. ``auto.offset.reset`` is ``earliest`` for the same
    reason: librdkafka's default (``latest``) would skip, without a word,
    whatever a broker that answers ``OFFSET_OUT_OF_RANGE`` holds after the
    loss; the first message then shows the jump and is warned about.
    Partitions are assigned, not subscribed (no consumer group), and their
    offsets live in bytewax recovery, as with bytewax's own source.
    """

    def build_part(self, step_id: str, for_part: str,  # type: ignore[override]  # bytewax names its own class
                   resume_state: int | None) -> _CheckedKafkaPartition:
        idx, topic = for_part.split("-", 1)
        config = {"group.id": "BYTEWAX_IGNORED", "enable.auto.commit": "false",
                  "bootstrap.servers": ",".join(self._brokers), "enable.partition.eof": str(not self._tail),
                  **self._add_config, "auto.offset.reset": "earliest"}
        offset = self._starting_offset if resume_state is None else resume_state
        return _CheckedKafkaPartition(config, topic, int(idx), offset, self._batch_size)


def telemetry_source(kafka: KafkaSettings, *, tail: bool) -> TelemetrySource:
    """The dataflow's telemetry input: :class:`TelemetrySource` on ``kafka.telemetry_topic`` from its beginning."""
    from confluent_kafka import OFFSET_BEGINNING

    return TelemetrySource([kafka.bootstrap], [kafka.telemetry_topic], tail=tail, starting_offset=OFFSET_BEGINNING,
                           add_config=confluent_config(kafka), raise_on_errors=False)
