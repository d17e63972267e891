"""The flow's first steps: decode a message against the registry, then one reading's features.

Step ``decode`` checks the envelope (:mod:`predmaint.telemetry`) and the asset
registry and turns anything else into a dead letter; step
``snapshot_features`` computes what one reading contributes to its window (a
vibration snapshot's features, or a scalar's values). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

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
        reading = decode_reading(msg.value, msg.key, broker_ts_ms=broker_ms,
                                 source=Source(msg.topic, msg.partition, msg.offset, time_ns, msg.value))
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
    sends = "features" if reading.features is not None else "samples"
    if reading.kind == "vibration" and sends != sensor.reports:
        return DeadLetter(f"message carries {sends} but the registry's sensor reports {sensor.reports}",
                          "decode", reading.asset, reading.sensor, **where)
    if sends == "samples" and reading.kind == "vibration" and sensor.sample_rate_hz and \
            abs(reading.sample_rate_hz - sensor.sample_rate_hz) > 1e-6 * sensor.sample_rate_hz:
        return DeadLetter(f"sample rate {reading.sample_rate_hz} Hz differs from the registry's "
                          f"{sensor.sample_rate_hz} Hz", "decode", reading.asset, reading.sensor, **where)
    if sends == "samples" and reading.kind == "vibration" and asset.rpm_source == "message" and reading.rpm is None:
        return DeadLetter("asset takes shaft speed from messages (rpm_source: message) but 'rpm' is missing",
                          "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "temperature" and reading.channels != (2 if sensor.ambient_channel >= 0 else 1):
        return DeadLetter(f"temperature needs {2 if sensor.ambient_channel >= 0 else 1} channel(s) "
                          f"(ambient_channel={sensor.ambient_channel}), got {reading.channels}",
                          "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "current" and reading.channels != 3:
        return DeadLetter(f"current needs 3 phase channels, got {reading.channels}", "decode",
                          reading.asset, reading.sensor, **where)
    if sends == "samples" and reading.kind == "vibration" and reading.channels != 1:
        # One accelerometer axis per sensor (its registered `axis`); the features take one channel.
        return DeadLetter(f"vibration needs 1 channel (one axis per registered sensor), got {reading.channels}",
                          "decode", reading.asset, reading.sensor, **where)
    if reading.kind == "process" and (reading.channels != 1 or reading.unit != sensor.unit):
        return DeadLetter(f"process value needs 1 channel in the registered unit {sensor.unit!r}, got "
                          f"{reading.channels} channel(s) in {reading.unit!r}", "decode",
                          reading.asset, reading.sensor, **where)
    return reading


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
    if reading.features is not None:  # a sensor's own overall values (checked by decode)
        return Snapshot(reading.asset, reading.sensor, reading.kind, reading.ts_ms, features=dict(reading.features))
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


#: At most this many recent readings remembered per sensor for :func:`dedupe` (bounds the state
#: whatever the data: a 1 Hz sensor in a 5-minute window with 2 minutes of lateness needs 420).
DEDUPE_MAX_PER_SENSOR = 1024


@dataclass
class SeenReadings:
    """Step ``dedupe``'s state per asset: each sensor's recent readings, ``(ts_ms, digest) -> offset``.

    Bounded twice: entries older than the asset's newest event time minus
    :func:`dedupe_horizon_ms` are forgotten (a copy that old falls in a closed
    window and is dead-lettered as late anyway), and at most
    :data:`DEDUPE_MAX_PER_SENSOR` are kept per sensor.
    """

    sensors: dict[str, OrderedDict] = field(default_factory=dict)
    newest_ms: int = 0


def dedupe_horizon_ms(settings: Settings) -> int:
    """How far back in event time a duplicate can still reach an open window: longest window + lateness."""
    return int((max(settings.window_lengths()) + settings.window.allowed_lateness_s) * 1000)


def reading_digest(r: Reading) -> bytes:
    """A digest of everything a reading contributes (not its position in the topic): equal for exact copies.

    Computed from the decoded reading, so a copy re-serialised differently
    (other JSON spacing, another sample encoding of the same values) is still a copy.
    It runs on every reading, so it is kept cheap (``make bench``'s profile, 2026-12-04:
    8 % of the pipeline's time was this digest): SHA-256, which OpenSSL computes with the
    CPU's SHA instructions at twice BLAKE2b's speed here, over the samples' own buffer
    (no copy) and a header formatted without ``repr`` of a tuple or ``str`` of a dtype.
    The first 12 bytes are kept: only readings of one sensor at one event time are ever
    compared. (A copy that straddles an upgrade from a version with another digest is
    not recognised: the dedupe state holds minutes of event time.)

    Examples
    --------
    >>> import numpy as np
    >>> a = Reading("p", "t", "temperature", 1, 0.1, "degC", np.array([61.5, 24.0], dtype=np.float32), 2)
    >>> reading_digest(a) == reading_digest(dataclasses.replace(a))
    True
    >>> reading_digest(a) == reading_digest(dataclasses.replace(a, samples=np.array([61.6, 24.0], np.float32)))
    False
    >>> reading_digest(a) == reading_digest(dataclasses.replace(a, samples=a.samples.astype(np.float64)))
    False
    """
    h = hashlib.sha256(f"{r.sensor}\x1f{r.kind}\x1f{r.ts_ms}\x1f{r.sample_rate_hz!r}\x1f{r.unit}\x1f{r.channels}"
                       f"\x1f{r.rpm!r}\x1f{r.samples.dtype.str}\x1f{r.samples.shape}\x1f{r.features!r}".encode())
    h.update(np.ascontiguousarray(r.samples).data)
    return h.digest()[:12]


def dedupe(settings: Settings, state: SeenReadings | None,
           reading: Reading) -> tuple[SeenReadings, Reading | DeadLetter]:
    """Step ``dedupe`` (keyed by asset): an exact copy of a recent reading becomes a ``duplicate`` dead letter.

    A producer that retries, or a topic mirrored twice, delivers the same
    reading again; counted twice it would double the window's readings and
    change every later health value. Same sensor, same event time and same
    content is a copy; a different value at the same time is kept (a
    correction is the producer's to make). A replay after recovery resumes
    with the state of its snapshot, so it is not judged a copy of itself.
    """
    state = state if state is not None else SeenReadings()
    seen = state.sensors.get(reading.sensor)
    if seen is None:  # not setdefault: its default would be built for every reading
        seen = state.sensors[reading.sensor] = OrderedDict()
    key = (reading.ts_ms, reading_digest(reading))
    src = reading.source or Source(time_ns=reading.ts_ms * 1_000_000)
    first = seen.get(key)
    if first is not None or key in seen:
        where = f" (first at offset {first})" if first is not None else ""
        return state, DeadLetter(f"duplicate: the same reading of sensor {reading.sensor!r} at ts_ms "
                                 f"{reading.ts_ms} arrived before{where}", "dedupe", reading.asset, reading.sensor,
                                 src.topic, src.partition, src.offset, src.original, src.time_ns)
    seen[key] = src.offset
    state.newest_ms = max(state.newest_ms, reading.ts_ms)
    oldest = state.newest_ms - dedupe_horizon_ms(settings)
    # Insertion order is nearly event-time order (a partition keeps an asset's readings in order).
    while seen and (len(seen) > DEDUPE_MAX_PER_SENSOR or next(iter(seen))[0] < oldest):
        seen.popitem(last=False)
    return state, reading
