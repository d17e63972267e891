"""The flow's last pure step: scored windows, alert events and dead letters as storage points and messages.

Points follow the storage schema of the README (``features``, ``health``,
``alerts``, ``deadletters``); :func:`alert_message` is the alert event as
published on the alerts topic. The sinks decide where they go.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zlib
from datetime import datetime, timezone

import river

from predmaint.domain import DeadLetter, Point
from predmaint.features.diagnosis import named_fault
from predmaint.models.alerting import AlertEvent
from predmaint.pipelines.steps import ScoredAssetWindow
from predmaint.settings import ASSET_SENSOR, Settings
from predmaint.telemetry import (
    MAX_FIELD_CHARS,
    MAX_REASON_CHARS,
    MAX_TS_MS,
    clip,
)


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
        if w.kind != ASSET_SENSOR:  # a joined window's features are its sensors', written with them
            points.append(Point("features", {**tags, "kind": w.kind}, fields, w.end_ns))
        for name, a in sw.by_model.items():
            points.append(Point("health", {**tags, "model": name},
                                {"health": a.health, "raw_score": a.raw_score, "phase": a.phase,
                                 "learned": a.learned, "champion": name == sw.champion,
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
    if e.recovered_ns:
        fields["recovered_at"] = _iso(e.recovered_ns)
    return Point("alerts", {**asset_tags, "sensor": e.sensor, "rule": e.rule, "severity": e.severity},
                 fields, e.time_ns)


def alert_message(settings: Settings, e: AlertEvent, health: float | None) -> tuple[bytes, bytes]:
    """Step ``alert_messages``: the alert event as published on the alerts topic."""
    asset = settings.asset(e.asset)
    assert asset is not None  # decode dead-letters readings of assets not in the registry
    doc = {
        "v": 1, "event_id": e.event_id, "alert_id": e.alert_id, "state": e.state, "severity": e.severity,
        "rule": e.rule, "site": asset.site, "line": asset.line, "asset": e.asset, "sensor": e.sensor,
        "time": _iso(e.time_ns),
        "health": health, "value": e.value, "fault": named_fault(e.explanation), "explanation": e.explanation,
        "model": _champion_of(settings, e.sensor), "notify": e.notify, "suppressed_by": e.suppressed_by,
    }
    if e.recovered_ns:  # a cleared event: when the value was back, before the off-delay confirmed it
        doc["recovered_at"] = _iso(e.recovered_ns)
    return e.asset.encode(), json.dumps(doc, separators=(",", ":")).encode()


def _champion_of(settings: Settings, sensor: str) -> str:
    """The label of the champion whose health an alert on ``sensor`` watched (joined windows: ``asset_model``)."""
    joint = sensor == ASSET_SENSOR or sensor.startswith(f"{ASSET_SENSOR}@")
    return settings.asset_model.model.label if joint and settings.asset_model.model else settings.model.label


def _iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


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
