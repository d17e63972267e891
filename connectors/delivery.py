"""Durable, ordered, at-least-once delivery of alert events to webhooks and CMMS.

Pipeline position: the ``alerts`` Kafka topic -> :func:`run_notify` -> SQLite
outbox (:class:`Outbox`) -> :class:`Deliverer` -> HTTP targets.

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
  CMMS APIs document no idempotency key, so that narrow window can create a
  second work order; everything else goes through the alert-id -> work-order
  map (create once, then update, then close).
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
  :func:`deadletter_to_influx`.
* **Secrets stay secret.** Credentials are read from environment variables
  named by ``secret_env`` at send time. They are not stored in objects, reprs,
  the outbox, log records, exception messages or dead letters; failure
  reasons are built from status codes and exception class names only, never
  from server-supplied text, and are additionally scrubbed of every
  configured secret value.

HTTP is done with the standard library's :mod:`http.client`: one request per
attempt, no redirects, no hidden retry layer. (In this environment ``import
urllib3`` resolves to ``urllib3-future`` 2.25, which overwrote urllib3 2.8;
avoiding it keeps timeout and retry behaviour exactly what is written here.)
The timeout applies to connecting and to each socket read.
"""

from __future__ import annotations

import concurrent.futures as cf
import email.utils
import functools
import http.client
import json
import logging
import os
import random
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from predmaint.connectors.retry import backoff_delay
from predmaint.connectors import cmms, webhooks
from predmaint.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    TargetConfigError,
)
from predmaint.settings.targets import DEFAULT_TIMEOUT_S, Target, build_targets

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TargetConfigError",
    "DeliveryError",
    "Delivered",
    "Deliverer",
    "IngestRecord",
    "IngestResult",
    "NotifyStats",
    "Outbox",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "Target",
    "attempt",
    "backoff_delay",
    "build_targets",
    "deadletter_to_influx",
    "drain_outbox",
    "parse_retry_after",
    "run_notify",
]

log = logging.getLogger(__name__)

_USER_AGENT = "predmaint-notify/0.1"
# Response bodies are only parsed for a work-order id; cap what we read so a
# misbehaving server cannot make us buffer megabytes.
_MAX_RESPONSE_BYTES = 256 * 1024
_RETRYABLE_STATUS = {408, 425, 429}
_RETRY_AFTER_STATUS = {429, 503}


class _Redactor:
    """Replace configured secret values in free text (defence in depth)."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self._env = sorted({t.secret_env for t in targets if t.secret_env})

    def __call__(self, text: str) -> str:
        for name in self._env:
            value = os.environ.get(name)
            if value and len(value) >= 4 and value in text:
                text = text.replace(value, "***")
            if value and value.startswith(webhooks.SECRET_PREFIX):
                core = value[len(webhooks.SECRET_PREFIX):]
                if len(core) >= 4 and core in text:
                    text = text.replace(core, "***")
        return text


# --------------------------------------------------------------------------
# Retry timing
# --------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header into seconds from ``now``.

    Parameters
    ----------
    value : str or None
        Delay in seconds (``"120"``) or an HTTP date
        (``"Wed, 21 Oct 2015 07:28:00 GMT"``).
    now : float, optional
        Unix time the date form is measured from (default ``time.time()``).

    Returns
    -------
    float or None
        Seconds to wait (0 for a date in the past), or ``None`` when absent
        or unparsable.

    Examples
    --------
    >>> parse_retry_after("1")
    1.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=90.0)
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, dt.timestamp() - current)


# --------------------------------------------------------------------------
# One attempt
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """A successful (2xx) attempt.

    Attributes
    ----------
    status : int
        HTTP status.
    action : str
        ``notify``, ``create``, ``update`` or ``close``.
    work_order_id : str or None
        Work order created by a ``create`` (CMMS targets).
    elapsed_s : float
        Request duration.
    """

    status: int
    action: str
    work_order_id: str | None
    elapsed_s: float


def _ids(event: Mapping[str, Any]) -> dict[str, str]:
    return {"asset": str(event.get("asset", "?")), "alert_id": str(event.get("alert_id", "?")),
            "event_id": str(event.get("event_id", "?"))}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The process's TLS client context (certificates and host names verified).

    Building one loads the CA store, which costs far more than a request; one
    context is safe to share between the worker threads.
    """
    return ssl.create_default_context()


def _http(method: str, url: str, headers: Mapping[str, str], body: bytes,
          timeout_s: float) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout_s, context=_tls_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read(_MAX_RESPONSE_BYTES)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def _network_reason(exc: BaseException, timeout_s: float) -> str:
    # Reasons are built from the exception *class* only: messages of socket,
    # ssl and http.client errors can contain host names, paths or echoed data.
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timeout after {timeout_s:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        ConnectionAbortedError, http.client.IncompleteRead, http.client.BadStatusLine)):
        return f"connection dropped without a complete response ({type(exc).__name__})"
    if isinstance(exc, socket.gaierror):
        return "host name resolution failed"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({type(exc).__name__})"
    return f"network error ({type(exc).__name__})"


def attempt(target: Target, event: Mapping[str, Any], *, work_order_id: str | None = None,
            now: float | None = None, redact: Callable[[str], str] | None = None) -> Delivered:
    """Make one delivery attempt of one event to one target.

    Parameters
    ----------
    target : Target
        Where to send.
    event : mapping
        The alert event.
    work_order_id : str, optional
        Known work order of this alert on this target (CMMS kinds): update or
        close it instead of creating one.
    now : float, optional
        Unix time for the ``webhook-timestamp`` (default: the current time;
        each retry is signed afresh, as the spec requires).
    redact : callable, optional
        Scrubber applied to failure reasons.

    Returns
    -------
    Delivered
        On a 2xx answer.

    Raises
    ------
    RetryableDeliveryError
        Timeout, connection failure, 408/425/429/5xx (``retry_after`` set
        from ``Retry-After`` on 429/503).
    PermanentDeliveryError
        3xx, other 4xx, an event that cannot be mapped, or a missing secret.
    """
    ids = dict(_ids(event), target=target.name)
    scrub = redact or (lambda s: s)
    try:
        req = cmms.build_request(target.kind, event, work_order_id, target.options)
    except cmms.AlertMappingError as exc:
        raise PermanentDeliveryError(scrub(f"cannot map event: {exc}"), **ids) from None
    try:
        secret = target.secret()
    except TargetConfigError as exc:
        raise PermanentDeliveryError(str(exc), **ids) from None
    body = req.body_bytes()
    headers = {"User-Agent": _USER_AGENT, **req.headers}
    if target.kind == "webhook":
        event_id = ids["event_id"]
        ts = int(time.time() if now is None else now)
        if secret:
            try:
                headers.update(webhooks.sign(secret, event_id, ts, body))
            except ValueError as exc:
                # Only our own messages ('empty', 'not valid base64', bad id).
                raise PermanentDeliveryError(f"cannot sign: {exc}", **ids) from None
        else:
            # Unsigned, but still carrying the idempotency key receivers dedup on.
            headers.update({"webhook-id": event_id, "webhook-timestamp": str(ts)})
    headers.update(cmms.auth_headers(target.kind, secret))
    url = target.url.rstrip("/") + req.path if req.path else target.url

    t0 = time.monotonic()
    try:
        status, resp_headers, data = _http(req.method, url, headers, body, target.timeout_s)
    except (OSError, http.client.HTTPException) as exc:
        raise RetryableDeliveryError(scrub(_network_reason(exc, target.timeout_s)), **ids) from None
    elapsed = time.monotonic() - t0

    if 200 <= status < 300:
        wo = None
        if req.action == "create":
            wo = cmms.extract_work_order_id(target.kind, status, resp_headers, data)
        return Delivered(status=status, action=req.action, work_order_id=wo, elapsed_s=elapsed)
    retry_after = None
    if status in _RETRY_AFTER_STATUS:
        retry_after = parse_retry_after(resp_headers.get("retry-after"))
    if status in _RETRYABLE_STATUS or 500 <= status < 600:
        raise RetryableDeliveryError(f"HTTP {status}", http_status=status, retry_after=retry_after, **ids)
    if 300 <= status < 400:
        raise PermanentDeliveryError(f"HTTP {status} redirect (redirects are not followed; fix the URL)",
                                     http_status=status, **ids)
    raise PermanentDeliveryError(f"HTTP {status}", http_status=status, **ids)


# --------------------------------------------------------------------------
# Outbox
# --------------------------------------------------------------------------


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    alert_id     TEXT,
    asset        TEXT NOT NULL,
    state        TEXT,
    notify       INTEGER NOT NULL,
    payload      TEXT NOT NULL,
    source       TEXT,
    inserted_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq              INTEGER NOT NULL REFERENCES events(seq),
    target           TEXT NOT NULL,
    asset            TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_attempt_at  REAL,
    last_error       TEXT,
    http_status      INTEGER,
    done_at          REAL,
    PRIMARY KEY (seq, target)
);
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status, target, asset, seq);
CREATE TABLE IF NOT EXISTS work_orders (
    target         TEXT NOT NULL,
    alert_id       TEXT NOT NULL,
    work_order_id  TEXT NOT NULL,
    status         TEXT NOT NULL,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (target, alert_id)
);
CREATE TABLE IF NOT EXISTS offsets (
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""

_REQUIRED_FIELDS = ("event_id", "alert_id", "state", "severity")


@dataclass(frozen=True)
class IngestRecord:
    """One raw alert message to put into the outbox.

    Attributes
    ----------
    value : bytes, str or mapping
        The JSON event.
    key : bytes, optional
        Kafka key (asset id), used when the event lacks ``asset``.
    topic, partition, offset : optional
        Kafka coordinates; when given, the partition's next offset is stored
        in the same transaction as the event.
    """

    value: bytes | str | Mapping[str, Any] | None
    key: bytes | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass
class IngestResult:
    """Outcome of :meth:`Outbox.ingest`.

    Attributes
    ----------
    inserted : int
        New events.
    duplicates : int
        Events whose ``event_id`` was already in the outbox (ignored).
    suppressed : int
        New events with ``notify: false`` (recorded, never sent).
    rejected : list of dict
        Undecodable or incomplete messages, as dead-letter records.
    """

    inserted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def _iso_now(now: float | None = None) -> str:
    ts = time.time() if now is None else now
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class Outbox:
    """SQLite outbox: events, per-target delivery state, work orders, offsets.

    One instance belongs to one thread (SQLite connections are not shared).
    Several processes may open the same file (WAL mode); only one deliverer
    should run on it at a time.

    Parameters
    ----------
    path : str or os.PathLike
        Database file; created with its schema if missing.

    Examples
    --------
    >>> ob = Outbox(":memory:")
    >>> ev = {"event_id": "a:1", "alert_id": "a", "state": "raised", "severity": "alarm",
    ...       "asset": "pump-03"}
    >>> r = ob.ingest([IngestRecord(json.dumps(ev).encode(), topic="alerts", partition=0, offset=7)], ["ops"])
    >>> (r.inserted, ob.next_offsets("alerts"), ob.counts())
    (1, {0: 8}, {'pending': 1})
    >>> ob.ingest([IngestRecord(json.dumps(ev).encode(), topic="alerts", partition=0, offset=7)], ["ops"]).duplicates
    1
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        # Autocommit mode: every transaction is an explicit BEGIN IMMEDIATE, so
        # the write lock is taken up front and never upgraded mid-transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 30000")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before we act on it (alert volume is low,
        # an fsync per transaction is affordable).
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)

    # -- transactions -----------------------------------------------------

    def _tx(self) -> "_Tx":
        return _Tx(self._db)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    # -- ingest -------------------------------------------------------------

    def ingest(self, records: Iterable[IngestRecord], targets: Sequence[str],
               now: float | None = None) -> IngestResult:
        """Insert events and advance offsets in one transaction.

        Parameters
        ----------
        records : iterable of IngestRecord
            Messages in consumption order.
        targets : sequence of str
            Target names to create delivery rows for (``pending``, or
            ``suppressed`` when ``notify`` is false).
        now : float, optional
            Unix time used for bookkeeping.

        Returns
        -------
        IngestResult

        Notes
        -----
        ``INSERT OR IGNORE`` on the unique ``event_id`` makes re-ingesting a
        message (replay after an offset reset, producer retry) a no-op.
        Rejected messages still advance the offset: a poison message must not
        stop the consumer.
        """
        now = time.time() if now is None else now
        result = IngestResult()
        next_offsets: dict[tuple[str, int], int] = {}
        with self._tx() as db:
            for rec in records:
                if rec.topic is not None and rec.partition is not None and rec.offset is not None:
                    k = (rec.topic, int(rec.partition))
                    next_offsets[k] = max(next_offsets.get(k, 0), int(rec.offset) + 1)
                source = (f"{rec.topic}/{rec.partition}/{rec.offset}"
                          if rec.topic is not None else None)
                event, problem = _decode_event(rec)
                if event is None:
                    result.rejected.append(_ingest_deadletter(rec, problem, now))
                    continue
                notify = event.get("notify", True) is not False
                cur = db.execute(
                    "INSERT OR IGNORE INTO events (event_id, alert_id, asset, state, notify, payload,"
                    " source, inserted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (event["event_id"], event["alert_id"], event["asset"], event["state"], int(notify),
                     json.dumps(event, sort_keys=True, separators=(",", ":")), source, now),
                )
                if cur.rowcount == 0:
                    result.duplicates += 1
                    continue
                seq = cur.lastrowid
                result.inserted += 1
                if not notify:
                    result.suppressed += 1
                status = "pending" if notify else "suppressed"
                reason = None if notify else "notify=false (shelved or maintenance window)"
                db.executemany(
                    "INSERT INTO deliveries (seq, target, asset, status, next_attempt_at, last_error,"
                    " done_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(seq, t, event["asset"], status, now, reason, None if notify else now)
                     for t in targets],
                )
            for (topic, part), nxt in next_offsets.items():
                db.execute(
                    "INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?)"
                    " ON CONFLICT (topic, partition) DO UPDATE SET"
                    " next_offset = MAX(next_offset, excluded.next_offset)",
                    (topic, part, nxt),
                )
        return result

    def next_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to consume per partition of ``topic`` (empty if never consumed)."""
        rows = self._db.execute("SELECT partition, next_offset FROM offsets WHERE topic = ?", (topic,))
        return {int(r["partition"]): int(r["next_offset"]) for r in rows}

    # -- delivery state -----------------------------------------------------

    def heads(self, targets: Sequence[str]) -> list[sqlite3.Row]:
        """Oldest pending delivery per (target, asset): the only sendable ones.

        Returns rows with ``seq, target, asset, attempts, next_attempt_at,
        payload``.
        """
        if not targets:
            return []
        marks = ",".join("?" * len(targets))
        return list(self._db.execute(
            f"SELECT d.seq, d.target, d.asset, d.attempts, d.next_attempt_at, e.payload"
            f" FROM (SELECT MIN(seq) AS seq, target FROM deliveries"
            f"       WHERE status = 'pending' AND target IN ({marks}) GROUP BY target, asset) h"
            f" JOIN deliveries d ON d.seq = h.seq AND d.target = h.target"
            f" JOIN events e ON e.seq = d.seq ORDER BY d.next_attempt_at, d.seq",
            list(targets),
        ))

    def start_attempt(self, seq: int, target: str, now: float) -> int:
        """Count an attempt *before* making it; return the new attempt number.

        Counting first means a process that crashes mid-request (or is killed
        by a poison event) still converges to the dead-letter limit.
        """
        with self._tx() as db:
            db.execute("UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?"
                       " WHERE seq = ? AND target = ?", (now, seq, target))
            row = db.execute("SELECT attempts FROM deliveries WHERE seq = ? AND target = ?",
                             (seq, target)).fetchone()
        return int(row["attempts"])

    def mark_delivered(self, seq: int, target: str, http_status: int, now: float, *,
                       work_order: tuple[str, str, str] | None = None) -> None:
        """Mark a delivery done; optionally record the alert's work order.

        ``work_order`` is ``(alert_id, work_order_id, status)`` with status
        ``open`` or ``closed``; it is written in the same transaction so the
        map never disagrees with what was delivered.
        """
        with self._tx() as db:
            db.execute("UPDATE deliveries SET status = 'delivered', http_status = ?, done_at = ?,"
                       " last_error = NULL WHERE seq = ? AND target = ?", (http_status, now, seq, target))
            if work_order is not None:
                alert_id, wo_id, wo_status = work_order
                db.execute(
                    "INSERT INTO work_orders (target, alert_id, work_order_id, status, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, alert_id) DO UPDATE SET"
                    " work_order_id = excluded.work_order_id, status = excluded.status,"
                    " updated_at = excluded.updated_at",
                    (target, alert_id, wo_id, wo_status, now),
                )

    def schedule_retry(self, seq: int, target: str, next_at: float, reason: str,
                       http_status: int | None) -> None:
        """Record a retryable failure and when to try again."""
        with self._tx() as db:
            db.execute("UPDATE deliveries SET next_attempt_at = ?, last_error = ?, http_status = ?"
                       " WHERE seq = ? AND target = ?", (next_at, reason, http_status, seq, target))

    def finish(self, seq: int, target: str, status: str, reason: str, http_status: int | None,
               now: float) -> None:
        """Close a delivery without sending: ``dead`` or ``suppressed``."""
        if status not in ("dead", "suppressed"):
            raise ValueError(status)
        with self._tx() as db:
            db.execute("UPDATE deliveries SET status = ?, last_error = ?, http_status = ?, done_at = ?"
                       " WHERE seq = ? AND target = ?", (status, reason, http_status, now, seq, target))

    def work_order(self, target: str, alert_id: str) -> tuple[str, str] | None:
        """``(work_order_id, status)`` of an alert on a target, or ``None``."""
        row = self._db.execute("SELECT work_order_id, status FROM work_orders WHERE target = ? AND alert_id = ?",
                               (target, alert_id)).fetchone()
        return (row["work_order_id"], row["status"]) if row else None

    def counts(self, targets: Sequence[str] | None = None) -> dict[str, int]:
        """Number of deliveries per status (optionally for some targets)."""
        if targets:
            marks = ",".join("?" * len(targets))
            rows = self._db.execute(f"SELECT status, COUNT(*) AS n FROM deliveries WHERE target IN ({marks})"
                                    " GROUP BY status", list(targets))
        else:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    def pending(self, targets: Sequence[str]) -> int:
        """Pending deliveries for the given targets."""
        return self.counts(targets).get("pending", 0)

    def pending_other_targets(self, targets: Sequence[str]) -> dict[str, int]:
        """Pending deliveries of targets no longer configured (reported at start)."""
        marks = ",".join("?" * len(targets)) or "''"
        rows = self._db.execute(f"SELECT target, COUNT(*) AS n FROM deliveries WHERE status = 'pending'"
                                f" AND target NOT IN ({marks}) GROUP BY target", list(targets))
        return {r["target"]: int(r["n"]) for r in rows}


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _decode_event(rec: IngestRecord) -> tuple[dict[str, Any] | None, str]:
    value = rec.value
    if value is None:
        return None, "empty message (tombstone)"
    if isinstance(value, Mapping):
        event = dict(value)
    else:
        try:
            event = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            return None, "message is not valid JSON"
    if not isinstance(event, dict):
        return None, "message is not a JSON object"
    if not event.get("asset") and rec.key:
        try:
            event["asset"] = rec.key.decode("utf-8")
        except UnicodeDecodeError:
            pass
    missing = [f for f in (*_REQUIRED_FIELDS, "asset") if not event.get(f)]
    if missing:
        return None, f"event lacks {missing}"
    for f in ("event_id", "alert_id", "asset", "state"):
        if not isinstance(event[f], str):
            return None, f"event field {f!r} is not a string"
    return event, ""


def _ingest_deadletter(rec: IngestRecord, problem: str, now: float) -> dict[str, Any]:
    asset = "?"
    if rec.key:
        asset = rec.key.decode("utf-8", "replace")
    where = f"{rec.topic}/{rec.partition}/{rec.offset}" if rec.topic is not None else "direct submit"
    return {
        "event_id": None, "alert_id": None, "asset": asset, "site": None, "line": None,
        "state": None, "severity": None, "target": "(ingest)", "kind": "ingest",
        "reason": f"rejected at ingest ({where}): {problem}", "http_status": None, "attempts": 0,
        "permanent": True, "event_time": None, "failed_at": _iso_now(now),
    }


# --------------------------------------------------------------------------
# Dead letters
# --------------------------------------------------------------------------


def _deadletter(event: Mapping[str, Any], target: Target, reason: str, http_status: int | None,
                attempts: int, permanent: bool, now: float) -> dict[str, Any]:
    return {
        "event_id": event.get("event_id"), "alert_id": event.get("alert_id"),
        "asset": event.get("asset"), "site": event.get("site"), "line": event.get("line"),
        "state": event.get("state"), "severity": event.get("severity"),
        "target": target.name, "kind": target.kind, "reason": reason,
        "http_status": http_status, "attempts": attempts, "permanent": permanent,
        "event_time": event.get("time"), "failed_at": _iso_now(now),
    }


def _to_ns(iso: str | None) -> int | None:
    if not iso:
        return None
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    # Integer arithmetic: float seconds * 1e9 would lose nanosecond precision.
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def deadletter_to_influx(record: Mapping[str, Any]) -> dict[str, Any]:
    """Format a dead-letter record as an InfluxDB point dict.

    Parameters
    ----------
    record : mapping
        A dead letter from :class:`Deliverer` / :func:`run_notify`.

    Returns
    -------
    dict
        ``{"measurement": "delivery_deadletter", "tags": ..., "fields": ...,
        "time": <int ns>}``, accepted by ``influxdb_client.Point.from_dict``
        and easy to render as line protocol.

    Notes
    -----
    Tags stay low-cardinality (site, line, asset, target, kind, state); the
    alert and event ids are fields, never tags. The timestamp is the event
    time when known, so rewriting the same dead letter overwrites the point
    instead of adding one; the ``state`` tag keeps a raise and a clear of the
    same instant apart.

    Examples
    --------
    >>> p = deadletter_to_influx({"event_id": "a:1", "alert_id": "a", "asset": "pump-03",
    ...     "site": "plant-1", "line": "line-a", "state": "raised", "severity": "alarm",
    ...     "target": "ops", "kind": "webhook", "reason": "HTTP 500", "http_status": 500,
    ...     "attempts": 5, "permanent": False, "event_time": "2026-11-23T12:05:00Z",
    ...     "failed_at": "2026-11-23T12:06:00Z"})
    >>> p["measurement"], p["tags"]["asset"], p["fields"]["attempts"], p["time"]
    ('delivery_deadletter', 'pump-03', 5, 1795435500000000000)
    """
    tags = {k: str(record[k]) for k in ("site", "line", "asset", "target", "kind", "state")
            if record.get(k) not in (None, "")}
    fields: dict[str, Any] = {
        "reason": str(record.get("reason", "")),
        "attempts": int(record.get("attempts") or 0),
        "permanent": bool(record.get("permanent", False)),
    }
    for k in ("alert_id", "event_id", "severity"):
        if record.get(k) not in (None, ""):
            fields[k] = str(record[k])
    if record.get("http_status") is not None:
        fields["http_status"] = int(record["http_status"])
    ts = _to_ns(record.get("event_time")) or _to_ns(record.get("failed_at")) or time.time_ns()
    return {"measurement": "delivery_deadletter", "tags": tags, "fields": fields, "time": ts}


# --------------------------------------------------------------------------
# Deliverer
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _InFlight:
    """A request being sent, with what recording its outcome needs."""

    future: cf.Future[Delivered]
    seq: int
    event: dict[str, Any]
    attempt_no: int
    #: The work order the request updates or closes, as read when it started.
    work_order_id: str | None


class Deliverer:
    """Deliver outbox events to targets: ordered per asset, retried, dead-lettered.

    Parameters
    ----------
    targets : iterable of Target or mapping
        Target configs (see :meth:`Target.from_config`).
    outbox : Outbox or path
        The outbox (a path opens one owned by this deliverer).
    max_workers : int, optional
        Concurrent HTTP requests (different assets/targets only; per asset
        and target there is never more than one in flight).
    on_deadletter : callable, optional
        Called with each dead-letter dict as it is produced (e.g. to write it
        to InfluxDB via :func:`deadletter_to_influx`). Dead letters are also
        returned by :meth:`pump` and :meth:`drain`.
    rng : random.Random, optional
        Jitter source.

    Raises
    ------
    TargetConfigError
        Invalid targets or a ``secret_env`` that is not set (fail at start,
        not at the first alert).

    Notes
    -----
    All SQLite access happens on the calling thread; worker threads only do
    HTTP. Attempt counts, retry times and the work-order map live in the
    outbox, so a restarted deliverer continues where the previous one stopped.
    """

    def __init__(self, targets: Iterable[Target | Mapping[str, Any]], outbox: Outbox | str | os.PathLike[str],
                 *, max_workers: int = 4, on_deadletter: Callable[[dict[str, Any]], Any] | None = None,
                 rng: random.Random | None = None) -> None:
        self.targets = build_targets(targets)
        for t in self.targets.values():
            t.secret()  # fail fast; the value is discarded
            if t.kind == "webhook" and not t.secret_env:
                log.warning("target %s: webhook deliveries will be unsigned (no secret_env)", t.name)
        self._own_outbox = not isinstance(outbox, Outbox)
        self.outbox = Outbox(outbox) if self._own_outbox else outbox  # type: ignore[arg-type]
        self._names = list(self.targets)
        self._pool = cf.ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="deliver")
        self._in_flight: dict[tuple[str, str], _InFlight] = {}
        self._paused_until: dict[str, float] = {}
        # When the next head not in flight may be sent (None: there is none),
        # as the last scheduling round found it. Heads come from a GROUP BY
        # over the outbox; remembering the answer spares reading them again
        # just to know how long to wait. Stale whenever this deliverer changed
        # the outbox since; a restart starts stale and reads the outbox.
        self._next_due_at: float | None = None
        self._next_due_stale = True
        self._on_deadletter = on_deadletter
        self._rng = rng or random.Random()
        self._redact = _Redactor(self.targets.values())
        self.stats = {"attempts": 0, "delivered": 0, "retries": 0, "dead": 0, "suppressed": 0}
        orphans = self.outbox.pending_other_targets(self._names)
        for name, n in orphans.items():
            log.warning("outbox has %d pending deliveries for target %s, which is not configured", n, name)

    # -- input ----------------------------------------------------------------

    def submit(self, event: Mapping[str, Any] | bytes | str) -> bool:
        """Put one event into the outbox (no Kafka offset); ``True`` if new."""
        return self.ingest([IngestRecord(event)]).inserted == 1

    def ingest(self, records: Sequence[IngestRecord]) -> IngestResult:
        """Put records into the outbox; each one that cannot be parsed becomes a dead letter."""
        res = self.outbox.ingest(records, self._names)
        if res.inserted:
            self._next_due_stale = True
        for dl in res.rejected:
            log.error("notify: %s", dl["reason"])
            self._emit(dl)
        return res

    # -- scheduling -------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests currently being sent."""
        return len(self._in_flight)

    def pending(self) -> int:
        """Deliveries not yet delivered, dead-lettered or suppressed."""
        return self.outbox.pending(self._names)

    def next_due_in(self, now: float | None = None) -> float | None:
        """Seconds until the next sendable delivery is due (0 if overdue).

        Answered from the last scheduling round; the outbox is read only when
        this deliverer has changed it since. Events another process writes to
        the outbox are seen by the next round (:meth:`pump`).
        """
        now = time.time() if now is None else now
        if self._next_due_stale:
            waiting = [self._due_at(h) for h in self.outbox.heads(self._names)
                       if (h["target"], h["asset"]) not in self._in_flight]
            self._next_due_at = min(waiting, default=None)
            self._next_due_stale = False
        return None if self._next_due_at is None else max(0.0, self._next_due_at - now)

    def pump(self, max_wait_s: float = 0.0) -> list[dict[str, Any]]:
        """One scheduling round: harvest results, start due attempts, wait a bit.

        Parameters
        ----------
        max_wait_s : float
            Longest time to block waiting for an in-flight request.

        Returns
        -------
        list of dict
            Dead letters produced in this round.
        """
        dead: list[dict[str, Any]] = []
        self._harvest(dead)
        self._start_due(dead)
        if max_wait_s > 0 and self._in_flight:
            wait = max_wait_s
            due = self.next_due_in()
            if due is not None:
                wait = min(wait, max(due, 0.01))
            cf.wait(self._futures(), timeout=wait, return_when=cf.FIRST_COMPLETED)
            # A second round only when the wait changed something; otherwise
            # it would read the outbox again to find what the first one did.
            if self._harvest(dead) or self.next_due_in() == 0.0:
                self._start_due(dead)
        return dead

    def drain(self, timeout_s: float | None = None, poll_s: float = 0.25) -> list[dict[str, Any]]:
        """Deliver until nothing is pending (or ``timeout_s`` passes).

        Returns
        -------
        list of dict
            All dead letters produced.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        dead: list[dict[str, Any]] = []
        while True:
            dead.extend(self.pump(poll_s))
            if not self._in_flight and self.pending() == 0:
                return dead
            if deadline is not None and time.monotonic() >= deadline:
                return dead
            if not self._in_flight:
                due = self.next_due_in()
                time.sleep(min(poll_s, due if due is not None else poll_s))

    def close(self, wait_s: float = 30.0) -> list[dict[str, Any]]:
        """Finish in-flight requests (recording their outcome), then stop.

        Returns
        -------
        list of dict
            Dead letters produced while finishing.
        """
        dead: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_s
        while self._in_flight and time.monotonic() < deadline:
            cf.wait(self._futures(), timeout=0.2)
            self._harvest(dead)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_outbox:
            self.outbox.close()
        return dead

    def __enter__(self) -> "Deliverer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals --------------------------------------------------------------

    def _emit(self, dl: dict[str, Any]) -> None:
        if self._on_deadletter is not None:
            try:
                self._on_deadletter(dl)
            except Exception:  # the callback must not kill delivery
                log.exception("dead-letter callback failed for target %s, asset %s, alert %s",
                              dl.get("target"), dl.get("asset"), dl.get("alert_id"))

    def _futures(self) -> list[cf.Future[Delivered]]:
        return [f.future for f in self._in_flight.values()]

    def _due_at(self, head: Mapping[str, Any]) -> float:
        # A paused target (Retry-After) holds back every asset, due or not.
        return max(float(head["next_attempt_at"]), self._paused_until.get(head["target"], 0.0))

    def _start_due(self, dead: list[dict[str, Any]]) -> None:
        """One scheduling round: start every due head, remember when the next one is due."""
        now = time.time()
        waiting: list[float] = []
        uncovered = False
        for h in self.outbox.heads(self._names):
            if (h["target"], h["asset"]) in self._in_flight:
                continue
            due_at = self._due_at(h)
            if due_at > now:
                waiting.append(due_at)
            elif not self._start(h, dead, now):
                uncovered = True
        self._next_due_at = min(waiting, default=None)
        # A head closed without sending uncovers the next event of its asset,
        # which this query could not return.
        self._next_due_stale = uncovered

    def _start(self, head: Mapping[str, Any], dead: list[dict[str, Any]], now: float) -> bool:
        """Start an attempt for a due head; ``False`` when the head is closed without one."""
        target = self.targets[head["target"]]
        seq = int(head["seq"])
        event = json.loads(head["payload"])
        ids = _ids(event)
        if int(head["attempts"]) >= target.max_attempts:
            # Only reachable after a crash during the last attempt.
            self._dead(dead, seq, target, event, "attempts exhausted (process stopped during the "
                       "last attempt)", None, int(head["attempts"]), False, now)
            return False
        wo_id = self._open_work_order(target, ids["alert_id"])
        if wo_id is None and target.kind != "webhook" and event.get("state") == "cleared":
            reason = "no open work order to close (alert was never delivered or is already closed)"
            self.outbox.finish(seq, target.name, "suppressed", reason, None, now)
            self.stats["suppressed"] += 1
            log.info("target %s: cleared event %s of asset %s, alert %s not sent: %s",
                     target.name, ids["event_id"], ids["asset"], ids["alert_id"], reason)
            return False
        n = self.outbox.start_attempt(seq, target.name, now)
        self.stats["attempts"] += 1
        fut = self._pool.submit(attempt, target, event, work_order_id=wo_id, redact=self._redact)
        self._in_flight[(target.name, head["asset"])] = _InFlight(fut, seq, event, n, wo_id)
        return True

    def _open_work_order(self, target: Target, alert_id: str) -> str | None:
        """The alert's open work order on a CMMS target (``None`` for webhooks, or when there is none)."""
        if target.kind == "webhook":
            return None
        wo = self.outbox.work_order(target.name, alert_id)
        return wo[0] if wo and wo[1] == "open" else None

    def _harvest(self, dead: list[dict[str, Any]]) -> bool:
        """Record the outcome of every finished request; ``True`` if there was any."""
        done = [(key, f) for key, f in self._in_flight.items() if f.future.done()]
        if done:
            self._next_due_stale = True  # outcomes move heads and retry times
        for key, flight in done:
            del self._in_flight[key]
            self._record(dead, self.targets[key[0]], flight)
        return bool(done)

    def _record(self, dead: list[dict[str, Any]], target: Target, flight: _InFlight) -> None:
        """Write a finished request's outcome to the outbox: delivered, retry or dead letter."""
        now = time.time()
        try:
            res = flight.future.result()
        except RetryableDeliveryError as exc:
            self._retry_or_dead(dead, target, flight, now, self._redact(exc.reason), exc.http_status,
                                exc.retry_after)
        except PermanentDeliveryError as exc:
            self._dead(dead, flight.seq, target, flight.event, self._redact(exc.reason), exc.http_status,
                       flight.attempt_no, True, now)
        except Exception as exc:  # a bug, not a network condition: keep the event, retry later
            self._retry_or_dead(dead, target, flight, now, f"internal error ({type(exc).__name__})",
                                internal=True)
        else:
            self._delivered(target, flight, res, now)

    def _retry_or_dead(self, dead: list[dict[str, Any]], target: Target, flight: _InFlight, now: float,
                       reason: str, http_status: int | None = None, retry_after: float | None = None, *,
                       internal: bool = False) -> None:
        """Schedule the next attempt of a failed delivery, or dead-letter it once attempts run out.

        ``internal`` marks a bug of ours rather than a failure of the target:
        it is logged as an error and does not count as a delivery retry.
        """
        n = flight.attempt_no
        if n >= target.max_attempts:
            gave_up = reason if internal else f"{reason}; gave up after {n} attempts"
            self._dead(dead, flight.seq, target, flight.event, gave_up, http_status, n, False, now)
            return
        delay = backoff_delay(n, target.backoff_base_s, target.backoff_max_s, self._rng)
        if retry_after is not None:
            # Never earlier than the server asked.
            delay = max(delay, self._pause(target, retry_after, now))
        self.outbox.schedule_retry(flight.seq, target.name, now + delay, reason, http_status)
        if not internal:
            self.stats["retries"] += 1
        ids = _ids(flight.event)
        log.log(logging.ERROR if internal else logging.WARNING,
                "delivery to target %s failed for asset %s, alert %s, event %s (attempt %d/%d): %s;"
                " retry in %.2f s", target.name, ids["asset"], ids["alert_id"], ids["event_id"], n,
                target.max_attempts, reason, delay)

    def _pause(self, target: Target, retry_after: float, now: float) -> float:
        """Pause the whole target for an honoured ``Retry-After``; return the honoured seconds."""
        honoured = min(retry_after, target.retry_after_max_s)
        # Rate limits apply per client, not per asset: every asset waits.
        self._paused_until[target.name] = max(self._paused_until.get(target.name, 0.0), now + honoured)
        return honoured

    def _delivered(self, target: Target, flight: _InFlight, res: Delivered, now: float) -> None:
        """Mark a delivery done, with the work-order map change its action implies."""
        ids = _ids(flight.event)
        wo = None
        if res.action == "create":
            if res.work_order_id:
                wo = (ids["alert_id"], res.work_order_id, "open")
            else:
                log.error("target %s created a work order for asset %s, alert %s but its answer "
                          "carried no id; later events will create another", target.name,
                          ids["asset"], ids["alert_id"])
        elif res.action == "close" and flight.work_order_id is not None:
            # Nothing else writes this alert's map entry while its request is
            # in flight, so the id read at start is still the current one.
            wo = (ids["alert_id"], flight.work_order_id, "closed")
        self.outbox.mark_delivered(flight.seq, target.name, res.status, now, work_order=wo)
        self.stats["delivered"] += 1
        log.debug("delivered event %s of asset %s, alert %s to target %s (%s, HTTP %d, %.3f s)",
                  ids["event_id"], ids["asset"], ids["alert_id"], target.name, res.action,
                  res.status, res.elapsed_s)

    def _dead(self, dead: list[dict[str, Any]], seq: int, target: Target, event: Mapping[str, Any],
              reason: str, http_status: int | None, attempts: int, permanent: bool, now: float) -> None:
        self.outbox.finish(seq, target.name, "dead", reason, http_status, now)
        dl = _deadletter(event, target, reason, http_status, attempts, permanent, now)
        self.stats["dead"] += 1
        log.error("dead letter: event %s of asset %s, alert %s to target %s: %s",
                  dl["event_id"], dl["asset"], dl["alert_id"], target.name, reason)
        dead.append(dl)
        self._emit(dl)


def drain_outbox(outbox_path: str | os.PathLike[str], targets: Iterable[Mapping[str, Any] | Target], *,
                 timeout_s: float | None = None, max_workers: int = 4,
                 on_deadletter: Callable[[dict[str, Any]], Any] | None = None) -> list[dict[str, Any]]:
    """Deliver everything pending in an outbox, then return the dead letters.

    A one-shot companion of :func:`run_notify` (e.g. a retry job after an
    outage, or the worker process in tests).
    """
    with Deliverer(targets, outbox_path, max_workers=max_workers, on_deadletter=on_deadletter) as d:
        return d.drain(timeout_s=timeout_s)


# --------------------------------------------------------------------------
# Kafka consumer loop
# --------------------------------------------------------------------------


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


def run_notify(*, brokers: str | None = None, topic: str = "alerts",
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
        Kafka bootstrap servers.
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
    """
    if not brokers:
        raise TargetConfigError("run_notify needs 'brokers'")
    if not outbox_path:
        raise TargetConfigError("run_notify needs 'outbox_path'")
    if not targets:
        raise TargetConfigError("run_notify needs at least one target")
    stop = stop or threading.Event()
    stats = NotifyStats()

    conf: dict[str, Any] = {
        "bootstrap.servers": brokers,
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
    try:
        def assign_new(parts: list[int], incremental: bool) -> None:
            new = [p for p in parts if p not in assigned]
            if not new:
                return
            stored = outbox.next_offsets(topic)
            tps = [_topic_partition(topic, p, stored.get(p, from_beginning)) for p in new]
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
