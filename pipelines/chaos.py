"""``predmaint chaos`` (``make chaos``): faults injected into real processes on loopback, with counts.

Everything runs for real: an embedded Tansu broker and an InfluxDB 1.x
(:mod:`predmaint.connectors.local_services`), ``predmaint run`` and
``predmaint notify`` as subprocesses, and an HTTP target on loopback that
plays a webhook receiver and a MaintainX-style CMMS. Nothing is mocked.

Pipeline scenarios stream the simulated fleet (with one sensor silent for a
while, so that alerts are raised and cleared) into a streaming ``predmaint
run`` over ``stream_s`` seconds while the fault happens; then the streaming run
is stopped (SIGINT) and ``predmaint run --until-end`` closes the last windows,
as an operator would. Each is compared with ``baseline``, the same data
through one uninterrupted ``--until-end`` run:

* points stored / lost / extra: ``health``, ``features`` and ``alerts`` points
  in InfluxDB, by measurement, tags and time, missing from or not in the
  baseline (an extra point would be a window stored twice under another time);
  changed: health values that differ from the baseline's;
* alert events on the topic and duplicated ones (the same ``event_id`` again:
  at-least-once after a restart, which ``predmaint notify`` deduplicates);
* dead letters: on the dead-letter topic and in the ``deadletters`` measurement;
* crashes: a process that exited on its own with an error, or printed a Rust panic;
* recover_s: seconds from the end of the fault until the first point stored after it.

Delivery scenarios publish alert events (raised, escalated, cleared) and run
``predmaint notify`` against the target while it is down, answers 500, answers
429 with Retry-After, or while notify itself is killed: delivered, lost,
resent (a webhook-id seen again, deduplicated by the receiver) and work orders
created twice (the CMMS API has no idempotency key; notify looks a work order
up before creating it again, see :mod:`predmaint.connectors.cmms`).

The last line of output is one JSON object with every row and the totals.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from predmaint.connectors import kafka_io
from predmaint.connectors.faulty_target import FaultyTarget
from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.connectors.hostile import HostileKind, hostile_kinds, hostile_mix
from predmaint.connectors.local_services import EmbeddedBroker, LocalInfluxDB
from predmaint.connectors.storage import open_query_reader
from predmaint.models.alerting import AlertEvent, alert_id
from predmaint.pipelines import points
from predmaint.settings import Settings, default_config_text, load_settings

MEASUREMENTS = ("health", "features", "alerts")
SECRET_ENV, API_KEY_ENV = "PREDMAINT_CHAOS_WEBHOOK_SECRET", "PREDMAINT_CHAOS_API_KEY"
#: The sensor that falls silent in the chaos data (so that sensor_offline is raised and cleared).
SILENT = ("pump-02", "bearing-temp")

FULL = ["kill9_before_snapshot", "kill9_after_snapshot", "kill9_repeated", "influx_stopped", "influx_frozen",
        "broker_restarted_empty", "hostile", "webhook_down", "webhook_500", "webhook_429", "notify_kill9"]
#: The short version (``--short``, the test): the same faults, several in one run, to keep it near a minute.
SHORT = ["hostile_kill9_influx_stopped", "webhook_429_notify_kill9"]
COMBINED = ["hostile_kill9_influx_stopped", "webhook_429_notify_kill9"]


@dataclass
class Row:
    """One scenario's counts (``None``: not measured in this scenario)."""

    scenario: str
    sent: int = 0
    stored: int | None = None
    lost: int | None = None
    extra: int | None = None
    changed: int | None = None
    alert_events: int | None = None
    dup_alert_events: int | None = None
    delivered: int | None = None
    resent: int | None = None
    dup_work_orders: int | None = None
    #: Distinct dead letters on the topic (by source, step and reason): a kill -9 makes the topic
    #: at-least-once, like the alerts topic, so copies re-sent after a resume are counted apart.
    dead_topic: int | None = None
    dup_dead_topic: int | None = None
    dead_measurement: int | None = None
    hostile: int | None = None
    hostile_dead_lettered: int | None = None
    crashes: int = 0
    recover_s: float | None = None
    note: str = ""


# --------------------------------------------------------------------------- the harness


def _snapshots(recovery_dir: Path) -> int:
    """Rows in bytewax's recovery snapshots table (0 before the first snapshot)."""
    n = 0
    for f in recovery_dir.glob("part-*.sqlite3"):
        try:
            with sqlite3.connect(f, timeout=1) as c:
                n += c.execute("SELECT count(*) FROM snaps").fetchone()[0]
        except sqlite3.Error:
            pass  # being written: counted at the next look
    return n


class Chaos:
    """Runs the scenarios against one broker and one InfluxDB; one database and set of topics per scenario."""

    def __init__(self, workdir: Path, broker: EmbeddedBroker, influxdb: LocalInfluxDB, *, hours: float,
                 stream_s: float, outage_s: float, hostile_n: int, webhook_outage_s: float, alerts_n: int,
                 log: Callable[[str], None] = print):
        self.workdir, self.broker, self.influxdb = workdir, broker, influxdb
        self.hours, self.stream_s, self.outage_s = hours, stream_s, outage_s
        self.hostile_n, self.webhook_outage_s, self.alerts_n = hostile_n, webhook_outage_s, alerts_n
        self.log = log
        # PYTHONFAULTHANDLER: a process that dies of a signal (a segfault) leaves its Python stack in its stderr file.
        self.env = dict(os.environ, PYTHONFAULTHANDLER="1",
                        **{SECRET_ENV: "whsec_Y2hhb3Mtc2lnbmluZy1rZXktMDEyMzQ1Njc4OWFiY2RlZg==",
                           API_KEY_ENV: "chaos-api-key"})
        self.reference: dict[str, dict] = {}
        self.good: list[tuple[bytes | None, bytes]] = []

    # -- configuration and processes ----------------------------------------------------

    def config(self, name: str, *, snapshot_s: float = 2.0, targets: Iterable[dict] = ()) -> tuple[Path, Settings]:
        doc = yaml.safe_load(default_config_text())
        doc["kafka"].update(bootstrap=self.broker.bootstrap, telemetry_topic=f"{name}.telemetry",
                            dead_letter_topic=f"{name}.deadletter", alerts_topic=f"{name}.alerts")
        doc["storage"].update(kind="influx-v1", url=self.influxdb.url, database=name,
                              retry_for_s=max(300.0, 3 * self.outage_s))
        doc["recovery"].update(dir=str(self.workdir / f"recovery-{name}"), snapshot_interval_s=snapshot_s)
        doc["simulator"].update(hours=self.hours, ground_truth_path=str(self.workdir / "truth.json"))
        if "metrics" in doc:  # several runs at once on one machine: no fixed /metrics port
            doc["metrics"]["port"] = 0
        doc["notify"] = {"outbox_path": str(self.workdir / f"outbox-{name}.sqlite"), "targets": list(targets)}
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path, load_settings(path)

    def _spawn(self, config: Path, *args: str, tag: str) -> subprocess.Popen:
        err = open(self.workdir / f"{config.stem}-{tag}.stderr", "ab")
        return subprocess.Popen([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), *args],
                                stdout=subprocess.DEVNULL, stderr=err, env=self.env, start_new_session=True)

    @staticmethod
    def _crashed(proc: subprocess.Popen, killed: bool) -> int:
        """1 if ``proc`` ended on its own with an error (a kill -9 or SIGINT of ours is not a crash)."""
        rc = proc.wait()
        return 0 if rc == 0 or (killed and rc in (-signal.SIGKILL, -signal.SIGINT, 130, 1)) else 1

    def _panics(self, config: Path) -> int:
        """Stderr files of ``config``'s processes with a Rust panic, a traceback or a fatal signal (faulthandler)."""
        marks = ("panicked", "Traceback", "Fatal Python error")
        return sum(any(m in p.read_text(errors="replace") for m in marks)
                   for p in self.workdir.glob(f"{config.stem}-*.stderr"))

    def _stop(self, proc: subprocess.Popen) -> None:
        """Stop a streaming run as an operator would (Ctrl-C); kill -9 if it does not stop within 30 s."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- storage -------------------------------------------------------------------------

    def stored(self, settings: Settings) -> dict[str, dict]:
        """``{measurement: {(tags, time): health or None}}`` for the measurements compared with the baseline."""
        reader = open_query_reader(settings.storage)
        out: dict[str, dict] = {}
        try:
            for m in MEASUREMENTS:
                keys: dict = {}
                for s in reader.query(f'SELECT * FROM "{m}" GROUP BY *'):
                    cols = s["columns"]
                    h = cols.index("health") if m == "health" and "health" in cols else None
                    tags = tuple(sorted((k, v) for k, v in (s.get("tags") or {}).items() if v))
                    for row in s["values"]:
                        keys[(tags, row[0])] = row[h] if h is not None else None
                out[m] = keys
        finally:
            reader.close()
        return out

    def count(self, settings: Settings, measurement: str = "health") -> int:
        try:
            reader = open_query_reader(settings.storage)
        except Exception:
            return -1  # the server is down: not a count
        try:
            field_name = {"health": "health", "deadletters": "count"}.get(measurement, "health")
            res = reader.query(f'SELECT count("{field_name}") FROM "{measurement}"')
            return int(res[0]["values"][0][1]) if res else 0
        except Exception:
            return -1
        finally:
            reader.close()

    def _wait_for_growth(self, settings: Settings, since: int, timeout_s: float) -> float | None:
        """Seconds until more than ``since`` health points are stored, or None after ``timeout_s``."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.count(settings) > since:
                return time.monotonic() - t0
            time.sleep(0.25)
        return None

    # -- data ----------------------------------------------------------------------------

    def data(self, settings: Settings) -> list[tuple[bytes | None, bytes]]:
        """The fleet's telemetry with ``SILENT`` quiet from 1/3 to 5/6 of the run (rounded to windows)."""
        if not self.good:
            start = int(settings.simulator.start_time.timestamp() * 1000)
            span = self.hours * 3_600_000
            win_ms = int(settings.window.length_s * 1000)
            lo, hi = (start + int(f * span) // win_ms * win_ms for f in (1 / 3, 5 / 6))
            asset, sensor = SILENT
            for m in fleet_messages(settings):
                doc = json.loads(m.value)
                if not (doc["asset"] == asset and doc["sensor"] == sensor and lo <= doc["ts_ms"] < hi):
                    self.good.append((m.key, m.value))
        return self.good

    def _produce_paced(self, settings: Settings, messages: list, done: threading.Event,
                       progress: list[int], pause: threading.Event | None = None) -> None:
        chunks = max(1, int(self.stream_s / 0.25))
        size = max(1, len(messages) // chunks + 1)
        for i in range(0, len(messages), size):
            while pause is not None and pause.is_set():
                time.sleep(0.05)
            kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, messages[i:i + size])
            progress[0] = min(len(messages), i + size)
            time.sleep(self.stream_s / chunks)
        done.set()

    # -- measuring -----------------------------------------------------------------------

    def measure(self, row: Row, settings: Settings, *, topics: bool = True) -> Row:
        got = self.stored(settings)
        row.stored = sum(len(v) for v in got.values())
        if self.reference:
            row.lost = sum(len(self.reference[m].keys() - got[m].keys()) for m in MEASUREMENTS)
            row.extra = sum(len(got[m].keys() - self.reference[m].keys()) for m in MEASUREMENTS)
            ref = self.reference["health"]
            row.changed = sum(1 for k, v in got["health"].items() if k in ref and ref[k] != v)
        row.dead_measurement = self.count(settings, "deadletters")
        if topics:
            events = [json.loads(v or b"{}").get("event_id") for _, v in kafka_io.read_topic(settings.kafka,
                                                                                 settings.kafka.alerts_topic)]
            row.alert_events, row.dup_alert_events = len(events), len(events) - len(set(events))
            dead = [_dead_letter_identity(v) for _, v in kafka_io.read_topic(settings.kafka,
                                                                              settings.kafka.dead_letter_topic)]
            row.dead_topic, row.dup_dead_topic = len(set(dead)), len(dead) - len(set(dead))
        return row

    # -- pipeline scenarios --------------------------------------------------------------

    def baseline(self) -> Row:
        config, settings = self.config("baseline")
        good = self.data(settings)
        kafka_io.ensure_topics(settings.kafka)
        kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, good)
        t0 = time.monotonic()
        proc = self._spawn(config, "run", "--until-end", tag="run")
        row = Row("baseline", sent=len(good), crashes=self._crashed(proc, killed=False))
        row.crashes += self._panics(config)
        self.reference = self.stored(settings)
        row = self.measure(row, settings)
        row.note = f"uninterrupted --until-end run, {time.monotonic() - t0:.0f} s; the reference"
        return row

    def streamed(self, name: str, fault: Callable[[dict], None], *, snapshot_s: float = 2.0,
                 messages: list | None = None) -> Row:
        """Stream the data into a streaming run while ``fault(ctx)`` acts, then finish with ``--until-end``."""
        config, settings = self.config(name, snapshot_s=snapshot_s)
        messages = self.data(settings) if messages is None else messages
        kafka_io.ensure_topics(settings.kafka)
        done, progress, pause = threading.Event(), [0], threading.Event()
        ctx: dict = {"config": config, "settings": settings, "progress": progress, "total": len(messages),
                     "done": done, "pause": pause, "crashes": 0, "recover_s": None, "note": ""}
        ctx["proc"] = self._spawn(config, "run", tag="run")
        producer = threading.Thread(target=self._produce_paced, args=(settings, messages, done, progress, pause),
                                    daemon=True)
        producer.start()
        fault(ctx)
        producer.join()
        proc = ctx["proc"]
        # Caught up: the health count stops growing for 3 s (bounded: 120 s).
        last, still, t0 = -2, time.monotonic(), time.monotonic()
        while time.monotonic() - t0 < 120 and proc.poll() is None:
            n = self.count(settings)
            if n != last:
                last, still = n, time.monotonic()
            elif time.monotonic() - still > 3:
                break
            time.sleep(0.25)
        exited = proc.poll() is not None
        self._stop(proc)
        if exited:  # the streaming run should tail the topic until stopped
            ctx["crashes"] += 1 if proc.returncode != 0 else 0
            ctx["note"] += f"; the streaming run ended by itself (exit code {proc.returncode})"
        final = self._spawn(config, "run", "--until-end", tag="final")
        try:
            final.wait(timeout=300)
        except subprocess.TimeoutExpired:  # a stalled run: not a crash, but what it did not store is lost
            final.kill()
            final.wait()
            ctx["note"] += "; the final --until-end run had not ended after 300 s and was killed"
        ctx["crashes"] += 0 if final.returncode == -signal.SIGKILL else self._crashed(final, killed=False)
        row = Row(name, sent=len(messages), crashes=ctx["crashes"] + self._panics(config),
                  recover_s=ctx["recover_s"], note=ctx["note"])
        return self.measure(row, settings, topics=ctx.get("topics", True))

    def _wait(self, ctx: dict, cond: Callable[[], bool], timeout_s: float = 120) -> bool:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if cond():
                return True
            if ctx["proc"].poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def _kill_and_restart(self, ctx: dict) -> None:
        proc = ctx["proc"]
        proc.kill()
        ctx["crashes"] += self._crashed(proc, killed=True)
        before = self.count(ctx["settings"])
        ctx["proc"] = self._spawn(ctx["config"], "run", tag="run")
        took = self._wait_for_growth(ctx["settings"], before, 120)
        if took is not None:
            ctx["recover_s"] = max(ctx["recover_s"] or 0.0, round(took, 1))

    def kill9_before_snapshot(self) -> Row:
        def fault(ctx):
            rec = Path(ctx["settings"].recovery.dir)
            ok = self._wait(ctx, lambda: self.count(ctx["settings"]) > 0)
            snaps = _snapshots(rec)
            self._kill_and_restart(ctx)
            ctx["note"] = (f"killed after {ctx['progress'][0]} of {ctx['total']} messages with points stored and "
                           f"{snaps} snapshot rows (snapshot every 600 s)" if ok else "run ended before the kill")
        return self.streamed("kill9_before_snapshot", fault, snapshot_s=600.0)

    def kill9_after_snapshot(self) -> Row:
        def fault(ctx):
            rec = Path(ctx["settings"].recovery.dir)
            ok = self._wait(ctx, lambda: self.count(ctx["settings"]) > 0 and _snapshots(rec) > 0)
            at = ctx["progress"][0]
            self._kill_and_restart(ctx)
            ctx["note"] = (f"killed after {at} of {ctx['total']} messages, after a snapshot" if ok
                           else "run ended before the kill")
        return self.streamed("kill9_after_snapshot", fault)

    def kill9_repeated(self) -> Row:
        def fault(ctx):
            kills = 0
            for frac in (0.25, 0.5, 0.75):
                seen = self.count(ctx["settings"])
                def reached(frac: float = frac, seen: int = seen) -> bool:
                    return ctx["progress"][0] >= frac * ctx["total"] and self.count(ctx["settings"]) > seen

                if not self._wait(ctx, reached):
                    break
                self._kill_and_restart(ctx)
                kills += 1
            ctx["note"] = f"{kills} kills at 1/4, 1/2, 3/4 of the stream, each after new points were stored"
        return self.streamed("kill9_repeated", fault)

    def _influx_outage(self, name: str, how: str) -> Row:
        def fault(ctx):
            self._wait(ctx, lambda: self.count(ctx["settings"]) > 0 and ctx["progress"][0] < ctx["total"])
            before = self.count(ctx["settings"])
            if how == "stop":
                self.influxdb.halt()
            else:
                self.influxdb.freeze()
            time.sleep(self.outage_s)
            if how == "stop":
                self.influxdb.start()
            else:
                self.influxdb.thaw()
            took = self._wait_for_growth(ctx["settings"], before, max(120, 2 * self.outage_s))
            ctx["recover_s"] = None if took is None else round(took, 1)
            ctx["note"] = (f"InfluxDB {'stopped' if how == 'stop' else 'frozen (SIGSTOP)'} {self.outage_s:g} s "
                           f"mid-stream; storage.retry_for_s = {ctx['settings'].storage.retry_for_s:g}")
        return self.streamed(name, fault)

    def influx_stopped(self) -> Row:
        return self._influx_outage("influx_stopped", "stop")

    def influx_frozen(self) -> Row:
        return self._influx_outage("influx_frozen", "freeze")

    def broker_restarted_empty(self) -> Row:
        def fault(ctx):
            settings = ctx["settings"]
            self._wait(ctx, lambda: ctx["progress"][0] >= ctx["total"] // 2 and self.count(settings) > 0
                       and _snapshots(Path(settings.recovery.dir)) > 0)
            ctx["pause"].set()
            self.broker.halt()
            self.broker.start()  # Tansu keeps topics in memory only: it comes back empty
            kafka_io.ensure_topics(settings.kafka)
            before = self.count(settings)
            ctx["pause"].clear()
            took = self._wait_for_growth(settings, before, 60)
            ctx["recover_s"] = None if took is None else round(took, 1)
            ctx["topics"] = False
            ctx["note"] = ("broker restarted empty at 1/2 of the stream, topics recreated, the rest produced; "
                           + ("consumption resumed" if took is not None else
                              "no point stored for 60 s after: the run consumed nothing more (stall)")
                           + "; topic counts n/a (the first half's alerts and dead letters died with the broker)")
        row = self.streamed("broker_restarted_empty", fault)
        config = self.workdir / "broker_restarted_empty.yaml"
        warned = sum(p.read_text(errors="replace").count("is beyond its end")
                     for p in self.workdir.glob(f"{config.stem}-*.stderr"))
        row.note += f"; {warned} partition(s) warned about and read again from their start"
        return row

    def hostile(self) -> Row:
        _, settings = self.config("hostile")
        kinds = hostile_kinds(settings)
        mixed, chosen = hostile_mix(self.data(settings), kinds, self.hostile_n)

        def fault(ctx):
            ctx["note"] = f"{len(chosen)} hostile messages of {len({k.name for k in chosen})} kinds mixed in"
        row = self.streamed("hostile", fault, messages=mixed)
        row.hostile = len(chosen)
        row.hostile_dead_lettered = self._dead_lettered(settings, chosen)
        return row

    def hostile_kill9_influx_stopped(self) -> Row:
        """Hostile messages mixed in, kill -9 after a snapshot at 1/3 of the stream, InfluxDB stopped at 2/3."""
        _, settings = self.config("hostile_kill9_influx_stopped")
        mixed, chosen = hostile_mix(self.data(settings), hostile_kinds(settings), self.hostile_n)

        def fault(ctx):
            rec = Path(ctx["settings"].recovery.dir)
            self._wait(ctx, lambda: ctx["progress"][0] >= ctx["total"] // 3 and self.count(ctx["settings"]) > 0
                       and _snapshots(rec) > 0)
            at = ctx["progress"][0]
            self._kill_and_restart(ctx)
            killed_s = ctx["recover_s"]
            self._wait(ctx, lambda: ctx["progress"][0] >= 2 * ctx["total"] // 3)
            before = self.count(ctx["settings"])
            self.influxdb.halt()
            time.sleep(self.outage_s)
            self.influxdb.start()
            took = self._wait_for_growth(ctx["settings"], before, max(120, 2 * self.outage_s))
            ctx["recover_s"] = max(killed_s or 0.0, round(took, 1) if took is not None else 0.0)
            ctx["note"] = (f"{len(chosen)} hostile messages of {len({k.name for k in chosen})} kinds mixed in; "
                           f"kill -9 after a snapshot at {at} of {ctx['total']} messages (back in {killed_s} s); "
                           f"InfluxDB stopped {self.outage_s:g} s at 2/3 (writes again {took and round(took, 1)} s "
                           f"after)")
        row = self.streamed("hostile_kill9_influx_stopped", fault, messages=mixed)
        row.hostile = len(chosen)
        row.hostile_dead_lettered = self._dead_lettered(settings, chosen)
        return row

    def _dead_lettered(self, settings: Settings, chosen: list[HostileKind]) -> int:
        """How many hostile messages have a dead letter whose reason says what the kind expects."""
        docs = [json.loads(v or b"{}") for _, v in kafka_io.read_topic(settings.kafka, settings.kafka.dead_letter_topic)]
        have = collections.Counter((k.expect, k.sensor) for k in chosen)
        found = 0
        for (expect, sensor), n in have.items():
            found += min(n, sum(1 for d in docs if expect in d.get("reason", "") and d.get("sensor") == sensor))
        return found

    # -- delivery scenarios --------------------------------------------------------------

    def alert_events(self, settings: Settings) -> list[tuple[bytes, bytes]]:
        """``alerts_n`` alerts over the fleet, each raised, escalated and cleared, as the pipeline publishes them."""
        out = []
        start_ns = int(settings.simulator.start_time.timestamp() * 1e9)
        for i in range(self.alerts_n):
            asset = settings.fleet[i % len(settings.fleet)]
            t = start_ns + i * 600 * 10**9
            aid = alert_id(asset.asset, "health_low", t)
            for seq, (state, sev) in enumerate((("raised", "warning"), ("escalated", "alarm"), ("cleared", "alarm"))):
                e = AlertEvent(aid, seq, state, sev, "health_low", asset.asset, asset.sensors[0].sensor,
                               t + seq * 300 * 10**9, 40.0 - 10 * seq,
                               [{"feature": "env_bpfo", "value": 0.9}])
                out.append(points.alert_message(settings, e, 40.0 - 10 * seq))
        return out

    def delivery(self, name: str, fault: str) -> Row:
        target = FaultyTarget(self.env[SECRET_ENV], self.env[API_KEY_ENV],
                              delay_s=0.02 if fault.endswith("notify_kill9") else 0.0)
        common = {"timeout_s": 1.0, "max_attempts": 10_000, "backoff_base_s": 0.05, "backoff_max_s": 1.0}
        targets = [{"name": "hook", "kind": "webhook", "url": target.url + "/hooks/predmaint",
                    "secret_env": SECRET_ENV, **common},
                   {"name": "cmms", "kind": "maintainx", "url": target.url, "secret_env": API_KEY_ENV, **common}]
        config, settings = self.config(name, targets=targets)
        events = self.alert_events(settings)
        kafka_io.ensure_topics(settings.kafka)
        row = Row(name, sent=len(events))
        if fault == "down":
            target.down()
        elif fault in ("500", "429", "429+notify_kill9"):
            target.mode = fault.split("+")[0]
        kafka_io.produce(settings.kafka, settings.kafka.alerts_topic, events)
        proc = self._spawn(config, "notify", "--exit-when-idle", "3", tag="notify")
        if fault == "429+notify_kill9":
            time.sleep(self.webhook_outage_s)
            target.mode = "ok"
            row.note = f"target answered 429, Retry-After: 1 for {self.webhook_outage_s:g} s; then "
        if fault.endswith("notify_kill9"):
            expected = len(events)
            t0 = time.monotonic()
            while sum(target.webhooks.values()) < expected // 3 and time.monotonic() - t0 < 120 \
                    and proc.poll() is None:
                time.sleep(0.01)
            at = sum(target.webhooks.values())
            proc.kill()
            row.crashes += self._crashed(proc, killed=True)
            target.watch_recovery()
            proc = self._spawn(config, "notify", "--exit-when-idle", "3", tag="notify")
            row.note += f"notify killed (-9) after {at} of {expected} webhooks, restarted"
        else:
            time.sleep(self.webhook_outage_s)
            target.watch_recovery()
            if fault == "down":
                target.up()
            target.mode = "ok"
            row.note = {"down": "target port closed", "500": "target answered 500",
                        "429": "target answered 429, Retry-After: 1"}[fault] + f" for {self.webhook_outage_s:g} s"
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            row.note += "; notify did not finish within 600 s"
        row.crashes += self._crashed(proc, killed=False) + self._panics(config)
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
        row.dead_measurement = max(self.count(settings, "deadletters"), 0)
        if target.lookups:
            # Only a create following an unconfirmed one looks up: these are the kill's aftermath (or a retry's).
            row.note += f"; {target.lookups} work-order lookup(s) by notify before creating again"
        if target.bad_signatures:
            row.note += f"; {target.bad_signatures} bad signatures"
        target.down()
        return row

    def webhook_down(self) -> Row:
        return self.delivery("webhook_down", "down")

    def webhook_500(self) -> Row:
        return self.delivery("webhook_500", "500")

    def webhook_429(self) -> Row:
        return self.delivery("webhook_429", "429")

    def notify_kill9(self) -> Row:
        return self.delivery("notify_kill9", "notify_kill9")

    def webhook_429_notify_kill9(self) -> Row:
        return self.delivery("webhook_429_notify_kill9", "429+notify_kill9")


def _dead_letter_identity(value: bytes | None) -> str:
    """What makes a dead letter the same one again: where its message came from, the step and the reason."""
    try:
        doc = json.loads(value or b"{}")
    except ValueError:
        return repr(value)
    return json.dumps([doc.get("source"), doc.get("step"), doc.get("reason")], sort_keys=True) \
        if isinstance(doc, dict) else repr(value)


# --------------------------------------------------------------------------- report


COLUMNS = [("scenario", "scenario"), ("sent", "sent"), ("stored", "stored"), ("lost", "lost"), ("extra", "extra"),
           ("changed", "changed"), ("alert_events", "alerts"), ("dup_alert_events", "dup alerts"),
           ("delivered", "delivered"), ("resent", "resent"), ("dup_work_orders", "dup WOs"),
           ("dead_topic", "DL topic"), ("dup_dead_topic", "DL resent"), ("dead_measurement", "DL meas."),
           ("hostile", "hostile"),
           ("hostile_dead_lettered", "hostile DL"), ("crashes", "crashes"), ("recover_s", "recover s")]


def format_table(rows: list[Row]) -> str:
    """The rows as a fixed-width table, ``-`` where a count does not apply, notes below."""
    cells = [[h for _, h in COLUMNS]] + [["-" if getattr(r, k) is None else str(getattr(r, k)) for k, _ in COLUMNS]
                                          for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].rjust(widths[i]) if i else c[i].ljust(widths[i]) for i in range(len(COLUMNS)))
             for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [""] + [f"{r.scenario}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def totals(rows: list[Row]) -> dict:
    """What ``make chaos`` promises, over every row (scenarios that could not measure a count are left out)."""
    def total(key: str) -> int:
        return sum(getattr(r, key) or 0 for r in rows)

    hostile, dead_lettered = total("hostile"), total("hostile_dead_lettered")
    hostile_rows = [r for r in rows if r.hostile]
    return {"lost": total("lost"), "extra": total("extra"), "changed": total("changed"),
            "dup_work_orders": total("dup_work_orders"), "resent": total("resent"),
            "dup_alert_events_on_topic": total("dup_alert_events"),
            "dup_dead_letters_on_topic": total("dup_dead_topic"), "crashes": total("crashes"),
            "hostile": hostile, "hostile_dead_lettered_pct": round(100.0 * dead_lettered / hostile, 2) if hostile else None,
            "dead_letters_topic_equals_measurement": all(r.dead_topic == r.dead_measurement for r in hostile_rows)}


def run_chaos(scenarios: list[str], *, hours: float, stream_s: float, outage_s: float, hostile_n: int,
              webhook_outage_s: float, alerts_n: int, log: Callable[[str], None] = print) -> list[Row]:
    """Start a broker and an InfluxDB, run ``baseline`` and then each of ``scenarios``; return the rows."""
    unknown = [s for s in scenarios if s not in FULL + COMBINED]
    if unknown:
        raise ValueError(f"unknown chaos scenario(s) {', '.join(unknown)}; known: {', '.join(FULL)}")
    workdir = Path(tempfile.mkdtemp(prefix="predmaint-chaos-"))
    rows = []
    # The broker restart last: it empties the broker every other scenario uses.
    ordered = sorted(scenarios, key=lambda s: s == "broker_restarted_empty")
    with EmbeddedBroker() as broker, LocalInfluxDB() as influxdb:
        chaos = Chaos(workdir, broker, influxdb, hours=hours, stream_s=stream_s, outage_s=outage_s,
                      hostile_n=hostile_n, webhook_outage_s=webhook_outage_s, alerts_n=alerts_n, log=log)
        for name in ["baseline", *ordered]:
            t0 = time.monotonic()
            row = getattr(chaos, name)()
            rows.append(row)
            log(f"chaos: {name} done in {time.monotonic() - t0:.0f} s: lost={row.lost} crashes={row.crashes}")
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("chaos", help="fault injection on loopback (kill -9, outages, hostile input) with counts")
    p.add_argument("--short", action="store_true", help="a few scenarios, seconds of outage (what the test runs)")
    p.add_argument("--scenario", action="append", choices=FULL + COMBINED, help="run only these (repeatable)")
    p.add_argument("--hours", type=float, help="hours of simulated telemetry (default 6, short 1)")
    p.add_argument("--stream-s", type=float, help="seconds over which the telemetry is produced (default 30, short 6)")
    p.add_argument("--outage-s", type=float, help="InfluxDB outages (default 60, short 3)")
    p.add_argument("--hostile", type=int, help="hostile messages mixed in (default 10000, short 300)")
    p.set_defaults(func=cmd_chaos)


def cmd_chaos(args) -> int:
    """``predmaint chaos``: one table, then one JSON line; exit 1 unless nothing was lost, duplicated or crashed."""
    short = bool(args.short)
    rows = run_chaos(args.scenario or (SHORT if short else FULL),
                     hours=args.hours or (1.0 if short else 6.0), stream_s=args.stream_s or (6.0 if short else 30.0),
                     outage_s=args.outage_s if args.outage_s is not None else (3.0 if short else 60.0),
                     hostile_n=args.hostile if args.hostile is not None else (300 if short else 10_000),
                     webhook_outage_s=3.0 if short else 20.0, alerts_n=10 if short else 40,
                     log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_table(rows))
    t = totals(rows)
    print(json.dumps({"chaos": t, "rows": [asdict(r) for r in rows]}, separators=(",", ":")))
    ok = t["lost"] == 0 and t["extra"] == 0 and t["dup_work_orders"] == 0 and t["crashes"] == 0 and \
        t["hostile_dead_lettered_pct"] in (None, 100.0) and t["dead_letters_topic_equals_measurement"]
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m predmaint.pipelines.chaos", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["chaos", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
