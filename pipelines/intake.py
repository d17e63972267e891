"""The flow's first steps: decode a message against the registry, then one reading's features.

Step ``decode`` checks the envelope (:mod:`predmaint.telemetry`) and the asset
registry and turns anything else into a dead letter; step
``snapshot_features`` computes what one reading contributes to its window (a
vibration snapshot's features, or a scalar's values). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from predmaint.domain import DeadLetter
from predmaint.features.bearing import bearing_multipliers
from predmaint.features.vibration import vibration_features
from predmaint.settings import AssetSettings, Settings
from predmaint.telemetry import (
    MAX_TS_MS,
    InvalidMessage,
    Reading,
    Source,
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
