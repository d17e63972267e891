"""All I/O of predmaint: Kafka, time-series storage, alert delivery and the local servers.

Alert delivery (``predmaint notify``), one concern per module, each importing
only those after it: :mod:`~predmaint.connectors.notify` (the Kafka consumer
loop, and the **guarantees** of the whole path: durable, at-least-once,
ordered per asset and target, bounded retries, secrets kept secret),
:mod:`~predmaint.connectors.deliverer` (scheduling, retries, dead-lettering),
:mod:`~predmaint.connectors.outbox` (the SQLite outbox and Kafka offsets),
:mod:`~predmaint.connectors.transport` (one HTTP attempt, secret redaction,
``Retry-After``) and :mod:`~predmaint.connectors.deadletters` (the dead-letter
record and its InfluxDB point); they use :mod:`~predmaint.connectors.cmms`
(alert -> request mapping per CMMS), :mod:`~predmaint.connectors.webhooks`
(Standard Webhooks signing) and :mod:`~predmaint.connectors.retry` (backoff
timing).

The rest: :mod:`~predmaint.connectors.shelves`, :mod:`~predmaint.connectors.kafka_io`,
:mod:`~predmaint.connectors.kafka_sink` (the dataflow's alert and dead-letter outputs),
:mod:`~predmaint.connectors.storage`, :mod:`~predmaint.connectors.storage_sink`,
:mod:`~predmaint.connectors.fleet_simulator`, :mod:`~predmaint.connectors.local_services`,
:mod:`~predmaint.connectors.metrics` (what ``predmaint run`` reports about itself)
and :mod:`~predmaint.connectors.webhook_receiver`; :mod:`~predmaint.connectors.faulty_target` is
``predmaint chaos``'s webhook receiver and CMMS double, with faults on demand.
"""

from predmaint._lazy import submodule_loader

__all__ = [
    "cmms",
    "datasets",
    "deadletters",
    "deliverer",
    "faulty_target",
    "fleet_simulator",
    "kafka_io",
    "kafka_sink",
    "local_services",
    "metrics",
    "notify",
    "outbox",
    "retry",
    "shelves",
    "storage",
    "storage_sink",
    "transport",
    "webhook_receiver",
    "webhooks",
]

__getattr__ = submodule_loader(__name__, __all__)
