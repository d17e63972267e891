"""The flow and the commands: pure flow steps, the Bytewax wiring, runners, evaluation, report and CLI.

:mod:`~predmaint.pipelines.intake` (decode, a reading's features),
:mod:`~predmaint.pipelines.windows` (event-time windows), :mod:`~predmaint.pipelines.steps` (assess),
:mod:`~predmaint.pipelines.points`
(what is written) and :mod:`~predmaint.pipelines.summary` are pure; :mod:`~predmaint.pipelines.dataflow` wires them to sources and sinks;
:mod:`~predmaint.pipelines.runner` runs it (``predmaint run``, replays);
:mod:`~predmaint.pipelines.cli` is the command line (see the README's layers).
"""

from predmaint._lazy import submodule_loader

__all__ = [
    "bench",
    "bench_runs",
    "chaos",
    "chaos_harness",
    "chaos_scenarios",
    "checks",
    "cli",
    "dataflow",
    "evaluate",
    "intake",
    "points",
    "report",
    "runner",
    "scoreboard",
    "steps",
    "summary",
    "windows",
]

__getattr__ = submodule_loader(__name__, __all__)
