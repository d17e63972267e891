"""The runs ``make bench`` times, each in its own process: the real dataflow (one worker, two
workers, two processes), the Quix Streams peer, and the dataflow tailing a paced topic (latency).

A run in a child process has its own peak RSS and CPU time, not the bench's
(which holds every message in memory for the bare loop).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import queue
import resource
import time
from dataclasses import dataclass, field

from predmaint.connectors.bench_io import cpu_seconds, peak_rss_mb, processed_times
from predmaint.connectors.local_services import free_ports
from predmaint.settings import Settings

_SPAWN = multiprocessing.get_context("spawn")


def _child(target: str, kwargs: dict, results) -> None:
    import importlib

    module, name = target.rsplit(":", 1)
    t0 = time.time()
    out = getattr(importlib.import_module(module), name)(**kwargs) or {}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put({"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak_rss_mb(),
                 "wall_s": time.time() - t0, **out})


def _dataflow(settings: Settings, workers: int, tail: bool, process_id: int | None,
              addresses: list[str] | None) -> None:
    from predmaint.pipelines.runner import run_pipeline

    run_pipeline(settings, workers=workers, tail=tail, process_id=process_id, addresses=addresses)


@dataclass
class Run:
    """One timed run: its wall time, each of its processes' figures, and the services' CPU meanwhile."""

    name: str
    wall_s: float
    processes: list[dict]
    services_cpu_s: dict[str, float] = field(default_factory=dict)

    def cpu_use(self) -> dict[str, float]:
        """CPU use (1.0 = one core busy) of each process over the run."""
        out = {f"{self.name}[{i}]": p["cpu_s"] / self.wall_s for i, p in enumerate(self.processes)}
        out.update({k: v / self.wall_s for k, v in self.services_cpu_s.items()})
        return out


def start(target: str, **kwargs):
    """Start ``module:function(**kwargs)`` in a fresh (spawned) process; returns (process, results queue)."""
    results = _SPAWN.Queue()
    proc = _SPAWN.Process(target=_child, args=(target, kwargs, results), daemon=True)
    proc.start()
    return proc, results


def run(name: str, children: list[tuple[str, dict]], services: dict[str, int], timeout_s: float = 900) -> Run:
    """Run ``children`` (``(target, kwargs)``) side by side until all return; raise if one fails."""
    before = {k: cpu_seconds(pid) for k, pid in services.items()}
    t0 = time.time()
    started = [start(target, **kwargs) for target, kwargs in children]
    outs: list[dict | None] = [None] * len(started)
    # Polled, not awaited one by one: the processes of a cluster wait for each other, so one that
    # died would leave the others (and the bench) waiting out the whole timeout.
    while any(o is None for o in outs):
        for i, (proc, results) in enumerate(started):
            if outs[i] is None:
                ended = proc.exitcode is not None  # before the read: a result put before the exit is read now
                with contextlib.suppress(queue.Empty):
                    outs[i] = results.get(timeout=1.0 if ended else 0.2)
            if outs[i] is None and (ended or time.time() - t0 > timeout_s):
                for p, _ in started:
                    p.kill()
                why = "timed out" if proc.exitcode is None else f"failed (exit code {proc.exitcode})"
                raise RuntimeError(f"bench run {name}: process {i} of {len(started)} {why}")
    for proc, _ in started:
        proc.join(30)
    wall = time.time() - t0
    return Run(name, wall, [o for o in outs if o is not None],  # every one, by now
               {k: cpu_seconds(pid) - before[k] for k, pid in services.items()})


def dataflow(settings: Settings, name: str, services: dict[str, int], *, workers: int = 1,
             processes: int = 1) -> Run:
    """The real dataflow over the whole topic (``--until-end``) with ``workers`` per process in ``processes``."""
    if processes == 1:
        return run(name, [("predmaint.pipelines.bench_runs:_dataflow",
                           dict(settings=settings, workers=workers, tail=False, process_id=None, addresses=None))],
                   services)
    addresses = [f"127.0.0.1:{p}" for p in free_ports(processes)]
    return run(name, [("predmaint.pipelines.bench_runs:_dataflow",
                       dict(settings=settings, workers=workers, tail=False, process_id=i, addresses=addresses))
                      for i in range(processes)], services)


def peer(settings: Settings, name: str, services: dict[str, int], state_dir: str,
         max_processing_s: float | None = None) -> Run:
    """The Quix Streams peer over the topic, until it has been idle for 10 s or has processed ``max_processing_s``."""
    return run(name, [("predmaint.connectors.quix_peer:run_peer",
                       dict(settings=settings, consumer_group=f"predmaint-bench-{int(time.time())}",
                            state_dir=state_dir, idle_timeout_s=10.0, max_processing_s=max_processing_s))],
               services)


@dataclass(frozen=True)
class Steady:
    """Throughput once warm: the windows assessed after the warm-up, over the time they took."""

    windows: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.windows / self.seconds if self.seconds > 0 else 0.0


def steady(times: list[tuple[int, float]], warmup_end_ns: int) -> Steady:
    """From ``(window end ns, assessed at s)``: windows ending after ``warmup_end_ns``, first to last assessment.

    The first such window marks the start; the windows counted are the ones
    after it, so that ``windows / seconds`` is a rate of completions.
    """
    after = sorted(t for end, t in times if end > warmup_end_ns)
    if len(after) < 2:
        return Steady(0, 0.0)
    return Steady(len(after) - 1, after[-1] - after[0])


def steady_of(settings: Settings, warmup_end_ns: int) -> tuple[Steady, int]:
    """The steady throughput of what a run wrote to ``settings.storage``, and the count of champion points."""
    times = processed_times(settings.storage)
    return steady(times, warmup_end_ns), len(times)


def with_database(settings: Settings, database: str, recovery_dir: str) -> Settings:
    return settings.replace(storage=dataclasses.replace(settings.storage, database=database),
                            recovery=dataclasses.replace(settings.recovery, dir=recovery_dir))
