"""Dead letters: the record of an alert event that will not be delivered, and its InfluxDB point.

Pipeline position: :class:`~predmaint.connectors.outbox.Outbox` produces one
for a message it rejects at ingest, :class:`~predmaint.connectors.deliverer.Deliverer`
one for a delivery it gives up on; the caller receives them (``on_deadletter``)
and writes them to InfluxDB with :func:`deadletter_to_influx` (measurement
``delivery_deadletter``).

Why a module of its own: the record has two producers in two modules and
consumers outside this package (``predmaint notify``, the dashboard check),
so its shape is written once, here, next to the one function that reads it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "deadletter_record",
    "deadletter_to_influx",
]


def _iso_now(now: float | None = None) -> str:
    ts = time.time() if now is None else now
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def deadletter_record(event: Mapping[str, Any], *, target: str, kind: str, reason: str,
                      http_status: int | None, attempts: int, permanent: bool, now: float) -> dict[str, Any]:
    """Build the dead-letter record of an event that will not be delivered to a target.

    Parameters
    ----------
    event : mapping
        The alert event (its identifiers, place and time are copied; missing
        keys become ``None``).
    target, kind : str
        Target name and kind (``"(ingest)"`` and ``"ingest"`` for a message
        rejected before it reached any target).
    reason : str
        Why it failed (already free of secrets).
    http_status : int or None
        Last HTTP status, when there was one.
    attempts : int
        Attempts made.
    permanent : bool
        Whether the failure was permanent (as opposed to retries running out).
    now : float
        Unix time of the failure (``failed_at``).

    Returns
    -------
    dict
        JSON-serialisable; the input of :func:`deadletter_to_influx`.

    Examples
    --------
    >>> dl = deadletter_record({"asset": "pump-03"}, target="(ingest)", kind="ingest",
    ...                        reason="message is not valid JSON", http_status=None, attempts=0,
    ...                        permanent=True, now=0.0)
    >>> dl["asset"], dl["event_id"], dl["failed_at"]
    ('pump-03', None, '1970-01-01T00:00:00Z')
    """
    return {
        "event_id": event.get("event_id"), "alert_id": event.get("alert_id"),
        "asset": event.get("asset"), "site": event.get("site"), "line": event.get("line"),
        "state": event.get("state"), "severity": event.get("severity"),
        "target": target, "kind": kind, "reason": reason,
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
        A dead letter from :func:`deadletter_record` (as handed out by
        :class:`~predmaint.connectors.deliverer.Deliverer` and
        :func:`~predmaint.connectors.notify.run_notify`).

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

