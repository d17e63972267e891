"""Grafana dashboards as code for predmaint.

:mod:`predmaint.dashboards.definitions` defines the dashboards with the small typed
builder in :mod:`predmaint.dashboards.model`; :mod:`predmaint.dashboards.build` writes them to
``dashboards/json`` for Grafana's file provisioning (``--check`` verifies the
committed files); :mod:`predmaint.dashboards.push` uploads them to a running Grafana
and adds the ``predmaint dashboards`` command; :mod:`predmaint.dashboards.check` runs
every panel query against InfluxDB the way Grafana would.
"""

import importlib

__all__ = [
    "build",
    "check",
    "definitions",
    "model",
    "push",
]


def __getattr__(name: str):
    # Submodules load on first use (PEP 562): building JSON must not import the Grafana client.
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
