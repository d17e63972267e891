"""The flow's windowing steps: an asset's snapshots folded into event-time windows, and each closed window's features.

Each function is one step of :mod:`predmaint.pipelines.dataflow`, named after
it; one windowing step runs per distinct window length (every step sees all
of an asset's snapshots, so a silent sensor's windows still close). What a
window is then worth is :mod:`predmaint.pipelines.steps` (``assess``). No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from predmaint.domain import DeadLetter
from predmaint.features.aggregate import FeatureAccumulator
from predmaint.features.current import current_features
from predmaint.features.process import process_features
from predmaint.features.temperature import temperature_features
from predmaint.pipelines.intake import Snapshot
from predmaint.settings import Settings


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
    #: Set by every snapshot of the asset, also those of sensors of other window lengths, which
    #: only advance this window's event time (see :func:`window_add_for`): it may hold no sensor.
    asset: str = ""


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


def window_new() -> AssetWindow:
    return AssetWindow()


def window_add(acc: AssetWindow, snap: Snapshot) -> AssetWindow:
    sensor_window_add(acc.sensors.setdefault(snap.sensor, SensorWindow()), snap)
    return acc


def window_add_for(settings: Settings, length_s: float, acc: AssetWindow, snap: Snapshot) -> AssetWindow:
    """Fold ``snap`` into the asset's window of ``length_s`` if its sensor uses that length.

    Every windowing step sees every snapshot of the asset: one of another
    length adds nothing but moves the step's event time on, so the windows of
    a sensor that fell silent still close (on the asset's other sensors'
    time, ``window.allowed_lateness_s`` after their end) and its silence is seen.
    """
    acc.asset = snap.asset
    if has_window_length(settings, length_s, snap):
        window_add(acc, snap)
    return acc


def window_merge(a: AssetWindow, b: AssetWindow) -> AssetWindow:
    a.asset = a.asset or getattr(b, "asset", "")
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
    # A window may hold no sensor of its length (they are silent): then only the asset is known.
    asset = getattr(acc, "asset", "") or next((w.asset for w in acc.sensors.values()), "")
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
