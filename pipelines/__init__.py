"""The flow and the commands: pure flow steps, the Bytewax wiring, runners, evaluation, report and CLI.

:mod:`~predmaint.pipelines.steps` and :mod:`~predmaint.pipelines.summary` are
pure; :mod:`~predmaint.pipelines.dataflow` wires them to sources and sinks;
:mod:`~predmaint.pipelines.runner` runs it (``predmaint run``, replays);
:mod:`~predmaint.pipelines.cli` is the command line (see the README's layers).
"""

import importlib

__all__ = [
    "bench",
    "cli",
    "dataflow",
    "evaluate",
    "report",
    "runner",
    "steps",
    "summary",
]


def __getattr__(name: str):
    # Submodules load on first use (PEP 562): the CLI must not import every command's dependencies.
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
