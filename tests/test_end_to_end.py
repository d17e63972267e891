"""Simulated fleet -> real Kafka-protocol broker -> bytewax dataflow -> real InfluxDB.

The pipeline runs as users run it (``predmaint run --until-end`` in a
subprocess, with recovery on) against the Tansu broker and InfluxDB 1.x
started by the fixtures.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.connectors.storage import open_reader
from predmaint.connectors.webhook_receiver import WebhookReceiver
from predmaint.settings import load_settings
from tests.pipeline_runs import run_pipeline, write_config

pytestmark = pytest.mark.integration


def query(settings, q: str) -> list[dict]:
    reader = open_reader(settings.storage)
    try:
        return reader.query(q)
    finally:
        reader.close()


def health_table(settings) -> dict:
    rows = {}
    for s in query(settings, 'SELECT "health", "raw_score" FROM "health" GROUP BY "asset", "sensor", "model"'):
        for t, health, raw in s["values"]:
            rows[(s["tags"]["asset"], s["tags"]["sensor"], s["tags"]["model"], t)] = (health, raw)
    return rows


def alert_rows(settings) -> list[tuple]:
    out = []
    for s in query(settings, 'SELECT "alert_id", "state" FROM "alerts" GROUP BY "asset", "sensor"'):
        out += [(s["tags"]["asset"], s["tags"]["sensor"], t, aid, state) for t, aid, state in s["values"]]
    return sorted(out)


@pytest.fixture(scope="module")
def e2e(pipeline_run):
    """The shared run of the default fleet (tests/conftest.py): (tmp dir, settings, ground truth)."""
    return pipeline_run


def test_every_asset_has_health_points(e2e):
    _, settings, _ = e2e
    counts = {(s["tags"]["asset"], s["tags"]["model"]): s["values"][0][1]
              for s in query(settings, 'SELECT count("health") FROM "health" GROUP BY "asset", "model"')}
    # 6 h of 5-minute windows, three sensors per asset, for the champion and each challenger (the
    # pumps have no process values, so no joined window).
    expected = int(settings.simulator.hours * 3600 / settings.window.length_s) * 3
    models = [m.label for m in (settings.model, *settings.challengers)]
    assert len(models) >= 2 and all(m.scope == "sensor" for m in settings.challengers)
    assert counts == {(a.asset, m): expected for a in settings.fleet for m in models}


def test_only_the_champion_drives_alerts_and_challengers_are_written(e2e):
    _, settings, _ = e2e
    champions = query(settings, 'SELECT count("health") FROM "health" WHERE "champion" = true GROUP BY "model"')
    assert [s["tags"]["model"] for s in champions] == [settings.model.label]
    events = [json.loads(v) for _, v in kafka_io.read_topic(settings.kafka.bootstrap, settings.kafka.alerts_topic)]
    assert events and {e["model"] for e in events} == {settings.model.label}


def test_faulty_asset_alerts_after_fault_start_and_healthy_assets_do_not(e2e):
    _, settings, truth = e2e
    raised = [r for r in alert_rows(settings) if r[4] == "raised"]
    faulty = {f["asset"]: f["start_ms"] * 1_000_000 for f in truth["faults"]}
    assert {r[0] for r in raised} == set(faulty), raised
    for asset, _, t, _, _ in raised:
        assert t > faulty[asset]


def test_alert_events_published_on_alerts_topic(e2e):
    _, settings, truth = e2e
    events = [json.loads(v) for _, v in kafka_io.read_topic(settings.kafka.bootstrap, settings.kafka.alerts_topic)]
    assert events, "no alert events on the alerts topic"
    assert {e["asset"] for e in events} == {f["asset"] for f in truth["faults"]}
    stored = {(r[3], r[4]) for r in alert_rows(settings)}
    assert {(e["alert_id"], e["state"]) for e in events} == stored
    assert all(e["explanation"] and e["explanation"][0]["feature"] for e in events if e["state"] == "raised")


def test_alert_events_reach_a_signed_webhook_through_predmaint_notify(e2e, broker, influxdb, monkeypatch):
    tmp, settings, _ = e2e
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    monkeypatch.setenv("PREDMAINT_TEST_WEBHOOK_SECRET", secret)
    with WebhookReceiver(secret) as rx:
        target = {"name": "receiver", "kind": "webhook", "url": rx.url,
                  "secret_env": "PREDMAINT_TEST_WEBHOOK_SECRET", "timeout_s": 5}
        config = write_config(tmp, "notify", broker, influxdb, "e2e_w1", "e2e", [target])
        proc = subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), "notify",
                               "--exit-when-idle", "2"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert secret not in proc.stdout + proc.stderr
    published = [json.loads(v) for _, v in kafka_io.read_topic(settings.kafka.bootstrap, settings.kafka.alerts_topic)]
    expected = {e["event_id"] for e in published if e["notify"]}
    assert expected and {d["data"]["event_id"] for d in rx.events} == expected
    assert rx.rejected == 0 and rx.duplicates == 0


def test_invalid_messages_reach_dead_letter_topic_with_reason(e2e):
    _, settings, _ = e2e
    dead = [json.loads(v) for _, v in kafka_io.read_topic(settings.kafka.bootstrap,
                                                          settings.kafka.dead_letter_topic)]
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == settings.simulator.invalid_messages, reasons
    assert all(d["step"] == "decode" and d["original"] for d in dead)
    joined = " | ".join(reasons)
    for expected in ("not JSON", "unsupported envelope version 99", "'ghost-asset' is not in the registry",
                     "'samples' must be an array", "'ts_ms' must be epoch milliseconds"):
        assert expected in joined
    stored = query(settings, 'SELECT count("count") FROM "deadletters"')
    assert stored[0]["values"][0][1] == len(dead)


def test_two_workers_give_the_same_results_as_one(e2e, broker, influxdb):
    tmp, settings, _ = e2e
    config = write_config(tmp, "w2", broker, influxdb, "e2e_w2", "e2e")
    run_pipeline(config, workers=2)
    other = load_settings(config)
    one, two = health_table(settings), health_table(other)
    assert len(one) > 0 and one.keys() == two.keys()
    assert all(one[k] == pytest.approx(two[k], rel=1e-9) for k in one)
    assert alert_rows(settings) == alert_rows(other)


def test_replaying_the_topic_overwrites_instead_of_duplicating(e2e, broker, influxdb):
    tmp, settings, _ = e2e
    before_health, before_alerts = health_table(settings), alert_rows(settings)
    # A fresh recovery dir replays everything into the same database.
    config = write_config(tmp, "replay", broker, influxdb, "e2e_w1", "e2e")
    run_pipeline(config)
    assert health_table(settings) == before_health
    assert alert_rows(settings) == before_alerts


def test_restart_resumes_from_recovery_without_loss_or_duplicates(e2e, broker, influxdb):
    """Stop after part of the data, produce the rest, resume: same result as one uninterrupted run."""
    tmp, reference, _ = e2e
    config = write_config(tmp, "resume", broker, influxdb, "e2e_resume", "resume")
    settings = load_settings(config)
    kafka_io.ensure_topics(settings.kafka)
    messages = list(fleet_messages(settings))
    # Split on a window boundary: a bounded run closes its open windows at the end of input.
    window_ms = int(settings.window.length_s * 1000)
    split = messages[len(messages) // 2].ts_ms // window_ms * window_ms
    first = [m for m in messages if m.ts_ms < split]
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, first)
    run_pipeline(config)
    partial = health_table(settings)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, [m for m in messages if m.ts_ms >= split])
    run_pipeline(config)
    resumed = health_table(settings)
    assert 0 < len(partial) < len(resumed)
    assert resumed == health_table(reference)
    assert alert_rows(settings) == alert_rows(reference)

