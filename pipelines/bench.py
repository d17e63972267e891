"""``make bench``: the full pipeline against the same work in a bare Python loop, in one run.

* pipeline: Kafka (embedded Tansu) -> bytewax dataflow (recovery on) -> InfluxDB
  1.x (local server), for vibration messages of 4,096 samples, each its own
  window (window length = snapshot interval);
* bare loop: the same decode, features, window, model, health and point
  formatting on the same bytes, without Kafka, bytewax or InfluxDB: the
  compute limit. It runs before and after the pipeline and the two are averaged.

Prints a table, then one JSON line with ``pipeline_windows_per_s``,
``bare_windows_per_s``, ``ratio``, ``peak_rss_mb`` and ``feature_us_per_window``.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import tempfile
import time
from collections import namedtuple
from pathlib import Path

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.connectors.local_services import EmbeddedBroker, LocalInfluxDB
from predmaint.features.bench import feature_cost_us
from predmaint.pipelines import intake, points, steps
from predmaint.pipelines.runner import run_pipeline
from predmaint.settings import Settings, load_settings

_Msg = namedtuple("_Msg", "topic partition offset key value timestamp")


def bench_settings(base: Settings, windows: int, workdir: Path) -> Settings:
    """Vibration sensors only, one snapshot per window, ``windows`` windows in all."""
    fleet = tuple(dataclasses.replace(a, sensors=tuple(s for s in a.sensors if s.kind == "vibration"))
                  for a in base.fleet)
    interval = base.simulator.vibration_interval_s
    hours = windows / len(fleet) * interval / 3600.0
    return base.replace(
        fleet=fleet,
        window=dataclasses.replace(base.window, length_s=interval, allowed_lateness_s=interval),
        simulator=dataclasses.replace(base.simulator, hours=hours, invalid_messages=0),
        recovery=dataclasses.replace(base.recovery, dir=str(workdir / "recovery")),
    )


def bare_loop(settings: Settings, messages) -> float:
    """Seconds to push ``messages`` through the same steps without the stream machinery."""
    states: dict = {}
    t0 = time.perf_counter()
    for i, m in enumerate(messages):
        reading = intake.decode(settings, _Msg("bench", 0, i, m.key, m.value, (1, m.ts_ms)))
        # The bench fleet sends only valid messages (bench_settings: invalid_messages=0).
        assert isinstance(reading, intake.Reading)
        snap = intake.snapshot_features(settings, reading)
        assert isinstance(snap, intake.Snapshot)
        acc = steps.window_add(steps.window_new(), snap)
        window_id = int(snap.ts_ms // (settings.window.length_s * 1000))
        w = steps.window_features(settings, settings.window.length_s, (window_id, acc))
        states[reading.asset], scored = steps.assess(settings, None, states.get(reading.asset), w)
        points.to_points(settings, scored)
    return time.perf_counter() - t0


def state_bytes_per_sensor(settings: Settings, messages, sensors: int = 200) -> tuple[float, float]:
    """Memory (tracemalloc) and pickled size of one vibration sensor's ``assess`` state, averaged.

    Each state learns from the same windows as a real sensor (baseline and
    beyond), with the configured champion and challengers.
    """
    import pickle
    import tracemalloc

    windows = []
    for i, m in enumerate(messages[:60]):
        reading = intake.decode(settings, _Msg("bench", 0, i, m.key, m.value, (1, m.ts_ms)))
        assert isinstance(reading, intake.Reading)  # valid messages only, as in bare_loop
        snap = intake.snapshot_features(settings, reading)
        assert isinstance(snap, intake.Snapshot)
        acc = steps.window_add(steps.window_new(), snap)
        windows.append(steps.window_features(settings, settings.window.length_s, (i, acc)))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = []
    for _ in range(sensors):
        state = None
        for w in windows:
            state, _ = steps.assess(settings, None, state, w)
        states.append(state)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    pickled = sum(len(pickle.dumps(s)) for s in states[:20]) / 20
    return held / sensors, pickled


def main(args) -> int:
    windows = args.windows
    workdir = Path(tempfile.mkdtemp(prefix="predmaint-bench-"))
    base = load_settings(args.config)
    with EmbeddedBroker() as broker, LocalInfluxDB() as influx:
        settings = bench_settings(base, windows, workdir)
        settings = settings.replace(
            kafka=dataclasses.replace(settings.kafka, bootstrap=broker.bootstrap),
            storage=dataclasses.replace(settings.storage, kind="influx-v1", url=influx.url, database="bench"))
        messages = list(fleet_messages(settings))
        kafka_io.ensure_topics(settings.kafka)
        kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, messages)

        # Bare loop before and after the pipeline, averaged: this machine's speed
        # drifts (shared cores), and bracketing cancels most of the drift.
        bare_before = bare_loop(settings, messages)
        t0 = time.perf_counter()
        run_pipeline(settings, workers=1, tail=False)
        pipeline_s = time.perf_counter() - t0
        bare_s = (bare_before + bare_loop(settings, messages)) / 2
        from predmaint.connectors.storage import InfluxV1Writer
        stored = InfluxV1Writer(settings.storage, create_database=False).query(
            'SELECT count("health") FROM "health" WHERE "champion" = true')[0]["values"][0][1]
    feature_us = feature_cost_us()
    state_bytes, state_pickled = state_bytes_per_sensor(settings, messages)
    result = {
        "windows": len(messages),
        "windows_stored": stored,
        "pipeline_windows_per_s": round(len(messages) / pipeline_s, 1),
        "bare_windows_per_s": round(len(messages) / bare_s, 1),
        "ratio": round(bare_s / pipeline_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "feature_us_per_window": round(feature_us, 1),
        "state_bytes_per_sensor": round(state_bytes),
        "state_pickled_bytes_per_sensor": round(state_pickled),
        "models": [m.label for m in (settings.model, *settings.challengers)],
    }
    print(f"{'windows (4,096 samples each)':34s} {result['windows']}")
    print(f"{'champion health points stored':34s} {stored}")
    print(f"{'pipeline (Kafka -> InfluxDB) /s':34s} {result['pipeline_windows_per_s']}")
    print(f"{'bare Python loop /s':34s} {result['bare_windows_per_s']}")
    print(f"{'ratio pipeline / bare':34s} {result['ratio']}")
    print(f"{'feature cost per window (us)':34s} {result['feature_us_per_window']}")
    print(f"{'peak RSS (MB)':34s} {result['peak_rss_mb']}")
    print(f"{'model state per sensor (bytes)':34s} {result['state_bytes_per_sensor']} in memory, "
          f"{result['state_pickled_bytes_per_sensor']} pickled ({', '.join(result['models'])})")
    print(json.dumps(result))
    return 0 if stored == len(messages) else 1
