"""Outbox / offset bookkeeping against real SQLite, retry timing, config, InfluxDB format."""

import email.utils
import json
import random
import sqlite3

import pytest

from predmaint.connectors.deadletters import deadletter_to_influx
from predmaint.connectors.outbox import IngestRecord, Outbox
from predmaint.connectors.retry import backoff_delay
from predmaint.connectors.transport import parse_retry_after
from predmaint.errors import TargetConfigError
from predmaint.settings.targets import Target, build_targets

TARGETS = ["hook", "cmms"]


def event(alert, seq, state="raised", asset="pump-03", **kw):
    e = {"v": 1, "event_id": f"{alert}:{seq}", "alert_id": alert, "state": state, "severity": "alarm",
         "rule": "health_low", "site": "plant-1", "line": "line-a", "asset": asset, "sensor": "de-accel",
         "time": "2026-11-23T12:05:00Z", "notify": True}
    e.update(kw)
    return e


def rec(ev, partition=0, offset=0, topic="alerts", key=None):
    return IngestRecord(json.dumps(ev).encode(), key, topic, partition, offset)


@pytest.fixture
def ob(tmp_path):
    o = Outbox(tmp_path / "outbox.sqlite")
    yield o
    o.close()


def test_ingest_is_idempotent_and_stores_next_offsets(ob):
    recs = [rec(event("a", i), partition=i % 2, offset=10 + i) for i in range(6)]
    r = ob.ingest(recs, TARGETS)
    assert (r.inserted, r.duplicates, r.rejected) == (6, 0, [])
    assert ob.next_offsets("alerts") == {0: 15, 1: 16}
    assert ob.counts() == {"pending": 12}
    # Same messages again (replay after an offset reset): nothing new.
    r2 = ob.ingest(recs, TARGETS)
    assert (r2.inserted, r2.duplicates) == (0, 6)
    assert ob.counts() == {"pending": 12}
    # Offsets never move backwards.
    ob.ingest([rec(event("a", 0), partition=0, offset=3)], TARGETS)
    assert ob.next_offsets("alerts") == {0: 15, 1: 16}
    assert ob.next_offsets("other-topic") == {}


def test_offsets_and_events_survive_reopen(tmp_path):
    path = tmp_path / "o.sqlite"
    a = Outbox(path)
    a.ingest([rec(event("a", 1), partition=2, offset=41)], TARGETS)
    a.close()
    b = Outbox(path)
    assert b.next_offsets("alerts") == {2: 42}
    assert b.counts() == {"pending": 2}
    b.close()


def test_ingest_transaction_is_atomic(ob):
    ob.ingest([rec(event("a", 1), offset=0)], ["hook"])
    # A duplicate target name violates the (seq, target) primary key in the
    # middle of the batch: the whole batch, offsets included, must roll back.
    with pytest.raises(sqlite3.IntegrityError):
        ob.ingest([rec(event("b", 1), offset=1), rec(event("b", 2), offset=2)], ["hook", "hook"])
    assert ob.next_offsets("alerts") == {0: 1}
    assert ob.counts() == {"pending": 1}
    n_events = ob._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert n_events == 1


def test_rejected_messages_advance_offsets(ob):
    bad = [IngestRecord(b"{not json", b"pump-01", "alerts", 0, 5),
           IngestRecord(None, b"pump-01", "alerts", 0, 6),
           IngestRecord(b"[1,2]", None, "alerts", 0, 7),
           IngestRecord(json.dumps({"event_id": "x:1"}).encode(), None, "alerts", 0, 8)]
    r = ob.ingest(bad, TARGETS)
    assert r.inserted == 0 and len(r.rejected) == 4
    assert ob.next_offsets("alerts") == {0: 9}
    dl = r.rejected[0]
    assert dl["target"] == "(ingest)" and dl["asset"] == "pump-01" and "alerts/0/5" in dl["reason"]
    assert all(d["permanent"] for d in r.rejected)


def test_asset_from_key_and_notify_false(ob):
    e = event("a", 1)
    del e["asset"]
    r = ob.ingest([rec(e, key=b"fan-9"), rec(event("a", 2, notify=False), offset=1)], TARGETS)
    assert (r.inserted, r.suppressed) == (2, 1)
    assert ob.counts() == {"pending": 2, "suppressed": 2}
    rows = ob._db.execute("SELECT asset FROM events ORDER BY seq").fetchall()
    assert [x[0] for x in rows] == ["fan-9", "pump-03"]


def test_heads_are_oldest_pending_per_target_and_asset(ob):
    evs = [event("a", 1, asset="p1"), event("a", 2, "escalated", asset="p1"), event("b", 1, asset="p2"),
           event("a", 3, "cleared", asset="p1"), event("b", 2, "cleared", asset="p2")]
    ob.ingest([rec(e, offset=i) for i, e in enumerate(evs)], TARGETS)
    heads = {(h["target"], h["asset"]): json.loads(h["payload"])["event_id"] for h in ob.heads(TARGETS)}
    assert heads == {("hook", "p1"): "a:1", ("cmms", "p1"): "a:1", ("hook", "p2"): "b:1", ("cmms", "p2"): "b:1"}
    seq = {json.loads(h["payload"])["event_id"]: h["seq"] for h in ob.heads(TARGETS)}
    # Delivering a:1 on one target advances that target only.
    ob.mark_delivered(seq["a:1"], "hook", 200, 0.0)
    heads = {(h["target"], h["asset"]): json.loads(h["payload"])["event_id"] for h in ob.heads(TARGETS)}
    assert heads[("hook", "p1")] == "a:2" and heads[("cmms", "p1")] == "a:1"
    # A dead letter no longer blocks its asset.
    ob.finish(seq["a:1"], "cmms", "dead", "HTTP 400", 400, 0.0)
    heads = {(h["target"], h["asset"]): json.loads(h["payload"])["event_id"] for h in ob.heads(TARGETS)}
    assert heads[("cmms", "p1")] == "a:2"
    assert ob.heads([]) == []
    with pytest.raises(ValueError):
        ob.finish(seq["b:1"], "cmms", "delivered", "x", None, 0.0)


def test_attempts_counted_before_sending_and_retry_schedule(ob):
    ob.ingest([rec(event("a", 1))], ["hook"])
    (h,) = ob.heads(["hook"])
    assert ob.start_attempt(h["seq"], "hook", 1.0) == 1
    assert ob.start_attempt(h["seq"], "hook", 2.0) == 2
    ob.schedule_retry(h["seq"], "hook", 99.0, "HTTP 503", 503)
    (h,) = ob.heads(["hook"])
    assert (h["attempts"], h["next_attempt_at"]) == (2, 99.0)


def test_work_order_map_written_with_delivery(ob):
    ob.ingest([rec(event("a", 1)), rec(event("a", 2, "cleared"), offset=1)], ["cmms"])
    h = ob.heads(["cmms"])[0]
    ob.mark_delivered(h["seq"], "cmms", 201, 5.0, work_order=("a", "WO-1", "open"))
    assert ob.work_order("cmms", "a") == ("WO-1", "open")
    h = ob.heads(["cmms"])[0]
    ob.mark_delivered(h["seq"], "cmms", 200, 6.0, work_order=("a", "WO-1", "closed"))
    assert ob.work_order("cmms", "a") == ("WO-1", "closed")
    assert ob.work_order("cmms", "zzz") is None
    assert ob.pending(["cmms"]) == 0


def test_create_in_flight_is_recorded_before_sending_and_kept_until_the_work_order_is_known(tmp_path):
    path = tmp_path / "outbox.sqlite"
    ob = Outbox(path)
    ob.ingest([rec(event("a", 1)), rec(event("b", 1, asset="p2"), offset=1)], ["cmms"])
    # First create of the alert: nothing was sent before, create straight away.
    assert ob.begin_create("cmms", "a", 10.0) is None
    assert ob.create_in_flight("cmms", "a") == 10.0
    # The process is killed before the answer is recorded; a restart reads the first start, not its own.
    ob.close()
    ob = Outbox(path)
    assert ob.begin_create("cmms", "a", 20.0) == 10.0
    assert ob.begin_create("cmms", "a", 30.0) == 10.0
    # Per target and alert.
    assert ob.create_in_flight("other", "a") is None and ob.create_in_flight("cmms", "b") is None
    h = next(h for h in ob.heads(["cmms"]) if h["asset"] == "pump-03")
    ob.mark_delivered(h["seq"], "cmms", 201, 40.0, work_order=("a", "WO-1", "open"))
    assert ob.create_in_flight("cmms", "a") is None and ob.work_order("cmms", "a") == ("WO-1", "open")
    # A delivery without a work order (webhook, or a create whose answer carried no id) keeps it.
    assert ob.begin_create("cmms", "b", 50.0) is None
    h = next(h for h in ob.heads(["cmms"]) if h["asset"] == "p2")
    ob.mark_delivered(h["seq"], "cmms", 201, 60.0)
    assert ob.create_in_flight("cmms", "b") == 50.0
    ob.close()


def test_adopting_a_looked_up_work_order_makes_the_event_due_again(ob):
    ob.ingest([rec(event("a", 2, "escalated"))], ["cmms"])
    (h,) = ob.heads(["cmms"])
    ob.start_attempt(h["seq"], "cmms", 1.0)
    ob.schedule_retry(h["seq"], "cmms", 500.0, "HTTP 503", 503)
    assert ob.begin_create("cmms", "a", 1.0) is None
    ob.adopt_work_order(h["seq"], "cmms", "a", "WO-9", 7.0)
    assert ob.work_order("cmms", "a") == ("WO-9", "open") and ob.create_in_flight("cmms", "a") is None
    (h,) = ob.heads(["cmms"])  # still pending, due now: sent next as an update of WO-9
    assert (h["next_attempt_at"], h["attempts"]) == (7.0, 1)
    assert ob.counts() == {"pending": 1}


def test_an_outbox_written_before_create_intents_gains_the_table(tmp_path):
    path = tmp_path / "old.sqlite"
    ob = Outbox(path)
    ob.ingest([rec(event("a", 1))], ["cmms"])
    ob.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE create_intents")  # as written by the outbox of commit 98a3013
    ob = Outbox(path)
    assert ob.begin_create("cmms", "a", 1.0) is None and ob.counts() == {"pending": 1}
    ob.close()


def test_orphan_targets_reported(ob):
    ob.ingest([rec(event("a", 1))], ["old", "hook"])
    assert ob.pending_other_targets(["hook"]) == {"old": 1}


# ---------------------------------------------------------------- retry timing


def test_backoff_full_jitter_bounds():
    rng = random.Random(1)
    for n in range(1, 15):
        window = min(10.0, 0.5 * 2 ** (n - 1))
        draws = [backoff_delay(n, 0.5, 10.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= window for d in draws)
        assert max(draws) > 0.8 * window  # really uses the whole window
    assert backoff_delay(10_000, 1.0, 5.0, rng) <= 5.0  # no overflow


def test_parse_retry_after():
    now = 1_800_000_000.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 30 ") == 30.0
    assert parse_retry_after(email.utils.formatdate(now + 45, usegmt=True), now=now) == pytest.approx(45, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 45, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37", now=784111777.0) == 0.0  # no zone = GMT
    for bad in (None, "", "-5", "1.5", "tomorrow"):
        assert parse_retry_after(bad, now=now) is None


# ---------------------------------------------------------------- config


def test_target_config_validation(monkeypatch):
    monkeypatch.setenv("PM_KEY", "k-123456")
    t = Target.from_config({"name": "mx", "kind": "maintainx", "url": "https://api.getmaintainx.com",
                            "secret_env": "PM_KEY", "asset_ids": {"pump-03": 1}})
    assert (t.timeout_s, t.max_attempts) == (15.0, 12)
    assert t.secret() == "k-123456" and "k-123456" not in repr(t)
    bad = [
        {"kind": "webhook", "url": "http://x"},
        {"name": "a", "kind": "sap", "url": "http://x"},
        {"name": "a", "kind": "webhook", "url": "ftp://x/token-abc"},
        {"name": "a", "kind": "webhook", "url": "http://x", "timeout": 3},
        {"name": "a", "kind": "webhook", "url": "http://x", "timeout_s": 0},
        {"name": "a", "kind": "webhook", "url": "http://x", "max_attempts": "many"},
        {"name": "a", "kind": "upkeep", "url": "http://x"},
    ]
    for cfg in bad:
        with pytest.raises(TargetConfigError) as ei:
            Target.from_config(cfg)
        assert "token-abc" not in str(ei.value)
    with pytest.raises(TargetConfigError):
        build_targets([{"name": "a", "kind": "webhook", "url": "http://x"}] * 2)
    with pytest.raises(TargetConfigError):
        build_targets([])
    monkeypatch.delenv("PM_KEY")
    with pytest.raises(TargetConfigError, match="PM_KEY is not set"):
        t.secret()


# ---------------------------------------------------------------- InfluxDB


def test_deadletter_influx_point():
    dl = {"event_id": "ab:3", "alert_id": "ab", "asset": "pump-03", "site": "plant-1", "line": "line-a",
          "state": "cleared", "severity": "critical", "target": "mx", "kind": "maintainx",
          "reason": "HTTP 500; gave up after 5 attempts", "http_status": 500, "attempts": 5,
          "permanent": False, "event_time": "2026-11-23T12:05:00.123456Z", "failed_at": "2026-11-23T12:09:00Z"}
    p = deadletter_to_influx(dl)
    assert p["measurement"] == "delivery_deadletter"
    assert p["tags"] == {"site": "plant-1", "line": "line-a", "asset": "pump-03", "target": "mx",
                         "kind": "maintainx", "state": "cleared"}
    assert "alert_id" not in p["tags"] and p["fields"]["alert_id"] == "ab"
    assert p["fields"]["http_status"] == 500 and p["fields"]["attempts"] == 5
    assert p["time"] == 1795435500123456000
    # Ingest rejections have no event time: fall back to the failure time.
    p2 = deadletter_to_influx({"target": "(ingest)", "kind": "ingest", "asset": "p", "reason": "bad",
                               "failed_at": "2026-11-23T12:09:00Z", "http_status": None})
    assert p2["time"] == 1795435740000000000 and "http_status" not in p2["fields"]
    influxdb_client = pytest.importorskip("influxdb_client")
    line = influxdb_client.Point.from_dict(p).to_line_protocol()
    assert line.startswith("delivery_deadletter,asset=pump-03,kind=maintainx,line=line-a,site=plant-1,"
                           "state=cleared,target=mx ")
    assert "attempts=5i" in line and line.endswith(" 1795435500123456000")


def test_target_defaults_and_settings_come_from_the_dataclass():
    minimal = {"name": "a", "kind": "webhook", "url": "http://x"}
    assert Target.from_config(minimal) == Target("a", "webhook", "http://x")
    full = dict(minimal, secret_env="E", timeout_s="2.5", max_attempts="3", backoff_base_s=1, backoff_max_s=4,
                retry_after_max_s=60, asset_ids={"p": 1}, defaults={"d": 2}, close_status="X")
    t = Target.from_config(full)
    assert t == Target("a", "webhook", "http://x", "E", 2.5, 3, 1.0, 4.0, 60.0,
                       {"asset_ids": {"p": 1}, "defaults": {"d": 2}, "close_status": "X"})
    assert type(t.max_attempts) is int and type(t.timeout_s) is float and type(t.backoff_max_s) is float
    assert Target.from_config(dict(minimal, secret_env="")).secret_env is None
    for name in ("options", "retry_after_max", "secret"):
        with pytest.raises(TargetConfigError, match="unknown settings"):
            Target.from_config(dict(minimal, **{name: 1}))
    for name in ("timeout_s", "max_attempts", "backoff_base_s", "backoff_max_s", "retry_after_max_s"):
        with pytest.raises(TargetConfigError, match="invalid number"):
            Target.from_config(dict(minimal, **{name: "x"}))
