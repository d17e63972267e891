"""The scenarios of ``predmaint chaos``: each one fault (or a few in one run) and the row it measures.

Each scenario is a function of the :class:`~predmaint.pipelines.chaos_harness.Harness`
that returns a :class:`~predmaint.pipelines.chaos_harness.Row`; :data:`SCENARIOS`
maps their names (the ``--scenario`` choices, and ``baseline``) to them.
Pipeline scenarios are a ``fault(ctx)`` run by
:meth:`~predmaint.pipelines.chaos_harness.Harness.streamed` while the data is
streamed; delivery scenarios run ``predmaint notify`` against a
:class:`~predmaint.connectors.faulty_target.FaultyTarget`.

Examples
--------
>>> sorted(SCENARIOS) == sorted(["baseline", *FULL, *COMBINED])
True
"""

from __future__ import annotations

import collections
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from predmaint.connectors import kafka_io
from predmaint.connectors.faulty_target import FaultyTarget
from predmaint.connectors.hostile import HostileKind, hostile_kinds, hostile_mix
from predmaint.pipelines.chaos_harness import API_KEY_ENV, SECRET_ENV, Harness, Row, snapshots
from predmaint.settings import Settings

__all__ = ["COMBINED", "FULL", "SCENARIOS", "baseline", "broker_restarted_empty", "delivery", "hostile",
           "hostile_kill9_influx_stopped", "influx_frozen", "influx_stopped", "kill9_after_snapshot",
           "kill9_before_snapshot", "kill9_repeated", "notify_kill9", "webhook_429", "webhook_429_notify_kill9",
           "webhook_500", "webhook_down"]

#: One fault per scenario, in the order they run (``make chaos``).
FULL = ["kill9_before_snapshot", "kill9_after_snapshot", "kill9_repeated", "influx_stopped", "influx_frozen",
        "broker_restarted_empty", "hostile", "webhook_down", "webhook_500", "webhook_429", "notify_kill9"]
#: Several faults in one run (what ``--short`` runs, to keep it near a minute).
COMBINED = ["hostile_kill9_influx_stopped", "webhook_429_notify_kill9"]


# --------------------------------------------------------------------------- pipeline scenarios


def baseline(h: Harness) -> Row:
    """The reference: the same data through one uninterrupted ``--until-end`` run (sets ``h.reference``)."""
    config, settings = h.config("baseline")
    good = h.data(settings)
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, good)
    t0 = time.monotonic()
    proc = h.spawn(config, "run", "--until-end", tag="run")
    row = Row("baseline", sent=len(good), crashes=h.crashed(proc, killed=False))
    row.crashes += h.panics(config)
    h.reference = h.stored(settings)
    row = h.measure(row, settings)
    row.note = f"uninterrupted --until-end run, {time.monotonic() - t0:.0f} s; the reference"
    return row


def kill9_before_snapshot(h: Harness) -> Row:
    """kill -9 the streaming run once points are stored but before its first snapshot (every 600 s)."""
    def fault(ctx):
        rec = Path(ctx["settings"].recovery.dir)
        ok = h.wait(ctx, lambda: h.count(ctx["settings"]) > 0)
        snaps = snapshots(rec)
        h.kill_and_restart(ctx)
        ctx["note"] = (f"killed after {ctx['progress'][0]} of {ctx['total']} messages with points stored and "
                       f"{snaps} snapshot rows (snapshot every 600 s)" if ok else "run ended before the kill")
    return h.streamed("kill9_before_snapshot", fault, snapshot_s=600.0)


def kill9_after_snapshot(h: Harness) -> Row:
    """kill -9 the streaming run after a snapshot, with points stored."""
    def fault(ctx):
        rec = Path(ctx["settings"].recovery.dir)
        ok = h.wait(ctx, lambda: h.count(ctx["settings"]) > 0 and snapshots(rec) > 0)
        at = ctx["progress"][0]
        h.kill_and_restart(ctx)
        ctx["note"] = (f"killed after {at} of {ctx['total']} messages, after a snapshot" if ok
                       else "run ended before the kill")
    return h.streamed("kill9_after_snapshot", fault)


def kill9_repeated(h: Harness) -> Row:
    """kill -9 the streaming run at 1/4, 1/2 and 3/4 of the stream, each time after new points were stored."""
    def fault(ctx):
        kills = 0
        for frac in (0.25, 0.5, 0.75):
            seen = h.count(ctx["settings"])
            def reached(frac: float = frac, seen: int = seen) -> bool:
                return ctx["progress"][0] >= frac * ctx["total"] and h.count(ctx["settings"]) > seen

            if not h.wait(ctx, reached):
                break
            h.kill_and_restart(ctx)
            kills += 1
        ctx["note"] = f"{kills} kills at 1/4, 1/2, 3/4 of the stream, each after new points were stored"
    return h.streamed("kill9_repeated", fault)


def _influx_outage(h: Harness, name: str, how: str) -> Row:
    """InfluxDB stopped (``how='stop'``) or frozen with SIGSTOP for ``outage_s`` mid-stream."""
    def fault(ctx):
        h.wait(ctx, lambda: h.count(ctx["settings"]) > 0 and ctx["progress"][0] < ctx["total"])
        before = h.count(ctx["settings"])
        if how == "stop":
            h.influxdb.halt()
        else:
            h.influxdb.freeze()
        time.sleep(h.outage_s)
        if how == "stop":
            h.influxdb.start()
        else:
            h.influxdb.thaw()
        took = h.wait_for_growth(ctx["settings"], before, max(120, 2 * h.outage_s))
        ctx["recover_s"] = None if took is None else round(took, 1)
        ctx["note"] = (f"InfluxDB {'stopped' if how == 'stop' else 'frozen (SIGSTOP)'} {h.outage_s:g} s "
                       f"mid-stream; storage.retry_for_s = {ctx['settings'].storage.retry_for_s:g}")
    return h.streamed(name, fault)


def influx_stopped(h: Harness) -> Row:
    """InfluxDB stopped for ``outage_s`` mid-stream."""
    return _influx_outage(h, "influx_stopped", "stop")


def influx_frozen(h: Harness) -> Row:
    """InfluxDB frozen (SIGSTOP: connections hang, nothing refuses) for ``outage_s`` mid-stream."""
    return _influx_outage(h, "influx_frozen", "freeze")


def broker_restarted_empty(h: Harness) -> Row:
    """The broker restarted empty at 1/2 of the stream (Tansu keeps no data), the topics recreated."""
    def fault(ctx):
        settings = ctx["settings"]
        h.wait(ctx, lambda: ctx["progress"][0] >= ctx["total"] // 2 and h.count(settings) > 0
               and snapshots(Path(settings.recovery.dir)) > 0)
        ctx["pause"].set()
        h.broker.halt()
        h.broker.start()  # Tansu keeps topics in memory only: it comes back empty
        kafka_io.ensure_topics(settings.kafka)
        before = h.count(settings)
        ctx["pause"].clear()
        took = h.wait_for_growth(settings, before, 60)
        ctx["recover_s"] = None if took is None else round(took, 1)
        ctx["topics"] = False
        ctx["note"] = ("broker restarted empty at 1/2 of the stream, topics recreated, the rest produced; "
                       + ("consumption resumed" if took is not None else
                          "no point stored for 60 s after: the run consumed nothing more (stall)")
                       + "; topic counts n/a (the first half's alerts and dead letters died with the broker)")
    row = h.streamed("broker_restarted_empty", fault)
    config = h.workdir / "broker_restarted_empty.yaml"
    warned = sum(p.read_text(errors="replace").count("is beyond its end")
                 for p in h.workdir.glob(f"{config.stem}-*.stderr"))
    row.note += f"; {warned} partition(s) warned about and read again from their start"
    return row


def hostile(h: Harness) -> Row:
    """``hostile_n`` hostile messages of every kind mixed into the stream."""
    _, settings = h.config("hostile")
    kinds = hostile_kinds(settings)
    mixed, chosen = hostile_mix(h.data(settings), kinds, h.hostile_n)

    def fault(ctx):
        ctx["note"] = f"{len(chosen)} hostile messages of {len({k.name for k in chosen})} kinds mixed in"
    row = h.streamed("hostile", fault, messages=mixed)
    row.hostile = len(chosen)
    row.hostile_dead_lettered = _dead_lettered(settings, chosen)
    return row


def hostile_kill9_influx_stopped(h: Harness) -> Row:
    """Hostile messages mixed in, kill -9 after a snapshot at 1/3 of the stream, InfluxDB stopped at 2/3."""
    _, settings = h.config("hostile_kill9_influx_stopped")
    mixed, chosen = hostile_mix(h.data(settings), hostile_kinds(settings), h.hostile_n)

    def fault(ctx):
        rec = Path(ctx["settings"].recovery.dir)
        h.wait(ctx, lambda: ctx["progress"][0] >= ctx["total"] // 3 and h.count(ctx["settings"]) > 0
               and snapshots(rec) > 0)
        at = ctx["progress"][0]
        h.kill_and_restart(ctx)
        killed_s = ctx["recover_s"]
        h.wait(ctx, lambda: ctx["progress"][0] >= 2 * ctx["total"] // 3)
        before = h.count(ctx["settings"])
        h.influxdb.halt()
        time.sleep(h.outage_s)
        h.influxdb.start()
        took = h.wait_for_growth(ctx["settings"], before, max(120, 2 * h.outage_s))
        ctx["recover_s"] = max(killed_s or 0.0, round(took, 1) if took is not None else 0.0)
        ctx["note"] = (f"{len(chosen)} hostile messages of {len({k.name for k in chosen})} kinds mixed in; "
                       f"kill -9 after a snapshot at {at} of {ctx['total']} messages (back in {killed_s} s); "
                       f"InfluxDB stopped {h.outage_s:g} s at 2/3 (writes again {took and round(took, 1)} s "
                       f"after)")
    row = h.streamed("hostile_kill9_influx_stopped", fault, messages=mixed)
    row.hostile = len(chosen)
    row.hostile_dead_lettered = _dead_lettered(settings, chosen)
    return row


def _dead_lettered(settings: Settings, chosen: list[HostileKind]) -> int:
    """How many hostile messages have a dead letter whose reason says what the kind expects."""
    docs = [json.loads(v or b"{}") for _, v in kafka_io.read_topic(settings.kafka, settings.kafka.dead_letter_topic)]
    have = collections.Counter((k.expect, k.sensor) for k in chosen)
    found = 0
    for (expect, sensor), n in have.items():
        found += min(n, sum(1 for d in docs if expect in d.get("reason", "") and d.get("sensor") == sensor))
    return found


# --------------------------------------------------------------------------- delivery scenarios


def delivery(h: Harness, name: str, fault: str) -> Row:
    """Alert events delivered by ``predmaint notify`` to a :class:`FaultyTarget` while ``fault`` happens.

    ``fault``: ``down`` (port closed), ``500``, ``429`` (``Retry-After: 1``), each for
    ``webhook_outage_s``; ``notify_kill9`` (notify killed -9 after 1/3 of the webhooks, then
    restarted); ``429+notify_kill9`` (both, one after the other).
    """
    target = FaultyTarget(h.env[SECRET_ENV], h.env[API_KEY_ENV],
                          delay_s=0.02 if fault.endswith("notify_kill9") else 0.0)
    common = {"timeout_s": 1.0, "max_attempts": 10_000, "backoff_base_s": 0.05, "backoff_max_s": 1.0}
    targets = [{"name": "hook", "kind": "webhook", "url": target.url + "/hooks/predmaint",
                "secret_env": SECRET_ENV, **common},
               {"name": "cmms", "kind": "maintainx", "url": target.url, "secret_env": API_KEY_ENV, **common}]
    config, settings = h.config(name, targets=targets)
    events = h.alert_events(settings)
    kafka_io.ensure_topics(settings.kafka)
    row = Row(name, sent=len(events))
    if fault == "down":
        target.down()
    elif fault in ("500", "429", "429+notify_kill9"):
        target.mode = fault.split("+")[0]
    kafka_io.produce(settings.kafka, settings.kafka.alerts_topic, events)
    proc = h.spawn(config, "notify", "--exit-when-idle", "3", tag="notify")
    if fault == "429+notify_kill9":
        time.sleep(h.webhook_outage_s)
        target.mode = "ok"
        row.note = f"target answered 429, Retry-After: 1 for {h.webhook_outage_s:g} s; then "
    if fault.endswith("notify_kill9"):
        expected = len(events)
        t0 = time.monotonic()
        while sum(target.webhooks.values()) < expected // 3 and time.monotonic() - t0 < 120 \
                and proc.poll() is None:
            time.sleep(0.01)
        at = sum(target.webhooks.values())
        proc.kill()
        row.crashes += h.crashed(proc, killed=True)
        target.watch_recovery()
        proc = h.spawn(config, "notify", "--exit-when-idle", "3", tag="notify")
        row.note += f"notify killed (-9) after {at} of {expected} webhooks, restarted"
    else:
        time.sleep(h.webhook_outage_s)
        target.watch_recovery()
        if fault == "down":
            target.up()
        target.mode = "ok"
        row.note = {"down": "target port closed", "500": "target answered 500",
                    "429": "target answered 429, Retry-After: 1"}[fault] + f" for {h.webhook_outage_s:g} s"
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        row.note += "; notify did not finish within 600 s"
    row.crashes += h.crashed(proc, killed=False) + h.panics(config)
    ids = {json.loads(v)["event_id"] for _, v in events}
    delivered = set(target.webhooks)
    alerts = {json.loads(v)["alert_id"] for _, v in events}
    row.delivered = len(delivered & ids)
    row.lost = len(ids - delivered) + len(alerts - set(target.creates))
    row.resent = sum(n - 1 for n in target.webhooks.values())
    row.dup_work_orders = sum(n - 1 for n in target.creates.values())
    row.alert_events = len(events)
    row.recover_s = None if target.first_ok_after is None else round(target.first_ok_after, 1)
    # notify writes its dead letters (deliveries given up) to InfluxDB; no database: none written.
    row.dead_measurement = max(h.count(settings, "deadletters"), 0)
    if target.lookups:
        # Only a create following an unconfirmed one looks up: these are the kill's aftermath (or a retry's).
        row.note += f"; {target.lookups} work-order lookup(s) by notify before creating again"
    if target.bad_signatures:
        row.note += f"; {target.bad_signatures} bad signatures"
    target.down()
    return row


def webhook_down(h: Harness) -> Row:
    """The target's port closed for ``webhook_outage_s``."""
    return delivery(h, "webhook_down", "down")


def webhook_500(h: Harness) -> Row:
    """The target answers 500 for ``webhook_outage_s``."""
    return delivery(h, "webhook_500", "500")


def webhook_429(h: Harness) -> Row:
    """The target answers 429 with ``Retry-After: 1`` for ``webhook_outage_s``."""
    return delivery(h, "webhook_429", "429")


def notify_kill9(h: Harness) -> Row:
    """notify killed -9 mid-delivery (each request answered slowly, so that the kill lands mid-way)."""
    return delivery(h, "notify_kill9", "notify_kill9")


def webhook_429_notify_kill9(h: Harness) -> Row:
    """429 with ``Retry-After`` for ``webhook_outage_s``, then notify killed -9 mid-delivery."""
    return delivery(h, "webhook_429_notify_kill9", "429+notify_kill9")


#: Every scenario by name: ``baseline`` (run first, the reference), :data:`FULL` and :data:`COMBINED`.
SCENARIOS: dict[str, Callable[[Harness], Row]] = {
    f.__name__: f for f in (baseline, kill9_before_snapshot, kill9_after_snapshot, kill9_repeated, influx_stopped,
                            influx_frozen, broker_restarted_empty, hostile, hostile_kill9_influx_stopped,
                            webhook_down, webhook_500, webhook_429, notify_kill9, webhook_429_notify_kill9)}
