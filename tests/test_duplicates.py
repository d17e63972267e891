"""Exact duplicate messages never count twice (issue 12: 780 duplicates changed 68 health values).

The real dataflow (``runner.replay``, the flow ``predmaint run`` runs) over one
hour of the simulated fleet, then over the same hour with copies of a quarter of
its readings mixed in: the health points are identical, and every copy is one
dead letter whose reason says ``duplicate``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import namedtuple

import numpy as np

from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.domain import DeadLetter
from predmaint.pipelines import intake
from predmaint.pipelines.runner import replay
from predmaint.settings import load_settings
from predmaint.telemetry import Reading, Source, decode_reading

Msg = namedtuple("Msg", "topic partition offset key value timestamp")


def _settings():
    s = load_settings()
    return s.replace(simulator=dataclasses.replace(s.simulator, hours=1.0, faults=()))


def _reading(ts_ms: int, value: float, offset: int = 0) -> Reading:
    r = Reading("pump-01", "bearing-temp", "temperature", ts_ms, 0.1, "degC",
                np.array([value, 24.0], dtype=np.float32), 2)
    return dataclasses.replace(r, source=Source("telemetry", 0, offset, ts_ms * 1_000_000, b"{}"))


def test_an_exact_copy_is_a_duplicate_dead_letter_and_a_different_value_is_kept():
    settings = load_settings()
    state, first = intake.dedupe(settings, None, _reading(1_000, 61.5, offset=3))
    assert isinstance(first, Reading)
    state, copy = intake.dedupe(settings, state, _reading(1_000, 61.5, offset=9))
    assert isinstance(copy, DeadLetter) and copy.step == "dedupe"
    assert copy.reason.startswith("duplicate") and "offset 3" in copy.reason and copy.sensor == "bearing-temp"
    assert (copy.partition, copy.offset) == (0, 9)  # points back at the copy, not at the first
    state, other = intake.dedupe(settings, state, _reading(1_000, 61.6, offset=10))
    assert isinstance(other, Reading)  # same time, another value: not a copy


def test_the_dedupe_state_is_bounded_in_event_time_and_in_count():
    settings = load_settings()
    horizon = intake.dedupe_horizon_ms(settings)
    state = None
    for i in range(3 * intake.DEDUPE_MAX_PER_SENSOR):
        state, _ = intake.dedupe(settings, state, _reading(i, float(i)))
    assert state is not None and len(state.sensors["bearing-temp"]) == intake.DEDUPE_MAX_PER_SENSOR
    state, _ = intake.dedupe(settings, state, _reading(10 * horizon, 1.0))
    assert len(state.sensors["bearing-temp"]) == 1  # everything older than the horizon forgotten


def test_duplicates_mixed_into_the_fleet_leave_every_health_value_unchanged():
    settings = _settings()
    readings = [decode_reading(m.value, m.key) for m in fleet_messages(settings)]
    mixed = []
    for i, r in enumerate(readings):
        mixed.append(r)
        if i % 4 == 1:
            mixed.append(r)  # the copy right behind it
        if i % 9 == 5 and i > 40:
            mixed.append(readings[i - 30])  # a copy arriving later, still within the window
    copies = len(mixed) - len(readings)
    assert copies > 1000

    clean, dup = replay(settings, readings), replay(settings, mixed)

    def health(run):
        return sorted((p.tags["asset"], p.tags["sensor"], p.tags["model"], p.time_ns, p.fields.get("health"))
                      for p in run.health())

    assert health(dup) == health(clean) and len(health(clean)) > 0
    features = sorted((p.tags["sensor"], p.time_ns, json.dumps(p.fields, sort_keys=True))
                      for p in dup.points if p.measurement == "features")
    assert features == sorted((p.tags["sensor"], p.time_ns, json.dumps(p.fields, sort_keys=True))
                              for p in clean.points if p.measurement == "features")
    assert [d for d in clean.dead_letters if d["step"] == "dedupe"] == []
    dups = [d for d in dup.dead_letters if d["step"] == "dedupe"]
    assert len(dups) == copies and all(d["reason"].startswith("duplicate") for d in dups)
    stored = [p for p in dup.points if p.measurement == "deadletters" and p.tags["step"] == "dedupe"]
    assert len({(tuple(sorted(p.tags.items())), p.time_ns) for p in stored}) == copies  # none overwrites another
