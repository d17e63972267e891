"""A small webhook receiver to try alert delivery: verifies Standard Webhooks signatures, dedups by id.

``predmaint receiver --port 8099`` runs it (docker-compose runs one too); the
demo starts one on a free loopback port. It is what a CMMS integration has to
do on its side: verify the signature in constant time, reject stale
timestamps, and treat ``webhook-id`` as the idempotency key.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from predmaint.connectors.webhooks import InvalidSignature, verify

log = logging.getLogger(__name__)

#: Largest body accepted: an alert event is a few KB. A larger one is refused (413) before it is
#: read, so an unsigned 300 MB POST costs no memory.
MAX_BODY_BYTES = 1 << 20


class WebhookReceiver:
    """Accepts POSTs, keeps each verified event once (by ``webhook-id``).

    A body is read only if its ``Content-Length`` is at most :data:`MAX_BODY_BYTES` (else 413;
    none or not a number: 411), verified before it is parsed (else 401), and its id is taken as
    seen only once it parsed as JSON (else 400, and a corrected retry is still accepted).

    Examples
    --------
    >>> from predmaint.connectors.webhooks import sign
    >>> import urllib.request
    >>> with WebhookReceiver("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") as rx:
    ...     body = b'{"event_id": "a:0", "state": "raised"}'
    ...     headers = {"Content-Type": "application/json", **sign(rx.secret, "a:0", None, body)}
    ...     for _ in range(2):  # a retry of the same delivery
    ...         _ = urllib.request.urlopen(urllib.request.Request(rx.url, body, headers)).status
    ...     len(rx.events), rx.duplicates
    (1, 1)
    """

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0):
        self.secret = secret
        self.events: list[dict] = []
        self.duplicates = 0
        self.rejected = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.end_headers()

            def do_POST(self):
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    length = -1
                if length < 0:
                    self.close_connection = True
                    return self._answer(411)
                if length > MAX_BODY_BYTES:
                    with receiver._lock:
                        receiver.rejected += 1
                    log.warning("receiver: refused a body of %d bytes (at most %d)", length, MAX_BODY_BYTES)
                    self.close_connection = True  # the unread body must not be taken for the next request
                    return self._answer(413)
                body = self.rfile.read(length)
                try:
                    verify(receiver.secret, {k.lower(): v for k, v in self.headers.items()}, body)
                except InvalidSignature as exc:
                    with receiver._lock:
                        receiver.rejected += 1
                    log.warning("receiver: rejected a delivery: %s", exc)
                    return self._answer(401)
                try:
                    event = json.loads(body)
                except ValueError:
                    with receiver._lock:
                        receiver.rejected += 1
                    log.warning("receiver: rejected a signed delivery that is not JSON")
                    return self._answer(400)
                msg_id = self.headers["webhook-id"]
                with receiver._lock:
                    if msg_id in receiver._seen:
                        receiver.duplicates += 1
                    else:
                        receiver._seen.add(msg_id)
                        receiver.events.append(event)
                self._answer(204)

            def log_message(self, fmt, *args):  # keep request lines out of the demo output
                log.debug(fmt, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
