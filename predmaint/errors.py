"""Every error predmaint raises on purpose, under one root.

::

    PredmaintError                    exit code 1 unless a subclass says otherwise
    ├── ConfigurationError            exit code 2: the user must change a setting
    │   ├── SettingsError             a settings file or field
    │   ├── ModelSpecError            a model spec (model / challengers[i])
    │   └── TargetConfigError         a notify target (notify.targets[i])
    ├── InputError                    data from outside that breaks the contract
    │   ├── InvalidMessage            a telemetry message (dead-lettered, never raised to the user)
    │   ├── InvalidSignature          a webhook signature
    │   └── AlertMappingError         an alert event a CMMS request cannot be built from
    ├── StorageError                  storage refused a write or query for good
    │   ├── StorageUnavailable        storage is down or overloaded: retry (backpressure)
    │   └── EmptyStoreError           storage holds nothing to report on
    ├── DeliveryError                 one delivery attempt of one event to one target
    │   ├── RetryableDeliveryError    may succeed later (timeout, 408/425/429/5xx)
    │   └── PermanentDeliveryError    retrying cannot fix it
    ├── ServiceError                  a local server (embedded broker, InfluxDB) did not start
    ├── BrokerError                   Kafka could not be reached or refused the client
    ├── EvaluationError               a dataset cannot be evaluated
    └── DashboardError                Grafana refused or could not be reached

Classes that describe bad values also derive from :class:`ValueError`, so
code written against the standard library's conventions keeps working.
Each class carries its exit code; the command line
(:func:`predmaint.pipelines.cli.main`) turns any of them into a one-line
message and that code, in one place; anything else is a bug and keeps its
traceback.

Examples
--------
>>> issubclass(SettingsError, ConfigurationError), SettingsError("x").exit_code
(True, 2)
>>> StorageUnavailable("influx down").exit_code
1
"""

from __future__ import annotations

__all__ = [
    "AlertMappingError",
    "BrokerError",
    "ConfigurationError",
    "DashboardError",
    "DeliveryError",
    "EmptyStoreError",
    "EvaluationError",
    "InputError",
    "InvalidMessage",
    "InvalidSignature",
    "ModelSpecError",
    "PermanentDeliveryError",
    "PredmaintError",
    "RetryableDeliveryError",
    "ServiceError",
    "SettingsError",
    "StorageError",
    "StorageUnavailable",
    "TargetConfigError",
]


class PredmaintError(Exception):
    """Root of every error predmaint raises on purpose."""

    #: Process exit code when this error ends a command.
    exit_code = 1


class ConfigurationError(PredmaintError, ValueError):
    """A setting that cannot be used; the message names the file, field or target."""

    exit_code = 2


class SettingsError(ConfigurationError):
    """A configuration file that cannot be used; the message names the field."""


class ModelSpecError(ConfigurationError):
    """A model spec that cannot be built; the message names the field (``model.spec``...)."""


class TargetConfigError(ConfigurationError):
    """Invalid target or outbox configuration (names the setting, never a secret)."""


class InputError(PredmaintError, ValueError):
    """Data from outside predmaint that breaks its contract."""


class InvalidMessage(InputError):
    """A telemetry message that breaks the envelope contract; ``reason`` says which rule."""

    def __init__(self, reason: str, asset: str | None = None, sensor: str | None = None):
        self.reason = reason
        self.asset = asset
        self.sensor = sensor
        where = f"asset={asset or '?'} sensor={sensor or '?'}"
        super().__init__(f"decode: {where}: {reason}")


class InvalidSignature(InputError):
    """A delivery whose headers or signature do not verify.

    The message says *what* failed (missing header, stale timestamp, no
    matching signature) and never contains the secret or the expected
    signature, so it can be logged and returned to the sender as is.
    """


class AlertMappingError(InputError):
    """An alert event that cannot be mapped (unknown severity/state/kind).

    Retrying cannot fix it, so the delivery layer treats it as permanent.
    """


class StorageError(PredmaintError):
    """Storage refused a write or a query for good (bad data, auth, missing database)."""


class StorageUnavailable(StorageError):
    """Storage is overloaded or down; the write may succeed if retried (backpressure)."""


class EmptyStoreError(StorageError):
    """The store answered but holds none of the points asked for (e.g. ``report`` before any run)."""


class DeliveryError(PredmaintError):
    """A failed delivery attempt of one event to one target.

    Parameters
    ----------
    reason : str
        What went wrong, built from status codes and exception class names
        only (never server text, never a secret).
    target, asset, alert_id, event_id : str
        Identify the delivery; all appear in the message.
    http_status : int, optional
        HTTP status when the server answered.
    retry_after : float, optional
        Seconds the server asked us to wait (``Retry-After``).
    """

    retryable = False

    def __init__(self, reason: str, *, target: str = "?", asset: str = "?", alert_id: str = "?",
                 event_id: str = "?", http_status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.reason = reason
        self.target = target
        self.asset = asset
        self.alert_id = alert_id
        self.event_id = event_id
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(
            f"{reason} (target {target!r}, asset {asset!r}, alert {alert_id!r}, event {event_id!r})"
        )


class RetryableDeliveryError(DeliveryError):
    """A failure that may succeed later: timeout, dropped connection, 408/425/429/5xx."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """A failure retrying cannot fix: 3xx, 4xx (except 408/425/429), unmappable event."""


class ServiceError(PredmaintError):
    """A local service (embedded broker, InfluxDB for tests and the demo) failed to start."""


class BrokerError(PredmaintError):
    """No Kafka broker answered at ``kafka.bootstrap``, or it refused the client (TLS, SASL, ACLs)."""


class EvaluationError(PredmaintError):
    """A dataset that cannot be evaluated (missing folder, unreadable file)."""


class DashboardError(PredmaintError):
    """Grafana could not be reached or refused a dashboard."""

