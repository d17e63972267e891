"""The functions and state the dataflow's operators call.

Each function is one step of :mod:`predmaint.pipelines.dataflow`, named after it. They
hold no I/O: decoding uses the wire contract, features come from
:mod:`features`, scoring from :mod:`models`; what to write where is decided by
the sinks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import river

from predmaint.domain import DeadLetter, Point
from predmaint.features.aggregate import FeatureAccumulator
from predmaint.features.bearing import bearing_multipliers
from predmaint.features.current import current_features
from predmaint.features.diagnosis import diagnose, named_fault
from predmaint.features.process import process_features
from predmaint.features.temperature import temperature_features
from predmaint.features.vibration import vibration_features
from predmaint.models.alerting import AlertEvent, AlertState
from predmaint.models.health import iso_capped
from predmaint.models.sensor_model import Assessment, SensorModel
from predmaint.settings import AssetSettings, ModelSettings, Settings
from predmaint.telemetry import (
    MAX_FIELD_CHARS,
    MAX_REASON_CHARS,
    MAX_TS_MS,
    InvalidMessage,
    Reading,
    Source,
    clip,
    decode_reading,
)


@dataclass(frozen=True)
class Snapshot:
    """What one reading contributes to its sensor's window."""

    asset: str
    sensor: str
    kind: str
    ts_ms: int
    features: dict | None = None  # vibration: per-snapshot features
    values: tuple = ()  # scalar kinds: the readings themselves

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000.0, tz=timezone.utc)


@dataclass
class SensorWindow:
    """Accumulates one sensor's snapshots within one event-time window."""

    kind: str = ""
    asset: str = ""
    sensor: str = ""
    vibration: FeatureAccumulator = field(default_factory=FeatureAccumulator)
    times_s: list = field(default_factory=list)
    values: list = field(default_factory=list)


@dataclass
class AssetWindow:
    """One asset's window: every sensor's accumulator, so all close together, in order."""

    sensors: dict[str, SensorWindow] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowFeatures:
    asset: str
    sensor: str
    kind: str
    end_ns: int
    features: dict


@dataclass(frozen=True)
class AssetWindowFeatures:
    asset: str
    end_ns: int
    windows: tuple[WindowFeatures, ...]  # sorted by sensor
    dead: tuple["DeadLetter", ...] = ()
    #: The window length of these sensors (an asset's sensors of other lengths close in other windows).
    length_s: float = 0.0


@dataclass(frozen=True)
class ScoredWindow:
    """One sensor's window with every model's assessment."""

    window: WindowFeatures
    assessment: Assessment  # the champion's
    by_model: dict[str, Assessment]


@dataclass(frozen=True)
class ScoredAssetWindow:
    asset: str
    end_ns: int
    sensors: tuple[ScoredWindow, ...]
    events: tuple[AlertEvent, ...]
    #: Champion health of sensors of this asset whose windows have another length (latest known).
    other_health: dict[str, float] = field(default_factory=dict)

    def health_of(self, sensor: str) -> float | None:
        """The champion health of ``sensor`` at this window (latest known for sensors of other lengths).

        ``None`` when the sensor has no window here and none recently (it fell silent).
        """
        own = next((s.assessment.health for s in self.sensors if s.window.sensor == sensor), None)
        return own if own is not None else self.other_health.get(sensor)


def decode(settings: Settings, msg) -> Reading | DeadLetter:
    """Step ``decode``: parse the envelope and check it against the asset registry.

    Never raises on data: whatever the message holds, the result is a reading or a dead letter.
    """
    time_ns = _broker_time_ns(msg)
    where = dict(topic=msg.topic, partition=msg.partition, offset=msg.offset, original=msg.value,
                 time_ns=time_ns)
    broker_ms = time_ns // 1_000_000 or None  # 0: the broker gave no usable timestamp
    try:
        reading = decode_reading(msg.value, msg.key, broker_ts_ms=broker_ms)
    except InvalidMessage as exc:
        return DeadLetter(exc.reason, "decode", exc.asset, exc.sensor, **where)
    asset = settings.asset(reading.asset)
    if asset is None:
        return DeadLetter(f"asset {reading.asset!r} is not in the registry", "decode",
                          reading.asset, reading.sensor, **where)
    sensor = asset.sensor(reading.sensor)
    if sensor is None:
        return DeadLetter(f"sensor {reading.sensor!r} is not registered for asset {reading.asset!r}",
                          "decode", reading.asset, reading.sensor, **where)
    if sensor.kind != reading.kind:
        return DeadLetter(f"kind {reading.kind!r} differs from the registry's {sensor.kind!r}",
                          "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "vibration" and sensor.sample_rate_hz and \
            abs(reading.sample_rate_hz - sensor.sample_rate_hz) > 1e-6 * sensor.sample_rate_hz:
        return DeadLetter(f"sample rate {reading.sample_rate_hz} Hz differs from the registry's "
                          f"{sensor.sample_rate_hz} Hz", "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "vibration" and asset.rpm_source == "message" and reading.rpm is None:
        return DeadLetter("asset takes shaft speed from messages (rpm_source: message) but 'rpm' is missing",
                          "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "temperature" and reading.channels != (2 if sensor.ambient_channel >= 0 else 1):
        return DeadLetter(f"temperature needs {2 if sensor.ambient_channel >= 0 else 1} channel(s) "
                          f"(ambient_channel={sensor.ambient_channel}), got {reading.channels}",
                          "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "current" and reading.channels != 3:
        return DeadLetter(f"current needs 3 phase channels, got {reading.channels}", "decode",
                          reading.asset, reading.sensor, **where)
    if reading.kind == "vibration" and reading.channels != 1:
        # One accelerometer axis per sensor (its registered `axis`); the features take one channel.
        return DeadLetter(f"vibration needs 1 channel (one axis per registered sensor), got {reading.channels}",
                          "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "process" and (reading.channels != 1 or reading.unit != sensor.unit):
        return DeadLetter(f"process value needs 1 channel in the registered unit {sensor.unit!r}, got "
                          f"{reading.channels} channel(s) in {reading.unit!r}", "decode",
                          reading.asset, reading.sensor, **where)
    return dataclasses.replace(reading, source=Source(msg.topic, msg.partition, msg.offset, time_ns, msg.value))


def _broker_time_ns(msg) -> int:
    """The broker timestamp of ``msg`` in nanoseconds; 0 when it has none or one InfluxDB cannot store.

    A producer may set any create time, so the value is bounded like event time.
    :func:`dead_letter_point` makes the dead letters' points unique from it, the partition and the offset.
    """
    ts = getattr(msg, "timestamp", None)
    ms = ts[1] if isinstance(ts, tuple) and len(ts) == 2 and isinstance(ts[1], int) else 0
    return ms * 1_000_000 if 0 < ms <= MAX_TS_MS else 0


def vibration_parameters(asset: AssetSettings, rpm: float | None = None) -> dict:
    """Keyword arguments of :func:`predmaint.features.vibration.vibration_features` for ``asset``."""
    return dict(shaft_hz=(rpm or asset.rpm) / 60.0, bearing=bearing_multipliers(asset.bearing),
                iso_group=asset.iso_group, iso_foundation=asset.iso_foundation, bands_hz=asset.bands_hz,
                envelope_band_hz=tuple(asset.envelope_band_hz) or None)


def check_registry(settings: Settings) -> None:
    """Fail at start-up, not at the first window, if a model or a vibration sensor is misconfigured."""
    from predmaint.models.spec import ModelSpecError
    from predmaint.settings import SettingsError

    for where, m in model_fields(settings):
        try:
            new_model(m, where)
        except ModelSpecError as exc:
            raise SettingsError(f"{settings.source}: {exc}") from None

    probe = np.random.default_rng(0).standard_normal(4096)
    checked: set[str] = set()
    for asset in settings.fleet:
        for sensor in asset.sensors:
            if sensor.kind != "vibration":
                continue
            params = vibration_parameters(asset)
            # A fleet has few distinct machine designs: probe each configuration once.
            signature = repr((sensor.sample_rate_hz, sorted(params.items())))
            if signature in checked:
                continue
            try:
                vibration_features(probe, sensor.sample_rate_hz, **params)
            except ValueError as exc:
                raise SettingsError(f"{settings.source}: fleet: asset {asset.asset} sensor {sensor.sensor}: "
                                    f"{exc}") from None
            checked.add(signature)


def snapshot_features(settings: Settings, reading: Reading) -> Snapshot | DeadLetter:
    """Step ``snapshot_features``: per-reading work done before windowing (the FFTs)."""
    if reading.kind == "vibration":
        asset = settings.asset(reading.asset)
        assert asset is not None  # decode dead-letters readings of assets not in the registry
        try:
            feats = vibration_features(reading.samples, reading.sample_rate_hz,
                                       **vibration_parameters(asset, reading.rpm))
            # NaN is a defined answer (a flat-lined signal's shape); infinity is an overflow.
            infinite = sorted(k for k, v in feats.items() if math.isinf(v))
            if infinite:
                raise ValueError(f"not finite (overflow): {', '.join(infinite)}")
        except (ValueError, ArithmeticError) as exc:
            src = reading.source or Source(time_ns=reading.ts_ms * 1_000_000)
            return DeadLetter(f"vibration features: {exc}", "snapshot_features", reading.asset, reading.sensor,
                              src.topic, src.partition, src.offset, src.original, src.time_ns)
        return Snapshot(reading.asset, reading.sensor, reading.kind, reading.ts_ms, features=feats)
    values = reading.samples.reshape(-1, reading.channels)
    return Snapshot(reading.asset, reading.sensor, reading.kind, reading.ts_ms,
                    values=tuple(map(tuple, values.tolist())))


def window_new() -> AssetWindow:
    return AssetWindow()


def window_add(acc: AssetWindow, snap: Snapshot) -> AssetWindow:
    sensor_window_add(acc.sensors.setdefault(snap.sensor, SensorWindow()), snap)
    return acc


def window_merge(a: AssetWindow, b: AssetWindow) -> AssetWindow:
    for sensor, w in b.sensors.items():
        if sensor in a.sensors:
            sensor_window_merge(a.sensors[sensor], w)
        else:
            a.sensors[sensor] = w
    return a


def sensor_window_add(acc: SensorWindow, snap: Snapshot) -> SensorWindow:
    acc.kind, acc.asset, acc.sensor = snap.kind, snap.asset, snap.sensor
    if snap.kind == "vibration":
        assert snap.features is not None  # snapshot_features sets them for every vibration snapshot
        acc.vibration.add(snap.features)
    else:
        for row in snap.values:
            acc.times_s.append(snap.ts_ms / 1000.0)
            acc.values.append(row)
    return acc


def sensor_window_merge(a: SensorWindow, b: SensorWindow) -> SensorWindow:
    a.kind, a.asset, a.sensor = a.kind or b.kind, a.asset or b.asset, a.sensor or b.sensor
    a.vibration.merge(b.vibration)
    a.times_s.extend(b.times_s)
    a.values.extend(b.values)
    return a


def window_end_ns(window_id: int, length_s: float) -> int:
    return int(round((window_id + 1) * length_s * 1e9))


def has_window_length(settings: Settings, length_s: float, snap: Snapshot) -> bool:
    """Whether ``snap``'s sensor uses windows of ``length_s`` (one windowing step per length)."""
    return settings.window_length_s(snap.asset, snap.sensor) == length_s


def window_features(settings: Settings, length_s: float, item: tuple[int, AssetWindow]) -> AssetWindowFeatures:
    """Step ``window_features``: each sensor's features in the closed window, stamped at the window end."""
    window_id, acc = item
    results = [sensor_window_features(settings, length_s, (window_id, acc.sensors[s])) for s in sorted(acc.sensors)]
    windows = tuple(r for r in results if isinstance(r, WindowFeatures))
    dead = tuple(r for r in results if isinstance(r, DeadLetter))
    asset = next(iter(acc.sensors.values())).asset
    return AssetWindowFeatures(asset, window_end_ns(window_id, length_s), windows, dead, length_s)


def sensor_window_features(settings: Settings, length_s: float,
                           item: tuple[int, SensorWindow]) -> WindowFeatures | DeadLetter:
    """One sensor's window features, or a dead letter saying why they cannot be computed."""
    window_id, acc = item
    try:
        return _window_features(settings, window_end_ns(window_id, length_s), acc)
    except ValueError as exc:
        end_ns = window_end_ns(window_id, length_s)
        return DeadLetter(f"window features: {exc}", "window_features", acc.asset, acc.sensor, time_ns=end_ns)


def _window_features(settings: Settings, end_ns: int, acc: SensorWindow) -> WindowFeatures:
    if acc.kind == "vibration":
        feats = acc.vibration.result()
    elif acc.kind == "temperature":
        sensor = settings.sensor(acc.asset, acc.sensor)
        assert sensor is not None  # decode dead-letters readings of sensors not in the registry
        ambient_channel = sensor.ambient_channel
        feats = temperature_window_features(acc.times_s, acc.values, ambient_channel)
        feats["readings"] = float(len(acc.values))
    elif acc.kind == "process":
        feats = process_features(np.asarray(acc.values, dtype=float)[:, 0])
        feats["readings"] = float(len(acc.values))
    else:
        feats = current_features(np.asarray(acc.values, dtype=float))
        feats["readings"] = float(len(acc.values))
    return WindowFeatures(acc.asset, acc.sensor, acc.kind, end_ns, feats)


def temperature_window_features(times_s, values, ambient_channel: int = -1) -> dict[str, float]:
    """A temperature window's features; ``values`` rows are readings, ``ambient_channel`` < 0: none."""
    values = np.asarray(values, dtype=float).reshape(len(times_s), -1)
    measured = values[:, 1 - ambient_channel] if ambient_channel >= 0 else values[:, 0]
    ambient = values[:, ambient_channel] if ambient_channel >= 0 else None
    if len(measured) < 2:
        # One reading has a level but no trend.
        feats = {"temp_level_c": float(measured[0])}
        if ambient is not None:
            feats["temp_rise_over_ambient_c"] = float(measured[0] - ambient[0])
        return feats
    return temperature_features(np.asarray(times_s, dtype=float), measured,
                                ambient_c=None if ambient is None else float(ambient.mean()))


#: Window bookkeeping fields that describe the window, not the machine.
NOT_MODELLED = ("snapshots", "readings", "env_band_lo_hz", "env_band_hi_hz", "iso_zone")


@dataclass(frozen=True)
class RuleValue:
    """A rule's latest value for one sensor, remembered for the asset's windows of other lengths."""

    value: float
    explanation: list
    health: float
    end_ns: int
    length_s: float


@dataclass
class AssetState:
    """Everything the ``assess`` step remembers per asset: each sensor's models, each rule's alert state.

    ``recent`` holds, per rule and sensor, the latest value from windows of
    each length, so that a rule sees the asset's worst sensor even when its
    sensors close windows of different lengths at different times.
    """

    models: dict[str, dict[str, SensorModel]]  # sensor -> model label -> model (champion first)
    alerts: dict[str, AlertState]
    recent: dict[str, dict[str, RuleValue]] = field(default_factory=dict)  # rule -> sensor -> value


def new_model(m: ModelSettings, where: str = "model", baseline_windows: int | None = None,
              kind: str | None = None, sensor: str = "") -> SensorModel:
    """A fresh sensor model as ``m`` configures it for a sensor of ``kind`` (``where`` names it in errors).

    ``kind`` selects ``m.kind_params[kind]`` over ``m.params``. ``kind=None``
    (start-up checks, evaluations) uses ``m.params`` alone and also builds every
    ``kind_params`` entry once, so a bad one fails at start-up naming
    ``<where>.kind_params.<kind>``. ``sensor`` names the sensor in the model's warnings.
    """
    bw = m.baseline_windows if baseline_windows is None else baseline_windows

    def build(k: str | None) -> SensorModel:
        overrides = bool(k and m.kind_params.get(k))
        return SensorModel(m.spec, m.params_for(k), bw, m.learn_min_health, field=f"{where}.spec", sensor=sensor,
                           params_field=f"{where}.kind_params.{k}" if overrides else None)

    model = build(kind)
    if kind is None:
        for k in m.kind_params:
            build(k)
    return model


def model_fields(settings: Settings) -> list[tuple[str, ModelSettings]]:
    """The champion and the challengers, each with the config field that defines it."""
    return [("model", settings.model)] + [(f"challengers[{i}]", m) for i, m in enumerate(settings.challengers)]


def _new_models(settings: Settings, kind: str | None = None, sensor: str = "") -> dict[str, SensorModel]:
    return {m.label: new_model(m, where, kind=kind, sensor=sensor) for where, m in model_fields(settings)}


def assess_window(model: SensorModel, features: dict[str, float]) -> Assessment:
    """Score (then learn) one window's features; in monitoring, health is capped by the ISO zone."""
    a = model.assess({k: v for k, v in features.items() if k not in NOT_MODELLED})
    if a.phase == "monitoring":
        a = dataclasses.replace(a, health=iso_capped(a.health, features.get("iso_zone")))
    return a


def rule_value(rule, w: WindowFeatures, champion: Assessment) -> float | None:
    """The value ``rule`` watches in this window, or None if the rule does not apply here."""
    if not rule.applies_to(w.asset, w.kind):
        return None
    if rule.metric == "health":
        return champion.health if champion.phase == "monitoring" else None
    value = w.features.get(rule.metric)
    return value if value is not None and math.isfinite(value) else None


def score_sensor(settings: Settings, models: dict[str, SensorModel], w: WindowFeatures) -> ScoredWindow:
    """Every model scores (then learns) one sensor's window."""
    assessments = {name: assess_window(model, w.features) for name, model in models.items()}
    return ScoredWindow(w, assessments[settings.model.label], assessments)


def explained(s: ScoredWindow) -> list:
    """The champion's explanation of a window, led by the fault its spectrum points to (vibration)."""
    explanation = list(s.assessment.explanation)
    if s.window.kind == "vibration":
        fault = diagnose(s.window.features, explanation)
        if fault is not None:
            explanation.insert(0, fault)
    return explanation


def assess(settings: Settings, suppressions, state: AssetState | None, aw: AssetWindowFeatures):
    """Step ``assess``: score every sensor of the asset, then advance each alert rule once.

    A rule sees the worst of its metric over the asset's sensors (lowest for
    ``below``, highest for ``above``), so one alert per asset and rule is open.
    """
    if state is None:
        state = AssetState({}, {r.name: AlertState(r) for r in settings.alert_rules})
    if not hasattr(state, "recent"):  # a snapshot from before windows of several lengths
        state.recent = {}
    scored = []
    for w in aw.windows:
        models = state.models.get(w.sensor)
        if models is None:  # built only for a sensor's first window (setdefault would build every time)
            models = state.models[w.sensor] = _new_models(settings, w.kind, f"{w.asset}/{w.sensor}")
        scored.append(score_sensor(settings, models, w))
    # Once per window, whatever the number of rules that look at it.
    explanations = {s.window.sensor: explained(s) for s in scored}
    events: list[AlertEvent] = []
    other_health: dict[str, float] = {}
    for rule_state in state.alerts.values():
        rule = rule_state.rule
        recent = state.recent.setdefault(rule.name, {})
        candidates = []
        for s in scored:
            v = rule_value(rule, s.window, s.assessment)
            if v is None:
                recent.pop(s.window.sensor, None)
                continue
            explanation = explanations[s.window.sensor]
            candidates.append((v, s.window.sensor, explanation, s.assessment.health))
            recent[s.window.sensor] = RuleValue(v, explanation, s.assessment.health, aw.end_ns, aw.length_s)
        for sensor, r in list(recent.items()):
            if r.length_s == aw.length_s:
                continue  # a sensor of this length that is absent from this window has no value now
            if r.end_ns + 2 * r.length_s * 1e9 < aw.end_ns:
                del recent[sensor]  # too old to stand for the sensor's present state
                continue
            candidates.append((r.value, sensor, r.explanation, r.health))
            other_health[sensor] = r.health
        if not candidates:
            continue
        pick = min if rule.direction == "below" else max
        value, sensor, explanation, _ = pick(candidates, key=lambda c: c[0])
        suppressed_by = suppressions.reason(aw.asset, rule.name, aw.end_ns) if suppressions else ""
        events.extend(rule_state.update(aw.asset, sensor, aw.end_ns, value, explanation, suppressed_by))
    return state, ScoredAssetWindow(aw.asset, aw.end_ns, tuple(scored), tuple(events), other_health)


def to_points(settings: Settings, s: ScoredAssetWindow, now_ns: int | None = None) -> list[Point]:
    """Step ``to_points``: features, health per model and alert events as InfluxDB points."""
    asset = settings.asset(s.asset)
    assert asset is not None  # decode dead-letters readings of assets not in the registry
    base = {"site": asset.site, "line": asset.line, "asset": s.asset}
    # How long after the window closed in event time it was processed: lag for
    # live data; for replays it measures how old the data is.
    lag_s = ((time.time_ns() if now_ns is None else now_ns) - s.end_ns) / 1e9
    points = []
    for sw in s.sensors:
        w = sw.window
        tags = {**base, "sensor": w.sensor}
        fields: dict[str, float | int | bool | str] = {k: float(v) for k, v in w.features.items()
                                                       if math.isfinite(v)}
        points.append(Point("features", {**tags, "kind": w.kind}, fields, w.end_ns))
        for name, a in sw.by_model.items():
            points.append(Point("health", {**tags, "model": name},
                                {"health": a.health, "raw_score": a.raw_score, "phase": a.phase,
                                 "learned": a.learned, "champion": name == settings.model.label,
                                 "model_version": f"river-{river.__version__}", "lag_s": lag_s}, w.end_ns))
    points += [alert_point(base, e, s.health_of(e.sensor)) for e in s.events]
    # InfluxDB refuses a NaN or infinite field (400) and a point without fields: such a value is
    # left out and the rest of its point kept (a health point without `health`: health unknown).
    out = []
    for p in points:
        finite = {k: v for k, v in p.fields.items() if not (isinstance(v, float) and not math.isfinite(v))}
        if finite:
            out.append(p if len(finite) == len(p.fields) else dataclasses.replace(p, fields=finite))
    return out


def alert_point(asset_tags: dict[str, str], e: AlertEvent, health: float | None) -> Point:
    """An alert event as an ``alerts`` point; ``asset_tags`` are site, line and asset.

    ``health`` is left out when the sensor has none at this moment (it fell silent).
    """
    fields: dict[str, float | int | bool | str] = {
        "alert_id": e.alert_id, "event_id": e.event_id, "state": e.state, "value": e.value,
        "notify": e.notify, "suppressed_by": e.suppressed_by, "fault": named_fault(e.explanation),
        "explanation": json.dumps(e.explanation)}
    if health is not None:
        fields["health"] = health
    return Point("alerts", {**asset_tags, "sensor": e.sensor, "rule": e.rule, "severity": e.severity},
                 fields, e.time_ns)


def alert_message(settings: Settings, e: AlertEvent, health: float | None) -> tuple[bytes, bytes]:
    """Step ``alert_messages``: the alert event as published on the alerts topic."""
    asset = settings.asset(e.asset)
    assert asset is not None  # decode dead-letters readings of assets not in the registry
    doc = {
        "v": 1, "event_id": e.event_id, "alert_id": e.alert_id, "state": e.state, "severity": e.severity,
        "rule": e.rule, "site": asset.site, "line": asset.line, "asset": e.asset, "sensor": e.sensor,
        "time": datetime.fromtimestamp(e.time_ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
        "health": health, "value": e.value, "fault": named_fault(e.explanation), "explanation": e.explanation,
        "model": settings.model.label, "notify": e.notify, "suppressed_by": e.suppressed_by,
    }
    return e.asset.encode(), json.dumps(doc, separators=(",", ":")).encode()


def dead_letter_point(d: DeadLetter) -> Point:
    """A dead letter as a ``deadletters`` point: unique, deterministic and bounded in size.

    Tags: ``step`` and, when known, the source ``partition`` (a small number, low-cardinality).
    Time: a dead letter of a message (it has an offset) is stamped at its broker time's second
    plus the offset modulo 10⁹ as nanoseconds (the offset alone when the broker gave no time),
    so two messages of one partition share a point only if 10⁹ offsets arrive within one
    second; one without (window features, late data) keeps its millisecond and takes a hash of
    asset and sensor as its nanoseconds, so the sensors of one window do not overwrite each
    other. Strings are cut with a marker (:func:`predmaint.telemetry.clip`).
    """
    latest = MAX_TS_MS * 1_000_000
    t = min(max(d.time_ns, 0), latest)
    if d.offset is not None:
        offset = max(d.offset, 0)
        if t >= 1_000_000_000:
            t = t - t % 1_000_000_000 + offset % 1_000_000_000
        else:  # no broker time (Kafka errors, a producer without timestamps)
            t = min(offset, latest)
    else:
        t += zlib.crc32(f"{d.asset}\x00{d.sensor}".encode("utf-8", "replace")) % 1_000_000 - t % 1_000_000
    tags = {"step": clip(d.step)}
    if d.partition is not None:
        tags["partition"] = str(d.partition)
    return Point("deadletters", tags,
                 {"count": 1, "reason": clip(d.reason, MAX_REASON_CHARS),
                  "asset": clip(d.asset or "", MAX_FIELD_CHARS), "sensor": clip(d.sensor or "", MAX_FIELD_CHARS),
                  "offset": d.offset if d.offset is not None else -1}, t)
