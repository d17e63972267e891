"""``predmaint evaluate`` measures what ``predmaint run`` does: the same readings, the same health.

The replay (:func:`predmaint.pipelines.runner.replay`) runs the real dataflow
with bytewax's testing source and sinks; ``predmaint run`` ran it on the
embedded broker into InfluxDB (the session's pipeline run). Every health point
must agree, model by model and window by window.
"""

from __future__ import annotations

import json

import numpy as np

from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.connectors.storage import open_reader
from predmaint.pipelines.runner import replay, telemetry_messages
from predmaint.telemetry import Reading, decode_reading

COMPARED = ("health", "raw_score", "phase", "learned")


def _key(p):
    return (p.tags["asset"], p.tags["sensor"], p.tags["model"], p.time_ns)


def test_replay_gives_the_health_points_of_predmaint_run(pipeline_run):
    _, settings, _ = pipeline_run
    readings = [decode_reading(m.value, m.key) for m in fleet_messages(settings)]
    replayed = {_key(p): {f: p.fields[f] for f in COMPARED} for p in replay(settings, readings).health()}
    reader = open_reader(settings.storage)
    try:
        stored = {_key(p): {f: p.fields[f] for f in COMPARED} for p in reader.points("health")}
    finally:
        reader.close()
    assert len(stored) > 1000 and set(replayed) == set(stored)
    differing = [k for k in stored if stored[k] != replayed[k]]
    assert differing == [], f"{len(differing)} health points differ, e.g. {differing[:3]}"
    # The fault the simulator injects is seen the same way by both: some health below 50.
    assert min(v["health"] for v in replayed.values()) < 50


def test_replayed_messages_are_the_envelopes_run_consumes():
    r = Reading("a-1", "p", "process", 1_767_225_600_123, 1.0, "bar", np.array([1.0000000001]), 1)
    (msg,) = telemetry_messages([r])
    doc = json.loads(msg.value)
    assert msg.key == b"a-1" and doc["encoding"] == "json" and doc["samples"] == [1.0000000001]
    assert decode_reading(msg.value, msg.key).samples[0] == 1.0000000001
