"""What ``predmaint run`` is doing: counters, a status line, a Prometheus ``/metrics`` endpoint, ``predmaint status``.

The dataflow counts with ``inspect`` steps wired beside the pure steps
(:mod:`predmaint.pipelines.dataflow`), so the steps themselves stay free of
I/O. bytewax runs every worker as a thread of one process, so one set of
in-process counters (:data:`METRICS`, prometheus-client objects, thread-safe)
covers all of a process's workers; a cluster of several processes has one
endpoint per process (``metrics.port`` + the process id). Counts start at 0
with the process; after a resume, what bytewax replays from the last snapshot
is counted again (the outputs are at-least-once too).

Exported on ``/metrics`` (Prometheus text format):

* ``predmaint_readings_total{kind}`` (counter): readings that passed decoding (valid telemetry);
* ``predmaint_windows_closed_total{kind}`` (counter): sensor windows closed and scored;
* ``predmaint_alert_events_total{state}`` (counter): alert events (raised, escalated, renotified, cleared);
* ``predmaint_dead_letters_total{step}`` (counter): inputs sent to the dead-letter topic, by step;
* ``predmaint_newest_event_seconds{partition}`` (gauge): newest event time read per Kafka partition (epoch s);
* ``predmaint_event_time_lag_seconds{partition}`` (gauge): wall clock minus that, computed when scraped;
* ``predmaint_consumed_offset{partition}`` (gauge): the highest Kafka offset read per partition (valid or
  dead-lettered): the pipeline's position, which Kafka's own lag tools cannot see (offsets live in
  bytewax recovery, not in a consumer group); the partition's end offset minus 1 minus this is its lag
  in messages.

The status line (logger ``predmaint.status``, every ``metrics.status_interval_s``)
gives the same figures::

    status: 41.2 readings/s (12360 total), 25 windows closed (+5), 1 alert event, 5 dead letters;
    event-time lag p0 2.1 s, p1 1.9 s, p2 2.0 s
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from predmaint.errors import ServiceError
from predmaint.settings import SENSOR_KINDS

#: The states of an alert event (:class:`predmaint.models.alerting.AlertEvent`).
ALERT_STATES = ("raised", "escalated", "renotified", "cleared")

__all__ = ["METRICS", "PipelineMetrics", "Status", "StatusReporter", "format_report", "format_status", "read_status",
           "serve_metrics"]

status_log = logging.getLogger("predmaint.status")


class _LagCollector:
    """``predmaint_event_time_lag_seconds``: computed at scrape time, so it grows while a partition is silent."""

    def __init__(self, metrics: "PipelineMetrics"):
        self._metrics = metrics

    def collect(self):
        family = GaugeMetricFamily("predmaint_event_time_lag_seconds",
                                   "Wall clock minus the newest event time seen, per Kafka partition",
                                   labels=["partition"])
        now = time.time()
        for partition, newest in sorted(self._metrics.newest_event_s().items()):
            family.add_metric([str(partition)], now - newest)
        yield family


class PipelineMetrics:
    """The figures of one ``predmaint run`` process, in a registry of their own.

    Examples
    --------
    >>> m = PipelineMetrics()
    >>> m.reading("vibration", partition=0, ts_ms=1_000)
    >>> m.reading("current", partition=0, ts_ms=3_000)
    >>> m.dead_letter("decode")
    >>> s = m.status()
    >>> s.readings, s.dead_letters, s.newest_event_s
    (2.0, 1.0, {'0': 3.0})
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.readings = Counter("predmaint_readings", "Readings that passed decoding", ["kind"],
                                registry=self.registry)
        self.windows = Counter("predmaint_windows_closed", "Sensor windows closed and scored", ["kind"],
                               registry=self.registry)
        self.alerts = Counter("predmaint_alert_events", "Alert events", ["state"], registry=self.registry)
        self.dead_letters = Counter("predmaint_dead_letters", "Inputs sent to the dead-letter topic", ["step"],
                                    registry=self.registry)
        self.newest = Gauge("predmaint_newest_event_seconds", "Newest event time seen per Kafka partition",
                            ["partition"], registry=self.registry)
        self.offset = Gauge("predmaint_consumed_offset", "Highest Kafka offset read per partition", ["partition"],
                            registry=self.registry)
        self._newest: dict[str, float] = {}
        self._offsets: dict[str, int] = {}
        self._children: dict[tuple[object, str], Any] = {}
        self._lock = threading.Lock()
        self.registry.register(_LagCollector(self))
        # A labelled counter exports nothing until a label value is used: start the expected
        # ones at 0, so that rates and sums are 0 (a line at zero), not "no data", until then.
        for kind in SENSOR_KINDS:
            self.readings.labels(kind)
            self.windows.labels(kind)
        for state in ALERT_STATES:
            self.alerts.labels(state)
        self.dead_letters.labels("decode")

    # --- called from the dataflow's inspect steps (worker threads) ---

    def _child(self, metric, value: str):
        """``metric.labels(value)``, looked up once: it is called for every reading, and ``labels`` takes a lock."""
        child = self._children.get((metric, value))
        if child is None:
            child = self._children[(metric, value)] = metric.labels(value)
        return child

    def reading(self, kind: str, partition: int | None, ts_ms: int, offset: int | None = None) -> None:
        """One valid reading of ``kind`` from ``partition`` (at ``offset``) with event time ``ts_ms``."""
        self._child(self.readings, kind).inc()
        key = "-" if partition is None else str(partition)
        t = ts_ms / 1000.0
        with self._lock:  # a max, not a last value: partitions are read by several threads
            if t > self._newest.get(key, float("-inf")):
                self._newest[key] = t
                self._child(self.newest, key).set(t)
        self._consumed(partition, offset)

    def _consumed(self, partition: int | None, offset: int | None) -> None:
        if partition is None or offset is None or offset < 0:
            return
        key = str(partition)
        with self._lock:
            if offset > self._offsets.get(key, -1):
                self._offsets[key] = offset
                self._child(self.offset, key).set(offset)

    def window(self, kind: str) -> None:
        self.windows.labels(kind).inc()

    def alert_event(self, state: str) -> None:
        self.alerts.labels(state).inc()

    def dead_letter(self, step: str, partition: int | None = None, offset: int | None = None) -> None:
        """One input dead-lettered by ``step``; a message's partition and offset count as consumed."""
        self.dead_letters.labels(step).inc()
        self._consumed(partition, offset)

    # --- read side ---

    def newest_event_s(self) -> dict[str, float]:
        with self._lock:
            return dict(self._newest)

    def status(self) -> "Status":
        """The current figures (what ``/metrics`` would answer now)."""
        return Status.from_families(self.registry.collect())


#: The counters of this process: every worker thread of ``predmaint run`` adds to them.
METRICS = PipelineMetrics()


@dataclass(frozen=True)
class Status:
    """The figures of a running pipeline: totals since it started, newest event time per partition."""

    readings: float = 0.0
    windows: float = 0.0
    alert_events: float = 0.0
    dead_letters: float = 0.0
    newest_event_s: dict[str, float] = field(default_factory=dict)
    lag_s: dict[str, float] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_families(cls, families) -> "Status":
        totals = {"predmaint_readings": 0.0, "predmaint_windows_closed": 0.0, "predmaint_alert_events": 0.0,
                  "predmaint_dead_letters": 0.0}
        newest: dict[str, float] = {}
        lag: dict[str, float] = {}
        offsets: dict[str, int] = {}
        for family in families:
            for sample in family.samples:
                if family.name in totals and sample.name == family.name + "_total":
                    totals[family.name] += sample.value
                elif sample.name == "predmaint_newest_event_seconds":
                    newest[sample.labels["partition"]] = sample.value
                elif sample.name == "predmaint_event_time_lag_seconds":
                    lag[sample.labels["partition"]] = sample.value
                elif sample.name == "predmaint_consumed_offset":
                    offsets[sample.labels["partition"]] = int(sample.value)
        return cls(totals["predmaint_readings"], totals["predmaint_windows_closed"],
                   totals["predmaint_alert_events"], totals["predmaint_dead_letters"], newest, lag, offsets)


def _duration(seconds: float) -> str:
    """A lag for people: seconds up to 2 minutes, then minutes, hours, days.

    Examples
    --------
    >>> [_duration(s) for s in (2.04, 300, 7200, 29e6)]
    ['2.0 s', '5.0 min', '2.0 h', '335.6 d']
    """
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _plural(n: float, word: str) -> str:
    return f"{n:g} {word}{'' if n == 1 else 's'}"


def format_status(now: Status, before: Status | None = None, elapsed_s: float = 0.0) -> str:
    """One status line; with ``before`` and ``elapsed_s``, the reading rate and new windows since then.

    Examples
    --------
    >>> a = Status(readings=100, windows=5)
    >>> b = Status(readings=400, windows=8, alert_events=1, dead_letters=2, lag_s={"1": 3.0, "0": 2.5})
    >>> print(format_status(b, a, 10.0).replace("; ", ";\\n"))
    status: 30.0 readings/s (400 total), 8 windows closed (+3), 1 alert event, 2 dead letters;
    event-time lag p0 2.5 s, p1 3.0 s
    >>> format_status(Status())
    'status: 0 readings, 0 windows closed, 0 alert events, 0 dead letters; event-time lag: no data yet'
    """
    if before is not None and elapsed_s > 0:
        head = (f"{(now.readings - before.readings) / elapsed_s:.1f} readings/s ({now.readings:g} total), "
                f"{_plural(now.windows, 'window')} closed (+{now.windows - before.windows:g})")
    else:
        head = f"{_plural(now.readings, 'reading')}, {_plural(now.windows, 'window')} closed"
    lags = ", ".join(f"p{p} {_duration(v)}" for p, v in sorted(now.lag_s.items(), key=lambda kv: _order(kv[0])))
    lag = f"event-time lag {lags}" if lags else "event-time lag: no data yet"
    counts = f"{_plural(now.alert_events, 'alert event')}, {_plural(now.dead_letters, 'dead letter')}"
    return f"status: {head}, {counts}; {lag}"


def _order(partition: str) -> tuple[int, str]:
    return (int(partition), "") if partition.isdigit() else (1 << 30, partition)


class StatusReporter:
    """Logs :func:`format_status` every ``interval_s`` on logger ``predmaint.status`` (a daemon thread)."""

    def __init__(self, metrics: PipelineMetrics, interval_s: float):
        self._metrics, self._interval_s = metrics, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="predmaint-status", daemon=True)

    def start(self) -> "StatusReporter":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        before, t0 = self._metrics.status(), time.monotonic()
        while not self._stop.wait(self._interval_s):
            now, t1 = self._metrics.status(), time.monotonic()
            status_log.info(format_status(now, before, t1 - t0))
            before, t0 = now, t1


def serve_metrics(metrics: PipelineMetrics, port: int, host: str = ""):
    """Start the ``/metrics`` HTTP endpoint on ``host:port`` (prometheus-client's server, a daemon thread).

    Returns the server (``shutdown()`` stops it), or ``None`` with one warning when the
    port is taken: the pipeline keeps running without its endpoint.
    """
    try:
        server, _ = start_http_server(port, addr=host or "0.0.0.0", registry=metrics.registry)
    except OSError as exc:
        logging.getLogger(__name__).warning("metrics: cannot serve /metrics on %s:%d (%s); set metrics.port "
                                            "to a free port, or 0 to turn the endpoint off",
                                            host or "0.0.0.0", port, exc.strerror or exc)
        return None
    return server


def read_status(url: str, timeout_s: float = 5.0) -> Status:
    """The figures a running pipeline's ``/metrics`` endpoint answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            text = answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        raise ServiceError(f"metrics endpoint {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"metrics endpoint {url}: cannot connect ({reason}); is `predmaint run` running "
                           f"with metrics.port set?") from None
    return Status.from_families(text_string_to_metric_families(text))


def format_report(url: str, status: Status) -> str:
    """What ``predmaint status`` prints: totals, then per partition the newest event time and its lag.

    Examples
    --------
    >>> print(format_report("http://h:9477/metrics", Status(10, 2, 0, 1, {"0": 1767225600.0}, {"0": 4.25}, {"0": 10})))
    pipeline at http://h:9477/metrics
      readings        10
      windows closed  2
      alert events    0
      dead letters    1
      partition 0     newest event 2026-01-01T00:00:00Z, event-time lag 4.2 s, offset 10
    """
    lines = [f"pipeline at {url}", f"  readings        {status.readings:g}", f"  windows closed  {status.windows:g}",
             f"  alert events    {status.alert_events:g}", f"  dead letters    {status.dead_letters:g}"]
    for p in sorted(status.newest_event_s, key=_order):
        newest = datetime.fromtimestamp(status.newest_event_s[p], tz=timezone.utc).isoformat(timespec="seconds")
        lag = status.lag_s.get(p)
        offset = status.offsets.get(p)
        lines.append(f"  partition {p:<5} newest event {newest.replace('+00:00', 'Z')}"
                     + (f", event-time lag {_duration(lag)}" if lag is not None else "")
                     + (f", offset {offset}" if offset is not None else ""))
    if not status.newest_event_s:
        lines.append("  no readings yet")
    return "\n".join(lines)
