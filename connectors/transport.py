"""One delivery attempt of one alert event to one target, over HTTP.

Pipeline position: :class:`~predmaint.connectors.deliverer.Deliverer` calls
:func:`attempt` on a worker thread for each due delivery; everything here is
stateless (no outbox, no scheduling), so one attempt can be tested alone.

Why these belong together: building the request (signing, auth headers),
sending it, and classifying the answer (2xx, retryable, permanent, and the
``Retry-After`` it carries) are one step, and the secret redaction applied
to failure reasons is part of how that step reports. A create that follows
an unconfirmed one first looks the work order up (one ``GET`` per result
page, :func:`predmaint.connectors.cmms.lookup_request`); that search is part
of the same attempt, so its failures are classified and retried like the
create's. Scheduling what to
send when lives in :mod:`predmaint.connectors.deliverer`; the guarantees of
the whole delivery path are listed in :mod:`predmaint.connectors.notify`.

HTTP is done with the standard library's :mod:`http.client`: one request per
attempt, no redirects, no hidden retry layer. (In this environment ``import
urllib3`` resolves to ``urllib3-future`` 2.25, which overwrote urllib3 2.8;
avoiding it keeps timeout and retry behaviour exactly what is written here.)
The timeout applies to connecting and to each socket read.
"""

from __future__ import annotations

import email.utils
import functools
import http.client
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from typing import Any, TypedDict
from urllib.parse import urlsplit

from predmaint.connectors import cmms, webhooks
from predmaint.errors import PermanentDeliveryError, RetryableDeliveryError, TargetConfigError
from predmaint.settings.targets import Target

__all__ = [
    "Delivered",
    "EventIds",
    "Redactor",
    "attempt",
    "event_ids",
    "parse_retry_after",
]

_USER_AGENT = "predmaint-notify/0.1"
# Response bodies are only parsed for a work-order id; cap what we read so a
# misbehaving server cannot make us buffer megabytes.
_MAX_RESPONSE_BYTES = 256 * 1024
_RETRYABLE_STATUS = {408, 425, 429}
_RETRY_AFTER_STATUS = {429, 503}


class Redactor:
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
        Work order created by a ``create`` (CMMS targets), or found by its lookup.
    elapsed_s : float
        Request duration (all of the attempt's requests).
    adopted : bool
        The lookup found the work order an earlier, unconfirmed create made;
        nothing was created (``status`` is the lookup's).
    lookup_truncated : bool
        The lookup read :data:`~predmaint.connectors.cmms.LOOKUP_MAX_PAGES`
        pages without finding the work order, and it was created: it may now
        exist twice.
    """

    status: int
    action: str
    work_order_id: str | None
    elapsed_s: float
    adopted: bool = False
    lookup_truncated: bool = False


class EventIds(TypedDict):
    """The identifiers :func:`event_ids` returns (keyword arguments of :class:`~predmaint.errors.DeliveryError`)."""

    asset: str
    alert_id: str
    event_id: str


class _DeliveryIds(EventIds):
    """:class:`EventIds` plus the target name: every identifying field of a delivery error."""

    target: str


def event_ids(event: Mapping[str, Any]) -> EventIds:
    """The identifiers of an event that logs, errors and dead letters name (``"?"`` when absent)."""
    return {"asset": str(event.get("asset", "?")), "alert_id": str(event.get("alert_id", "?")),
            "event_id": str(event.get("event_id", "?"))}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The process's TLS client context (certificates and host names verified).

    Building one loads the CA store, which costs far more than a request; one
    context is safe to share between the worker threads.
    """
    return ssl.create_default_context()


def _http(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
          timeout_s: float) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        # Unreachable for a Target (from_config rejects URLs without a host).
        # The URL itself is not in the message: its path or query may carry a token.
        raise TargetConfigError("target URL has no host name (targets must be built by Target.from_config)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout_s, context=_tls_context())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout_s)
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


def _exchange(target: Target, method: str, path: str, headers: Mapping[str, str], body: bytes | None,
              ids: _DeliveryIds, scrub: Callable[[str], str], *, what: str = "",
              conflict_is_duplicate: bool = False) -> tuple[int, dict[str, str], bytes, float]:
    """Send one request; return ``(status, headers, body, seconds)`` on 2xx, raise the classified error otherwise.

    ``what`` prefixes failure reasons (which request of the attempt failed);
    ``conflict_is_duplicate`` makes a 409 retryable: the create carried a
    ``transactionid`` the CMMS has seen, so an earlier attempt created the
    work order and the next attempt's lookup will find it.
    """
    url = target.url.rstrip("/") + path if path else target.url
    t0 = time.monotonic()
    try:
        status, resp_headers, data = _http(method, url, headers, body, target.timeout_s)
    except (OSError, http.client.HTTPException) as exc:
        raise RetryableDeliveryError(scrub(what + _network_reason(exc, target.timeout_s)), **ids) from None
    elapsed = time.monotonic() - t0
    if 200 <= status < 300:
        return status, resp_headers, data, elapsed
    retry_after = None
    if status in _RETRY_AFTER_STATUS:
        retry_after = parse_retry_after(resp_headers.get("retry-after"))
    if status == 409 and conflict_is_duplicate:
        raise RetryableDeliveryError(f"{what}HTTP 409 (transactionid already used: an earlier attempt created the "
                                     f"work order; the next attempt looks it up)", http_status=status, **ids)
    if status in _RETRYABLE_STATUS or 500 <= status < 600:
        raise RetryableDeliveryError(f"{what}HTTP {status}", http_status=status, retry_after=retry_after, **ids)
    if 300 <= status < 400:
        raise PermanentDeliveryError(f"{what}HTTP {status} redirect (redirects are not followed; fix the URL)",
                                     http_status=status, **ids)
    raise PermanentDeliveryError(f"{what}HTTP {status}", http_status=status, **ids)


def _look_up(target: Target, event: Mapping[str, Any], since: float, auth: Mapping[str, str],
             ids: _DeliveryIds, scrub: Callable[[str], str]) -> tuple[Delivered | None, bool]:
    """Search the CMMS for the alert's work order; ``(found, truncated)``.

    ``found`` is the :class:`Delivered` of an adopted work order, or ``None``;
    ``truncated`` says the page limit was reached without finding it.
    """
    headers = {"User-Agent": _USER_AGENT, **auth}
    page: str | None = None
    elapsed = 0.0
    for _ in range(cmms.LOOKUP_MAX_PAGES):
        try:
            req = cmms.lookup_request(target.kind, event, since, page)
        except cmms.AlertMappingError as exc:
            raise PermanentDeliveryError(scrub(f"cannot look up the work order: {exc}"), **ids) from None
        status, _, data, took = _exchange(target, req.method, req.path, {**headers, **req.headers}, None, ids,
                                          scrub, what="work-order lookup: ")
        elapsed += took
        found = cmms.parse_lookup(target.kind, event, data, page)
        if found.work_order_id is not None:
            return Delivered(status=status, action="create", work_order_id=found.work_order_id, elapsed_s=elapsed,
                             adopted=True), False
        if found.next_page is None:
            return None, False
        page = found.next_page
    return None, True


def attempt(target: Target, event: Mapping[str, Any], *, work_order_id: str | None = None,
            lookup_since: float | None = None, now: float | None = None,
            redact: Callable[[str], str] | None = None) -> Delivered:
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
    lookup_since : float, optional
        Start of an earlier create of this alert whose answer was never
        recorded (:meth:`~predmaint.connectors.outbox.Outbox.begin_create`):
        before creating, search the CMMS for the work order it may have made,
        and adopt it when found.
    now : float, optional
        Unix time for the ``webhook-timestamp`` (default: the current time;
        each retry is signed afresh, as the spec requires).
    redact : callable, optional
        Scrubber applied to failure reasons.

    Returns
    -------
    Delivered
        On a 2xx answer (for an adopted work order: the lookup's).

    Raises
    ------
    RetryableDeliveryError
        Timeout, connection failure, 408/425/429/5xx (``retry_after`` set
        from ``Retry-After`` on 429/503), or 409 to a create that carried a
        ``transactionid`` (Maximo); also when the lookup meets any of these.
    PermanentDeliveryError
        3xx, other 4xx, an event that cannot be mapped (or looked up), or a
        missing secret.
    """
    ids: _DeliveryIds = {**event_ids(event), "target": target.name}
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
    auth = cmms.auth_headers(target.kind, secret)
    headers.update(auth)

    truncated = False
    if req.action == "create" and lookup_since is not None:
        adopted, truncated = _look_up(target, event, lookup_since, auth, ids, scrub)
        if adopted is not None:
            return adopted
    status, resp_headers, data, elapsed = _exchange(
        target, req.method, req.path, headers, body, ids, scrub,
        conflict_is_duplicate=req.action == "create" and "transactionid" in req.headers)
    wo = None
    if req.action == "create":
        wo = cmms.extract_work_order_id(target.kind, status, resp_headers, data)
    return Delivered(status=status, action=req.action, work_order_id=wo, elapsed_s=elapsed,
                     lookup_truncated=truncated)
