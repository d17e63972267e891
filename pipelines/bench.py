"""``make bench``: the real pipeline in steady state, against the compute limit, a Quix Streams peer,
more workers and processes, and its latency at half load; one JSON line at the end.

Workload (``workload_settings``): the default fleet's assets repeated up to
``--assets`` (12), each with a vibration sensor (a 4,096-sample snapshot a
minute), a bearing temperature and a 3-phase current (a reading each 10 s),
``--hours`` of event time: 5-minute windows with 5 snapshots and 30 + 30
readings per asset, scored by the default champion and challenger. Without
``--hours`` the event time is sized to the machine (``sized_hours``): the bare
loop first runs a short probe, and the workload is made long enough for about
``--steady-s`` (60) seconds of steady processing at that speed, so that
start-up weighs little on a fast machine as on a slow one (a fixed 30 h gave
28 s of steady phase on a machine 2.8 x as fast as the one it was chosen on).

Runs, all in one ``make bench`` on the same bytes in the same embedded broker:

1. bare loop (before): the same decode, features, window, assess and point
   formatting in a plain Python loop, on the same messages (or the first ``--bare-hours``): the
   compute limit. Over the same event time as the pipeline's steady phase, because a window's
   cost changes over a run (the rolling references refresh on every update while they fill):
   over the first 8 h of 30 the loop ran at 159 windows/s, over all 30 h at 201;
2. pipeline: ``predmaint run --until-end`` (the real dataflow, recovery on) with one
   worker, Kafka (Tansu) -> bytewax -> InfluxDB 1.x, in its own process;
3. bare loop (after), averaged with (1): the machine's speed drifts;
4. the Quix Streams peer (:mod:`predmaint.connectors.quix_peer`), same topic;
5. the pipeline with ``-w 2``, then as two processes (``-i 0/1 -a``) of one worker;
6. latency: the pipeline tails a new topic produced at half its measured rate;
   from the arrival of the message that closes a window in event time (the first
   one past the window end + the allowed lateness) to the window's champion
   health point being readable in InfluxDB;
7. costs: stage times from the bare loop's timers (storage: the same points
   written to InfluxDB), state bytes per sensor, peak RSS of each process.

Throughput is *steady*: windows ending after ``--warmup-hours`` (2.5 h of event
time: the models' baseline) over the wall time from the first of them to the
last, as each run stamped them (a health point's time + its ``lag_s``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import pickle
import statistics
import tempfile
import time
import tracemalloc
from collections import defaultdict, namedtuple
from pathlib import Path

from predmaint.connectors import kafka_io
from predmaint.connectors.bench_io import HealthPoller, create_topic, peak_rss_mb, produce_all, produce_at_rate
from predmaint.connectors.fleet_simulator import Message, fleet_messages
from predmaint.connectors.local_services import EmbeddedBroker, LocalInfluxDB
from predmaint.connectors.storage import open_writer
from predmaint.errors import ConfigurationError
from predmaint.pipelines import bench_runs, intake, points, steps, windows
from predmaint.settings import Settings, load_settings

_Msg = namedtuple("_Msg", "topic partition offset key value timestamp")

#: Targets of issue 14 (README "Benchmark").
TARGETS = {"ratio": 0.85, "ratio_vs_peer": 1.2, "speedup_2_workers": 1.6, "latency_p99_s": 2.0,
           "state_bytes_per_sensor": 100_000}


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="steady-state throughput vs the bare loop and a Quix Streams peer, "
                                     "scale-out, latency, costs (make bench)")
    p.add_argument("--assets", type=int, default=12, help="assets in the fleet (3 sensors each)")
    p.add_argument("--hours", type=float, default=None,
                   help="hours of event time produced (default: sized to this machine, see --steady-s)")
    p.add_argument("--steady-s", type=float, default=60.0,
                   help="without --hours: produce enough event time for about this many seconds of steady "
                        "processing at the bare loop's speed on this machine, measured first on a short probe")
    p.add_argument("--warmup-hours", type=float, default=2.5, help="event time not counted (models' baseline)")
    p.add_argument("--bare-hours", type=float, default=None,
                   help="event time the bare loop runs over (default: all of --hours, as the pipeline)")
    p.add_argument("--latency-s", type=float, default=40.0, help="seconds of paced production for latency")
    p.add_argument("--partitions", type=int, default=6, help="partitions of the telemetry topic")
    p.add_argument("--peer-max-s", type=float, default=90.0,
                   help="the Quix peer stops after this long processing (after its group joined)")
    p.set_defaults(func=main)


def workload_settings(base: Settings, assets: int, hours: float) -> Settings:
    """The default fleet's assets repeated under new names up to ``assets``; every message valid."""
    fleet = list(base.fleet[:assets])
    while len(fleet) < assets:
        a = base.fleet[len(fleet) % len(base.fleet)]
        fleet.append(dataclasses.replace(a, asset=f"{a.asset}-{len(fleet) // len(base.fleet) + 1}"))
    return base.replace(fleet=tuple(fleet),
                        simulator=dataclasses.replace(base.simulator, hours=hours, invalid_messages=0))


@dataclasses.dataclass
class BareResult:
    windows: int
    seconds: float
    steady: bench_runs.Steady
    stage_s: dict[str, float]
    readings: int
    asset_windows: list  # the first asset's windows, for the state measurement
    points: list


def bare_loop(settings: Settings, messages: list[Message], warmup_end_ns: int, keep_points: bool = False) -> BareResult:
    """The flow's steps in a plain loop: per asset, a window closes when the asset's next window begins.

    The windows are the ones the dataflow closes (its messages are in event-time
    order per asset); each stage is timed with ``perf_counter``.
    """
    clock = time.perf_counter
    length_s = settings.window.length_s
    stage: dict[str, float] = defaultdict(float)
    open_windows: dict[str, tuple[int, windows.AssetWindow]] = {}
    states: dict[str, steps.AssetState] = {}
    done: list[float] = []
    first_asset = settings.fleet[0].asset
    asset_windows, kept = [], []
    n_windows = 0

    def close(asset: str) -> None:
        nonlocal n_windows
        t0 = clock()
        aw = windows.window_features(settings, length_s, open_windows.pop(asset))
        t1 = clock()
        states[asset], scored = steps.assess(settings, None, states.get(asset), aw)
        t2 = clock()
        pts = points.to_points(settings, scored)
        t3 = clock()
        stage["window"] += t1 - t0
        stage["assess"] += t2 - t1
        stage["points"] += t3 - t2
        n_windows += len(aw.windows)
        if aw.end_ns > warmup_end_ns:
            done.extend([t3] * len(aw.windows))
        if asset == first_asset:
            asset_windows.append(aw)
        if keep_points:
            kept.extend(pts)

    start = clock()
    for i, m in enumerate(messages):
        t0 = clock()
        reading = intake.decode(settings, _Msg("bench", 0, i, m.key, m.value, (1, m.ts_ms)))
        t1 = clock()
        assert isinstance(reading, intake.Reading)  # the bench fleet sends only valid messages
        snap = intake.snapshot_features(settings, reading)
        t2 = clock()
        assert isinstance(snap, intake.Snapshot)
        stage["decode"] += t1 - t0
        stage["snapshot_features"] += t2 - t1
        window_id = int(snap.ts_ms // (length_s * 1000))
        current = open_windows.get(reading.asset)
        if current is not None and current[0] != window_id:
            close(reading.asset)
            current = None
        if current is None:
            current = open_windows[reading.asset] = (window_id, windows.window_new())
        t3 = clock()
        windows.window_add(current[1], snap)
        stage["window"] += clock() - t3
    for asset in list(open_windows):
        close(asset)
    seconds = clock() - start
    st = bench_runs.Steady(len(done) - 1, done[-1] - done[0]) if len(done) > 1 else bench_runs.Steady(0, 0.0)
    return BareResult(n_windows, seconds, st, stage, len(messages), asset_windows, kept)


def expected_windows(settings: Settings) -> int:
    """Sensor windows in the workload: every sensor has a reading in each of its windows."""
    per_sensor = math.ceil(settings.simulator.hours * 3600 / settings.window.length_s)
    return sum(len(a.sensors) for a in settings.fleet) * per_sensor


def storage_seconds(settings: Settings, pts: list, batch: int = 500) -> float:
    """Wall time to write ``pts`` to the configured storage in batches of ``batch`` (one request each)."""
    writer = open_writer(settings.storage)
    t0 = time.perf_counter()
    for i in range(0, len(pts), batch):
        writer.write(pts[i:i + batch])
    return time.perf_counter() - t0


def state_bytes_per_sensor(settings: Settings, asset_windows: list, windows: int = 600,
                           states: int = 2) -> tuple[float, float]:
    """Memory (tracemalloc) and pickled size of an asset's ``assess`` state per sensor, once its references are full.

    The asset's windows are replayed cyclically ``windows`` times (more than the
    largest rolling reference, 512), champion and challengers together. One
    state is built first, untraced, so that lazy imports and caches are not
    counted; then ``states`` more are traced and averaged.
    """
    sensors = len(asset_windows[0].windows)
    stamped = []
    for i in range(windows):
        aw = asset_windows[i % len(asset_windows)]
        end_ns = (i + 1) * 300_000_000_000
        stamped.append(dataclasses.replace(aw, end_ns=end_ns,
                                           windows=tuple(dataclasses.replace(w, end_ns=end_ns) for w in aw.windows)))

    def build():
        state = None
        for aw in stamped:
            state, _ = steps.assess(settings, None, state, aw)
        return state

    build()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [build() for _ in range(states)]
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / states / sensors, len(pickle.dumps(kept[0])) / sensors


def latency(settings: Settings, messages: list[Message], rate_per_s: float, seconds: float,
            services: dict[str, int], workdir: Path) -> dict:
    """The pipeline tails a fresh topic produced at ``rate_per_s``; p50/p99 from window close to readable."""
    s = bench_runs.with_database(settings, "bench_latency", str(workdir / "recovery-latency"))
    s = s.replace(kafka=dataclasses.replace(s.kafka, telemetry_topic="telemetry.latency"))
    create_topic(s.kafka, s.kafka.telemetry_topic, settings.kafka.partitions)
    sample = messages[:max(100, int(rate_per_s * seconds))]
    proc, _ = bench_runs.start("predmaint.pipelines.bench_runs:_dataflow", settings=s, workers=1, tail=True,
                               process_id=None, addresses=None)
    sent_at: list[float] = []
    try:
        time.sleep(8.0)  # spawn, imports, bytewax start-up: not part of a window's latency
        with HealthPoller(s.storage) as poller:
            produce_at_rate(s.kafka, s.kafka.telemetry_topic, sample, rate_per_s, sent_at)
            time.sleep(5.0)
    finally:
        proc.kill()
        proc.join(10)
    lateness_ms = settings.window.allowed_lateness_s * 1000
    by_asset: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for m, t in zip(sample, sent_at):
        by_asset[m.key.decode()].append((m.ts_ms, t))
    lat = []
    for (asset, _sensor, end_ns), seen in poller.seen.items():
        close_ms = end_ns // 1_000_000 + lateness_ms
        closing = next((t for ts, t in by_asset[asset] if ts >= close_ms), None)
        if closing is not None:
            lat.append(seen - closing)
    lat.sort()
    lat = lat[len(lat) // 10:]  # the first tenth: the pipeline catching up with its start
    if not lat:
        return {"latency_windows": 0, "latency_p50_s": None, "latency_p99_s": None}
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
    return {"latency_windows": len(lat), "latency_rate_per_s": round(rate_per_s, 1),
            "latency_p50_s": round(q[49], 3), "latency_p99_s": round(q[98], 3), "latency_max_s": round(lat[-1], 3)}


def check_arguments(args) -> None:
    """Refuse, naming the option, a workload that cannot measure anything (before any server starts).

    >>> import argparse
    >>> check_arguments(argparse.Namespace(assets=0, hours=16.0, steady_s=60.0, warmup_hours=2.5, bare_hours=8.0,
    ...                                    latency_s=40.0, partitions=6))
    Traceback (most recent call last):
    ...
    predmaint.errors.ConfigurationError: --assets: must be at least 1, got 0
    """
    if args.assets < 1:
        raise ConfigurationError(f"--assets: must be at least 1, got {args.assets}")
    if args.partitions < 1:
        raise ConfigurationError(f"--partitions: must be at least 1, got {args.partitions}")
    if not args.steady_s > 0:
        raise ConfigurationError(f"--steady-s: must be > 0, got {args.steady_s:g}")
    if not args.warmup_hours >= 0:
        raise ConfigurationError(f"--warmup-hours: must be >= 0, got {args.warmup_hours:g}")
    if args.hours is not None:
        if not args.hours > 0:
            raise ConfigurationError(f"--hours: must be > 0, got {args.hours:g}")
        if not args.warmup_hours < args.hours:
            raise ConfigurationError(f"--warmup-hours: must be >= 0 and below --hours ({args.hours:g}), so that "
                                     f"some windows are measured; got {args.warmup_hours:g}")
    # Without --hours, a --bare-hours longer than the sized workload is cut to it (main).
    if args.bare_hours is not None and not 0 < args.bare_hours <= (args.hours or math.inf):
        at_most = "" if args.hours is None else f" and at most --hours ({args.hours:g})"
        raise ConfigurationError(f"--bare-hours: must be > 0{at_most}, got {args.bare_hours:g}")
    if not args.latency_s > 0:
        raise ConfigurationError(f"--latency-s: must be > 0, got {args.latency_s:g}")


#: Event time of the sizing probe after the warm-up, and how much faster than on the probe a run's
#: steady phase may go (over 30 h the bare loop ran 1.26 x as fast as over its first 8 h: the rolling
#: references refresh on every update while they fill, 2026-12-02).
PROBE_STEADY_HOURS = 1.5
STEADY_SPEED_MARGIN = 1.3


def hours_for(windows_per_s: float, steady_s: float, sensors: int, window_s: float, warmup_hours: float) -> float:
    """Event time whose steady phase lasts about ``steady_s`` at ``windows_per_s`` (x the margin), whole hours.

    The pipeline is at most as fast as the bare loop it is compared with, so a
    workload sized on the bare loop's speed gives it at least ``steady_s``.

    >>> hours_for(500.0, 60.0, 36, 300.0, 2.5)  # 39,000 windows / 432 per hour of event time
    93.0
    """
    windows = steady_s * windows_per_s * STEADY_SPEED_MARGIN
    return float(math.ceil(warmup_hours + windows / (sensors * 3600 / window_s)))


def hours_in(settings: Settings, hours: float) -> int:
    """The event time (epoch ns) ``hours`` into the workload: the warm-up's end, the bare loop's cut."""
    return int((settings.simulator.start_time.timestamp() + hours * 3600) * 1e9)


def sized_hours(base: Settings, args) -> tuple[float, float]:
    """``--hours`` if given, else sized to this machine by the bare loop on a short probe: (hours, probe windows/s)."""
    if args.hours is not None:
        return args.hours, 0.0
    probe = workload_settings(base, args.assets, args.warmup_hours + PROBE_STEADY_HOURS)
    rate = bare_loop(probe, list(fleet_messages(probe)), hours_in(probe, args.warmup_hours)).steady.per_s
    sensors = sum(len(a.sensors) for a in probe.fleet)
    hours = hours_for(rate, args.steady_s, sensors, probe.window.length_s, args.warmup_hours)
    print(f"bench: the bare loop ran {rate:.0f} windows/s on a {PROBE_STEADY_HOURS:g} h probe: {hours:g} h of event "
          f"time for about {args.steady_s:g} s of steady processing", flush=True)
    return hours, rate


def main(args) -> int:
    check_arguments(args)
    workdir = Path(tempfile.mkdtemp(prefix="predmaint-bench-"))
    base = load_settings(args.config)
    hours, probe_rate = sized_hours(base, args)
    settings = workload_settings(base, args.assets, hours)
    warmup_end_ns = hours_in(settings, args.warmup_hours)
    t_gen = time.perf_counter()
    messages = list(fleet_messages(settings))
    gen_s = time.perf_counter() - t_gen
    bare_hours = hours if args.bare_hours is None else min(args.bare_hours, hours)
    bare_cut_ms = hours_in(settings, bare_hours) // 1_000_000
    bare_messages = [m for m in messages if m.ts_ms < bare_cut_ms]
    result: dict = {}
    with EmbeddedBroker() as broker, LocalInfluxDB() as influx:
        assert broker.proc is not None and influx.proc is not None
        services = {"tansu": broker.proc.pid, "influxd": influx.proc.pid}
        settings = settings.replace(
            kafka=dataclasses.replace(settings.kafka, bootstrap=broker.bootstrap, partitions=args.partitions),
            storage=dataclasses.replace(settings.storage, kind="influx-v1", url=influx.url, database="bench"))
        create_topic(settings.kafka, settings.kafka.telemetry_topic, args.partitions)
        kafka_io.ensure_topics(settings.kafka)
        t_produce = time.perf_counter()
        produce_all(settings.kafka, settings.kafka.telemetry_topic, messages)
        print(f"bench: {len(messages)} messages ({args.assets} assets, {hours:g} h) generated in {gen_s:.0f} s, "
              f"produced in {time.perf_counter() - t_produce:.0f} s; running ...", flush=True)

        bare_before = bare_loop(settings, bare_messages, warmup_end_ns)
        w1_settings = bench_runs.with_database(settings, "bench_w1", str(workdir / "recovery-w1"))
        w1 = bench_runs.dataflow(w1_settings, "pipeline", services)
        w1_steady, stored = bench_runs.steady_of(w1_settings, warmup_end_ns)
        bare_after = bare_loop(settings, bare_messages, warmup_end_ns, keep_points=True)
        bare_rate = (bare_before.steady.per_s + bare_after.steady.per_s) / 2
        print(f"bench: pipeline {w1_steady.per_s:.1f} windows/s, bare loop {bare_rate:.1f}/s", flush=True)

        peer_settings = bench_runs.with_database(settings, "bench_peer", str(workdir / "recovery-peer"))
        try:
            if importlib.util.find_spec("quixstreams") is None:
                raise RuntimeError("quixstreams is not installed: pip install 'predmaint[bench]' (make bench does)")
            peer = bench_runs.peer(peer_settings, "quix", services, str(workdir / "quix-state"),
                                   max_processing_s=args.peer_max_s)
            peer_steady, peer_stored = bench_runs.steady_of(peer_settings, warmup_end_ns)
            peer_error = None
        except Exception as exc:  # reported, not fatal: the peer is a comparison
            peer, peer_steady, peer_stored, peer_error = None, bench_runs.Steady(0, 0.0), 0, str(exc)
        print(f"bench: Quix Streams peer {peer_steady.per_s:.1f} windows/s", flush=True)

        w2_settings = bench_runs.with_database(settings, "bench_w2", str(workdir / "recovery-w2"))
        w2 = bench_runs.dataflow(w2_settings, "pipeline-w2", services, workers=2)
        w2_steady, w2_stored = bench_runs.steady_of(w2_settings, warmup_end_ns)
        p2_settings = bench_runs.with_database(settings, "bench_p2", str(workdir / "recovery-p2"))
        p2 = bench_runs.dataflow(p2_settings, "pipeline-p2", services, processes=2)
        p2_steady, p2_stored = bench_runs.steady_of(p2_settings, warmup_end_ns)
        print(f"bench: -w 2 {w2_steady.per_s:.1f} windows/s, 2 processes {p2_steady.per_s:.1f}/s", flush=True)

        readings_per_window = len(messages) / expected_windows(settings)
        capacity_msgs = w1_steady.per_s * readings_per_window
        lat = latency(settings, messages, capacity_msgs / 2, args.latency_s, services, workdir)
        storage_s = storage_seconds(bench_runs.with_database(settings, "bench_bare", ""), bare_after.points)
    state_bytes, state_pickled = state_bytes_per_sensor(settings, bare_after.asset_windows)

    stage_total = sum(bare_after.stage_s.values()) + storage_s
    stage_us = {k: round(v / bare_after.windows * 1e6) for k, v in
                {**bare_after.stage_s, "storage": storage_s}.items()}
    expected = expected_windows(settings)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "assets": args.assets, "sensors": 3 * args.assets, "hours": hours,
        "probe_bare_windows_per_s": round(probe_rate, 1) if probe_rate else None, "messages": len(messages),
        "windows": round(expected), "windows_stored": stored,
        "steady_windows": w1_steady.windows, "steady_s": round(w1_steady.seconds, 1),
        "pipeline_windows_per_s": round(w1_steady.per_s, 1),
        "readings_per_s": round(w1_steady.per_s * readings_per_window, 1),
        "bare_windows_per_s": round(bare_rate, 1),
        "bare_before_windows_per_s": round(bare_before.steady.per_s, 1),
        "bare_after_windows_per_s": round(bare_after.steady.per_s, 1),
        "ratio": round(w1_steady.per_s / bare_rate, 3) if bare_rate else None,
        "peer_windows_per_s": round(peer_steady.per_s, 1) if peer_steady.per_s else None,
        "peer_windows_stored": peer_stored, "peer_error": peer_error,
        "ratio_vs_peer": round(w1_steady.per_s / peer_steady.per_s, 3) if peer_steady.per_s else None,
        "workers_2_windows_per_s": round(w2_steady.per_s, 1), "workers_2_windows_stored": w2_stored,
        "processes_2_windows_per_s": round(p2_steady.per_s, 1), "processes_2_windows_stored": p2_stored,
        "speedup_2_workers": round(w2_steady.per_s / w1_steady.per_s, 3) if w1_steady.per_s else None,
        "speedup_2_processes": round(p2_steady.per_s / w1_steady.per_s, 3) if w1_steady.per_s else None,
        **lat,
        "peak_rss_mb": round(max(p["peak_rss_mb"] for p in w1.processes), 1),
        "peer_peak_rss_mb": round(max(p["peak_rss_mb"] for p in peer.processes), 1) if peer else None,
        "bench_peak_rss_mb": round(peak_rss_mb(), 1),
        "cpu_use": {k: round(v, 2) for r in (w1, peer, w2, p2) if r for k, v in r.cpu_use().items()},
        "stage_us_per_window": stage_us,
        "stage_share": {k: round(v * 1e-6 * bare_after.windows / stage_total, 3) for k, v in stage_us.items()},
        "state_bytes_per_sensor": round(state_bytes),
        "state_pickled_bytes_per_sensor": round(state_pickled),
        "models": [m.label for m in (settings.model, *settings.challengers)],
    }
    result["missed"] = missed(result)
    print_table(result)
    print(json.dumps(result))
    return 0 if stored == result["windows"] else 1


def missed(r: dict) -> list[str]:
    """The targets this run missed, each with its figure."""
    out = []
    for key, target in TARGETS.items():
        v = r.get(key)
        if v is None:
            out.append(f"{key}: not measured")
        elif (v > target) if key in ("latency_p99_s", "state_bytes_per_sensor") else (v < target):
            out.append(f"{key}: {v} (target {'<=' if key in ('latency_p99_s', 'state_bytes_per_sensor') else '>='} "
                       f"{target})")
    return out


def print_table(r: dict) -> None:
    rows = [
        ("workload", f"{r['assets']} assets x 3 sensors, {r['hours']:g} h, {r['messages']} messages, "
                     f"{r['windows']} sensor windows"),
        ("champion health points stored", r["windows_stored"]),
        ("pipeline, 1 worker (windows/s)", f"{r['pipeline_windows_per_s']} over {r['steady_s']} s steady "
                                           f"({r['readings_per_s']} readings/s)"),
        ("bare loop (windows/s)", f"{r['bare_windows_per_s']} (before {r['bare_before_windows_per_s']}, "
                                  f"after {r['bare_after_windows_per_s']})"),
        ("ratio pipeline / bare", r["ratio"]),
        ("Quix Streams peer (windows/s)", r["peer_windows_per_s"] if r["peer_error"] is None else r["peer_error"]),
        ("ratio pipeline / peer", r["ratio_vs_peer"]),
        ("-w 2 (windows/s), speed-up", f"{r['workers_2_windows_per_s']}, {r['speedup_2_workers']}"),
        ("2 processes (windows/s), speed-up", f"{r['processes_2_windows_per_s']}, {r['speedup_2_processes']}"),
        ("latency at half load p50 / p99 (s)", f"{r['latency_p50_s']} / {r['latency_p99_s']} "
                                               f"({r['latency_windows']} windows)"),
        ("peak RSS pipeline / peer (MB)", f"{r['peak_rss_mb']} / {r['peer_peak_rss_mb']}"),
        ("state per sensor (bytes)", f"{r['state_bytes_per_sensor']} in memory, "
                                     f"{r['state_pickled_bytes_per_sensor']} pickled ({', '.join(r['models'])})"),
        ("time per window by stage (us)", ", ".join(f"{k} {v}" for k, v in r["stage_us_per_window"].items())),
        ("CPU use (1.0 = one core)", ", ".join(f"{k} {v}" for k, v in r["cpu_use"].items())),
        ("targets missed", "; ".join(r["missed"]) or "none"),
    ]
    for name, value in rows:
        print(f"{name:36s} {value}")


def parse(argv: list[str]) -> argparse.Namespace:
    """Arguments as ``predmaint bench`` parses them (for tests)."""
    parser = argparse.ArgumentParser(prog="predmaint")
    parser.add_argument("--config")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["bench", *argv])
