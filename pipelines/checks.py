"""``predmaint check-config``, and the checks every command makes before it connects to anything.

:func:`validate` needs no server: the settings file (already validated when
loaded), every model spec built, the vibration registry probed (a sample rate
that cannot support envelope analysis of its bearing), the Kafka client
configurations built (TLS files readable, SASL secrets set) and the storage
credentials present. Every command runs it first, so a wrong setting fails
in one line before 30 s of connection attempts.

:func:`probe` then reaches Kafka and the configured storage with the
configured security, and names the setting to fix when one refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from predmaint.connectors import kafka_io, storage
from predmaint.pipelines import steps
from predmaint.settings import Settings

__all__ = ["SERVICES", "probe", "validate"]

#: What a command talks to: ``kafka``, ``storage``.
SERVICES = ("kafka", "storage")


def validate(settings: Settings, services: Iterable[str] = SERVICES) -> list[str]:
    """Check ``settings`` for ``services`` without connecting; return what was checked, one line each.

    Raises :class:`~predmaint.errors.ConfigurationError` naming the file, the
    setting, the asset and the sensor.
    """
    steps.check_registry(settings)
    models = [m.label for _, m in steps.model_fields(settings)]
    sensors = sum(len(a.sensors) for a in settings.fleet)
    done = [f"{settings.source}: {len(settings.fleet)} asset(s), {sensors} sensor(s), models {', '.join(models)}, "
            f"{len(settings.alert_rules)} alert rule(s), {len(settings.notify.targets)} notify target(s)"]
    services = set(services)
    if "kafka" in services:
        kafka_io.check_files(settings.kafka)
        kafka_io.confluent_config(settings.kafka)
        kafka_io.kafka_python_config(settings.kafka)
    if "storage" in services:
        storage.check_credentials(settings.storage)
    return done


def probe(settings: Settings, services: Iterable[str] = SERVICES, *,
          kafka_timeout_s: float = 10.0, report: Callable[[str], None] = print) -> None:
    """Reach each service in turn with the configured credentials; report each on success, raise on the first failure."""
    services = set(services)
    if "kafka" in services:
        report("ok  " + kafka_io.probe(settings.kafka, timeout_s=kafka_timeout_s))
    if "storage" in services:
        report("ok  " + storage.probe(settings.storage))
