"""The per-asset summary the demo prints, read back from storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from connectors.storage import PointReader
from features.vibration import strongest_defect_line
from pipelines.settings import Settings

ZONE_LETTERS = {1: "A", 2: "B", 3: "C", 4: "D"}


@dataclass
class AssetSummary:
    asset: str
    health_last: float | None
    health_min: float | None
    velocity_rms_mm_s: float | None
    iso_zone: str
    defect_line: str
    temp_c: float | None
    current_imbalance_pct: float | None
    alerts_raised: int
    first_alert_ns: int | None
    fault_start_ns: int | None


def summarise(settings: Settings, reader: PointReader, truth: dict) -> list[AssetSummary]:
    fault_start = {f["asset"]: f["start_ms"] * 1_000_000 for f in truth.get("faults", [])}
    out = []
    for asset in settings.fleet:
        health = reader.points("health", asset=asset.asset, model=settings.model.label)
        monitoring = [p for p in health if p.fields.get("phase") == "monitoring"]
        last_by_sensor: dict[str, float] = {}
        for p in monitoring:
            last_by_sensor[p.tags["sensor"]] = p.fields["health"]
        feats = reader.points("features", asset=asset.asset)
        last = {}
        for p in feats:
            last[p.tags.get("kind")] = p.fields
        vib = last.get("vibration", {})
        line = strongest_defect_line(vib) if vib else None
        raised = [p for p in reader.points("alerts", asset=asset.asset) if p.fields.get("state") == "raised"]
        zone = vib.get("iso_zone")
        out.append(AssetSummary(
            asset=asset.asset,
            health_last=min(last_by_sensor.values()) if last_by_sensor else None,
            health_min=min((p.fields["health"] for p in monitoring), default=None),
            velocity_rms_mm_s=vib.get("velocity_rms_mm_s"),
            iso_zone=ZONE_LETTERS.get(round(zone), "?") if zone is not None else "?",
            defect_line=f"{line[0].upper()} x{line[1]:.1f}" if line else "-",
            temp_c=last.get("temperature", {}).get("temp_level_c"),
            current_imbalance_pct=last.get("current", {}).get("current_imbalance_pct"),
            alerts_raised=len(raised),
            first_alert_ns=min((p.time_ns for p in raised), default=None),
            fault_start_ns=fault_start.get(asset.asset),
        ))
    return out


def _t(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%m-%d %H:%M")


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_table(rows: list[AssetSummary]) -> str:
    header = ("asset", "health", "min", "vel mm/s", "ISO", "defect line (ratio)", "temp C", "imbal %",
              "alerts", "fault start", "first alert")
    lines = [header]
    for r in rows:
        lines.append((r.asset, _f(r.health_last, ".0f"), _f(r.health_min, ".0f"),
                      _f(r.velocity_rms_mm_s, ".2f"), r.iso_zone, r.defect_line, _f(r.temp_c, ".1f"),
                      _f(r.current_imbalance_pct, ".2f"), str(r.alerts_raised), _t(r.fault_start_ns),
                      _t(r.first_alert_ns)))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in lines)


def verdict(rows: list[AssetSummary]) -> tuple[bool, str]:
    """Did every faulty asset alert after its fault started, and no healthy asset alert?"""
    problems = []
    for r in rows:
        if r.fault_start_ns is None and r.alerts_raised:
            problems.append(f"{r.asset}: healthy but raised {r.alerts_raised} alert(s)")
        if r.fault_start_ns is not None:
            if r.first_alert_ns is None:
                problems.append(f"{r.asset}: fault injected but no alert")
            elif r.first_alert_ns < r.fault_start_ns:
                problems.append(f"{r.asset}: alert before the injected fault")
    if problems:
        return False, "; ".join(problems)
    lead = [f"{r.asset} alerted {(r.first_alert_ns - r.fault_start_ns) / 3.6e12:.2f} h after fault onset"
            for r in rows if r.fault_start_ns is not None]
    return True, "; ".join(lead) + "; no healthy asset alerted"
