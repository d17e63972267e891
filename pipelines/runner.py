"""Running the dataflow and the simulator: what ``predmaint run`` and ``predmaint simulate`` do."""

from __future__ import annotations

import fcntl
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from predmaint.connectors import fleet_simulator, kafka_io, metrics
from predmaint.domain import Point
from predmaint.errors import InvalidMessage, PredmaintError
from predmaint.pipelines.dataflow import FlowIO, build_flow
from predmaint.settings import Settings
from predmaint.telemetry import Reading, decode_reading, encode_reading

log = logging.getLogger(__name__)


#: In the recovery directory: held while its partitions are created.
RECOVERY_INIT_LOCK = ".init.lock"


def recovery_config(settings: Settings) -> RecoveryConfig | None:
    """Bytewax recovery for ``settings``, creating its partitions on first use.

    The processes of a cluster (``-i``/``-a``) that share the directory start together, and two
    creating the partitions at once fail ("table parts already exists": one of the bench's two
    processes died of it): the first to take the lock creates them, the others find them made.
    """
    r = settings.recovery
    if not r.enabled:
        return None
    d = Path(r.dir)
    if not d.exists() or not any(d.glob("part-*.sqlite3")):
        d.mkdir(parents=True, exist_ok=True)
        with open(d / RECOVERY_INIT_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not any(d.glob("part-*.sqlite3")):
                init_db_dir(d, r.partitions)
    return RecoveryConfig(d, backup_interval=timedelta(seconds=r.backup_interval_s))


def _predmaint_cause(exc: BaseException) -> PredmaintError | None:
    """The :class:`PredmaintError` that ``exc`` is, or was raised because of (following ``__cause__``).

    bytewax re-raises an error from a sink's ``write_batch`` as it is, but
    wraps one from ``snapshot()``, ``build_part()`` or an operator in a
    ``BytewaxRuntimeError`` whose ``__cause__`` is the original.

    Examples
    --------
    >>> from predmaint.errors import StorageError
    >>> try:
    ...     try:
    ...         raise StorageError("storage: InfluxDB at http://db:8086: HTTP 404 on /write: database not found")
    ...     except StorageError as inner:
    ...         raise RuntimeError("(src/outputs.rs:366:42): error snapshotting StatefulSink") from inner
    ... except RuntimeError as outer:
    ...     print(_predmaint_cause(outer))
    storage: InfluxDB at http://db:8086: HTTP 404 on /write: database not found
    >>> _predmaint_cause(KeyError("a bug")) is None
    True
    """
    found = _in_causes(exc, PredmaintError)
    return found if isinstance(found, PredmaintError) else None


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised because of, a ``KeyboardInterrupt`` (following ``__cause__``)."""
    return _in_causes(exc, KeyboardInterrupt) is not None


def _in_causes(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` along ``exc``'s ``__cause__`` chain (``exc`` included), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


_panic_hook_installed = False


@contextmanager
def _no_rust_panic_report() -> Iterator[None]:
    """Keep bytewax's single-worker driver from printing a Rust panic report over predmaint's own errors.

    A Python error that stops a dataflow travels through bytewax as a Rust
    panic. bytewax's cluster driver (several workers or processes) installs a
    panic hook that hands the error back quietly; its single-worker driver
    (``run_main``, which ``cli_main`` uses for one worker) keeps Rust's
    default hook, which prints "thread '<unnamed>' panicked at ..." and a
    backtrace, burying the cause. Running the cluster driver once, on an empty
    dataflow, installs its hook for the whole process (Rust panic hooks are
    global). Afterwards that hook prints the error through ``sys.excepthook``,
    so while the flow runs the hook skips the errors the command line reports
    itself (a :class:`PredmaintError`, or ``KeyboardInterrupt``) and passes
    every other one on. Running one worker under the cluster driver instead
    would cost more: 23–62 % more CPU time for the same flow, measured here (its
    main thread takes the GIL every millisecond to look for signals).
    """
    global _panic_hook_installed
    if not _panic_hook_installed:
        flow = Dataflow("predmaint-panic-hook")
        op.inspect("inspect", op.input("input", flow, TestingSource([])))
        cluster_main(flow, [], 0)
        _panic_hook_installed = True
    previous = sys.excepthook

    def excepthook(kind, value, tb):
        if not (_interrupted(value) or _predmaint_cause(value) is not None):
            previous(kind, value, tb)

    sys.excepthook = excepthook
    try:
        yield
    finally:
        sys.excepthook = previous


@contextmanager
def _observed(settings: Settings, process_id: int) -> Iterator[None]:
    """The ``/metrics`` endpoint and the status line of this process while the dataflow runs."""
    m = settings.metrics
    server = metrics.serve_metrics(metrics.METRICS, m.port + process_id, m.host) if m.port else None
    if server is not None:
        log.info("metrics: serving /metrics on port %d", m.port + process_id)
    reporter = metrics.StatusReporter(metrics.METRICS, m.status_interval_s).start() if m.status_interval_s else None
    try:
        yield
    finally:
        if reporter is not None:
            reporter.stop()
        if server is not None:
            server.shutdown()
            server.server_close()


def run_pipeline(settings: Settings, *, workers: int = 1, tail: bool = True,
                 process_id: int | None = None, addresses: list[str] | None = None) -> None:
    """Run the dataflow until the input ends (``tail=False``) or forever.

    A :class:`PredmaintError` that stops the dataflow (storage refused a
    write, or stayed unavailable longer than ``storage.retry_for_s``) is
    raised as itself, whatever bytewax wrapped it in, and without a Rust
    panic report on stderr, so that the command line reports it in one line.
    Other errors (bugs) keep bytewax's chain and their traceback.
    """
    kafka_io.ensure_topics(settings.kafka)
    flow = build_flow(settings, tail=tail, metrics=metrics.METRICS)
    quiet = _no_rust_panic_report() if workers == 1 and addresses is None else nullcontext()
    try:
        with quiet, _observed(settings, process_id or 0):
            cli_main(flow, workers_per_process=workers, process_id=process_id, addresses=addresses,
                     epoch_interval=timedelta(seconds=settings.recovery.snapshot_interval_s),
                     recovery_config=recovery_config(settings))
    except PredmaintError:
        raise
    except Exception as exc:
        if _interrupted(exc):
            # Ctrl-C (SIGINT) reaches the flow inside an operator or a source; bytewax wraps it in a
            # BytewaxRuntimeError, which would print a traceback for what is an operator's stop.
            raise KeyboardInterrupt from None
        cause = _predmaint_cause(exc)
        if cause is None:
            raise
        raise cause from None


def simulate(settings: Settings, *, stop: threading.Event | None = None) -> dict:
    """Produce the simulated fleet's telemetry (and a few invalid messages); return the ground truth.

    With ``simulator.mode: realtime`` the telemetry is stamped at wall-clock
    time and produced as that time comes (after ``realtime_backfill_h`` of
    history at once) until ``stop`` is set; the ground truth is written before
    live data starts, so it names the fault's wall-clock onset.
    """
    kafka_io.ensure_topics(settings.kafka)
    if settings.simulator.mode == "realtime":
        return _simulate_realtime(fleet_simulator.realtime_settings(settings, time.time_ns() // 1_000_000),
                                  stop or threading.Event())
    sent = kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic,
                            fleet_simulator.fleet_messages(settings))
    bad = kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic,
                           fleet_simulator.invalid_messages(settings))
    truth = fleet_simulator.ground_truth(settings)
    truth["messages"] = sent
    truth["invalid_messages"] = bad
    path = Path(settings.simulator.ground_truth_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=2))
    log.info("simulate: produced %d messages and %d invalid ones; ground truth in %s", sent, bad, path)
    return truth


def newest_event_ms(settings: Settings) -> int | None:
    """The newest ``ts_ms`` of the valid telemetry at the end of the telemetry topic, or ``None``."""
    newest = None
    for value in kafka_io.tail_values(settings.kafka, settings.kafka.telemetry_topic):
        try:
            ts = decode_reading(value).ts_ms
        except InvalidMessage:
            continue
        newest = ts if newest is None else max(newest, ts)
    return newest


def _simulate_realtime(settings: Settings, stop: threading.Event) -> dict:
    # A restarted simulator (compose restarts it on failure) goes on where the topic ends: sending its
    # backfill again would give the pipeline hours of late readings, dead-lettered one by one.
    start_ms = int(settings.simulator.start_time.timestamp() * 1000)
    resume_after = newest_event_ms(settings)
    if resume_after is not None and resume_after < start_ms:
        resume_after = None  # older data (another run): the backfill is new
    truth = {**fleet_simulator.ground_truth(settings), "hours": None}  # None: until stopped
    path = Path(settings.simulator.ground_truth_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=2))
    # The invalid messages first: the telemetry never ends (once: a resumed simulator sent them before).
    bad = 0 if resume_after is not None else kafka_io.produce(
        settings.kafka, settings.kafka.telemetry_topic, fleet_simulator.invalid_messages(settings))
    faults = ", ".join(f"{f['asset']} {f['kind']} from {f['start']}" for f in truth["faults"]) or "none"
    # On stdout (docker compose logs): where the live data starts and when the fault begins.
    if resume_after is None:
        print(f"simulate: realtime from {settings.simulator.start} ({settings.simulator.realtime_backfill_h:g} h "
              f"of history at once, then live until stopped); faults: {faults}", flush=True)
    else:
        resumed = datetime.fromtimestamp(resume_after / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
        print(f"simulate: realtime, resuming after {resumed} (the newest reading already in topic "
              f"{settings.kafka.telemetry_topic}), live until stopped; faults: {faults}", flush=True)
    messages = fleet_simulator.fleet_messages(settings, unbounded=True)
    if resume_after is not None:
        messages = (m for m in messages if m.ts_ms > resume_after)
    # The producer sends what it holds every linger_ms (20 ms), so each message leaves when it is due.
    live = fleet_simulator.paced(messages, now_ms=lambda: time.time_ns() // 1_000_000, stop=stop)
    sent = kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, live)
    truth.update(messages=sent, invalid_messages=bad)
    path.write_text(json.dumps(truth, indent=2))
    return truth


@dataclass(frozen=True)
class Replay:
    """What the dataflow emitted for a replayed recording."""

    #: Every point it would have stored (features, health, alerts, dead letters), in emission order.
    points: list[Point]
    #: Alert events as published on the alerts topic (decoded JSON).
    alerts: list[dict]
    #: Dead letters as published on the dead-letter topic (decoded JSON).
    dead_letters: list[dict]

    def health(self, model: str | None = None) -> list[Point]:
        """Health points, of one model (its label) or of all."""
        return [p for p in self.points if p.measurement == "health" and (model is None or p.tags["model"] == model)]


def telemetry_messages(readings: Iterable[Reading], topic: str = "telemetry") -> list[KafkaSourceMessage]:
    """Readings as the Kafka messages ``predmaint run`` would consume (envelope v1, key = asset)."""
    out = []
    for offset, r in enumerate(readings):
        # Scalars as JSON keep every digit; waveforms as float32, as the simulator sends them.
        encoding = "f32le-b64" if r.kind == "vibration" else "json"
        out.append(KafkaSourceMessage(key=r.asset.encode(), value=encode_reading(r, encoding), topic=topic,
                                      partition=0, offset=offset, timestamp=(1, r.ts_ms)))
    return out


def replay(settings: Settings, readings: Iterable[Reading]) -> Replay:
    """Run the real dataflow of ``settings`` over ``readings`` in this process and collect what it emits.

    The same :func:`~predmaint.pipelines.dataflow.build_flow` as ``predmaint run``, with
    bytewax's testing source and sinks in place of Kafka and storage; used by
    ``predmaint evaluate`` so that it measures exactly what the pipeline does.
    """
    points: list = []
    alerts: list = []
    dead: list = []
    io = FlowIO(telemetry=TestingSource(telemetry_messages(readings, settings.kafka.telemetry_topic)),
                points=TestingSink(points), alerts=TestingSink(alerts), dead_letters=TestingSink(dead))
    run_main(build_flow(settings, tail=False, io=io))
    return Replay([p for _, p in points], [json.loads(m.value) for m in alerts],
                  [json.loads(m.value) for m in dead])

