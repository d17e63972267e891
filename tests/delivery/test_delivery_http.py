"""End-to-end delivery against real HTTP receivers on loopback.

The receiver answers 500, 429 + Retry-After, hangs past the client timeout,
resets connections and processes-then-drops, verifies every Standard Webhooks
signature and deduplicates on webhook-id. The deliverer runs in a subprocess
that is SIGKILLed midway and restarted over the same SQLite outbox.
"""

import base64
import collections
import email.utils
import json
import logging
import os
import random
import re
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from predmaint.connectors import cmms, deliverer, transport
from predmaint.connectors.deadletters import deadletter_to_influx
from predmaint.connectors.deliverer import Deliverer
from predmaint.connectors.notify import run_notify
from predmaint.connectors.outbox import IngestRecord, Outbox
from predmaint.connectors.transport import attempt
from predmaint.connectors.webhooks import InvalidSignature, verify
from predmaint.errors import PermanentDeliveryError, RetryableDeliveryError, TargetConfigError
from predmaint.settings.targets import Target

REPO = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"predmaint-test-signing-key-0123456789").decode()
SECRET_CORE = SECRET[len("whsec_"):]
API_KEY = "mx-api-key-9f8e7d6c5b4a"


def make_event(alert, seq, state, asset, severity="alarm", notify=True):
    return {"v": 1, "event_id": f"{alert}:{seq}", "alert_id": alert, "state": state, "severity": severity,
            "rule": "health_low", "site": "plant-1", "line": "line-a", "asset": asset, "sensor": "de-accel",
            "time": f"2026-11-23T12:{seq:02d}:00Z", "health": 23.5, "value": 23.5,
            "explanation": [{"feature": "env_bpfo", "value": 0.9, "baseline_mean": 0.1, "z": 8.1}],
            "model": "hst", "notify": notify}


def alert_id(asset_no, n):
    return f"{asset_no:08x}{n:08x}"


def _iso_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- receiver


class Receiver:
    """Threaded loopback HTTP server with scripted faults.

    Actions per request (taken from a queue, then ``default``):
    ``ok``, ``500``, ``429`` (Retry-After: 1), ``503date`` (Retry-After as an
    HTTP date 2 s ahead), ``hang`` (process, then answer after ``hang_s``),
    ``drop`` (TCP reset, not processed), ``process_drop`` (processed, then
    the connection is closed without a response), ``401``, ``echo400``
    (400 whose body echoes the request headers).

    With ``cmms=True`` it plays MaintainX, UpKeep and Maximo as their APIs
    are documented (connectors/cmms.py): creates, updates, closes, the list
    queries a lookup sends (MaintainX ``createdAt[gte]``/``cursor``, UpKeep
    ``isComplete``/``offset``, Maximo ``oslc.where=externalrecid="..."``) and
    Maximo's ``transactionid`` (a repeated one is answered 409). A kind in
    ``hang_creates`` has its next create processed and then held unanswered
    until ``release`` is set (the window in which a kill -9 loses the answer).
    Action ``noid`` answers a create without the new work order's id.
    """

    def __init__(self, secret=SECRET, default="ok", hang_s=1.2, ok_delay_s=0.0, cmms=False):
        self.secret = secret
        self.default = default
        self.hang_s = hang_s
        self.ok_delay_s = ok_delay_s
        self.cmms = cmms
        self.lock = threading.Lock()
        self.queue = collections.deque()
        self.arrivals = []          # (t, webhook_id, action)
        self.responses = {}         # index -> (t, action)
        self.first_seen = {}        # webhook_id -> processing order
        self.deliveries = collections.Counter()  # webhook_id -> times processed
        self.bad_signatures = 0
        self.events = {}            # webhook_id -> event
        self.work_orders = {}       # alert_id -> work-order number
        self.cmms_orders = {}       # id -> {"alert", "priority", "status", "updates"}
        self.cmms_requests = []
        self.transaction_ids = set()  # Maximo transactionid headers seen (their five-minute life is not modelled)
        self.hang_creates = set()   # kinds whose next create is processed, then left unanswered
        self.hung = []              # kinds whose create is being held
        self.release = threading.Event()
        self.auth_failures = 0
        self.n = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                outer._dispatch(self)

            do_POST = do_PATCH = do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def inject(self, *actions):
        with self.lock:
            self.queue.extend(actions)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- request handling --------------------------------------------------------

    def _next_action(self):
        with self.lock:
            idx = self.n
            self.n += 1
            return idx, (self.queue.popleft() if self.queue else self.default)

    def _process_webhook(self, wid, body):
        ev = json.loads(body)["data"]
        with self.lock:
            self.deliveries[wid] += 1
            if wid not in self.first_seen:
                self.first_seen[wid] = len(self.first_seen)
                self.events[wid] = ev
                # The receiver's side effect, deduplicated by webhook-id: one
                # work order per alert no matter how often an event arrives.
                self.work_orders.setdefault(ev["alert_id"], len(self.work_orders) + 1)

    def _dispatch(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length)
        idx, action = self._next_action()
        wid = h.headers.get("webhook-id")
        now = time.time()
        with self.lock:
            self.arrivals.append((now, wid, action))
        if self.cmms:
            return self._cmms(h, action, body)
        if action == "echo400":
            # A careless API that echoes request headers (credentials included)
            # in its error body; answered before any signature check.
            return self._send(h, 400, ("you sent " + repr(dict(h.headers.items()))).encode())
        try:
            verify(self.secret, dict(h.headers.items()), body)
        except InvalidSignature:
            with self.lock:
                self.bad_signatures += 1
            return self._send(h, 401, b"bad signature")
        if self._transient_fault(h, action):
            return
        if action == "process_drop":
            self._process_webhook(wid, body)
            h.close_connection = True
            return
        if action == "401":
            return self._send(h, 401, b"no")
        if action == "503date":
            return self._send(h, 503, b"later", {"Retry-After": email.utils.formatdate(now + 2, usegmt=True)})
        self._process_webhook(wid, body)
        if action == "hang":
            time.sleep(self.hang_s)
        elif self.ok_delay_s:
            time.sleep(self.ok_delay_s)
        self._send(h, 200, b'{"ok":true}')

    def _transient_fault(self, h, action):
        """Act out ``drop``, ``500`` or ``429`` (Retry-After: 1); ``False`` for any other action."""
        if action == "drop":
            # RST instead of FIN: the harshest way to lose a connection.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
        elif action == "500":
            self._send(h, 500, b"{}")
        elif action == "429":
            self._send(h, 429, b"{}", {"Retry-After": "1"})
        else:
            return False
        return True

    def _send(self, h, status, body, headers=None):
        # Book-keeping first: once the client has the answer, the test may look.
        with self.lock:
            self.responses[len(self.responses)] = (time.time(), status)
            self.last_body = body
        try:
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout): fine

    # -- fake CMMS APIs ------------------------------------------------------------

    def _lookup(self, method, path):
        """Answer a list query as the CMMS would (``None``: not a list query)."""
        if method != "GET":
            return None
        url = urllib.parse.urlsplit(path)
        q = urllib.parse.parse_qs(url.query)
        orders = [(k, v) for k, v in self.cmms_orders.items()]
        if url.path == "/v1/workorders":
            since = q["createdAt[gte]"][0]
            limit = min(int(q.get("limit", ["100"])[0]), 200)
            start = int(q.get("cursor", ["0"])[0])
            # ISO 8601 UTC strings of one format compare as times.
            hits = [{"id": int(k), "title": "t", "status": v["status"], "description": v["description"],
                     "createdAt": v["created"], "updatedAt": v["created"]}
                    for k, v in orders if k.isdigit() and v["created"] >= since]
            page = hits[start:start + limit]
            nxt = str(start + limit) if start + limit < len(hits) else None
            return {"workOrders": page, "nextCursor": nxt}
        if url.path == "/api/v2/work-orders":
            limit, offset = int(q.get("limit", ["100"])[0]), int(q.get("offset", ["0"])[0])
            hits = [{"id": k, "title": "t", "status": v["status"], "description": v["description"]}
                    for k, v in orders if k.startswith("UK")
                    and not (q.get("isComplete") == ["0"] and v["status"] == "complete")]
            return {"success": True, "results": hits[offset:offset + limit]}
        if url.path == "/maximo/api/os/mxapisr":
            m = re.fullmatch(r'externalrecid="([^"]*)"', q["oslc.where"][0])
            hits = [{"href": self.url + k, "ticketid": k[-4:], "externalrecid": v["alert"]}
                    for k, v in orders if k.startswith("/maximo") and v["alert"] == m.group(1)]
            return {"member": hits, "responseInfo": {}}
        return None

    def _cmms(self, h, action, body):
        if self._transient_fault(h, action):
            return
        doc = json.loads(body or b"{}")
        path, method = h.path, h.command
        if h.headers.get("x-method-override"):
            method = h.headers["x-method-override"]
        with self.lock:
            self.cmms_requests.append((method, path, doc))
        if path.startswith("/v1/workorders"):
            ok = h.headers.get("Authorization") == f"Bearer {API_KEY}"
        elif path.startswith("/api/v2/work-orders"):
            ok = h.headers.get("Session-Token") == API_KEY
        else:
            ok = h.headers.get("apikey") == API_KEY
        if not ok:
            with self.lock:
                self.auth_failures += 1
            return self._send(h, 401, b"{}")
        hold = False
        with self.lock:
            found = self._lookup(method, path)
            tid = h.headers.get("transactionid")
            if found is not None:
                resp, hdrs, status = json.dumps(found), {}, 200
            elif tid is not None and tid in self.transaction_ids:
                resp, hdrs, status = '{"Error": {"reasonCode": "BMXAA9549E"}}', {}, 409
            elif method == "POST" and path in ("/v1/workorders", "/api/v2/work-orders", "/maximo/api/os/mxapisr?lean=1"):
                if tid is not None:
                    self.transaction_ids.add(tid)
                n = len(self.cmms_orders) + 1
                prio = doc.get("priority", doc.get("reportedpriority"))
                alert = (doc.get("externalData") or {}).get("predmaintAlertId") or doc.get("externalrecid") \
                    or re.search(r"predmaint alert (\w+)", doc["description"]).group(1)
                record = {"alert": alert, "priority": [prio], "created": _iso_now(),
                          "description": doc.get("description_longdescription") or doc.get("description")}
                if path.startswith("/maximo"):
                    wo = "/maximo/api/os/mxapisr/_" + base64.urlsafe_b64encode(f"SR/{n}".encode()).decode().rstrip("=")
                    self.cmms_orders[wo] = dict(record, status="NEW")
                    href = self.url + wo
                    resp, hdrs, status = json.dumps({"ticketid": str(n), "href": href}), {"Location": href}, 201
                    kind = "maximo"
                elif path.startswith("/v1"):
                    wo = str(1000 + n)
                    self.cmms_orders[wo] = dict(record, status="OPEN")
                    resp, hdrs, status = json.dumps({"id": int(wo)}), {}, 201
                    kind = "maintainx"
                else:
                    wo = f"UK{n}"
                    self.cmms_orders[wo] = dict(record, status="open")
                    resp, hdrs, status = json.dumps({"success": True, "result": {"id": wo}}), {}, 200
                    kind = "upkeep"
                if action == "noid":
                    resp, hdrs = "{}", {}
                if kind in self.hang_creates:
                    self.hang_creates.discard(kind)
                    self.hung.append(kind)
                    hold = True
            else:
                m = (re.fullmatch(r"/v1/workorders/(\d+)(/status)?", path)
                     or re.fullmatch(r"/api/v2/work-orders/(\w+)()", path)
                     or re.fullmatch(r"(/maximo/api/os/mxapisr/_[\w-]+)\?(?:lean=1|action=wsmethod:changeStatus&lean=1)()", path))
                if not m or m.group(1) not in self.cmms_orders or method != "PATCH":
                    resp, hdrs, status = "{}", {}, 404
                else:
                    wo = self.cmms_orders[m.group(1)]
                    wo["requests"] = wo.get("requests", 0) + 1
                    if "status" in doc:
                        wo["status"] = doc["status"]
                    if doc.get("description_longdescription") or doc.get("description"):
                        wo["description"] = doc.get("description_longdescription") or doc.get("description")
                    p = doc.get("priority", doc.get("reportedpriority"))
                    if p is not None:
                        wo["priority"].append(p)
                    if path.startswith("/maximo") and "changeStatus" not in path:
                        assert h.headers.get("patchtype") == "MERGE"
                    resp, hdrs, status = "{}", {}, 200
        if hold:
            # Created, answer withheld: the client is killed (or times out) before it learns the id.
            self.release.wait(30)
        self._send(h, status, resp.encode(), hdrs)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def webhook_target(url, **kw):
    cfg = {"name": "ops-hook", "kind": "webhook", "url": url + "/hooks/predmaint",
           "secret_env": "PREDMAINT_TEST_WEBHOOK_SECRET", "timeout_s": 0.5, "max_attempts": 25,
           "backoff_base_s": 0.05, "backoff_max_s": 0.3}
    cfg.update(kw)
    return cfg


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("PREDMAINT_TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("PREDMAINT_TEST_API_KEY", API_KEY)


# --------------------------------------------------------------------------- kill / restart

WORKER = r"""
import json, logging, sys
from predmaint.connectors.deliverer import drain_outbox
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(levelname)s %(name)s %(message)s")
dead = drain_outbox(sys.argv[1], json.loads(sys.argv[2]), timeout_s=60)
sys.stdout.write(json.dumps(dead))
"""


def spawn(outbox, targets):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", WORKER, str(outbox), json.dumps(targets)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def retry_gaps(arrivals, action, restarts=()):
    """Seconds from each request answered with ``action`` to the next arrival of the same webhook-id.

    A gap that spans one of ``restarts`` (times a worker was killed) is the restart's, not a
    retry's: it is left out.
    """
    gaps = []
    for i, (t, wid, act) in enumerate(arrivals):
        if act == action:
            later = [t2 for t2, w2, _ in arrivals[i + 1:] if w2 == wid]
            if later and not any(t <= k <= later[0] for k in restarts):
                gaps.append(later[0] - t)
    return gaps


def wait_until(cond, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def test_kill_restart_faults_exactly_once_effects(tmp_path, receiver, secret_env):
    outbox = tmp_path / "outbox.sqlite"
    targets = [webhook_target(receiver.url)]
    receiver.ok_delay_s = 0.03  # pace deliveries so the kill lands midway
    receiver.hang_s = 2.0       # well past the 0.5 s client timeout

    # Batch 1: 12 assets x (raised, escalated, cleared).
    batch1 = []
    for a in range(12):
        aid = alert_id(a, 1)
        for s, state in enumerate(("raised", "escalated", "cleared"), start=1):
            batch1.append(make_event(aid, s, state, f"pump-{a:02d}", "critical" if state == "escalated" else "alarm"))
    # Batch 2 (ingested while the first worker runs): a second alert on 4
    # assets, with a shelved (notify=false) escalation that must not be sent.
    batch2 = []
    for a in range(4):
        aid = alert_id(a, 2)
        batch2 += [make_event(aid, 1, "raised", f"pump-{a:02d}"),
                   make_event(aid, 2, "escalated", f"pump-{a:02d}", "critical", notify=False),
                   make_event(aid, 3, "cleared", f"pump-{a:02d}")]
    ob = Outbox(outbox)
    ob.ingest([IngestRecord(json.dumps(e).encode(), e["asset"].encode(), "alerts", i % 3, i // 3)
               for i, e in enumerate(batch1)], ["ops-hook"])

    receiver.inject(*(["500"] * 4 + ["429"] * 3 + ["hang"] * 2 + ["drop"] * 2 + ["process_drop"] * 2))
    t0 = time.monotonic()
    p1 = spawn(outbox, targets)
    r2 = ob.ingest([IngestRecord(json.dumps(e).encode(), e["asset"].encode(), "alerts", 0, 100 + i)
                    for i, e in enumerate(batch2)], ["ops-hook"])
    assert (r2.inserted, r2.suppressed) == (12, 4)
    assert wait_until(lambda: len(receiver.first_seen) >= 15, 20), "first worker made no progress"
    killed_at = time.time()  # the receiver stamps arrivals with time.time()
    p1.send_signal(signal.SIGKILL)
    _, err1 = p1.communicate(timeout=10)
    assert p1.returncode == -signal.SIGKILL
    seen_at_kill = len(receiver.first_seen)
    pending_at_kill = ob.pending(["ops-hook"])
    assert pending_at_kill > 0, "killed too late: nothing left for the restart"

    receiver.inject("500", "429", "hang", "drop", "process_drop")
    p2 = spawn(outbox, targets)
    out2, err2 = p2.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    assert p2.returncode == 0, err2.decode()[-2000:]
    assert json.loads(out2) == []  # no dead letters

    all_events = batch1 + batch2
    sendable = [e for e in all_events if e["notify"]]
    ids = {e["event_id"] for e in sendable}
    # Every sendable event received, nothing shelved sent, every signature valid.
    assert set(receiver.first_seen) == ids
    assert not {e["event_id"] for e in all_events if not e["notify"]} & set(receiver.deliveries)
    assert receiver.bad_signatures == 0
    # Dedup by webhook-id: exactly one processing per event; retransmits counted.
    duplicates = sum(receiver.deliveries.values()) - len(ids)
    assert len(receiver.first_seen) == len(ids)
    assert duplicates >= 1 + 2  # hang + process_drop in run 1 (plus run 2's)
    # One work order per alert.
    assert len(receiver.work_orders) == len({e["alert_id"] for e in sendable}) == 16
    # Per asset, the receiver processed events in outbox order (raise before clear).
    by_asset = collections.defaultdict(list)
    for e in all_events:
        if e["notify"]:
            by_asset[e["asset"]].append(e["event_id"])
    for asset, expected in by_asset.items():
        got = sorted(expected, key=receiver.first_seen.__getitem__)
        assert got == expected, asset
    # Outbox: nothing undelivered.
    c = Outbox(outbox).counts()
    assert c == {"delivered": len(sendable), "suppressed": 4}
    # Retry-After: 1 honoured: each 429'd id re-arrived >= 1 s later.
    arrivals = receiver.arrivals
    gaps_429 = retry_gaps(arrivals, "429", restarts=(killed_at,))
    assert gaps_429 and min(gaps_429) >= 1.0
    # Timeouts: a hung id was retried after the 0.5 s client timeout, not after the hang (by the
    # same worker: a hang cut short by the kill is retried by the restarted one, seconds later).
    gaps_hang = retry_gaps(arrivals, "hang", restarts=(killed_at,))
    assert gaps_hang and min(gaps_hang) >= 0.5 and max(gaps_hang) < receiver.hang_s
    # Secrets never in the workers' logs.
    logs = (err1 + err2).decode()
    assert "retry in" in logs and "pump-" in logs
    assert SECRET not in logs and SECRET_CORE not in logs
    report = {"events": len(all_events), "sent": len(ids), "requests": len(arrivals),
              "duplicates_suppressed": duplicates, "seen_at_kill": seen_at_kill,
              "pending_at_kill": pending_at_kill, "gap_429_min_s": round(min(gaps_429), 3),
              "gap_hang_s": [round(g, 3) for g in gaps_hang], "elapsed_s": round(elapsed, 2),
              "faults": collections.Counter(a for _, _, a in arrivals if a != "ok")}
    sys.stderr.write(f"\nDELIVERY-E2E {report}\n")


# --------------------------------------------------------------------------- dead letters and secrets


def test_always_failing_receiver_dead_letters_without_secret(receiver, secret_env, caplog):
    caplog.set_level(logging.DEBUG, logger="predmaint.connectors.deliverer")
    receiver.default = "500"
    got = []
    with Deliverer([webhook_target(receiver.url, max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)],
                   ":memory:", on_deadletter=got.append) as d:
        assert d.submit(make_event(alert_id(1, 1), 1, "raised", "pump-01"))
        assert not d.submit(make_event(alert_id(1, 1), 1, "raised", "pump-01"))  # idempotent
        dead = d.drain(timeout_s=10)
        assert d.outbox.counts() == {"dead": 1}
    assert dead == got and len(dead) == 1
    dl = dead[0]
    assert dl["reason"] == "HTTP 500; gave up after 3 attempts" and dl["attempts"] == 3
    assert dl["asset"] == "pump-01" and dl["target"] == "ops-hook" and dl["permanent"] is False
    assert len(receiver.arrivals) == 3
    text = caplog.text + json.dumps(dl) + json.dumps(deadletter_to_influx(dl))
    assert "pump-01" in caplog.text and "dead letter" in caplog.text
    assert SECRET not in text and SECRET_CORE not in text


def test_permanent_errors_and_exception_messages_hide_secrets(receiver, secret_env, caplog):
    caplog.set_level(logging.DEBUG, logger="predmaint.connectors.deliverer")
    ev = make_event(alert_id(2, 1), 1, "raised", "fan-7")
    # 401: permanent, one attempt only.
    receiver.default = "401"
    t = Target.from_config(webhook_target(receiver.url))
    with pytest.raises(PermanentDeliveryError) as ei:
        attempt(t, ev)
    assert ei.value.http_status == 401 and "fan-7" in str(ei.value) and "ops-hook" in str(ei.value)
    # A CMMS that echoes our headers (API key included) in its error body.
    receiver.default = "echo400"
    mx = Target.from_config({"name": "mx", "kind": "maintainx", "url": receiver.url,
                             "secret_env": "PREDMAINT_TEST_API_KEY", "timeout_s": 0.5})
    with pytest.raises(PermanentDeliveryError) as ei2:
        attempt(mx, ev)
    assert ei2.value.http_status == 400 and ei2.value.target == "mx" and ei2.value.asset == "fan-7"
    assert API_KEY.encode() in receiver.last_body  # the server did leak it back to us
    # Timeout / reset paths build messages from exception classes only.
    receiver.default, receiver.hang_s = "hang", 0.8
    with pytest.raises(RetryableDeliveryError) as ei3:
        attempt(t, ev)
    assert "timeout after 0.5 s" in str(ei3.value)
    receiver.default = "drop"
    with pytest.raises(RetryableDeliveryError) as ei4:
        attempt(t, ev)
    assert "connection dropped" in str(ei4.value)
    for e in (ei.value, ei2.value, ei3.value, ei4.value):
        for s in (SECRET, SECRET_CORE, API_KEY):
            assert s not in str(e) and s not in repr(e) and s not in e.reason
    assert API_KEY not in repr(mx) and SECRET not in repr(t)
    # With a Deliverer the 401 is a dead letter after exactly one attempt.
    receiver.default = "401"
    n0 = len(receiver.arrivals)
    with Deliverer([webhook_target(receiver.url)], ":memory:") as d:
        d.submit(ev)
        (dl,) = d.drain(timeout_s=5)
    assert dl["permanent"] and dl["http_status"] == 401 and dl["attempts"] == 1
    assert len(receiver.arrivals) - n0 == 1
    assert SECRET not in caplog.text and SECRET_CORE not in caplog.text and API_KEY not in caplog.text


def test_connection_refused_and_missing_secret(secret_env, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    t = Target.from_config(webhook_target(f"http://127.0.0.1:{port}"))
    with pytest.raises(RetryableDeliveryError, match="connection refused"):
        attempt(t, make_event(alert_id(3, 1), 1, "raised", "p"))
    monkeypatch.delenv("PREDMAINT_TEST_WEBHOOK_SECRET")
    with pytest.raises(TargetConfigError) as ei:
        Deliverer([webhook_target(f"http://127.0.0.1:{port}")], ":memory:")
    assert "PREDMAINT_TEST_WEBHOOK_SECRET" in str(ei.value)


def test_retry_after_http_date_pauses_target(receiver, secret_env):
    receiver.inject("503date")
    with Deliverer([webhook_target(receiver.url)], ":memory:") as d:
        d.submit(make_event(alert_id(4, 1), 1, "raised", "p-a"))
        d.submit(make_event(alert_id(5, 1), 1, "raised", "p-b"))
        assert d.drain(timeout_s=10) == []
    (t503, wid, _), *rest = receiver.arrivals
    retry = [t for t, w, _ in rest if w == wid][0]
    # HTTP dates have 1 s resolution: a date 2 s ahead means a wait in (1, 2].
    assert 1.0 <= retry - t503 <= 2.6


def test_unsigned_webhook_still_carries_idempotency_key(receiver, caplog):
    receiver.secret = "unused"
    got = {}

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self):
            got.update(self.headers.items())
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with caplog.at_level(logging.WARNING):
            t = {"name": "plain", "kind": "webhook", "url": f"http://127.0.0.1:{srv.server_address[1]}/x"}
            with Deliverer([t], ":memory:") as d:
                d.submit(make_event(alert_id(6, 1), 1, "raised", "p"))
                assert d.drain(timeout_s=5) == []
                assert d.outbox.counts() == {"delivered": 1}
        assert "unsigned" in caplog.text
        assert got["webhook-id"] == f"{alert_id(6, 1)}:1" and "webhook-signature" not in got
    finally:
        srv.shutdown()
        srv.server_close()


# --------------------------------------------------------------------------- CMMS


def test_cmms_targets_one_work_order_per_alert(secret_env):
    rcv = Receiver(cmms=True)
    try:
        common = {"secret_env": "PREDMAINT_TEST_API_KEY", "url": rcv.url, "timeout_s": 0.5,
                  "max_attempts": 10, "backoff_base_s": 0.02, "backoff_max_s": 0.1}
        targets = [dict(common, name="mx", kind="maintainx"), dict(common, name="uk", kind="upkeep"),
                   dict(common, name="max", kind="maximo", defaults={"siteid": "BEDFORD"})]
        events = []
        for a in range(3):
            aid = alert_id(10 + a, 1)
            events += [make_event(aid, 1, "raised", f"comp-{a}", "warning"),
                       make_event(aid, 2, "escalated", f"comp-{a}", "critical"),
                       make_event(aid, 3, "escalated", f"comp-{a}", "critical", notify=False),
                       make_event(aid, 4, "cleared", f"comp-{a}", "critical")]
        # An alert whose raise was shelved: its clear has nothing to close.
        events += [make_event(alert_id(20, 1), 1, "raised", "comp-9", notify=False),
                   make_event(alert_id(20, 1), 2, "cleared", "comp-9")]
        rcv.inject("500", "drop", "429", "500")
        with Deliverer(targets, ":memory:") as d:
            for e in events:
                d.submit(e)
            assert d.drain(timeout_s=20) == []
            counts = d.outbox.counts()
            wo_map = {(t, a): d.outbox.work_order(t, a) for t in ("mx", "uk", "max")
                      for a in (alert_id(10, 1), alert_id(11, 1), alert_id(12, 1))}
        assert rcv.auth_failures == 0
        # 3 alerts x 3 targets: exactly 9 work orders, each created once,
        # updated once (escalation), closed once; shelved events never sent.
        assert len(rcv.cmms_orders) == 9
        assert counts == {"delivered": 27, "suppressed": 3 * 3 + 3 + 3}
        closed = {"maintainx": "DONE", "upkeep": "complete", "maximo": "RESOLVED"}
        for wo_id, wo in rcv.cmms_orders.items():
            kind = "maximo" if wo_id.startswith("/maximo") else "maintainx" if wo_id.isdigit() else "upkeep"
            prios = {"maintainx": ["LOW", "HIGH"], "upkeep": [1, 3], "maximo": [3, 1]}[kind]
            assert wo["priority"] == prios and wo["status"] == closed[kind], (kind, wo)
        assert all(v is not None and v[1] == "closed" for v in wo_map.values())
        creates = [r for r in rcv.cmms_requests if r[0] == "POST"]
        assert len(creates) == 9
        assert all(r[2].get("siteid") == "BEDFORD" for r in creates if r[1].startswith("/maximo"))
    finally:
        rcv.close()


# --------------------------------------------------------------------------- CMMS: one work order across a crash

KINDS = ("maintainx", "upkeep", "maximo")
TARGET_NAMES = {"maintainx": "mx", "upkeep": "uk", "maximo": "max"}


def cmms_targets(rcv, **kw):
    common = {"secret_env": "PREDMAINT_TEST_API_KEY", "url": rcv.url, "timeout_s": 5.0, "max_attempts": 10,
              "backoff_base_s": 0.02, "backoff_max_s": 0.1, **kw}
    return [dict(common, name=TARGET_NAMES[k], kind=k, **({"defaults": {"siteid": "BEDFORD"}} if k == "maximo"
                                                            else {})) for k in KINDS]


def orders_of(rcv, kind):
    test = {"maximo": lambda k: k.startswith("/maximo"), "maintainx": str.isdigit,
            "upkeep": lambda k: k.startswith("UK")}[kind]
    return {k: v for k, v in rcv.cmms_orders.items() if test(k)}


def creates_per_alert(rcv, kind):
    return collections.Counter(v["alert"] for v in orders_of(rcv, kind).values())


def test_kill9_after_the_cmms_created_the_work_order_creates_no_second_one(tmp_path, secret_env):
    """The notify_kill9 window on every CMMS kind, in a real process: created, answer lost, restarted."""
    rcv = Receiver(cmms=True)
    try:
        outbox = tmp_path / "outbox.sqlite"
        targets = cmms_targets(rcv)
        events = []
        for a in range(2):
            aid = alert_id(90 + a, 1)
            events += [make_event(aid, 1, "raised", f"k-{a}", "warning"),
                       make_event(aid, 2, "escalated", f"k-{a}", "critical"),
                       make_event(aid, 3, "cleared", f"k-{a}", "critical")]
        ob = Outbox(outbox)
        ob.ingest([IngestRecord(json.dumps(e).encode()) for e in events], list(TARGET_NAMES.values()))
        rcv.hang_creates = set(KINDS)
        p1 = spawn(outbox, targets)
        assert wait_until(lambda: len(rcv.hung) == 3, 30), "the creates never reached the CMMS"
        p1.send_signal(signal.SIGKILL)
        p1.communicate(timeout=10)
        assert p1.returncode == -signal.SIGKILL
        rcv.release.set()  # the held answers go to a dead socket
        # Killed with three work orders created and none recorded; each create was recorded as in flight first.
        held = {k: next(v["alert"] for v in orders_of(rcv, k).values()) for k in KINDS}
        for kind, aid in held.items():
            assert ob.work_order(TARGET_NAMES[kind], aid) is None
            assert ob.create_in_flight(TARGET_NAMES[kind], aid) is not None
        requests_before = len(rcv.cmms_requests)

        p2 = spawn(outbox, targets)
        out2, err2 = p2.communicate(timeout=60)
        assert p2.returncode == 0, err2.decode()[-2000:]
        dead2 = json.loads(out2)
        assert dead2 == [], [(d["event_id"], d["target"], d["reason"]) for d in dead2]  # no dead letters
        logs = err2.decode()
        for kind in KINDS:
            # One work order per alert on every kind, updated by the escalation and closed by the clear.
            assert creates_per_alert(rcv, kind) == {alert_id(90, 1): 1, alert_id(91, 1): 1}, kind
            closed = {"maintainx": "DONE", "upkeep": "complete", "maximo": "RESOLVED"}[kind]
            prios = {"maintainx": ["LOW", "HIGH"], "upkeep": [1, 3], "maximo": [3, 1]}[kind]
            for wo in orders_of(rcv, kind).values():
                # An update in flight at the kill is sent again after it (at-least-once, same content): the
                # history may repeat a priority, never reorder or skip one.
                history = [p for i, p in enumerate(wo["priority"]) if i == 0 or p != wo["priority"][i - 1]]
                assert (wo["status"], history) == (closed, prios), (kind, wo)
            assert ob.create_in_flight(TARGET_NAMES[kind], held[kind]) is None
            assert f"target {TARGET_NAMES[kind]}: work order" in logs and "not created again" in logs
        # The restart looked each held work order up (a GET per kind) instead of creating it again.
        lookups = [path for method, path, _ in rcv.cmms_requests[requests_before:] if method == "GET"]
        assert len(lookups) >= 3 and {p.split("?")[0] for p in lookups} == {
            "/v1/workorders", "/api/v2/work-orders", "/maximo/api/os/mxapisr"}
        assert ob.counts() == {"delivered": 18}
        assert API_KEY not in logs
    finally:
        rcv.release.set()
        rcv.close()


def cmms_target(rcv, kind, **kw):
    return Target.from_config(next(t for t in cmms_targets(rcv, **kw) if t["kind"] == kind))


@pytest.mark.parametrize("kind", KINDS)
def test_attempt_adopts_the_work_order_its_lookup_finds(kind, secret_env):
    rcv = Receiver(cmms=True)
    try:
        target = cmms_target(rcv, kind)
        ev = make_event(alert_id(100, 1), 1, "raised", "a-100")
        first = attempt(target, ev)  # the create whose answer the crash lost
        assert not first.adopted and first.work_order_id
        n = len(rcv.cmms_requests)
        again = attempt(target, ev, lookup_since=time.time() - 5)
        assert (again.adopted, again.work_order_id, again.action, again.status) == (True, first.work_order_id,
                                                                                    "create", 200)
        assert [m for m, _, _ in rcv.cmms_requests[n:]] == ["GET"]  # looked up, nothing created
        assert creates_per_alert(rcv, kind) == {alert_id(100, 1): 1}
        # Another alert's lookup finds nothing, and it is created.
        other = make_event(alert_id(101, 1), 1, "raised", "a-101")
        made = attempt(target, other, lookup_since=time.time() - 5)
        assert not made.adopted and not made.lookup_truncated and made.work_order_id != first.work_order_id
        assert [m for m, _, _ in rcv.cmms_requests[n + 1:]] == ["GET", "POST"]
    finally:
        rcv.close()


def test_maintainx_lookup_only_reads_work_orders_created_since_the_create_began(secret_env):
    rcv = Receiver(cmms=True)
    try:
        target = cmms_target(rcv, "maintainx")
        ev = make_event(alert_id(102, 1), 1, "raised", "a-102")
        attempt(target, ev)
        # A create that began two hours after this work order was made cannot have made it (one hour of skew).
        found = attempt(target, ev, lookup_since=time.time() + 7200)
        assert not found.adopted and creates_per_alert(rcv, "maintainx") == {alert_id(102, 1): 2}
    finally:
        rcv.close()


@pytest.mark.parametrize("kind", ["maintainx", "upkeep"])
def test_lookup_reads_every_page_and_stops_at_the_page_limit(kind, secret_env, monkeypatch):
    rcv = Receiver(cmms=True)
    try:
        target = cmms_target(rcv, kind)
        for i in range(3):
            attempt(target, make_event(alert_id(103, i), 1, "raised", "a-103"))
        mine = make_event(alert_id(103, 2), 1, "raised", "a-103")
        monkeypatch.setattr(cmms, "_MAINTAINX_PAGE", 1)
        monkeypatch.setattr(cmms, "_UPKEEP_PAGE", 1)
        n = len(rcv.cmms_requests)
        # Third work order, third page: found there.
        assert attempt(target, mine, lookup_since=time.time() - 5).adopted
        assert [m for m, _, _ in rcv.cmms_requests[n:]] == ["GET"] * 3
        # With two pages allowed it is not reached: created (a duplicate, reported as such).
        monkeypatch.setattr(cmms, "LOOKUP_MAX_PAGES", 2)
        n = len(rcv.cmms_requests)
        made = attempt(target, mine, lookup_since=time.time() - 5)
        assert (made.adopted, made.lookup_truncated) == (False, True)
        assert [m for m, _, _ in rcv.cmms_requests[n:]] == ["GET", "GET", "POST"]
    finally:
        rcv.close()


@pytest.mark.parametrize("fault,error,reason", [
    ("500", RetryableDeliveryError, "work-order lookup: HTTP 500"),
    ("429", RetryableDeliveryError, "work-order lookup: HTTP 429"),
    ("drop", RetryableDeliveryError, "work-order lookup: connection dropped"),
])
def test_a_failed_lookup_is_classified_and_creates_nothing(fault, error, reason, secret_env):
    rcv = Receiver(cmms=True)
    try:
        target = cmms_target(rcv, "upkeep")
        rcv.inject(fault)
        with pytest.raises(error) as ei:
            attempt(target, make_event(alert_id(104, 1), 1, "raised", "a-104"), lookup_since=time.time())
        assert ei.value.reason.startswith(reason) and ei.value.target == "uk"
        assert not rcv.cmms_orders
    finally:
        rcv.close()


def test_a_lookup_refused_for_good_is_permanent(secret_env, monkeypatch):
    rcv = Receiver(cmms=True)
    try:
        monkeypatch.setenv("PREDMAINT_TEST_API_KEY", "wrong-key")
        with pytest.raises(PermanentDeliveryError, match="work-order lookup: HTTP 401"):
            attempt(cmms_target(rcv, "maintainx"), make_event(alert_id(105, 1), 1, "raised", "a"),
                    lookup_since=time.time())
        monkeypatch.setenv("PREDMAINT_TEST_API_KEY", API_KEY)
        with pytest.raises(PermanentDeliveryError, match="cannot look up the work order.*maximo"):
            attempt(cmms_target(rcv, "maximo"), make_event('ab"c', 1, "raised", "a"), lookup_since=time.time())
        assert not rcv.cmms_orders
    finally:
        rcv.close()


def test_maximo_refuses_a_repeated_create_and_the_409_is_retried(secret_env):
    rcv = Receiver(cmms=True)
    try:
        target = cmms_target(rcv, "maximo")
        ev = make_event(alert_id(106, 1), 1, "raised", "a-106")
        attempt(target, ev)
        # Without a lookup (none ran, or it ran before the first create committed) Maximo's guard holds.
        with pytest.raises(RetryableDeliveryError, match="409 .transactionid already used") as ei:
            attempt(target, ev)
        assert ei.value.http_status == 409 and creates_per_alert(rcv, "maximo") == {alert_id(106, 1): 1}
        # A 409 is "already created" only for a create that carried the id; to any other request it is
        # a plain client error.
        rcv.transaction_ids.add("predmaint-other")
        ids = {**transport.event_ids(ev), "target": "max"}
        with pytest.raises(PermanentDeliveryError) as ei:
            transport._exchange(target, "POST", "/maximo/api/os/mxapisr?lean=1",
                                {"apikey": API_KEY, "transactionid": "predmaint-other"}, b"{}", ids, str)
        assert (ei.value.reason, ei.value.http_status) == ("HTTP 409", 409)
    finally:
        rcv.close()


def test_deliverer_records_the_create_before_sending_it(secret_env):
    rcv = Receiver(cmms=True)
    try:
        aid = alert_id(107, 1)
        rcv.hang_creates = {"upkeep"}
        (uk,) = [t for t in cmms_targets(rcv) if t["kind"] == "upkeep"]
        with Deliverer([uk], ":memory:") as d:
            d.submit(make_event(aid, 1, "raised", "a-107"))
            d.pump(0.0)
            assert wait_until(lambda: rcv.hung == ["upkeep"], 10)
            # The CMMS holds the work order, the outbox knows a create is out and no id yet.
            assert d.outbox.create_in_flight("uk", aid) is not None and d.outbox.work_order("uk", aid) is None
            rcv.release.set()
            assert d.drain(timeout_s=10) == []
            assert d.outbox.create_in_flight("uk", aid) is None and d.outbox.work_order("uk", aid)[1] == "open"
    finally:
        rcv.release.set()
        rcv.close()


@pytest.mark.parametrize("state", ["raised", "escalated"])
def test_an_adopted_work_order_gets_the_event_that_found_it(state, secret_env, caplog):
    caplog.set_level(logging.WARNING, logger="predmaint.connectors.deliverer")
    rcv = Receiver(cmms=True)
    try:
        aid = alert_id(108, 1)
        (mx,) = [t for t in cmms_targets(rcv) if t["kind"] == "maintainx"]
        made = attempt(Target.from_config(mx), make_event(aid, 1, "raised", "a-108", "warning"))
        n = len(rcv.cmms_requests)
        with Deliverer([mx], ":memory:") as d:
            # As a restart finds it: the raise's create went out (and made the work order), its answer was lost.
            assert d.outbox.begin_create("mx", aid, time.time() - 1) is None
            d.submit(make_event(aid, 1 if state == "raised" else 2, state, "a-108", "critical"))
            assert d.drain(timeout_s=10) == []
            assert d.outbox.work_order("mx", aid) == (made.work_order_id, "open")
            assert d.outbox.counts() == {"delivered": 1}
        sent = [m for m, _, _ in rcv.cmms_requests[n:]]
        # A raise found its own work order: done. A later event was a create only for want of the id: it
        # becomes the update it would have been.
        assert sent == (["GET"] if state == "raised" else ["GET", "PATCH"])
        assert rcv.cmms_orders[made.work_order_id]["priority"] == (["LOW"] if state == "raised" else ["LOW", "HIGH"])
        assert creates_per_alert(rcv, "maintainx") == {aid: 1}
        assert f"work order {made.work_order_id} of asset a-108, alert {aid}" in caplog.text
    finally:
        rcv.close()


def test_a_create_answered_without_an_id_is_looked_up_by_the_next_event(secret_env, caplog):
    caplog.set_level(logging.WARNING, logger="predmaint.connectors.deliverer")
    rcv = Receiver(cmms=True)
    try:
        aid = alert_id(109, 1)
        (uk,) = [t for t in cmms_targets(rcv) if t["kind"] == "upkeep"]
        rcv.inject("noid")
        with Deliverer([uk], ":memory:") as d:
            d.submit(make_event(aid, 1, "raised", "a-109", "warning"))
            d.submit(make_event(aid, 2, "escalated", "a-109", "critical"))
            d.submit(make_event(aid, 3, "cleared", "a-109", "critical"))
            assert d.drain(timeout_s=10) == []
            assert d.outbox.work_order("uk", aid)[1] == "closed"
        assert "carried no id; later events of the alert look it up" in caplog.text
        assert creates_per_alert(rcv, "upkeep") == {aid: 1}
        (wo,) = orders_of(rcv, "upkeep").values()
        assert (wo["status"], wo["priority"]) == ("complete", [1, 3])
    finally:
        rcv.close()


def test_a_truncated_lookup_is_reported(secret_env, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="predmaint.connectors.deliverer")
    rcv = Receiver(cmms=True)
    try:
        (mx,) = [t for t in cmms_targets(rcv) if t["kind"] == "maintainx"]
        for i in (8, 9):  # more than the one page allowed
            attempt(Target.from_config(mx), make_event(alert_id(110, i), 1, "raised", "o"))
        monkeypatch.setattr(cmms, "_MAINTAINX_PAGE", 1)
        monkeypatch.setattr(cmms, "LOOKUP_MAX_PAGES", 1)
        aid = alert_id(110, 1)
        with Deliverer([mx], ":memory:") as d:
            d.outbox.begin_create("mx", aid, time.time() - 1)
            d.submit(make_event(aid, 1, "raised", "a-110"))
            assert d.drain(timeout_s=10) == []
        assert "read 1 pages without finding it; created it, so it may now exist twice" in caplog.text
    finally:
        rcv.close()


def test_a_clear_after_unconfirmed_creates_says_the_work_order_may_exist(secret_env, caplog):
    caplog.set_level(logging.INFO, logger="predmaint.connectors.deliverer")
    rcv = Receiver(cmms=True, default="500")
    try:
        aid = alert_id(111, 1)
        (mx,) = [t for t in cmms_targets(rcv, max_attempts=2) if t["kind"] == "maintainx"]
        with Deliverer([mx], ":memory:") as d:
            d.submit(make_event(aid, 1, "raised", "a-111"))
            d.submit(make_event(aid, 2, "cleared", "a-111"))
            (dl,) = d.drain(timeout_s=10)  # the raise, given up after two 500s (either may have created)
            assert dl["event_id"] == f"{aid}:1"
            rows = d.outbox._db.execute("SELECT status, last_error FROM deliveries ORDER BY seq").fetchall()
        assert rows[1]["status"] == "suppressed"
        assert "a create was sent but never confirmed, so the CMMS may hold its work order open" in rows[1]["last_error"]
    finally:
        rcv.close()


def test_the_chaos_cmms_double_lists_work_orders_as_maintainx_does(secret_env):
    from predmaint.connectors.faulty_target import FaultyTarget

    double = FaultyTarget(SECRET, API_KEY)
    try:
        target = Target.from_config({"name": "cmms", "kind": "maintainx", "url": double.url,
                                     "secret_env": "PREDMAINT_TEST_API_KEY", "timeout_s": 2.0})
        events = [make_event(alert_id(120, i), 1, "raised", "c") for i in range(3)]
        made = [attempt(target, e) for e in events]
        # The lookup notify sends after an unconfirmed create finds the work order, and creates nothing.
        again = attempt(target, events[1], lookup_since=time.time() - 5)
        assert (again.adopted, again.work_order_id) == (True, made[1].work_order_id)
        assert sum(double.creates.values()) == 3 and double.lookups == 1
        # createdAt[gte] filters, limit and cursor page (as the MaintainX list documents them).
        headers = {"Authorization": f"Bearer {API_KEY}"}
        status, _, body = transport._http("GET", double.url + "/v1/workorders?createdAt%5Bgte%5D=2000-01-01T00"
                                          "%3A00%3A00.000Z&limit=2", headers, None, 2.0)
        doc = json.loads(body)
        assert status == 200 and [w["id"] for w in doc["workOrders"]] == [int(m.work_order_id) for m in made[:2]]
        status, _, body = transport._http("GET", double.url + "/v1/workorders?createdAt%5Bgte%5D=2000-01-01T00"
                                          f"%3A00%3A00.000Z&limit=2&cursor={doc['nextCursor']}", headers, None, 2.0)
        assert json.loads(body) == {"workOrders": [double.work_orders[2]], "nextCursor": None}
        status, _, body = transport._http("GET", double.url + "/v1/workorders?createdAt%5Bgte%5D=2999-01-01T00"
                                          "%3A00%3A00.000Z", headers, None, 2.0)
        assert json.loads(body) == {"workOrders": [], "nextCursor": None}
        assert transport._http("GET", double.url + "/v1/workorders", headers, None, 2.0)[0] == 400
        assert transport._http("GET", double.url + "/v1/workorders", {}, None, 2.0)[0] == 401
    finally:
        double.down()


# --------------------------------------------------------------------------- Kafka loop (fake consumer)


class FakeMessage:
    def __init__(self, topic, partition, offset, key, value):
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def error(self):
        return None

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return self._k

    def value(self):
        return self._v


class FakeConsumer:
    """Just enough of confluent_kafka.Consumer; has no subscribe() on purpose."""

    def __init__(self, topic, partitions, conf):
        self.topic, self.log, self.conf = topic, partitions, conf
        self.pos = {}
        self.assigned = []
        self.closed = False

    def list_topics(self, topic=None, timeout=-1):
        class T:
            partitions = {p: None for p in self.log}
            error = None

        class M:
            topics = {self.topic: T()}

        return M()

    def assign(self, tps):
        self.assigned.append([(tp.partition, tp.offset) for tp in tps])
        for tp in tps:
            self.pos[tp.partition] = 0 if tp.offset < 0 else tp.offset

    def incremental_assign(self, tps):
        self.assign(tps)

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        return 0, len(self.log[tp.partition])

    def consume(self, num_messages=1, timeout=-1):
        out = []
        for p, pos in self.pos.items():
            msgs = self.log[p][pos:pos + num_messages - len(out)]
            out += msgs
            self.pos[p] = pos + len(msgs)
        if not out and timeout and timeout > 0:
            time.sleep(min(timeout, 0.05))
        return out

    def close(self):
        self.closed = True


def kafka_log(topic, events, partitions=2, poison_at=None):
    log_ = {p: [] for p in range(partitions)}
    for i, e in enumerate(events):
        p = int(e["asset"][-1]) % partitions
        value = b"\xff not json" if i == poison_at else json.dumps(e).encode()
        log_[p].append(FakeMessage(topic, p, len(log_[p]), e["asset"].encode(), value))
    return log_


def test_run_notify_assigns_from_outbox_offsets_and_resumes(tmp_path, receiver, secret_env):
    outbox = tmp_path / "notify.sqlite"
    evs = []
    for a in range(4):
        aid = alert_id(30 + a, 1)
        evs += [make_event(aid, 1, "raised", f"m-{a}"), make_event(aid, 2, "cleared", f"m-{a}")]
    first = kafka_log("alerts", evs[:6], poison_at=2)
    consumers = []

    def factory(conf):
        c = FakeConsumer("alerts", current, conf)
        consumers.append(c)
        return c

    dls = []
    current = first
    stats = run_notify(brokers="127.0.0.1:1", topic="alerts", outbox_path=str(outbox),
                       targets=[webhook_target(receiver.url)], stop_after_idle_s=0.3, consumer_factory=factory, on_deadletter=dls.append, poll_s=0.05)
    c1 = consumers[0]
    assert c1.conf["enable.auto.commit"] is False and c1.closed
    assert c1.assigned == [[(0, -2), (1, -2)]]  # OFFSET_BEGINNING, via assign()
    assert (stats.consumed, stats.inserted, stats.rejected, stats.dead_letters) == (6, 5, 1, 1)
    assert dls[0]["target"] == "(ingest)" and "not valid JSON" in dls[0]["reason"]
    assert Outbox(outbox).next_offsets("alerts") == {p: len(m) for p, m in first.items()}
    assert len(receiver.first_seen) == 5

    # Restart with the full log: resumes from stored offsets, no re-ingest.
    current = kafka_log("alerts", evs, poison_at=2)
    stats2 = run_notify(brokers="127.0.0.1:1", topic="alerts", outbox_path=outbox,
                        targets=[webhook_target(receiver.url)], stop_after_idle_s=0.3,
                        consumer_factory=factory, poll_s=0.05)
    assert consumers[1].assigned == [[(p, len(m)) for p, m in first.items()]]
    assert (stats2.consumed, stats2.inserted, stats2.duplicates) == (2, 2, 0)
    # A broker-side replay (offsets lost) re-reads everything: duplicates are
    # ignored by event_id and nothing is sent twice.
    with sqlite3.connect(outbox) as db:
        db.execute("DELETE FROM offsets")
    stats3 = run_notify(brokers="127.0.0.1:1", topic="alerts", outbox_path=outbox,
                        targets=[webhook_target(receiver.url)], stop_after_idle_s=0.3,
                        consumer_factory=factory, poll_s=0.05)
    assert (stats3.consumed, stats3.inserted, stats3.duplicates) == (8, 0, 7)
    assert len(receiver.first_seen) == 7 and sum(receiver.deliveries.values()) == 7
    assert Outbox(outbox).counts() == {"delivered": 7}


def test_run_notify_stop_event_and_config_errors(tmp_path, secret_env):
    with pytest.raises(TargetConfigError):
        run_notify(brokers="b", outbox_path=str(tmp_path / "x"), targets=[])
    with pytest.raises(TargetConfigError):
        run_notify(outbox_path=str(tmp_path / "x"), targets=[webhook_target("http://127.0.0.1:9")])
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    confs = []

    def factory(conf):
        confs.append(conf)
        return FakeConsumer("plant-alerts", {0: []}, conf)

    stats = run_notify(brokers="k1:9092", topic="plant-alerts", outbox_path=tmp_path / "y.sqlite",
                       targets=[webhook_target("http://127.0.0.1:9")], stop=stop, poll_s=0.05,
                       consumer_factory=factory)
    assert time.monotonic() - t0 < 3 and stats.consumed == 0 and stats.partitions == [0]
    assert confs[0]["bootstrap.servers"] == "k1:9092"


# --------------------------------------------------------------------------- scheduling costs


class TopOfWindow(random.Random):
    """Jitter that always draws the top of the backoff window: retry times become exact."""

    def uniform(self, a, b):
        return b


def count_calls(monkeypatch, cls, name):
    calls = []
    real = getattr(cls, name)

    def counted(self, *a, **kw):
        calls.append(a)
        return real(self, *a, **kw)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_next_due_time_comes_from_the_scheduling_round_and_survives_restart(tmp_path, receiver, secret_env,
                                                                             monkeypatch):
    heads = count_calls(monkeypatch, Outbox, "heads")
    receiver.default = "500"
    path = tmp_path / "outbox.sqlite"
    cfg = webhook_target(receiver.url, backoff_base_s=30.0, backoff_max_s=30.0)
    with Deliverer([cfg], path, rng=TopOfWindow()) as d:
        d.submit(make_event(alert_id(40, 1), 1, "raised", "p-40"))
        d.pump(0.0)
        assert d.in_flight == 1 and d.next_due_in() is None  # the only head is in flight
        assert wait_until(lambda: d.pump(0.05) is not None and d.in_flight == 0, 5)
        n = len(heads)
        due = d.next_due_in()
        assert 29.0 < due <= 30.0  # the 500's retry, 30 s out (top of the window)
        assert len(heads) == n  # answered from the round that scheduled the retry
        d.pump(0.0)
        assert 29.0 < d.next_due_in() <= 30.0
        assert len(heads) == n + 1  # one query per scheduling round, none for next_due_in
    assert len(receiver.arrivals) == 1
    # A restarted deliverer knows nothing but the outbox: same retry time, nothing sent early.
    with Deliverer([cfg], path, rng=TopOfWindow()) as d2:
        assert 25.0 < d2.next_due_in() <= 30.0
        d2.pump(0.0)
        assert d2.in_flight == 0 and len(receiver.arrivals) == 1
        # New events make the remembered time stale: another asset is due at once.
        n = len(heads)
        d2.submit(make_event(alert_id(41, 1), 1, "raised", "p-41"))
        assert d2.next_due_in() == 0.0 and len(heads) == n + 1


def test_run_notify_reads_the_heads_once_per_loop(tmp_path, receiver, secret_env, monkeypatch):
    heads = count_calls(monkeypatch, Outbox, "heads")
    consumes = count_calls(monkeypatch, FakeConsumer, "consume")
    evs = [make_event(alert_id(50 + a, 1), s, state, f"n-{a}")
           for a in range(3) for s, state in enumerate(("raised", "cleared"), start=1)]
    receiver.inject("500")
    stats = run_notify(brokers="127.0.0.1:1", topic="alerts", outbox_path=tmp_path / "n.sqlite",
                       targets=[webhook_target(receiver.url)], stop_after_idle_s=0.3, poll_s=0.05,
                       consumer_factory=lambda conf: FakeConsumer("alerts", kafka_log("alerts", evs), conf))
    assert (stats.inserted, stats.delivered, stats.retries) == (6, 6, 1)
    assert len(consumes) > 3
    # Once per loop (plus the very first next_due_in, before any round ran).
    assert len(heads) <= len(consumes) + 1


def test_close_uses_the_work_order_read_when_the_attempt_started(secret_env, monkeypatch):
    reads = count_calls(monkeypatch, Outbox, "work_order")
    rcv = Receiver(cmms=True)
    try:
        target = {"name": "mx", "kind": "maintainx", "url": rcv.url, "secret_env": "PREDMAINT_TEST_API_KEY",
                  "timeout_s": 0.5}
        aid = alert_id(60, 1)
        with Deliverer([target], ":memory:") as d:
            d.submit(make_event(aid, 1, "raised", "c-60"))
            d.submit(make_event(aid, 2, "cleared", "c-60"))
            assert d.drain(timeout_s=10) == []
            assert len(reads) == 2  # one per started attempt, none when recording the close
            assert d.outbox.work_order("mx", aid) == ("1001", "closed")
        assert [(m, p) for m, p, _ in rcv.cmms_requests] == [("POST", "/v1/workorders"),
                                                             ("PATCH", "/v1/workorders/1001/status")]
    finally:
        rcv.close()


def test_tls_context_is_built_once_and_verifies(secret_env, monkeypatch):
    contexts = []

    class RefusingHTTPS:
        def __init__(self, host, port=None, timeout=None, context=None):
            contexts.append(context)

        def request(self, *a, **kw):
            raise ConnectionRefusedError

        def close(self):
            pass

    monkeypatch.setattr(transport.http.client, "HTTPSConnection", RefusingHTTPS)
    ev = make_event(alert_id(70, 1), 1, "raised", "t-70")
    for url in ("https://a.example.com/h", "https://b.example.com/h", "https://a.example.com/h"):
        with pytest.raises(RetryableDeliveryError, match="connection refused"):
            attempt(Target.from_config(webhook_target(url)), ev)
    assert len(contexts) == 3 and all(c is contexts[0] for c in contexts)
    assert isinstance(contexts[0], ssl.SSLContext)
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname


def test_internal_error_is_retried_then_dead_lettered(secret_env, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="predmaint.connectors.deliverer")

    def broken(*a, **kw):
        raise KeyError("bug")

    monkeypatch.setattr(deliverer, "attempt", broken)
    cfg = webhook_target("http://127.0.0.1:9", max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)
    with Deliverer([cfg], ":memory:") as d:
        d.submit(make_event(alert_id(80, 1), 1, "raised", "i-80"))
        (dl,) = d.drain(timeout_s=10)
        assert d.stats["attempts"] == 3 and d.stats["dead"] == 1
    assert (dl["reason"], dl["attempts"], dl["permanent"]) == ("internal error (KeyError)", 3, False)
    retries = [r for r in caplog.records if "retry in" in r.getMessage()]
    assert len(retries) == 2 and all(r.levelno == logging.ERROR for r in retries)
    assert all("internal error (KeyError)" in r.getMessage() and "i-80" in r.getMessage() for r in retries)
