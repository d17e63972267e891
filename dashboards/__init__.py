"""Grafana dashboards as code for predmaint.

:mod:`dashboards.definitions` defines the dashboards with the small typed
builder in :mod:`dashboards.model`; :mod:`dashboards.build` writes them to
``dashboards/json`` for Grafana's file provisioning (``--check`` verifies the
committed files); :mod:`dashboards.push` uploads them to a running Grafana
and adds the ``predmaint dashboards`` command; :mod:`dashboards.check` runs
every panel query against InfluxDB the way Grafana would.
"""
