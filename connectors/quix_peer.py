"""The predmaint pipeline written in Quix Streams, for ``make bench`` to measure against (a peer, not a product).

It does the same work as :func:`predmaint.pipelines.dataflow.build_flow` for
the bench fleet, with the same functions: ``intake.decode`` and
``intake.snapshot_features`` per message, a 5-minute event-time tumbling window
per asset, ``windows.window_features`` and ``steps.assess`` (champion and
challengers, alert rules) per closed window, ``points.to_points`` and the same
InfluxDB writer. It is written the way Quix Streams' documentation shows:
an ``Application`` with a consumer group, ``app.dataframe(topic)``, ``sdf.apply``
/ ``sdf.filter``, ``sdf.set_timestamp`` for event time, ``tumbling_window(...)
.collect().final()``, a stateful ``apply`` for the per-asset models (state in
RocksDB, pickled: the documented ``RocksDBOptions(dumps, loads)`` hook, since the
default JSON cannot hold models), and a ``BatchingSink`` that writes each
checkpoint's batch. Changelog topics and at-least-once processing stay at
Quix's defaults, as bytewax recovery stays on in the bench.

Left out because the bench data has none: dead letters (every bench message
is valid) and alert events on the alerts topic (a handful per run).

``quixstreams`` is a benchmark-only dependency (``pip install 'predmaint[bench]'``).
"""

from __future__ import annotations

import pickle
import resource
import threading
import time
from collections import namedtuple
from pathlib import Path

from predmaint.connectors.kafka_io import confluent_config
from predmaint.connectors.bench_io import peak_rss_mb
from predmaint.connectors.shelves import Suppressions
from predmaint.connectors.storage import open_writer
from predmaint.pipelines import intake, points, steps, windows
from predmaint.settings import Settings

__all__ = ["run_peer"]

_Msg = namedtuple("_Msg", "topic partition offset key value timestamp")


def run_peer(settings: Settings, consumer_group: str, state_dir: str, idle_timeout_s: float = 10.0,
             max_processing_s: float | None = None) -> dict:
    """Consume ``settings.kafka.telemetry_topic`` from the start until it has been idle ``idle_timeout_s``,
    or for at most ``max_processing_s`` after its first message (the consumer group has joined by then).

    Returns this process's CPU seconds, peak RSS (MB) and when processing began
    (the first message after the consumer group joined, wall time in s).
    """
    from quixstreams import Application, message_context
    from quixstreams.sinks import BatchingSink, SinkBatch
    from quixstreams.state.rocksdb import RocksDBOptions

    length_s = settings.window.length_s
    suppressions = Suppressions(settings.suppression)
    started: list[float] = []

    class InfluxSink(BatchingSink):
        """Every point of a checkpoint in one write, through predmaint's writer (retries included)."""

        def __init__(self) -> None:
            super().__init__()
            self.writer = open_writer(settings.storage)

        def write(self, batch: SinkBatch) -> None:
            self.writer.write([item.value for item in batch])

    def decode(value, key, timestamp, headers):
        if not started:
            started.append(time.time())
            if max_processing_s is not None:
                timer = threading.Timer(max_processing_s, app.stop)
                timer.daemon = True
                timer.start()
        ctx = message_context()
        return intake.decode(settings, _Msg(ctx.topic, ctx.partition, ctx.offset, key, value, (1, timestamp)))

    def window_features(window: dict) -> windows.AssetWindowFeatures:
        acc = windows.window_new()
        for snap in window["value"]:
            windows.window_add(acc, snap)
        return windows.window_features(settings, length_s, (int(window["start"] // (length_s * 1000)), acc))

    def assess(aw: windows.AssetWindowFeatures, state):
        asset_state, scored = steps.assess(settings, suppressions, state.get("asset"), aw)
        state.set("asset", asset_state)
        return scored

    # TLS and SASL as every other client has them (confluent_config); the address is Quix's own argument.
    security = {k: v for k, v in confluent_config(settings.kafka).items() if k != "bootstrap.servers"}
    app = Application(broker_address=settings.kafka.bootstrap, consumer_group=consumer_group,
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING",
                      rocksdb_options=RocksDBOptions(dumps=pickle.dumps, loads=pickle.loads),
                      consumer_extra_config={**security, "fetch.message.max.bytes": 8 << 20},
                      producer_extra_config=security)
    topic = app.topic(settings.kafka.telemetry_topic, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(topic)
    sdf = sdf.apply(decode, metadata=True)
    sdf = sdf.filter(lambda r: isinstance(r, intake.Reading))
    sdf = sdf.apply(lambda r: intake.snapshot_features(settings, r))
    sdf = sdf.filter(lambda s: isinstance(s, intake.Snapshot))
    sdf = sdf.set_timestamp(lambda snap, key, timestamp, headers: snap.ts_ms)
    sdf = sdf.tumbling_window(duration_ms=int(length_s * 1000),
                              grace_ms=int(settings.window.allowed_lateness_s * 1000)).collect().final()
    sdf = sdf.apply(window_features)
    sdf = sdf.apply(assess, stateful=True)
    sdf = sdf.apply(lambda scored: points.to_points(settings, scored), expand=True)
    sdf.sink(InfluxSink())
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    app.run(timeout=idle_timeout_s)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak_rss_mb(),
            "started_at": started[0] if started else None}
