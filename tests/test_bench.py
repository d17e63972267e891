"""``make bench``'s costs: what the profile showed as waste stays fixed, and a tiny bench run reports every field."""

from __future__ import annotations

import importlib.util
import json
import math
import re

import pytest

from predmaint.pipelines import steps, windows
from predmaint.settings import load_settings

SETTINGS = load_settings()


def _window(i: int) -> windows.AssetWindowFeatures:
    end_ns = (i + 1) * 300_000_000_000
    both = tuple(windows.WindowFeatures("pump-01", s, "temperature", end_ns, {"temp_level_c": 50.0 + 0.1 * i})
                 for s in ("t-a", "t-b"))
    return windows.AssetWindowFeatures("pump-01", end_ns, both, length_s=300.0)


def test_a_sensors_models_are_built_once_not_on_every_window(monkeypatch):
    # dict.setdefault(sensor, _new_models(...)) evaluates its default eagerly: every
    # window of every sensor built (and threw away) a champion and its challengers.
    built = []
    real = steps.new_model

    def counting(*args, **kwargs):
        built.append(args[0].label)
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "new_model", counting)
    state = None
    for i in range(5):
        state, _ = steps.assess(SETTINGS, None, state, _window(i))
    models_per_sensor = 1 + len(SETTINGS.challengers)
    assert len(built) == 2 * models_per_sensor  # two sensors, built at their first window only
    assert set(state.models) == {"t-a", "t-b"}


FIELDS = {  # field -> type(s) of its value in the JSON line
    "pipeline_windows_per_s": float, "bare_windows_per_s": float, "ratio": float, "readings_per_s": float,
    "peer_windows_per_s": (float, type(None)), "ratio_vs_peer": (float, type(None)),
    "speedup_2_workers": float, "speedup_2_processes": float,
    "latency_p50_s": float, "latency_p99_s": float,
    "peak_rss_mb": float, "state_bytes_per_sensor": int, "state_pickled_bytes_per_sensor": int,
    "stage_us_per_window": dict, "cpu_use": dict, "missed": list,
}


@pytest.mark.integration
def test_a_tiny_bench_prints_every_field(capsys):
    # A few seconds of work per run: checks the wiring and the JSON line, never a speed.
    from predmaint.pipelines import bench

    args = bench.parse(["--assets", "2", "--hours", "1.5", "--warmup-hours", "0.5", "--bare-hours", "1",
                        "--latency-s", "4", "--peer-max-s", "5"])
    code = bench.main(args)
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and r["windows_stored"] == r["windows"] == 2 * 3 * 18
    for name, kind in FIELDS.items():
        assert isinstance(r[name], kind), (name, r[name])
    if importlib.util.find_spec("quixstreams") is not None:
        assert r["peer_error"] is None and r["peer_windows_per_s"] > 0
    for name in ("pipeline_windows_per_s", "bare_windows_per_s", "readings_per_s", "latency_p99_s", "peak_rss_mb"):
        assert math.isfinite(r[name]) and r[name] > 0, name
    assert set(r["stage_us_per_window"]) == {"decode", "snapshot_features", "window", "assess", "points", "storage"}
    assert 0 < r["latency_p50_s"] <= r["latency_p99_s"]


def test_without_hours_the_workload_is_sized_by_the_bare_loop_on_a_probe(capsys):
    from predmaint.pipelines import bench

    args = bench.parse(["--assets", "1", "--warmup-hours", "0.25", "--steady-s", "0.5"])
    hours, rate = bench.sized_hours(SETTINGS, args)
    assert rate > 0
    # The probe's speed, not a constant, decides: sized from the measured rate, above the warm-up.
    assert hours == bench.hours_for(rate, 0.5, 3, SETTINGS.window.length_s, 0.25) > 0.25
    assert f"{rate:.0f} windows/s" in capsys.readouterr().out
    given = bench.parse(["--hours", "7", "--warmup-hours", "0.25"])
    assert bench.sized_hours(SETTINGS, given) == (7.0, 0.0)
    # Twice the speed, twice the steady event time (whole hours, rounded up).
    assert abs(bench.hours_for(1000.0, 60, 36, 300.0, 0) - 2 * bench.hours_for(500.0, 60, 36, 300.0, 0)) <= 1


@pytest.mark.parametrize("argv, message", [
    (["--steady-s", "0"], "--steady-s: must be > 0"),
    (["--warmup-hours", "-1"], "--warmup-hours: must be >= 0"),
    (["--hours", "0"], "--hours: must be > 0, got 0"),
    (["--hours", "2", "--warmup-hours", "2"], "--warmup-hours: must be >= 0 and below --hours (2)"),
    (["--hours", "4", "--bare-hours", "5"], "--bare-hours: must be > 0 and at most --hours (4)"),
    (["--bare-hours", "0"], "--bare-hours: must be > 0, got 0"),
    (["--latency-s", "0"], "--latency-s: must be > 0"),
    (["--partitions", "0"], "--partitions: must be at least 1"),
])
def test_a_workload_that_measures_nothing_is_refused_naming_the_option(argv, message):
    from predmaint.errors import ConfigurationError
    from predmaint.pipelines import bench

    with pytest.raises(ConfigurationError, match=re.escape(message)):
        bench.check_arguments(bench.parse(argv))


CHILD_OF_A_KILLED_BENCH = """
import sys, time
from predmaint.pipelines import bench_runs, cli
assert "bench" in cli.UNWIND_ON_SIGTERM
cli.unwind_on_sigterm()  # as cli.main does for the bench
try:
    proc, _ = bench_runs.start("tests.test_bench:sleep_for", seconds=60)
    print(proc.pid, flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    sys.exit(130)  # cli.main's exit code for an interrupted command
"""


def sleep_for(seconds: float) -> None:
    """A run's stand-in in a spawned process (bench_runs.start calls it by name)."""
    import time

    time.sleep(seconds)


def test_a_killed_bench_ends_the_run_it_had_started():
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.pipeline_runs import REPO

    bench = subprocess.Popen([sys.executable, "-c", CHILD_OF_A_KILLED_BENCH], stdout=subprocess.PIPE, text=True,
                             cwd=REPO)
    child = int(bench.stdout.readline())
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(timeout=30) == 130
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail(f"the bench's child process {child} outlived it")


def fail_now() -> None:
    """A run's process that dies at once, as a cluster process did on a recovery panic."""
    raise SystemExit(3)


def test_a_run_whose_process_dies_fails_naming_it_and_stops_the_others():
    """Two processes of one run, the second dies: the run fails naming it (it used to wait on the
    first, which waits for its peer in a cluster, until the whole timeout, then say only 'failed or
    timed out') and kills the first."""
    from predmaint.pipelines import bench_runs

    started = []
    real_start = bench_runs.start

    def recording_start(target, **kwargs):
        started.append(real_start(target, **kwargs))
        return started[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench_runs, "start", recording_start)
        with pytest.raises(RuntimeError, match=r"bench run pair: process 1 of 2 failed \(exit code 3\)"):
            bench_runs.run("pair", [("tests.test_bench:sleep_for", {"seconds": 120}),
                                    ("tests.test_bench:fail_now", {})], {}, timeout_s=100)
    sleeper = started[0][0]
    sleeper.join(10)
    assert sleeper.exitcode is not None  # killed, not left sleeping
