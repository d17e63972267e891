"""The process harness of ``predmaint chaos``: configurations, processes, data and counts.

:class:`Harness` holds one embedded broker and one InfluxDB
(:mod:`predmaint.connectors.local_services`) for every scenario, and gives each
scenario its own topics, database, recovery directory and outbox. It spawns
``predmaint run`` and ``predmaint notify`` as subprocesses (their stderr kept
per process, to find panics and tracebacks), stops them as an operator would,
produces the simulated fleet's telemetry paced over ``stream_s`` seconds, and
counts what was stored and published into a :class:`Row`. The faults
themselves are in :mod:`predmaint.pipelines.chaos_scenarios`.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.connectors.local_services import EmbeddedBroker, LocalInfluxDB
from predmaint.connectors.storage import open_query_reader
from predmaint.models.alerting import AlertEvent, alert_id
from predmaint.pipelines import points
from predmaint.settings import Settings, default_config_text, load_settings

__all__ = ["API_KEY_ENV", "Harness", "MEASUREMENTS", "Row", "SECRET_ENV", "SILENT", "snapshots"]

#: The measurements compared with the baseline, by tags and time.
MEASUREMENTS = ("health", "features", "alerts")
#: The environment variables the delivery targets' secrets are read from (set by :class:`Harness`).
SECRET_ENV, API_KEY_ENV = "PREDMAINT_CHAOS_WEBHOOK_SECRET", "PREDMAINT_CHAOS_API_KEY"
#: The sensor that falls silent in the chaos data (so that sensor_offline is raised and cleared).
SILENT = ("pump-02", "bearing-temp")


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


def snapshots(recovery_dir: Path) -> int:
    """Rows in bytewax's recovery snapshots table (0 before the first snapshot)."""
    n = 0
    for f in recovery_dir.glob("part-*.sqlite3"):
        try:
            with sqlite3.connect(f, timeout=1) as c:
                n += c.execute("SELECT count(*) FROM snaps").fetchone()[0]
        except sqlite3.Error:
            pass  # being written: counted at the next look
    return n


def _dead_letter_identity(value: bytes | None) -> str:
    """What makes a dead letter the same one again: where its message came from, the step and the reason."""
    try:
        doc = json.loads(value or b"{}")
    except ValueError:
        return repr(value)
    return json.dumps([doc.get("source"), doc.get("step"), doc.get("reason")], sort_keys=True) \
        if isinstance(doc, dict) else repr(value)


class Harness:
    """Runs the scenarios against one broker and one InfluxDB; one database and set of topics per scenario.

    Parameters
    ----------
    workdir : Path
        Where each scenario's configuration, recovery snapshots, outbox and processes' stderr files go.
    broker, influxdb : EmbeddedBroker, LocalInfluxDB
        The running servers, shared by every scenario (the scenarios restart, stop and freeze them).
    hours : float
        Hours of simulated telemetry.
    stream_s : float
        Seconds over which a pipeline scenario produces it.
    outage_s : float
        Seconds InfluxDB is stopped or frozen.
    hostile_n : int
        Hostile messages mixed in by the hostile scenarios.
    webhook_outage_s : float
        Seconds the delivery target is down, or answers 500 or 429.
    alerts_n : int
        Alerts (each raised, escalated and cleared) a delivery scenario publishes.
    log : callable
        Where progress lines go.

    Notes
    -----
    A pipeline scenario is :meth:`streamed` with a ``fault(ctx)``; ``ctx`` holds
    ``config`` and ``settings`` (the scenario's), ``proc`` (the streaming run,
    replaced by :meth:`kill_and_restart`), ``progress`` (``[messages produced]``)
    and ``total``, ``done`` (set when all are produced), ``pause`` (set: the
    producer waits), and what the fault reports: ``crashes``, ``recover_s``,
    ``note`` and ``topics`` (``False``: the topics cannot be counted).
    """

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
        """Scenario ``name``'s configuration file and settings: its own topics, database, recovery and outbox."""
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

    def spawn(self, config: Path, *args: str, tag: str) -> subprocess.Popen:
        """Start ``predmaint --config config *args`` in its own session; stderr appended to ``<stem>-<tag>.stderr``."""
        err = open(self.workdir / f"{config.stem}-{tag}.stderr", "ab")
        return subprocess.Popen([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), *args],
                                stdout=subprocess.DEVNULL, stderr=err, env=self.env, start_new_session=True)

    @staticmethod
    def crashed(proc: subprocess.Popen, killed: bool) -> int:
        """1 if ``proc`` ended on its own with an error (a kill -9 or SIGINT of ours is not a crash)."""
        rc = proc.wait()
        return 0 if rc == 0 or (killed and rc in (-signal.SIGKILL, -signal.SIGINT, 130, 1)) else 1

    def panics(self, config: Path) -> int:
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
        """Points of ``measurement`` stored so far, or -1 if InfluxDB does not answer."""
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

    def wait_for_growth(self, settings: Settings, since: int, timeout_s: float) -> float | None:
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

    def _produce_paced(self, settings: Settings, messages: list, done: threading.Event,
                       progress: list[int], pause: threading.Event | None = None) -> None:
        """Produce ``messages`` in chunks spread over :attr:`stream_s` (the producer thread of :meth:`streamed`)."""
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
        """Fill ``row`` with what was stored (against :attr:`reference` once set) and, if ``topics``, on the topics."""
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

    # -- the streamed run ----------------------------------------------------------------

    def streamed(self, name: str, fault: Callable[[dict], None], *, snapshot_s: float = 2.0,
                 messages: list | None = None) -> Row:
        """Stream the data into a streaming run while ``fault(ctx)`` acts, then finish with ``--until-end``."""
        config, settings = self.config(name, snapshot_s=snapshot_s)
        messages = self.data(settings) if messages is None else messages
        kafka_io.ensure_topics(settings.kafka)
        done, progress, pause = threading.Event(), [0], threading.Event()
        ctx: dict = {"config": config, "settings": settings, "progress": progress, "total": len(messages),
                     "done": done, "pause": pause, "crashes": 0, "recover_s": None, "note": ""}
        ctx["proc"] = self.spawn(config, "run", tag="run")
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
        final = self.spawn(config, "run", "--until-end", tag="final")
        try:
            final.wait(timeout=300)
        except subprocess.TimeoutExpired:  # a stalled run: not a crash, but what it did not store is lost
            final.kill()
            final.wait()
            ctx["note"] += "; the final --until-end run had not ended after 300 s and was killed"
        ctx["crashes"] += 0 if final.returncode == -signal.SIGKILL else self.crashed(final, killed=False)
        row = Row(name, sent=len(messages), crashes=ctx["crashes"] + self.panics(config),
                  recover_s=ctx["recover_s"], note=ctx["note"])
        return self.measure(row, settings, topics=ctx.get("topics", True))

    def wait(self, ctx: dict, cond: Callable[[], bool], timeout_s: float = 120) -> bool:
        """Wait until ``cond()``; False after ``timeout_s`` or if the streaming run has exited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if cond():
                return True
            if ctx["proc"].poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def kill_and_restart(self, ctx: dict) -> None:
        """kill -9 the streaming run, start it again, and note in ``ctx`` how long until it stores again."""
        proc = ctx["proc"]
        proc.kill()
        ctx["crashes"] += self.crashed(proc, killed=True)
        before = self.count(ctx["settings"])
        ctx["proc"] = self.spawn(ctx["config"], "run", tag="run")
        took = self.wait_for_growth(ctx["settings"], before, 120)
        if took is not None:
            ctx["recover_s"] = max(ctx["recover_s"] or 0.0, round(took, 1))
