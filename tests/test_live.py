"""The live demo and what a running pipeline says about itself, on real servers.

``predmaint simulate --realtime`` produces now-stamped telemetry into a running
``predmaint run`` (real Tansu broker, real InfluxDB 1.x): health points appear
stamped after the simulator started, with a processing lag, not an age. The
same run's ``/metrics`` endpoint (and ``predmaint status``) must count exactly
what was produced and stored, and its stderr carries status lines and no
client-library chatter.

The waits below are deadlines for something to happen, never assertions on
how long it took.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from predmaint.connectors.local_services import free_ports
from predmaint.connectors.metrics import Status, read_status
from predmaint.connectors.storage import open_reader
from predmaint.dashboards import build
from predmaint.dashboards.check import prometheus_metrics
from predmaint.errors import StorageError
from predmaint.settings import load_settings
from tests.pipeline_runs import REPO, write_config

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "predmaint.pipelines.cli"]


def live_config(tmp: Path, broker, influxdb, port: int) -> Path:
    """The default fleet, with short windows and cadences so that live windows close within seconds."""
    path = write_config(tmp, "live", broker, influxdb, "live", "live")
    doc = yaml.safe_load(path.read_text())
    doc["window"] = {"length_s": 10, "kind_length_s": {"process": 10}, "allowed_lateness_s": 2}
    doc["simulator"].update(vibration_interval_s=2, scalar_interval_s=1, realtime_backfill_h=30 / 3600)
    doc["recovery"]["snapshot_interval_s"] = 1
    doc["metrics"] = {"port": port, "host": "127.0.0.1", "status_interval_s": 2}
    path.write_text(yaml.safe_dump(doc))
    return path


def wait_for(what: str, condition, deadline_s: float, *procs: subprocess.Popen):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` if a process dies or time runs out."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{what}: {p.args} exited with {p.returncode}"
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {deadline_s:.0f} s")


def scalar(run, query: str) -> float:
    series = run(query)
    return series[0]["values"][0][1] if series else 0


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_live_simulator_feeds_a_running_pipeline_and_its_metrics_count_what_it_processed(broker, influxdb, tmp_path):
    port, = free_ports(1)
    config = live_config(tmp_path, broker, influxdb, port)
    settings = load_settings(config)
    run = open_reader(settings.storage).query
    url = f"http://127.0.0.1:{port}/metrics"
    with open(tmp_path / "run.err", "w") as run_err, open(tmp_path / "sim.out", "w") as sim_out:
        pipeline = subprocess.Popen([*CLI, "--config", str(config), "run"], cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=run_err)
        simulator = None
        try:
            # The endpoint answers before any data arrives, with zero counts.
            assert wait_for("metrics endpoint", lambda: _answers(url), 120, pipeline) == Status()
            started_ns = time.time_ns()
            simulator = subprocess.Popen([*CLI, "--config", str(config), "simulate", "--realtime"], cwd=REPO,
                                         stdout=sim_out, stderr=subprocess.STDOUT)
            # Live health points: windows that ended after the simulator started (its history ends there).
            live = wait_for("health of live windows", lambda: _query(
                run, f'SELECT "health", "lag_s" FROM "health" WHERE time > {started_ns}'), 180, pipeline, simulator)
            points = live[0]["values"]
            now_ns = time.time_ns()
            newest_ns = max(_ns(p[0]) for p in points)
            assert started_ns < newest_ns <= now_ns
            # lag_s is processing lag, not the data's age: a live window closes once a reading stamped
            # allowed_lateness_s after its end has arrived (it is produced when its time comes), then it
            # is scored and stored; the bound only tells it from an age (the batch demo's ~335 days).
            lateness = settings.window.allowed_lateness_s
            assert all(lateness <= lag < 300 for _, _, lag in points), points

            assert stop(simulator) == 0
            produced = json.loads(Path(tmp_path / "sim.out").read_text().split("\n", 1)[1])
            assert produced["messages"] > 0 and produced["invalid_messages"] == settings.simulator.invalid_messages

            # Every produced reading counted once; every invalid message a dead letter.
            done = wait_for("every reading counted", lambda: (s := read_status(url)).readings
                            >= produced["messages"] and s, 120, pipeline)
            assert done.readings == produced["messages"]
            assert done.dead_letters == produced["invalid_messages"]
            assert set(done.lag_s) == set(done.newest_event_s) and done.newest_event_s
            # The pipeline's Kafka position: every message of the topic read (offsets count from 0 per partition).
            assert sum(o + 1 for o in done.offsets.values()) == produced["messages"] + produced["invalid_messages"]
            assert max(done.newest_event_s.values()) * 1e9 > started_ns

            # Windows counted = windows stored (a feature point each), alert events likewise.
            def stored() -> tuple[float, float]:
                return (scalar(run, 'SELECT count("snapshots") FROM "features"')
                        + scalar(run, 'SELECT count("readings") FROM "features"'),
                        scalar(run, 'SELECT count("event_id") FROM "alerts"'))

            def agree() -> Status | None:
                # Stored first: a window is counted before it is stored, so a count read after it is
                # never behind; they agree once the last epoch is stored, and an over- or undercount
                # never agrees.
                points = stored()
                status = read_status(url)
                return status if points == (status.windows, status.alert_events) else None

            final = wait_for("windows counted = windows stored", agree, 60, pipeline)
            assert final.windows > 0

            # The dashboards' live panels read only metrics the endpoint exports.
            with urllib.request.urlopen(url, timeout=5) as answer:
                exported = {line.split("{")[0].split(" ")[0] for line in answer.read().decode().splitlines()
                            if line and not line.startswith("#")}
            wanted = {m for text in build.render(settings).values()
                      for names in prometheus_metrics(json.loads(text)).values() for m in names}
            assert len(wanted) >= 4 and wanted <= exported, sorted(wanted - exported)

            # predmaint status prints the same figures.
            proc = subprocess.run([*CLI, "status", "--url", url], cwd=REPO, capture_output=True, text=True,
                                  timeout=60)
            assert proc.returncode == 0, proc.stderr
            assert f"readings        {final.readings:g}\n" in proc.stdout
            assert f"dead letters    {final.dead_letters:g}\n" in proc.stdout
        finally:
            if simulator is not None and simulator.poll() is None:
                stop(simulator)
            stop(pipeline, signal.SIGINT)
    err = (tmp_path / "run.err").read_text()
    status_lines = [line for line in err.splitlines() if "predmaint.status: status:" in line]
    assert status_lines and all("readings/s" in line and "event-time lag" in line for line in status_lines), err
    # Client libraries are quiet without -v (their loggers are named after their packages).
    assert not re.search(r" (DEBUG|INFO|WARNING|ERROR) (kafka|urllib3|bytewax)", err), err


def test_status_without_a_pipeline_says_what_is_wrong_in_one_line(tmp_path):
    port, = free_ports(1)
    proc = subprocess.run([*CLI, "status", "--url", f"http://127.0.0.1:{port}/metrics"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert "cannot connect" in line and str(port) in line and "Traceback" not in proc.stderr


def _query(run, q: str) -> list[dict]:
    """``run(q)``, or nothing while the pipeline has not created its database yet."""
    try:
        return run(q)
    except StorageError as exc:
        if "database not found" in str(exc):
            return []
        raise


def _answers(url: str) -> Status | None:
    try:
        with urllib.request.urlopen(url, timeout=2):
            pass
    except OSError:
        return None
    return read_status(url)


def _ns(t) -> int:
    """An InfluxDB 1.x time (RFC 3339 text, as ``/query`` answers by default) in epoch nanoseconds."""
    from datetime import datetime

    if isinstance(t, (int, float)):
        return int(t)
    whole, _, frac = t.rstrip("Z").partition(".")
    base = datetime.fromisoformat(whole + "+00:00")
    return int(base.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])
