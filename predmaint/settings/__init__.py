"""Settings: one validated object for every predmaint command.

:mod:`~predmaint.settings.schema` is the schema (one frozen dataclass per
section), :mod:`~predmaint.settings.loading` binds a YAML file and the
environment onto it, :mod:`~predmaint.settings.secrets` keeps secrets out of
prints and pickles, and :mod:`~predmaint.settings.targets` validates the
delivery targets of ``predmaint notify``.

Examples
--------
>>> from predmaint.settings import load_settings
>>> settings = load_settings()
>>> settings.kafka.telemetry_topic, len(settings.fleet) > 0
('telemetry', True)
"""

from predmaint.errors import SettingsError
from predmaint.settings.loading import DEFAULT_CONFIG_NAME, default_config_text, load_settings
from predmaint.settings.schema import (
    ASSET_SENSOR,
    DAILY_PROFILE_DEFAULTS,
    NOVELTY_DEFAULTS,
    SENSOR_KINDS,
    AlertRuleSettings,
    AssetModelSettings,
    AssetSettings,
    BearingSettings,
    FaultSettings,
    KafkaSettings,
    MetricsSettings,
    ModelSettings,
    NotifySettings,
    RecoverySettings,
    SensorSettings,
    Settings,
    SimulatorSettings,
    StorageSettings,
    SuppressionSettings,
    SuppressionWindow,
    WindowSettings,
    parse_utc,
)
from predmaint.settings.secrets import Secret, secret_from_env
from predmaint.settings.targets import TARGET_KINDS, Target, build_targets

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "ASSET_SENSOR",
    "DAILY_PROFILE_DEFAULTS",
    "NOVELTY_DEFAULTS",
    "SENSOR_KINDS",
    "TARGET_KINDS",
    "AlertRuleSettings",
    "AssetModelSettings",
    "AssetSettings",
    "BearingSettings",
    "FaultSettings",
    "KafkaSettings",
    "MetricsSettings",
    "ModelSettings",
    "NotifySettings",
    "RecoverySettings",
    "Secret",
    "SensorSettings",
    "Settings",
    "SettingsError",
    "SimulatorSettings",
    "StorageSettings",
    "SuppressionSettings",
    "SuppressionWindow",
    "Target",
    "WindowSettings",
    "build_targets",
    "default_config_text",
    "load_settings",
    "parse_utc",
    "secret_from_env",
]
