"""A fake webhook receiver and MaintainX-style CMMS on loopback, with faults on demand: ``predmaint chaos``'s target.

A test double at the connector level: a real HTTP server (nothing mocked)
that ``predmaint notify`` delivers to, which can be made to refuse
connections, answer 500 or answer 429 with ``Retry-After``, and that counts
what it received: webhooks per ``webhook-id`` (a resend carries the same id),
work orders created per alert id (the CMMS API has no idempotency key, so a
second create is a duplicate work order) and the lookups notify makes before
creating again (see :mod:`predmaint.connectors.cmms`).

Unlike :class:`~predmaint.connectors.webhook_receiver.WebhookReceiver` (which
deduplicates, as a receiver should), this one keeps every copy, so that the
chaos table can count them.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from predmaint.connectors.local_services import free_ports
from predmaint.connectors.webhooks import InvalidSignature, verify

__all__ = ["FaultyTarget"]


def _iso_now() -> str:
    """The current time as MaintainX writes ``createdAt`` (ISO 8601 UTC, milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FaultyTarget:
    """A loopback HTTP server acting as a webhook receiver and a MaintainX-style CMMS, with faults on demand.

    ``mode`` is ``ok``, ``500`` or ``429`` (with ``Retry-After: 1``); :meth:`down`
    closes the port (connection refused) until :meth:`up`. Webhooks are checked
    against the signing secret and counted per ``webhook-id``; work orders are
    created by ``POST /v1/workorders`` and counted per alert id, and listed by
    ``GET /v1/workorders`` as MaintainX documents it (``createdAt[gte]``,
    ``limit`` of at most 200, ``cursor``/``nextCursor``; each work order with
    its ``description``, not its ``externalData``). No idempotency key is
    honoured: MaintainX documents none.

    Parameters
    ----------
    secret : str
        The Standard Webhooks signing secret (``whsec_...``) webhooks are verified with (else 401).
    api_key : str
        The bearer token the CMMS endpoints expect (else 401).
    delay_s : float
        Seconds each answered request waits before it is handled (so that a kill lands mid-delivery).

    Examples
    --------
    >>> import json, urllib.request
    >>> target = FaultyTarget("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "key")
    >>> def create(description):
    ...     request = urllib.request.Request(target.url + "/v1/workorders", json.dumps(
    ...         {"title": "t", "description": description}).encode(), {"Authorization": "Bearer key"})
    ...     return json.load(urllib.request.urlopen(request))
    >>> create("predmaint alert a1b2"), create("predmaint alert a1b2")  # no idempotency key: two
    ({'id': 1001}, {'id': 1002})
    >>> target.creates["a1b2"], target.mode
    (2, 'ok')
    >>> target.down()
    """

    def __init__(self, secret: str, api_key: str, delay_s: float = 0.0):
        self.secret, self.api_key, self.delay_s = secret, api_key, delay_s
        self.port, = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "ok"
        self.lock = threading.Lock()
        self.webhooks: collections.Counter = collections.Counter()  # webhook-id -> times processed
        self.creates: collections.Counter = collections.Counter()  # alert id -> work orders created
        self.work_orders: list[dict] = []  # as the list returns them, in creation order
        self.lookups = 0  # GET /v1/workorders answered 200
        self.bad_signatures = 0
        self.first_ok_after: float | None = None
        self._since = 0.0
        self.server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        """Listen on :attr:`port` again (the counts are kept); called by the constructor."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                outer._handle(self)

            do_PATCH = do_GET = do_POST

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client killed mid-request (notify_kill9) resets its connection: expected here

        self.server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Close the port: connections are refused until :meth:`up`."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def watch_recovery(self) -> None:
        """From now on, note when the first request is answered 2xx (the end of a fault)."""
        with self.lock:
            self._since, self.first_ok_after = time.monotonic(), None

    def _send(self, h, status: int, body: bytes, headers: dict | None = None) -> None:
        if 200 <= status < 300:
            with self.lock:
                if self._since and self.first_ok_after is None:
                    self.first_ok_after = time.monotonic() - self._since
        try:
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass  # the client gave up, or was killed

    def _handle(self, h) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if self.mode == "500":
            return self._send(h, 500, b"{}")
        if self.mode == "429":
            return self._send(h, 429, b"{}", {"Retry-After": "1"})
        if self.delay_s:
            time.sleep(self.delay_s)
        if h.path.startswith("/hooks"):
            try:
                verify(self.secret, dict(h.headers.items()), body)
            except InvalidSignature:
                with self.lock:
                    self.bad_signatures += 1
                return self._send(h, 401, b"{}")
            with self.lock:
                self.webhooks[h.headers["webhook-id"]] += 1
            return self._send(h, 200, b'{"ok":true}')
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._send(h, 401, b"{}")
        url = urllib.parse.urlsplit(h.path)
        if h.command == "GET" and url.path == "/v1/workorders":
            return self._list(h, urllib.parse.parse_qs(url.query))
        if h.command == "POST" and h.path == "/v1/workorders":
            doc = json.loads(body or b"{}")
            found = re.search(r"predmaint alert (\w+)", doc.get("description", ""))
            with self.lock:
                self.creates[found.group(1) if found else "?"] += 1
                n = sum(self.creates.values())
                self.work_orders.append({"id": 1000 + n, "title": doc.get("title"), "status": "OPEN",
                                         "description": doc.get("description"), "createdAt": _iso_now()})
            return self._send(h, 201, json.dumps({"id": 1000 + n}).encode())
        return self._send(h, 200, b"{}")

    def _list(self, h, query: dict[str, list[str]]) -> None:
        """``GET /v1/workorders``: those created at or after ``createdAt[gte]``, a page of ``limit`` from ``cursor``."""
        try:
            since = query["createdAt[gte]"][0]
            limit = min(int(query.get("limit", ["100"])[0]), 200)
            start = int(query.get("cursor", ["0"])[0])
        except (KeyError, ValueError):
            return self._send(h, 400, b'{"errors": [{"error": "bad query"}]}')
        with self.lock:
            # One ISO 8601 UTC format on both sides: strings compare as times.
            hits = [wo for wo in self.work_orders if wo["createdAt"] >= since]
            self.lookups += 1
        page, more = hits[start:start + limit], start + limit < len(hits)
        body = {"workOrders": page, "nextCursor": str(start + limit) if more else None}
        return self._send(h, 200, json.dumps(body).encode())
