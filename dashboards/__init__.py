"""Grafana dashboards as code for predmaint.

:mod:`predmaint.dashboards.definitions` defines the dashboards with the small typed
builder in :mod:`predmaint.dashboards.model`; :mod:`predmaint.dashboards.build` writes them to
``dashboards/json`` for Grafana's file provisioning (``--check`` verifies the
committed files); :mod:`predmaint.dashboards.push` uploads them to a running Grafana
and adds the ``predmaint dashboards`` command; :mod:`predmaint.dashboards.check` runs
every panel query against InfluxDB the way Grafana would.
"""

from predmaint._lazy import submodule_loader

__all__ = [
    "build",
    "check",
    "definitions",
    "model",
    "push",
]

__getattr__ = submodule_loader(__name__, __all__)
