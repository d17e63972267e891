"""Scheduling delivery of outbox events to their targets: ordered per asset, retried, dead-lettered.

Pipeline position: :class:`~predmaint.connectors.outbox.Outbox` ->
:class:`Deliverer` -> :func:`~predmaint.connectors.transport.attempt` (on a
worker thread, one request per attempt). :func:`~predmaint.connectors.notify.run_notify`
drives a :class:`Deliverer` from its Kafka loop; :func:`drain_outbox` runs one
until the outbox is empty.

Why these belong together: deciding which delivery may go next (one in
flight per asset and target, due times, ``Retry-After`` pauses), recording
each outcome (delivered with its work-order change, retry with backoff, or a
dead letter built by :mod:`predmaint.connectors.deadletters`) and reporting
it are one loop over one state. :class:`Deliverer` is the one concept of this
module, which is why it is longer than the others. The ordering, retry and
at-least-once guarantees it implements are listed in
:mod:`predmaint.connectors.notify`.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from predmaint.connectors import cmms
from predmaint.connectors.deadletters import deadletter_record
from predmaint.connectors.outbox import IngestRecord, IngestResult, Outbox
from predmaint.connectors.retry import backoff_delay
from predmaint.connectors.transport import Delivered, Redactor, attempt, event_ids
from predmaint.errors import PermanentDeliveryError, RetryableDeliveryError
from predmaint.settings.targets import Target, build_targets

__all__ = [
    "Deliverer",
    "drain_outbox",
]

log = logging.getLogger(__name__)


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
        Target configs (see :meth:`~predmaint.settings.targets.Target.from_config`).
    outbox : Outbox or path
        The outbox (a path opens one owned by this deliverer).
    max_workers : int, optional
        Concurrent HTTP requests (different assets/targets only; per asset
        and target there is never more than one in flight).
    on_deadletter : callable, optional
        Called with each dead-letter dict as it is produced (e.g. to write it
        to InfluxDB via
        :func:`~predmaint.connectors.deadletters.deadletter_to_influx`). Dead
        letters are also returned by :meth:`pump` and :meth:`drain`.
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
        # A path opens an outbox owned (and closed) by this deliverer.
        self.outbox: Outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
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
        self._redact = Redactor(self.targets.values())
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

    def _due_at(self, head: sqlite3.Row) -> float:
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

    def _start(self, head: sqlite3.Row, dead: list[dict[str, Any]], now: float) -> bool:
        """Start an attempt for a due head; ``False`` when the head is closed without one."""
        target = self.targets[head["target"]]
        seq = int(head["seq"])
        event = json.loads(head["payload"])
        ids = event_ids(event)
        if int(head["attempts"]) >= target.max_attempts:
            # Only reachable after a crash during the last attempt.
            self._dead(dead, seq, target, event, "attempts exhausted (process stopped during the "
                       "last attempt)", None, int(head["attempts"]), False, now)
            return False
        wo_id = self._open_work_order(target, ids["alert_id"])
        if wo_id is None and target.kind != "webhook" and event.get("state") == "cleared":
            reason = "no open work order to close (alert was never delivered or is already closed)"
            if self.outbox.create_in_flight(target.name, ids["alert_id"]) is not None:
                # Only after the alert's creates were all dead-lettered: one of them may have reached the CMMS.
                reason += "; a create was sent but never confirmed, so the CMMS may hold its work order open"
            self.outbox.finish(seq, target.name, "suppressed", reason, None, now)
            self.stats["suppressed"] += 1
            log.info("target %s: cleared event %s of asset %s, alert %s not sent: %s",
                     target.name, ids["event_id"], ids["asset"], ids["alert_id"], reason)
            return False
        n = self.outbox.start_attempt(seq, target.name, now)
        lookup_since = None
        if wo_id is None and target.kind != "webhook":
            # Written before the create is sent: a process killed before it records the answer leaves it
            # behind, and the next create of this alert searches the CMMS before creating again.
            lookup_since = self.outbox.begin_create(target.name, ids["alert_id"], now)
        self.stats["attempts"] += 1
        fut = self._pool.submit(attempt, target, event, work_order_id=wo_id, lookup_since=lookup_since,
                                redact=self._redact)
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
        ids = event_ids(flight.event)
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
        ids = event_ids(flight.event)
        wo = None
        if res.lookup_truncated:
            log.warning("target %s: the lookup of the work order of asset %s, alert %s read %d pages without "
                        "finding it; created it, so it may now exist twice", target.name, ids["asset"],
                        ids["alert_id"], cmms.LOOKUP_MAX_PAGES)
        if res.action == "create" and res.adopted and res.work_order_id:
            log.warning("target %s: work order %s of asset %s, alert %s was made by an earlier create whose "
                        "answer did not reach the outbox; found it, not created again", target.name,
                        res.work_order_id, ids["asset"], ids["alert_id"])
            if flight.event.get("state") != "raised":
                # This event was a create only because the work order was unknown; now it is an update.
                self.outbox.adopt_work_order(flight.seq, target.name, ids["alert_id"], res.work_order_id, now)
                return
        if res.action == "create":
            if res.work_order_id:
                wo = (ids["alert_id"], res.work_order_id, "open")
            else:
                log.error("target %s created a work order for asset %s, alert %s but its answer "
                          "carried no id; later events of the alert look it up before creating another",
                          target.name, ids["asset"], ids["alert_id"])
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
        dl = deadletter_record(event, target=target.name, kind=target.kind, reason=reason,
                               http_status=http_status, attempts=attempts, permanent=permanent, now=now)
        self.stats["dead"] += 1
        log.error("dead letter: event %s of asset %s, alert %s to target %s: %s",
                  dl["event_id"], dl["asset"], dl["alert_id"], target.name, reason)
        dead.append(dl)
        self._emit(dl)


def drain_outbox(outbox_path: str | os.PathLike[str], targets: Iterable[Mapping[str, Any] | Target], *,
                 timeout_s: float | None = None, max_workers: int = 4,
                 on_deadletter: Callable[[dict[str, Any]], Any] | None = None) -> list[dict[str, Any]]:
    """Deliver everything pending in an outbox, then return the dead letters.

    A one-shot companion of :func:`~predmaint.connectors.notify.run_notify`
    (e.g. a retry job after an outage, or the worker process in tests).
    """
    with Deliverer(targets, outbox_path, max_workers=max_workers, on_deadletter=on_deadletter) as d:
        return d.drain(timeout_s=timeout_s)
