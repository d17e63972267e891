"""predmaint: a predictive-maintenance streaming pipeline.

Kafka telemetry -> Bytewax dataflow (windows, vibration and process features,
River models, health 0-100, alert lifecycle) -> InfluxDB for Grafana, and
alert events delivered as signed webhooks and CMMS work orders.

Layers, each importing only those below it (checked by import-linter in the
test suite; see the README)::

    predmaint.pipelines.cli                      the command line
    predmaint.pipelines.{runner,checks,bench,bench_runs,chaos,chaos_scenarios,chaos_harness,evaluate,
                         scoreboard,report}, predmaint.dashboards
    predmaint.pipelines.dataflow                 the Bytewax wiring
    predmaint.connectors                         all I/O: Kafka, storage, notifier, local servers
    predmaint.pipelines.{intake,windows,steps,points,summary}  pure flow steps on domain types
    predmaint.models                             detectors, health, alert lifecycle
    predmaint.features                           pure numpy feature functions
    predmaint.{settings,domain,telemetry}        configuration, domain types, the wire contract
    predmaint.errors                             the one exception root

Examples
--------
>>> import predmaint
>>> predmaint.__version__ == version("predmaint")
True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("predmaint")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
