"""``predmaint chaos --short``: faults injected into real processes on loopback lose nothing and crash nothing.

The short version of ``make chaos``: the simulated fleet streamed into
``predmaint run`` with 300 hostile messages of every kind mixed in, a kill -9
after a snapshot and an InfluxDB stop; alert events delivered by ``predmaint
notify`` to a target that first answers 429 with Retry-After, then with notify
killed -9 mid-delivery. Real Tansu broker, real InfluxDB 1.x, real HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.pipeline_runs import REPO

pytestmark = pytest.mark.integration


def test_chaos_short_loses_nothing_duplicates_no_work_order_and_dead_letters_every_hostile_message():
    proc = subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", "chaos", "--short"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    totals, rows = result["chaos"], {r["scenario"]: r for r in result["rows"]}
    table = "\n".join(lines[:-1])
    assert set(rows) == {"baseline", "hostile_kill9_influx_stopped", "webhook_429_notify_kill9"}, table
    assert totals["lost"] == 0 and totals["extra"] == 0 and totals["changed"] == 0, table
    assert totals["crashes"] == 0 and totals["dup_work_orders"] == 0, table
    pipeline = rows["hostile_kill9_influx_stopped"]
    # The kill and the outage happened mid-stream (the notes say where), and the flow came back.
    assert "after a snapshot" in pipeline["note"] and pipeline["recover_s"] is not None, table
    assert pipeline["stored"] == rows["baseline"]["stored"] > 0
    # Every hostile message (28 kinds) is one dead letter with its reason, on the topic and in InfluxDB.
    assert pipeline["hostile"] == 300 and pipeline["hostile_dead_lettered"] == 300, table
    assert pipeline["dead_topic"] == pipeline["dead_measurement"] == 300, table
    assert totals["hostile_dead_lettered_pct"] == 100.0 and "28 kinds" in pipeline["note"]
    delivery = rows["webhook_429_notify_kill9"]
    # Every event delivered; a resend after the kill carries the same webhook-id (the receiver dedupes on it).
    assert delivery["delivered"] == delivery["alert_events"] == 30 and delivery["lost"] == 0, table
    assert "killed (-9)" in delivery["note"]
    assert proc.returncode == 0, table
