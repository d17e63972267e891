"""The per-asset summary the demo prints, read back from storage, and the health figures it
shares with ``predmaint report`` and the Grafana dashboards.

* :func:`worst_health` is the one definition of an asset's health over time (the worst of its
  sensors at each window end); the summary table, the report and its plots use it.
* :func:`health_levels` takes the health bands (critical, alarm, warning, clearing, healthy)
  from the configured alert rule on ``health``, so the report's shading and the dashboards'
  threshold colours move with ``alert_rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, TypeGuard, cast

from predmaint.domain import Point, PointReader
from predmaint.features.diagnosis import diagnose
from predmaint.models.alerting import SEVERITIES
from predmaint.settings import AlertRuleSettings, Settings

ZONE_LETTERS = {1: "A", 2: "B", 3: "C", 4: "D"}
#: The rule whose levels are used when no alert rule watches ``health``: the one predmaint
#: applies when ``alert_rules`` is left out of the settings file altogether.
DEFAULT_HEALTH_RULE = Settings().alert_rules[0]
#: Band names from the worst to the healthy side of a rule.
BAND_LEVELS = ("critical", "alarm", "warning", "clearing", "healthy")


def is_number(v: object) -> TypeGuard[float]:
    """A real number that is not NaN (``bool`` is not a number here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def worst_health(points: Iterable[Point]) -> list[tuple[int, float]]:
    """An asset's health over time: at each window end, the lowest health over its sensors.

    ``points`` are one asset's ``health`` points of one model (the caller picks the asset and
    the champion model); baseline windows count with the health they were written with (100).
    Only the sensors with a point at a window end count for it, so a sensor that stopped
    sending does not hold the asset at its last value. This is the value the alert rules see
    (a rule watches the worst value over the asset's sensors, window by window), and what the
    fleet dashboard plots. Points without a numeric ``health`` are ignored.

    Returns ``(time_ns, health)`` sorted by time; :func:`latest_and_lowest` reduces it.

    Examples
    --------
    >>> def p(sensor, t, h):
    ...     return Point("health", {"sensor": sensor}, {"health": h}, t)
    >>> worst_health([p("a", 2, 90.0), p("b", 1, 100.0), p("b", 2, 40.0), p("a", 3, 80.0)])
    [(1, 100.0), (2, 40.0), (3, 80.0)]
    """
    by_time: dict[int, float] = {}
    for p in points:
        h = p.fields.get("health")
        if is_number(h):
            by_time[p.time_ns] = min(float(h), by_time.get(p.time_ns, float(h)))
    return sorted(by_time.items())


def latest_and_lowest(worst: list[tuple[int, float]]) -> tuple[float | None, float | None]:
    """The last and the lowest value of a :func:`worst_health` series (``None`` when empty).

    Examples
    --------
    >>> latest_and_lowest([(1, 100.0), (2, 40.0), (3, 80.0)]), latest_and_lowest([])
    ((80.0, 40.0), (None, None))
    """
    if not worst:
        return None, None
    return worst[-1][1], min(h for _, h in worst)


@dataclass(frozen=True)
class Band:
    """Values from ``lo`` (inclusive) up to ``hi`` fall in ``level`` (one of :data:`BAND_LEVELS`);
    ``None`` is unbounded."""

    lo: float | None
    hi: float | None
    level: str


def rule_bands(rule: AlertRuleSettings) -> list[Band]:
    """The value axis cut at a rule's thresholds, lowest values first.

    Beyond each severity's threshold lies that severity; between the first severity and
    ``clear_at`` an open alert does not clear yet ("clearing"); beyond ``clear_at`` is healthy.
    The rule counts a value exactly at a threshold as beyond it, so at each edge the band on
    the worse side is the rule's own verdict only to within that single value.

    Examples
    --------
    >>> rule = AlertRuleSettings(warning=50, alarm=30, critical=10, clear_at=70)
    >>> [(b.lo, b.hi, b.level) for b in rule_bands(rule)]  # doctest: +NORMALIZE_WHITESPACE
    [(None, 10, 'critical'), (10, 30, 'alarm'), (30, 50, 'warning'), (50, 70, 'clearing'),
     (70, None, 'healthy')]
    >>> up = AlertRuleSettings(metric="iso_zone", direction="above", warning=3, critical=4, clear_at=2.5)
    >>> [(b.lo, b.level) for b in rule_bands(up)]
    [(None, 'healthy'), (2.5, 'clearing'), (3, 'warning'), (4, 'critical')]
    """
    # Worst first: each level's value is the edge between its band and the next healthier one.
    levels = [(n, getattr(rule, n)) for n in reversed(SEVERITIES) if getattr(rule, n) is not None]
    levels.append(("clearing", rule.clear_at))
    names, edges = [n for n, _ in levels], [v for _, v in levels]
    if rule.direction == "below":
        names.append("healthy")
    else:
        names, edges = ["healthy", *reversed(names)], edges[::-1]
    bounds = [None, *edges, None]
    return [Band(lo, hi, n) for lo, hi, n in zip(bounds, bounds[1:], names)
            if lo is None or hi is None or lo < hi]


@dataclass(frozen=True)
class HealthLevels:
    """The alert rule whose thresholds colour health, and whether the settings configure it."""

    rule: AlertRuleSettings
    configured: bool

    @property
    def bands(self) -> list[Band]:
        return rule_bands(self.rule)

    @property
    def thresholds(self) -> tuple[float, ...]:
        """warning, alarm, critical (those set), then ``clear_at``; no value twice."""
        values = [getattr(self.rule, n) for n in SEVERITIES] + [self.rule.clear_at]
        return tuple(dict.fromkeys(v for v in values if v is not None))

    def describe(self) -> str:
        """Where the levels come from and what they are, for captions and panel descriptions.

        Examples
        --------
        >>> print(health_levels(Settings(alert_rules=())).describe())
        no alert rule watches health; predmaint's default rule health_low: alarm at or below 40, clears above 70
        """
        r = self.rule
        side, clear = ("at or below", "above") if r.direction == "below" else ("at or above", "below")
        levels = ", ".join(f"{n} {side} {getattr(r, n):g}" for n in SEVERITIES if getattr(r, n) is not None)
        text = f"rule {r.name}: {levels}, clears {clear} {r.clear_at:g}"
        return f"alert {text}" if self.configured else f"no alert rule watches health; predmaint's default {text}"


def health_levels(settings: Settings) -> HealthLevels:
    """The first of ``settings.alert_rules`` with ``metric: health``, else :data:`DEFAULT_HEALTH_RULE`.

    Examples
    --------
    >>> rule = AlertRuleSettings(name="low", warning=60.0, alarm=40.0, clear_at=80.0)
    >>> iso = AlertRuleSettings(name="iso", metric="iso_zone", direction="above", warning=3, clear_at=2.5)
    >>> health_levels(Settings(alert_rules=(iso, rule))).thresholds
    (60.0, 40.0, 80.0)
    >>> health_levels(Settings(alert_rules=(iso,))).configured
    False
    """
    rule = next((r for r in settings.alert_rules if r.metric == "health"), None)
    return HealthLevels(rule or DEFAULT_HEALTH_RULE, rule is not None)


@dataclass
class AssetSummary:
    asset: str
    #: Last and lowest value of the asset's :func:`worst_health` (champion model).
    health_last: float | None
    health_min: float | None
    velocity_rms_mm_s: float | None
    iso_zone: str
    #: The fault the last vibration window's spectrum points to, with its line and ratio
    #: (:func:`~predmaint.features.diagnosis.diagnose`); "-" when no line stands out of the noise.
    fault_line: str
    temp_c: float | None
    current_imbalance_pct: float | None
    alerts_raised: int
    first_alert_ns: int | None
    fault_start_ns: int | None


def summarise(settings: Settings, reader: PointReader, truth: dict) -> list[AssetSummary]:
    """One row per asset of the fleet; ``truth`` is the simulator's ground truth (fault starts)."""
    fault_start = {f["asset"]: f["start_ms"] * 1_000_000 for f in truth.get("faults", [])}
    out = []
    for asset in settings.fleet:
        health_last, health_min = latest_and_lowest(
            worst_health(reader.points("health", asset=asset.asset, model=settings.model.label)))
        feats = reader.points("features", asset=asset.asset)
        last: dict[str | None, dict[str, float]] = {}
        for p in feats:
            # Feature fields are all floats: pipelines.points.to_points writes them so.
            last[p.tags.get("kind")] = cast("dict[str, float]", p.fields)
        vib = last.get("vibration", {})
        named = diagnose(vib) if vib else None
        raised = [p for p in reader.points("alerts", asset=asset.asset) if p.fields.get("state") == "raised"]
        zone = vib.get("iso_zone")
        out.append(AssetSummary(
            asset=asset.asset,
            health_last=health_last,
            health_min=health_min,
            velocity_rms_mm_s=vib.get("velocity_rms_mm_s"),
            iso_zone=ZONE_LETTERS.get(round(zone), "?") if zone is not None else "?",
            fault_line=_fault_line(named),
            temp_c=last.get("temperature", {}).get("temp_level_c"),
            current_imbalance_pct=last.get("current", {}).get("current_imbalance_pct"),
            alerts_raised=len(raised),
            first_alert_ns=min((p.time_ns for p in raised), default=None),
            fault_start_ns=fault_start.get(asset.asset),
        ))
    return out


def _fault_line(named: dict | None) -> str:
    """``outer_race BPFO x40.0`` for a :func:`diagnose` item, ``-`` for none.

    Examples
    --------
    >>> _fault_line(diagnose({"env_bpfo_ratio": 40.0, "env_bpfi_ratio": 2.3}))
    'outer_race BPFO x40.0'
    >>> _fault_line(diagnose({"env_bpfo_ratio": 2.0, "env_bpfi_ratio": 2.3}))  # noise-level lines: no fault
    '-'
    """
    if named is None:
        return "-"
    line = str(named["feature"]).removeprefix("env_").removesuffix("_ratio").removeprefix("amp_")
    return f"{named['fault']} {line.upper()} x{named['ratio']:.1f}" if named.get("ratio") is not None \
        else f"{named['fault']} {line.upper()}"


def _t(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%m-%d %H:%M")


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_table(rows: list[AssetSummary]) -> str:
    header = ("asset", "health", "min", "vel mm/s", "ISO", "fault (line, ratio)", "temp C", "imbal %",
              "alerts", "fault start", "first alert")
    lines = [header]
    for r in rows:
        lines.append((r.asset, _f(r.health_last, ".0f"), _f(r.health_min, ".0f"),
                      _f(r.velocity_rms_mm_s, ".2f"), r.iso_zone, r.fault_line, _f(r.temp_c, ".1f"),
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
    lead = []
    for r in rows:
        if r.fault_start_ns is not None:
            assert r.first_alert_ns is not None  # otherwise it was a problem above
            lead.append(f"{r.asset} alerted {(r.first_alert_ns - r.fault_start_ns) / 3.6e12:.2f} h after fault onset")
    return True, "; ".join(lead) + "; no healthy asset alerted"
