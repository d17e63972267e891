"""The settings schema: one frozen dataclass per section, validated on construction.

Field defaults here are the only place a default is written; the packaged
``default.yaml`` overrides a few of them for the demo fleet. Loading a file
into these classes (YAML, environment overrides, cross-checks) is
:mod:`predmaint.settings.loading`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from predmaint.errors import SettingsError
from predmaint.settings.secrets import Secret, secret_from_env

__all__ = [
    "AlertRuleSettings", "AssetSettings", "BearingSettings", "FaultSettings", "KafkaSettings",
    "ModelSettings", "NotifySettings", "RecoverySettings", "SensorSettings", "Settings",
    "MetricsSettings", "SimulatorSettings", "StorageSettings", "SuppressionSettings", "SuppressionWindow",
    "WindowSettings", "AssetModelSettings", "parse_utc", "SENSOR_KINDS", "ASSET_SENSOR", "KAFKA_SECURITY_PROTOCOLS", "KAFKA_SASL_MECHANISMS",
]


def parse_utc(text: str, where: str) -> datetime:
    """An ISO 8601 time that names its zone, as an aware UTC datetime.

    Examples
    --------
    >>> parse_utc("2026-01-01T01:00:00+01:00", "start").isoformat()
    '2026-01-01T00:00:00+00:00'
    >>> parse_utc("2026-01-01T00:00:00", "start")
    Traceback (most recent call last):
    ...
    predmaint.errors.SettingsError: start: '2026-01-01T00:00:00' needs a time zone (e.g. a trailing Z)
    """
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise SettingsError(f"{where}: {text!r} needs a time zone (e.g. a trailing Z)")
    return t.astimezone(timezone.utc)



#: ``kafka.security_protocol`` values (Kafka's names; librdkafka and kafka-python both take them).
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: ``kafka.sasl_mechanism`` values ("" when the protocol has no SASL).
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSettings:
    """The Kafka cluster and topics; TLS and SASL for a secured plant cluster.

    Secrets are never in the file: ``sasl_username_env``, ``sasl_password_env``
    and ``ssl_key_password_env`` name the environment variables that hold them.
    Every Kafka client predmaint creates gets these settings
    (:mod:`predmaint.connectors.kafka_io` builds one client configuration per library).

    >>> KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512").sasl_mechanism
    'SCRAM-SHA-512'
    >>> KafkaSettings(security_protocol="SASL_SSL")
    Traceback (most recent call last):
    ...
    predmaint.errors.SettingsError: kafka.sasl_mechanism: security_protocol SASL_SSL needs one of ('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512')
    """

    bootstrap: str = "localhost:9092"
    telemetry_topic: str = "telemetry"
    dead_letter_topic: str = "telemetry.deadletter"
    alerts_topic: str = "alerts"
    partitions: int = 6
    replication_factor: int = 1
    #: ``PLAINTEXT`` (default), ``SSL`` (TLS), ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL over TLS).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    #: ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``; required with a ``SASL_*`` protocol.
    sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = ""
    #: Environment variables holding the SASL user name and password.
    sasl_username_env: str = "PREDMAINT_KAFKA_USERNAME"
    sasl_password_env: str = "PREDMAINT_KAFKA_PASSWORD"
    #: PEM file of the CA that signed the brokers' certificates (empty: the system's CAs).
    ssl_cafile: str = ""
    #: Client certificate and key (PEM) for mutual TLS; empty: none.
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    #: Environment variable holding the password of an encrypted ``ssl_keyfile`` (empty: none).
    ssl_key_password_env: str = ""
    #: Check that the broker's certificate names the host connected to (turn off only for tests).
    ssl_check_hostname: bool = True
    #: While the broker does not take the pipeline's alerts or dead letters, the flow waits
    #: (backpressure) this long; then it stops with the cause, and a restart writes them again.
    retry_for_s: float = 300.0

    def __post_init__(self):
        if isinstance(self.retry_for_s, bool) or not isinstance(self.retry_for_s, (int, float)) \
                or not self.retry_for_s > 0:
            raise SettingsError(f"kafka.retry_for_s: must be a number of seconds > 0, got {self.retry_for_s!r}")
        if self.security_protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise SettingsError(f"kafka.security_protocol: {self.security_protocol!r} is not one of "
                                f"{KAFKA_SECURITY_PROTOCOLS}")
        if self.sasl_mechanism not in ("", *KAFKA_SASL_MECHANISMS):
            raise SettingsError(f"kafka.sasl_mechanism: {self.sasl_mechanism!r} is not one of "
                                f"{KAFKA_SASL_MECHANISMS}")
        if self.uses_sasl and not self.sasl_mechanism:
            raise SettingsError(f"kafka.sasl_mechanism: security_protocol {self.security_protocol} needs one of "
                                f"{KAFKA_SASL_MECHANISMS}")
        if self.sasl_mechanism and not self.uses_sasl:
            raise SettingsError(f"kafka.sasl_mechanism: {self.sasl_mechanism} needs security_protocol "
                                f"SASL_SSL or SASL_PLAINTEXT, not {self.security_protocol}")
        if self.uses_sasl and not (self.sasl_username_env and self.sasl_password_env):
            raise SettingsError("kafka.sasl_username_env, kafka.sasl_password_env: name the environment variables "
                                "that hold the SASL user name and password")
        files = {"ssl_cafile": self.ssl_cafile, "ssl_certfile": self.ssl_certfile, "ssl_keyfile": self.ssl_keyfile}
        if not self.uses_tls:
            given = [name for name, value in files.items() if value]
            if given:
                raise SettingsError(f"kafka.{given[0]}: needs security_protocol SSL or SASL_SSL, not "
                                    f"{self.security_protocol}")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise SettingsError("kafka.ssl_certfile, kafka.ssl_keyfile: give both (mutual TLS) or neither")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl_username(self) -> str | None:
        return os.environ.get(self.sasl_username_env) if self.uses_sasl and self.sasl_username_env else None

    @property
    def sasl_password(self) -> Secret | None:
        return secret_from_env(self.sasl_password_env) if self.uses_sasl else None

    @property
    def ssl_key_password(self) -> Secret | None:
        return secret_from_env(self.ssl_key_password_env) if self.uses_tls else None


@dataclass(frozen=True)
class WindowSettings:
    """Event-time windows: one length per sensor kind, overridable per sensor (``window_s``).

    A vibration window should hold several snapshots, a 1 Hz process value a
    handful of readings; a slower series (5-minute or hourly values) then gets
    one reading per window, which the scalar models score as it comes. So no
    series needs a setting of its own.
    """

    #: Default length for kinds not in ``kind_length_s``.
    length_s: float = 300.0
    #: Length per sensor kind, in seconds.
    kind_length_s: dict = field(default_factory=lambda: {"process": 10.0})
    # How far behind the newest event an event may arrive and still count.
    allowed_lateness_s: float = 120.0

    def __post_init__(self):
        if not self.length_s > 0:
            raise SettingsError(f"window.length_s: must be > 0, got {self.length_s!r}")
        for kind, length in self.kind_length_s.items():
            if kind not in SENSOR_KINDS:
                raise SettingsError(f"window.kind_length_s: {kind!r} is not one of {SENSOR_KINDS}")
            if isinstance(length, bool) or not isinstance(length, (int, float)) or not length > 0:
                raise SettingsError(f"window.kind_length_s.{kind}: must be a number of seconds > 0, got {length!r}")

    def length_for(self, kind: str, sensor_window_s: float = 0.0) -> float:
        """The window length of a sensor: its own ``window_s``, else its kind's, else ``length_s``.

        Examples
        --------
        >>> w = WindowSettings()
        >>> w.length_for("vibration"), w.length_for("process"), w.length_for("process", 60.0)
        (300.0, 10.0, 60.0)
        """
        if sensor_window_s > 0:
            return float(sensor_window_s)
        return float(self.kind_length_s.get(kind, self.length_s))


@dataclass(frozen=True)
class StorageSettings:
    #: ``influx-v1`` (HTTP /write, InfluxDB 1.x), ``influx-v2`` (influxdb-client,
    #: InfluxDB 1.8+, 2.x, 3.x) or ``sqlite`` (embedded local store).
    kind: str = "sqlite"
    url: str = "http://localhost:8086"
    database: str = "predmaint"
    retention_policy: str = ""
    org: str = "predmaint"
    bucket: str = "predmaint"
    token_env: str = "PREDMAINT_INFLUX_TOKEN"
    username_env: str = "PREDMAINT_INFLUX_USERNAME"
    password_env: str = "PREDMAINT_INFLUX_PASSWORD"
    sqlite_path: str = ".predmaint/store.sqlite"
    batch_size: int = 5000
    timeout_s: float = 15.0
    #: While InfluxDB is unavailable (connection refused, timeouts, 408, 429,
    #: 5xx) a request is retried with capped exponential backoff for this
    #: long, and the pipeline waits (backpressure); then it fails with the cause.
    retry_for_s: float = 300.0
    #: Also stop after this many retries of one request; empty (the default):
    #: only ``retry_for_s`` limits them; 0: never retry.
    max_retries: int | None = None

    def __post_init__(self):
        if self.kind not in ("influx-v1", "influx-v2", "sqlite"):
            raise SettingsError(f"storage.kind: {self.kind!r} is not one of influx-v1, influx-v2, sqlite")
        if isinstance(self.retry_for_s, bool) or not isinstance(self.retry_for_s, (int, float)) \
                or not self.retry_for_s > 0:
            raise SettingsError(f"storage.retry_for_s: must be a number of seconds > 0, got {self.retry_for_s!r}")
        if self.max_retries is not None and (isinstance(self.max_retries, bool)
                                             or not isinstance(self.max_retries, int) or self.max_retries < 0):
            raise SettingsError(f"storage.max_retries: must be an integer >= 0 or empty, got {self.max_retries!r}")

    @property
    def token(self) -> Secret | None:
        return secret_from_env(self.token_env)

    @property
    def username(self) -> str | None:
        return os.environ.get(self.username_env) if self.username_env else None

    @property
    def password(self) -> Secret | None:
        return secret_from_env(self.password_env)


@dataclass(frozen=True)
class RecoverySettings:
    enabled: bool = True
    dir: str = ".predmaint/recovery"
    partitions: int = 1
    snapshot_interval_s: float = 10.0
    backup_interval_s: float = 0.0


@dataclass(frozen=True)
class ModelSettings:
    """A detector and how each sensor's instance learns (``model`` is the champion, ``challengers`` the others).

    ``params`` holds keyword arguments per step of ``spec``; ``kind_params``
    overrides them per sensor kind, step by step and argument by argument, so
    one configuration carries the defaults of vibration feature vectors and of
    scalar kinds:

    >>> m = ModelSettings(spec="RobustDeviation", params={"RobustDeviation": {"reference_size": 512, "grace": 12}},
    ...                   kind_params={"vibration": {"RobustDeviation": {"reference_size": 256}}})
    >>> m.params_for("vibration"), m.params_for("temperature")
    ({'RobustDeviation': {'reference_size': 256, 'grace': 12}}, {'RobustDeviation': {'reference_size': 512, 'grace': 12}})
    >>> ModelSettings(kind_params={"vibraton": {}})
    Traceback (most recent call last):
    ...
    predmaint.errors.SettingsError: kind_params: 'vibraton' is not one of ('vibration', 'temperature', 'current', 'process')
    """

    #: Name written as the ``model`` tag of health points; defaults to the spec.
    name: str = ""
    #: ``RobustDeviation`` (calibrated, robust: the default), ``FeatureDeviation``,
    #: a River pipeline by names, e.g. ``"MinMaxScaler | HalfSpaceTrees"``, a
    #: scikit-learn estimator, ``joblib:PATH``, or a dotted path to a class
    #: with ``learn_one``/``score_one`` (see :mod:`predmaint.models.spec`).
    spec: str = "RobustDeviation"
    #: Keyword arguments per step name, e.g. ``{HalfSpaceTrees: {seed: 42}}``.
    params: dict = field(default_factory=dict)
    #: Per sensor kind (``vibration``, ``temperature``, ``current``, ``process``):
    #: step arguments that override ``params`` for sensors of that kind.
    kind_params: dict = field(default_factory=dict)
    #: ``sensor``: one model per sensor, fed that sensor's window features. ``asset``: one model
    #: per asset and window length, fed the joined window of the asset's sensors of the kinds
    #: ``asset_model.kinds`` (:class:`AssetModelSettings`; keys ``<sensor>.<feature>``, e.g. for
    #: ``PCADeviation``), its health written under the sensor ``asset`` (kind ``asset``). The
    #: champion (``model``) is of scope ``sensor``; ``asset_model.model`` is the joined window's.
    scope: Literal["sensor", "asset"] = "sensor"
    #: Windows a sensor only learns from before it may alert.
    baseline_windows: int = 24
    #: After the baseline, learn only from windows at least this healthy, so a
    #: growing fault is not learned as the new normal. Empty: the detector's
    #: own default, 70 (p = 10**-3.2, the rules' clear_at) for self-calibrated
    #: detectors (RobustDeviation, wrapped River detectors), 100 ("as normal as
    #: the baseline", d <= 1) for baseline-calibrated ones (FeatureDeviation,
    #: scikit-learn), as measured for each.
    learn_min_health: float | None = None
    #: Per sensor kind: a sensor silent for longer than this many seconds starts this model
    #: afresh, baseline included (kinds not listed never do). A machine stopped for days was
    #: often worked on; after the restart its vibration signature is a new normal.
    rebaseline_after_gap_s: dict = field(default_factory=dict)
    #: Per sensor kind: a sensor this model found healthy (health at least ``learn_min_health``) in
    #: its last window before a silence longer than this starts afresh if the model finds it
    #: unhealthy in any of the next ``restart_check_windows`` windows: it changed with the stop, not
    #: while running. One that looks as before, or was unhealthy when it stopped, keeps its model.
    rebaseline_healthy_after_gap_s: dict = field(default_factory=dict)
    #: Windows after such a stop in which a change starts the model afresh.
    restart_check_windows: int = 12
    #: Per sensor kind: ``{feature, bins, warmup_windows, below_health}``, a feature whose moves
    #: between ``bins`` bands of its range so far are watched for one never seen before
    #: (:class:`~predmaint.models.transition_novelty.TransitionNovelty`), reported in windows whose
    #: health is below ``below_health``: the alert metric ``novelty``. Kinds not listed are not watched.
    novelty: dict = field(default_factory=dict)
    #: Per sensor kind: ``{feature, days, min_days, repeats_at, stops_at}``, a feature also judged
    #: against the same time of day on the last ``days`` days while that daily profile explains at
    #: least ``repeats_at`` of its spread (:class:`~predmaint.models.daily_profile.DailyProfile`),
    #: combined with the detector's verdict by Bonferroni. Kinds not listed are not judged so.
    daily_profile: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.restart_check_windows, bool) or not isinstance(self.restart_check_windows, int) \
                or self.restart_check_windows < 1:
            raise SettingsError(f"restart_check_windows: {self.restart_check_windows!r} (windows: an integer >= 1)")
        for name in ("rebaseline_after_gap_s", "rebaseline_healthy_after_gap_s"):
            for kind, gap in getattr(self, name).items():
                if kind not in SENSOR_KINDS or not isinstance(gap, (int, float)) or isinstance(gap, bool) or gap <= 0:
                    raise SettingsError(f"{name}: {kind!r}: {gap!r} (a kind of {SENSOR_KINDS} -> seconds > 0)")
        if not isinstance(self.params, dict) or any(not isinstance(v, (dict, type(None)))
                                                     for v in self.params.values()):
            raise SettingsError("params: expected a mapping of step name -> mapping of arguments")
        for kind, steps in self.kind_params.items():
            if kind not in SENSOR_KINDS:
                raise SettingsError(f"kind_params: {kind!r} is not one of {SENSOR_KINDS}")
            if not isinstance(steps, dict):
                raise SettingsError(f"kind_params.{kind}: expected a mapping of step name -> mapping of arguments")
            for step, kwargs in steps.items():
                if not isinstance(kwargs, dict):
                    raise SettingsError(f"kind_params.{kind}.{step}: expected a mapping of arguments, got "
                                        f"{kwargs!r}")
        for kind, watch in self.novelty.items():
            _check_novelty(kind, watch)
        for kind, profile in self.daily_profile.items():
            _check_daily_profile(kind, profile)
        if isinstance(self.baseline_windows, bool) or self.baseline_windows < 0:
            raise SettingsError(f"baseline_windows: must be a whole number >= 0, got {self.baseline_windows!r}")
        if self.learn_min_health is not None and not 0.0 <= self.learn_min_health <= 100.0:
            raise SettingsError(f"learn_min_health: must be in [0, 100], got {self.learn_min_health!r}")

    @property
    def label(self) -> str:
        return self.name or self.spec.replace(" ", "")

    def params_for(self, kind: str | None) -> dict:
        """``params`` with ``kind_params[kind]`` merged in (``kind=None``: ``params`` as they are)."""
        merged = {step: dict(kwargs or {}) for step, kwargs in self.params.items()}
        for step, kwargs in self.kind_params.get(kind, {}).items() if kind else ():
            merged[step] = {**merged.get(step, {}), **kwargs}
        return merged


#: A novelty watch's keys other than ``feature``, and their values when left out (``model.novelty``).
NOVELTY_DEFAULTS = {"bins": 8, "warmup_windows": 100, "below_health": 80.0}


def _check_feature_watch(section: str, kind: str, watch, defaults: dict) -> None:
    """Fail naming ``<section>.<kind>`` unless ``watch`` is ``{feature: <name>, ...}`` with keys of ``defaults``."""
    if kind not in SENSOR_KINDS:
        raise SettingsError(f"{section}: {kind!r} is not one of {SENSOR_KINDS}")
    if not isinstance(watch, dict) or not isinstance(watch.get("feature"), str) or not watch["feature"]:
        shape = ", ".join(f"{k}: {v:g}" for k, v in defaults.items())
        raise SettingsError(f"{section}.{kind}: expected {{feature: <feature name>, {shape}}}, got {watch!r}")
    unknown = set(watch) - {"feature", *defaults}
    if unknown:
        raise SettingsError(f"{section}.{kind}: unknown keys {sorted(unknown)} (feature, {', '.join(defaults)})")


def _check_novelty(kind: str, watch) -> None:
    """Fail naming ``novelty.<kind>.<key>`` where a novelty watch is not what it must be."""
    _check_feature_watch("novelty", kind, watch, NOVELTY_DEFAULTS)
    health = watch.get("below_health", NOVELTY_DEFAULTS["below_health"])
    if isinstance(health, bool) or not isinstance(health, (int, float)) or not 0.0 < health <= 100.0:
        raise SettingsError(f"novelty.{kind}.below_health: {health!r} (a health in (0, 100])")
    for key, low, high in (("bins", 2, 64), ("warmup_windows", 1, None)):
        value = watch.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            bound = f"{low}-{high}" if high else f">= {low}"
            raise SettingsError(f"novelty.{kind}.{key}: {value!r} (a whole number {bound})")


#: A daily profile's keys other than ``feature``, and their values when left out (``model.daily_profile``).
DAILY_PROFILE_DEFAULTS = {"days": 3, "min_days": 3, "repeats_at": 0.7, "stops_at": 0.6}


def _check_daily_profile(kind: str, profile) -> None:
    """Fail naming ``daily_profile.<kind>.<key>`` where a daily profile is not what it must be."""
    _check_feature_watch("daily_profile", kind, profile, DAILY_PROFILE_DEFAULTS)
    merged = {**DAILY_PROFILE_DEFAULTS, **profile}
    for key in ("days", "min_days"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 14:
            raise SettingsError(f"daily_profile.{kind}.{key}: {value!r} (a whole number of days, 1-14)")
    if merged["min_days"] > merged["days"]:
        raise SettingsError(f"daily_profile.{kind}.min_days: {merged['min_days']!r} exceeds days ({merged['days']!r})")
    for key in ("repeats_at", "stops_at"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise SettingsError(f"daily_profile.{kind}.{key}: {value!r} (a share of the spread in (0, 1))")
    if merged["stops_at"] > merged["repeats_at"]:
        raise SettingsError(f"daily_profile.{kind}.stops_at: {merged['stops_at']!r} exceeds repeats_at "
                            f"({merged['repeats_at']!r}): the profile would stop as soon as it starts")


@dataclass(frozen=True)
class AssetModelSettings:
    """An asset's sensors of ``kinds`` scored together, when it has at least ``min_sensors`` of them.

    Such an asset gets a joined window per window length (sensor ``asset``, kind ``asset``);
    ``model``, of scope ``asset``, is its champion: for those sensors, its health is what the
    rules on ``health`` see (those whose ``kinds`` include ``asset``), and the sensors' own models
    still score and are written, as challengers. Assets with fewer such sensors, and every
    sensor of another kind, keep the sensor champion (``model`` of the settings).
    """

    #: Sensor kinds that join (the process values of one process move together).
    kinds: tuple[str, ...] = ("process",)
    #: Fewest sensors of ``kinds`` (of one window length) an asset needs for a joined window.
    min_sensors: int = 2
    #: The joined window's champion; none: challengers of scope ``asset`` score it, nothing alerts.
    model: ModelSettings | None = None

    def __post_init__(self):
        bad = [k for k in self.kinds if k not in SENSOR_KINDS]
        if bad or not self.kinds:
            raise SettingsError(f"kinds: {bad or 'none'} given; choose from {SENSOR_KINDS}")
        if isinstance(self.min_sensors, bool) or not isinstance(self.min_sensors, int) or self.min_sensors < 2:
            raise SettingsError(f"min_sensors: a joined window needs 2 sensors or more, got {self.min_sensors!r}")
        if self.model is not None and self.model.scope != "asset":
            raise SettingsError("model.scope: the joined window's champion is of scope asset")


@dataclass(frozen=True)
class AlertRuleSettings:
    """One alert rule; see :mod:`predmaint.models.alerting` for the lifecycle."""

    name: str = "health_low"
    #: ``health`` (the champion's), ``iso_zone``, any feature name, or ``silence``: the windows of
    #: event time since the sensor last sent anything (the asset's other sensors move time on).
    metric: str = "health"
    direction: str = "below"
    warning: float | None = None
    alarm: float | None = None
    critical: float | None = None
    #: Clear only on the healthy side of this value (hysteresis).
    clear_at: float = 70.0
    on_delay_windows: int = 3
    off_delay_windows: int = 3
    renotify_s: float = 0.0
    flood_limit_per_hour: int = 0
    #: Limit the rule to these sensor kinds / assets (empty: all).
    kinds: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    #: Rules whose open alert on the same asset takes this rule's raise in: one episode, one work
    #: order (novel_pattern in health_low_scalar's; :mod:`predmaint.models.alerting`).
    absorbed_by: tuple[str, ...] = ()
    #: A raise at the time of day (within 30 min) of raises of this rule on the same asset on at
    #: least this many of the 3 days before is a routine (a nightly batch, a shift start): recorded,
    #: not notified. 0: never (:mod:`predmaint.models.alerting`).
    routine_days: int = 0

    def __post_init__(self):
        if not 0 <= self.routine_days <= 3:
            raise SettingsError(f"routine_days: {self.routine_days!r} is not 0 (off) to 3 (of the last 3 days)")
        if self.name in self.absorbed_by:
            raise SettingsError(f"absorbed_by: rule {self.name!r} cannot be absorbed by itself")
        if self.direction not in ("below", "above"):
            raise SettingsError(f"direction: {self.direction!r} is not 'below' or 'above'")
        if self.metric == "silence" and self.direction != "above":
            raise SettingsError("direction: a silence rule counts windows without data: use 'above'")
        levels = [(n, getattr(self, n)) for n in ("warning", "alarm", "critical") if getattr(self, n) is not None]
        if not levels:
            raise SettingsError("give at least one of warning, alarm, critical")
        values = [v for _, v in levels]
        ordered = values == sorted(values, reverse=self.direction == "below")
        if not ordered:
            raise SettingsError(f"thresholds {dict(levels)} must get worse from warning to critical "
                                f"(direction {self.direction})")
        first = values[0]
        if (self.direction == "below" and self.clear_at < first) or \
                (self.direction == "above" and self.clear_at > first):
            raise SettingsError(f"clear_at {self.clear_at} must be on the healthy side of {levels[0][0]} "
                                f"{first} (hysteresis)")
        if self.on_delay_windows < 1 or self.off_delay_windows < 1:
            raise SettingsError("on_delay_windows and off_delay_windows must be >= 1")

    def applies_to(self, asset: str, kind: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (not self.assets or asset in self.assets)


@dataclass(frozen=True)
class SuppressionWindow:
    """A time range (ISO 8601 with zone) in which notifications are withheld; empty asset/rule: all."""

    start: str
    end: str
    asset: str = ""
    rule: str = ""
    reason: str = ""

    def __post_init__(self):
        if parse_utc(self.end, "end") <= parse_utc(self.start, "start"):
            raise SettingsError(f"end {self.end} is not after start {self.start}")

    @property
    def range_ns(self) -> tuple[int, int]:
        return (int(parse_utc(self.start, "start").timestamp() * 1e9),
                int(parse_utc(self.end, "end").timestamp() * 1e9))


@dataclass(frozen=True)
class SuppressionSettings:
    maintenance_windows: tuple[SuppressionWindow, ...] = ()
    shelves: tuple[SuppressionWindow, ...] = ()
    #: Shelves added with ``predmaint shelve`` (re-read by the pipeline when it changes).
    shelves_path: str = ".predmaint/shelves.yaml"


#: ``process`` is any scalar process value (pressure, flow, voltage, load, a temperature...).
SENSOR_KINDS = ("vibration", "temperature", "current", "process")
#: The sensor id and kind of an asset's joined window, which models of ``scope: asset`` score.
ASSET_SENSOR = "asset"


@dataclass(frozen=True)
class SensorSettings:
    sensor: str
    kind: str
    unit: str
    sample_rate_hz: float = 0.0
    axis: str = ""
    #: Temperature only: the channel of a 2-channel reading that holds ambient temperature.
    ambient_channel: int = -1
    #: This sensor's window length in seconds; 0: its kind's (``window.kind_length_s``).
    window_s: float = 0.0
    #: Vibration only: ``samples`` (waveforms, analysed here) or ``features`` (the sensor's own
    #: overall values, modelled as they come; see :mod:`predmaint.telemetry`).
    reports: Literal["samples", "features"] = "samples"

    def __post_init__(self):
        if self.kind not in SENSOR_KINDS:
            raise SettingsError(f"sensors[{self.sensor}].kind: {self.kind!r} is not one of {SENSOR_KINDS}")
        if self.reports not in ("samples", "features") or (self.reports == "features" and self.kind != "vibration"):
            raise SettingsError(f"sensors[{self.sensor}].reports: {self.reports!r} is not 'samples' or "
                                f"'features' (features: vibration sensors only)")
        if self.kind == "vibration" and self.reports == "samples" and self.sample_rate_hz <= 0:
            raise SettingsError(f"sensors[{self.sensor}].sample_rate_hz: vibration needs a sample rate > 0")


@dataclass(frozen=True)
class BearingSettings:
    """Bearing geometry (mm, degrees), or the defect frequencies as multiples of shaft speed."""

    n_elements: int = 0
    ball_diameter_mm: float = 0.0
    pitch_diameter_mm: float = 0.0
    contact_angle_deg: float = 0.0
    bpfo: float = 0.0
    bpfi: float = 0.0
    bsf: float = 0.0
    ftf: float = 0.0

    def __post_init__(self):
        geometry = (self.n_elements, self.ball_diameter_mm, self.pitch_diameter_mm)
        multipliers = (self.bpfo, self.bpfi, self.bsf, self.ftf)
        if all(v > 0 for v in geometry) == all(v > 0 for v in multipliers):
            raise SettingsError("bearing: give either n_elements, ball_diameter_mm and pitch_diameter_mm "
                                "(geometry) or bpfo, bpfi, bsf and ftf (multiples of shaft speed), not both")


@dataclass(frozen=True)
class AssetSettings:
    asset: str
    site: str
    line: str
    sensors: tuple[SensorSettings, ...]
    #: Shaft speed: fixed here, or ``rpm_source: message`` to use each vibration
    #: message's ``rpm`` field (variable-speed drives).
    rpm: float = 1480.0
    rpm_source: str = "config"
    iso_group: int = 2
    iso_foundation: str = "rigid"
    bearing: BearingSettings = BearingSettings(9, 7.94, 39.04, 0.0)
    #: Acceleration bands whose RMS is reported, Hz.
    bands_hz: tuple[tuple[float, float], ...] = ((10.0, 1000.0), (1000.0, 2500.0), (2500.0, 5000.0))
    #: Envelope demodulation band, Hz; empty chooses one per window automatically.
    envelope_band_hz: tuple[float, ...] = ()

    def sensor(self, sensor_id: str) -> SensorSettings | None:
        return next((s for s in self.sensors if s.sensor == sensor_id), None)

    def __post_init__(self):
        if self.rpm_source not in ("config", "message"):
            raise SettingsError(f"rpm_source: {self.rpm_source!r} is not 'config' or 'message'")
        if self.iso_group not in (1, 2):
            raise SettingsError(f"iso_group: {self.iso_group!r} is not 1 (300 kW-50 MW) or 2 (15-300 kW)")
        if self.iso_foundation not in ("rigid", "flexible"):
            raise SettingsError(f"iso_foundation: {self.iso_foundation!r} is not 'rigid' or 'flexible'")
        if self.envelope_band_hz and len(self.envelope_band_hz) != 2:
            raise SettingsError("envelope_band_hz: give [low_hz, high_hz]")
        if len({s.sensor for s in self.sensors}) != len(self.sensors):
            raise SettingsError("sensors: a sensor id appears twice")
        if any(s.sensor == ASSET_SENSOR for s in self.sensors):
            raise SettingsError(f"sensors: the id {ASSET_SENSOR!r} is reserved for the asset's joined window "
                                f"(models of scope asset); rename the sensor")


@dataclass(frozen=True)
class FaultSettings:
    asset: str
    kind: str = "outer_race"
    start_h: float = 3.0
    #: Hours for the defect to grow from onset to full severity.
    growth_h: float = 2.0
    severity: float = 1.0


@dataclass(frozen=True)
class SimulatorSettings:
    hours: float = 6.0
    start: str = "2026-01-01T00:00:00Z"
    vibration_interval_s: float = 60.0
    scalar_interval_s: float = 10.0
    samples_per_snapshot: int = 4096
    seed: int = 7
    faults: tuple[FaultSettings, ...] = ()
    #: Bad messages mixed in, to exercise the dead-letter path.
    invalid_messages: int = 3
    ground_truth_path: str = ".predmaint/ground_truth.json"
    #: ``batch``: ``hours`` of telemetry from ``start``, produced at once, then exit.
    #: ``realtime`` (or ``predmaint simulate --realtime``): stamped at wall-clock time and
    #: produced as that time comes, until stopped; ``start`` and ``hours`` are then ignored.
    mode: str = "batch"
    #: Realtime only: the simulation starts this many hours before now, and that history is
    #: produced at once, so the models are past their baseline (24 five-minute windows by
    #: default) when live data begins, and the faults' ``start_h`` count from that start
    #: (with the default 2.75 h and pump-03's fault at 3 h, it starts 15 minutes after start).
    realtime_backfill_h: float = 2.75

    def __post_init__(self):
        parse_utc(self.start, "start")
        if self.mode not in ("batch", "realtime"):
            raise SettingsError(f"mode: {self.mode!r} is not 'batch' or 'realtime'")
        if isinstance(self.realtime_backfill_h, bool) or not isinstance(self.realtime_backfill_h, (int, float)) \
                or self.realtime_backfill_h < 0:
            raise SettingsError(f"realtime_backfill_h: must be a number of hours >= 0, got "
                                f"{self.realtime_backfill_h!r}")

    @property
    def start_time(self) -> datetime:
        return parse_utc(self.start, "start")


@dataclass(frozen=True)
class MetricsSettings:
    """What ``predmaint run`` says about itself: a Prometheus endpoint and a status line.

    See :mod:`predmaint.connectors.metrics` for the figures.
    """

    #: TCP port of the ``/metrics`` endpoint (Prometheus text format); 0 turns it off.
    #: A cluster process listens on ``port`` + its process id (``-i``).
    port: int = 9477
    #: Interface to listen on; empty: every interface (a container's port must be reachable).
    host: str = ""
    #: Seconds between status lines on stderr (logger ``predmaint.status``); 0 turns them off.
    status_interval_s: float = 30.0

    def __post_init__(self):
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise SettingsError(f"port: must be a TCP port 0-65535 (0: off), got {self.port!r}")
        if isinstance(self.status_interval_s, bool) or not isinstance(self.status_interval_s, (int, float)) \
                or self.status_interval_s < 0:
            raise SettingsError(f"status_interval_s: must be a number of seconds >= 0 (0: off), got "
                                f"{self.status_interval_s!r}")


@dataclass(frozen=True)
class NotifySettings:
    """Alert delivery (``predmaint notify``): outbox file and targets.

    Each target is ``{name, kind: webhook|maintainx|upkeep|maximo, url,
    secret_env, timeout_s, max_attempts, backoff_base_s, backoff_max_s}``;
    see :class:`predmaint.settings.targets.Target`.
    """

    outbox_path: str = ".predmaint/outbox.sqlite"
    targets: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = KafkaSettings()
    window: WindowSettings = WindowSettings()
    storage: StorageSettings = StorageSettings()
    recovery: RecoverySettings = RecoverySettings()
    #: The champion: the only model whose health drives alerts (an asset's joined window: ``asset_model``).
    model: ModelSettings = ModelSettings()
    #: Challengers score the same windows side by side; their health is written, never alerted on.
    challengers: tuple[ModelSettings, ...] = ()
    #: An asset's process values scored together (``PCADeviation``), as their champion.
    asset_model: AssetModelSettings = AssetModelSettings()
    alert_rules: tuple[AlertRuleSettings, ...] = (AlertRuleSettings(alarm=40.0),)
    suppression: SuppressionSettings = SuppressionSettings()
    fleet: tuple[AssetSettings, ...] = ()
    simulator: SimulatorSettings = SimulatorSettings()
    notify: NotifySettings = NotifySettings()
    metrics: MetricsSettings = MetricsSettings()
    source: str = "<defaults>"

    def __post_init__(self):
        if self.model.scope != "sensor":
            raise SettingsError("model.scope: the champion scores each sensor; an asset's joined window has its "
                                "own champion, asset_model.model")

    def asset(self, asset_id: str) -> AssetSettings | None:
        return self._asset_index.get(asset_id)

    def sensor(self, asset_id: str, sensor_id: str) -> SensorSettings | None:
        a = self.asset(asset_id)
        return None if a is None else a.sensor(sensor_id)

    def window_length_s(self, asset_id: str, sensor_id: str) -> float:
        """The event-time window length of a registered sensor (see :class:`WindowSettings`)."""
        try:
            return self._window_length_index[(asset_id, sensor_id)]
        except KeyError:
            raise KeyError(f"sensor {sensor_id!r} of asset {asset_id!r} is not in the registry") from None

    # Asked for on every reading: indexed once (the settings are frozen; cached_property writes
    # the instance dict directly, so it works on a frozen dataclass and a replace() starts afresh).
    @functools.cached_property
    def _window_length_index(self) -> dict[tuple[str, str], float]:
        return {(a.asset, s.sensor): self.window.length_for(s.kind, s.window_s) for a in self.fleet for s in a.sensors}

    @functools.cached_property
    def _asset_index(self) -> dict[str, AssetSettings]:
        return {a.asset: a for a in self.fleet}

    @functools.cached_property
    def alert_rules_by_name(self) -> dict[str, AlertRuleSettings]:
        """The alert rules by name, in the order they advance each window: rules that others can absorb
        (``absorbed_by``) last, so that a raise in the same window finds the absorbing alert open."""
        return {r.name: r for r in sorted(self.alert_rules, key=lambda r: bool(r.absorbed_by))}

    def window_lengths(self) -> tuple[float, ...]:
        """Every distinct window length the fleet uses, shortest first (one windowing step each)."""
        return self._window_lengths

    # Asked for on every reading (the dedupe step's horizon): computed once, like the index above.
    @functools.cached_property
    def _window_lengths(self) -> tuple[float, ...]:
        lengths = {self.window.length_for(s.kind, s.window_s) for a in self.fleet for s in a.sensors}
        return tuple(sorted(lengths or {self.window.length_s}))

    def replace(self, **sections: Any) -> "Settings":
        return dataclasses.replace(self, **sections)
