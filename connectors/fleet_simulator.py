"""A simulated fleet: the telemetry a plant would send, with faults injected on a schedule.

Each asset in the registry gets, per its sensors:

* vibration: acceleration snapshots (m/s2) with shaft harmonics at 1x, 2x, 3x,
  broadband noise and, once an outer-race fault starts, an impulse train at
  the bearing's BPFO (with ~1 % slip jitter) ringing a structural resonance at
  3.2 kHz, its amplitude growing linearly over ``growth_h`` hours;
* temperature: a level per asset with slow wander, rising with fault severity;
* current: three phase RMS values around a nominal current, small imbalance.

Everything is a pure function of the settings and the seed, so two runs
produce the same bytes. :func:`ground_truth` records what was injected.

Realtime mode (``predmaint simulate --realtime``, ``simulator.mode: realtime``):
:func:`realtime_settings` starts the simulation ``realtime_backfill_h`` before now,
:func:`fleet_messages` with ``unbounded=True`` never ends, and :func:`paced` releases
each message when the wall clock reaches its event time.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

import numpy as np

from predmaint.features.bearing import bearing_multipliers
from predmaint.settings import AssetSettings, FaultSettings, Settings
from predmaint.telemetry import Reading, encode_reading

RESONANCE_HZ = 3200.0
RESONANCE_DECAY_S = 0.0012
#: Peak impulse acceleration (m/s2) of a fully grown defect.
FULL_DEFECT_ACCEL = 6.0


@dataclass(frozen=True)
class Message:
    """One message to produce: Kafka key and value."""

    key: bytes
    value: bytes
    ts_ms: int


def fault_severity(fault: FaultSettings | None, hours: float) -> float:
    """Severity in [0, severity] of ``fault`` at ``hours`` after the simulation start.

    Examples
    --------
    >>> f = FaultSettings(asset="p", start_h=2.0, growth_h=2.0, severity=1.0)
    >>> [fault_severity(f, h) for h in (1.0, 2.0, 3.0, 5.0)]
    [0.0, 0.0, 0.5, 1.0]
    """
    if fault is None or hours <= fault.start_h:
        return 0.0
    growth = max(fault.growth_h, 1e-9)
    return fault.severity * min(1.0, (hours - fault.start_h) / growth)


def vibration_snapshot(asset: AssetSettings, fs: float, n: int, severity: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Acceleration (m/s2) of one snapshot of ``n`` samples at ``fs`` Hz."""
    t = np.arange(n) / fs
    fr = asset.rpm / 60.0
    # 1x velocity ~1.2 mm/s peak: ISO 10816-3 zone A for a group-2 machine.
    v1 = 1.2e-3 * (1.0 + 0.1 * rng.standard_normal())
    x = np.zeros(n)
    for harmonic, rel in ((1, 1.0), (2, 0.4), (3, 0.2)):
        f = harmonic * fr
        x += rel * v1 * 2 * np.pi * f * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    x += 0.15 * rng.standard_normal(n)
    if severity > 0:
        bpfo = bearing_multipliers(asset.bearing).bpfo * fr
        ring_n = int(8 * RESONANCE_DECAY_S * fs)
        tr = np.arange(ring_n) / fs
        ring = np.exp(-tr / RESONANCE_DECAY_S) * np.sin(2 * np.pi * RESONANCE_HZ * tr)
        period = 1.0 / bpfo
        impulse_t = rng.uniform(0, period)
        while impulse_t < n / fs:
            i = int(impulse_t * fs)
            seg = ring[: n - i]
            x[i:i + seg.size] += FULL_DEFECT_ACCEL * severity * (1 + 0.1 * rng.standard_normal()) * seg
            impulse_t += period * (1 + 0.01 * rng.standard_normal())
    return x


def _asset_rng(seed: int, asset_index: int, sensor_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, asset_index, sensor_index])


def fleet_messages(settings: Settings, *, unbounded: bool = False) -> Iterator[Message]:
    """Every message of the simulated period, in event-time order (the whole fleet interleaved).

    ``unbounded=True`` ignores ``simulator.hours`` and never ends (the realtime
    mode paces it with :func:`paced`); the first hours are the same messages either way.
    """
    sim = settings.simulator
    start_ms = int(sim.start_time.timestamp() * 1000)
    faults = {f.asset: f for f in sim.faults}
    streams = []
    for ai, asset in enumerate(settings.fleet):
        for si, sensor in enumerate(asset.sensors):
            streams.append(_sensor_stream(settings, asset, sensor, ai, si, start_ms, faults.get(asset.asset),
                                          unbounded))
    # Interleave by time so a live consumer sees the fleet advance together.
    import heapq
    yield from heapq.merge(*streams, key=lambda m: m.ts_ms)


def realtime_settings(settings: Settings, now_ms: int) -> Settings:
    """``settings`` with the simulation started ``realtime_backfill_h`` before ``now_ms`` (whole seconds).

    Examples
    --------
    >>> from predmaint.settings import SimulatorSettings
    >>> s = Settings(simulator=SimulatorSettings(realtime_backfill_h=1.0))
    >>> realtime_settings(s, 1_767_232_800_500).simulator.start
    '2026-01-01T01:00:00Z'
    """
    sim = settings.simulator
    start_s = (now_ms - int(sim.realtime_backfill_h * 3_600_000)) // 1000
    start = datetime.fromtimestamp(start_s, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    return settings.replace(simulator=dataclasses.replace(sim, start=start, mode="realtime"))


def paced(messages: Iterable[Message], *, now_ms: Callable[[], int], stop: threading.Event) -> Iterator[Message]:
    """``messages`` (in event-time order), each yielded once the wall clock ``now_ms`` reaches its ``ts_ms``.

    Messages already due (the backfill) pass at once. Ends when ``stop`` is set,
    without yielding more; waits at most a second at a time, so a stop is seen at once.

    Examples
    --------
    >>> stop = threading.Event()
    >>> due = [Message(b"a", b"", 5), Message(b"a", b"", 9)]
    >>> [m.ts_ms for m in paced(due, now_ms=lambda: 10, stop=stop)]
    [5, 9]
    """
    for m in messages:
        while not stop.is_set():
            wait_ms = m.ts_ms - now_ms()
            if wait_ms <= 0:
                break
            stop.wait(min(wait_ms / 1000.0, 1.0))
        if stop.is_set():
            return
        yield m


def _sensor_stream(settings, asset, sensor, ai, si, start_ms, fault, unbounded=False) -> Iterator[Message]:
    sim = settings.simulator
    rng = _asset_rng(sim.seed, ai, si)
    key = asset.asset.encode()
    interval = sim.vibration_interval_s if sensor.kind == "vibration" else sim.scalar_interval_s
    steps = itertools.count() if unbounded else range(int(sim.hours * 3600 / interval))
    temp_level = 45.0 + 3.0 * ai
    nominal_a = 30.0 + 5.0 * ai
    wander = 0.0
    for k in steps:
        hours = k * interval / 3600.0
        ts_ms = start_ms + int(round(k * interval * 1000))
        sev = fault_severity(fault, hours)
        if sensor.kind == "vibration":
            samples = vibration_snapshot(asset, sensor.sample_rate_hz, sim.samples_per_snapshot, sev, rng)
            rate = sensor.sample_rate_hz
        elif sensor.kind == "temperature":
            wander = 0.98 * wander + 0.05 * rng.standard_normal()
            measured = temp_level + wander + 0.05 * rng.standard_normal() + 10.0 * sev
            ambient = 24.0 + 0.3 * wander
            samples = np.array([measured])
            if sensor.ambient_channel >= 0:
                samples = np.insert(samples, sensor.ambient_channel, ambient)
            rate = 1.0 / interval
        else:
            phases = nominal_a * (1 + np.array([0.0, 0.006, -0.004]) + 0.002 * rng.standard_normal(3))
            samples = phases * (1 + 0.05 * sev)
            rate = 1.0 / interval
        reading = Reading(asset.asset, sensor.sensor, sensor.kind, ts_ms, rate, sensor.unit,
                          samples.astype(np.float32), channels=samples.size if sensor.kind != "vibration" else 1,
                          rpm=asset.rpm if sensor.kind == "vibration" and asset.rpm_source == "message" else None)
        encoding = "f32le-b64" if sensor.kind == "vibration" else "json"
        yield Message(key, encode_reading(reading, encoding), ts_ms)


def invalid_messages(settings: Settings) -> list[Message]:
    """Messages that break the contract in different ways, for the dead-letter path."""
    sim = settings.simulator
    ts_ms = int(sim.start_time.timestamp() * 1000) + 1000
    asset = settings.fleet[0]
    good = {"v": 1, "asset": asset.asset, "sensor": asset.sensors[0].sensor, "kind": "temperature",
            "ts_ms": ts_ms, "sample_rate_hz": 0.1, "unit": "degC", "encoding": "json", "samples": [50.0]}
    variants = [
        b"this is not json",
        json.dumps({**good, "v": 99}).encode(),
        json.dumps({**good, "asset": "ghost-asset"}).encode(),
        json.dumps({**good, "samples": "not-an-array"}).encode(),
        json.dumps({**good, "ts_ms": "yesterday"}).encode(),
    ]
    out = []
    for i in range(sim.invalid_messages):
        value = variants[i % len(variants)]
        key = b"ghost-asset" if b"ghost-asset" in value else asset.asset.encode()
        out.append(Message(key, value, ts_ms))
    return out


def ground_truth(settings: Settings) -> dict:
    """What the simulator injected: per fault, the asset, kind and when it started."""
    sim = settings.simulator
    start = sim.start_time
    faults = []
    for f in sim.faults:
        onset = start.timestamp() + f.start_h * 3600
        faults.append({
            "asset": f.asset, "kind": f.kind, "severity": f.severity,
            "start": datetime.fromtimestamp(onset, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "start_ms": int(onset * 1000),
            "full_severity_ms": int((onset + f.growth_h * 3600) * 1000),
        })
    return {"simulation_start": sim.start, "hours": sim.hours, "faults": faults,
            "healthy_assets": sorted(a.asset for a in settings.fleet if a.asset not in {f.asset for f in sim.faults})}
