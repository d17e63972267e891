"""The SQLite outbox: alert events, per-target delivery state, work orders and Kafka offsets.

Pipeline position: :func:`~predmaint.connectors.notify.run_notify` ingests
consumed messages into the :class:`Outbox` (:class:`IngestRecord` in,
:class:`IngestResult` out); :class:`~predmaint.connectors.deliverer.Deliverer`
reads the sendable heads from it and records every attempt's outcome.

Why these belong together: the outbox is the one durable state of delivery.
Its schema, its transactions (:class:`_Tx`) and the decoding of a raw
message into an event it will accept (or a dead letter when it will not)
change together; nothing here sends anything. The guarantees this state
underpins are listed in :mod:`predmaint.connectors.notify`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from predmaint.connectors.deadletters import deadletter_record
from predmaint.errors import ConfigurationError

__all__ = [
    "IngestRecord",
    "IngestResult",
    "Outbox",
]


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
-- A create request sent (or about to be) whose answer is not recorded yet: after a crash the next
-- create of the alert on the target looks the work order up first (connectors/cmms.py explains why).
-- A table of its own, so that outboxes written before it existed gain it with CREATE IF NOT EXISTS.
CREATE TABLE IF NOT EXISTS create_intents (
    target      TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    started_at  REAL NOT NULL,
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
        if self.path != ":memory:":
            # notify.outbox_path's folder (.predmaint/ by default) need not exist yet on a first start.
            try:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"notify.outbox_path: cannot create the folder of {self.path}: {exc}") from None
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

    def rewind_offset(self, topic: str, partition: int, next_offset: int) -> None:
        """Store ``next_offset`` for ``partition`` even if it is lower (the topic was recreated under notify).

        :meth:`ingest` only moves offsets forward, so that batches cannot undo each other.
        """
        with self._tx() as db:
            db.execute("INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?)"
                       " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                       (topic, partition, next_offset))

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
        map never disagrees with what was delivered, and it ends the alert's
        create in flight (:meth:`begin_create`): the work order is known now.
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
                db.execute("DELETE FROM create_intents WHERE target = ? AND alert_id = ?", (target, alert_id))

    def begin_create(self, target: str, alert_id: str, now: float) -> float | None:
        """Record that a create of the alert's work order is about to be sent; return an earlier one's start.

        Called before every create request. ``None`` means no create was sent
        before: create straight away. A time means an earlier create began
        then and its answer was never recorded (the process was killed, the
        connection dropped, the CMMS failed, or the answer carried no id): the
        work order may exist, so it is looked up first (created at or after
        that time). The first start is kept until :meth:`mark_delivered` or
        :meth:`adopt_work_order` records the work order.
        """
        with self._tx() as db:
            row = db.execute("SELECT started_at FROM create_intents WHERE target = ? AND alert_id = ?",
                             (target, alert_id)).fetchone()
            if row is not None:
                return float(row["started_at"])
            db.execute("INSERT INTO create_intents (target, alert_id, started_at) VALUES (?, ?, ?)",
                       (target, alert_id, now))
        return None

    def create_in_flight(self, target: str, alert_id: str) -> float | None:
        """Start of the alert's unconfirmed create on a target (:meth:`begin_create`), or ``None``."""
        row = self._db.execute("SELECT started_at FROM create_intents WHERE target = ? AND alert_id = ?",
                               (target, alert_id)).fetchone()
        return float(row["started_at"]) if row else None

    def adopt_work_order(self, seq: int, target: str, alert_id: str, work_order_id: str, now: float) -> None:
        """Record a work order found by a lookup, and make the delivery that found it due again at once.

        The delivery was a create only because the work order was unknown;
        now that it is known, the same event is sent next as an update, as it
        would have been had the earlier create's answer been recorded.
        """
        with self._tx() as db:
            db.execute(
                "INSERT INTO work_orders (target, alert_id, work_order_id, status, updated_at)"
                " VALUES (?, ?, ?, 'open', ?) ON CONFLICT (target, alert_id) DO UPDATE SET"
                " work_order_id = excluded.work_order_id, status = 'open', updated_at = excluded.updated_at",
                (target, alert_id, work_order_id, now),
            )
            db.execute("DELETE FROM create_intents WHERE target = ? AND alert_id = ?", (target, alert_id))
            db.execute("UPDATE deliveries SET next_attempt_at = ?, last_error = ? WHERE seq = ? AND target = ?",
                       (now, "work order found by lookup; sent next as an update", seq, target))

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
    return deadletter_record({"asset": asset}, target="(ingest)", kind="ingest",
                             reason=f"rejected at ingest ({where}): {problem}", http_status=None,
                             attempts=0, permanent=True, now=now)
