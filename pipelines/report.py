"""``predmaint report``: a static HTML page with PNG plots, read back from storage.

For people without Grafana at hand (the demo, an e-mail attachment, a CI
artefact): one fleet plot (each asset's health, the worst of its sensors,
from the champion model), then per asset its health per sensor and the key
features an analyst looks at first — velocity RMS against the asset's
ISO 10816-3 zone boundaries, the envelope ratio of every bearing defect line
(BPFO, BPFI, BSF, 2xBSF, FTF: whichever line rises shows, with the ratio above
which a fault is named), bearing temperature — with alert events marked
(red: raised, escalated or re-notified; green: cleared). Each sensor's
baseline (learning, health 100 by definition) is shaded grey, times are UTC
with the year, and the alert table says which fault was named and why. Health plots are
shaded with the bands of the configured health alert rule
(:func:`predmaint.pipelines.summary.health_levels`); an asset's health is the worst of
its sensors per window (:func:`predmaint.pipelines.summary.worst_health`).

It reads through any :class:`predmaint.connectors.storage.PointReader`: InfluxDB or the
embedded SQLite store, whichever ``storage.kind`` selects. Plots use
matplotlib's Agg renderer (no display needed).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from predmaint.domain import Point, PointReader
from predmaint.errors import EmptyStoreError
from predmaint.features.diagnosis import DEFECT_RATIO_MIN, LINE_FAULTS
from predmaint.features.iso10816 import ZONE_BOUNDARIES_MM_S
from predmaint.pipelines.summary import HealthLevels, health_levels, is_number, latest_and_lowest, worst_health
from predmaint.settings import AssetSettings, Settings

if TYPE_CHECKING:
    from matplotlib.typing import ColorType

#: Alert states that mean "open" (marked red); ``cleared`` is marked green.
OPEN_STATES = ("raised", "escalated", "renotified")
#: Features plotted per asset: (field, sensor kind, axis label).
KEY_FEATURES = (
    ("velocity_rms_mm_s", "vibration", "velocity RMS, mm/s"),
    ("envelope", "vibration", "envelope line / floor"),
    ("temp_level_c", "temperature", "temperature, °C"),
)
#: The fields of the envelope panel: every defect line :mod:`predmaint.features.diagnosis` can name.
ENVELOPE_FIELDS = tuple(f"env_{line}_ratio" for line in LINE_FAULTS)
BASELINE_COLOUR = "#8e8e8e"
ZONE_COLOURS = ("#73bf69", "#fade2a", "#ff9830", "#f2495c")  # A, B, C, D
#: Shading of the health rule's bands (:data:`predmaint.pipelines.summary.BAND_LEVELS`); healthy is not shaded.
BAND_COLOURS = {"critical": "#c4162a", "alarm": "#f2495c", "warning": "#ff9830", "clearing": "#fade2a"}
HEALTH_YLIM = (-5.0, 105.0)


@dataclass
class AssetData:
    """What the report shows for one asset, read from storage."""

    asset: AssetSettings
    #: sensor -> [(time_ns, health)] of the champion model.
    health: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    #: feature field -> sensor -> [(time_ns, value)].
    features: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    alerts: list[Point] = field(default_factory=list)
    #: The asset's :func:`predmaint.pipelines.summary.worst_health` (champion model).
    worst: list[tuple[int, float]] = field(default_factory=list)
    #: sensor -> (first, last) time_ns of its baseline-phase health points.
    baseline: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def raised(self) -> list[Point]:
        return [p for p in self.alerts if p.fields.get("state") == "raised"]


def load(settings: Settings, reader: PointReader) -> list[AssetData]:
    """Read health (champion model), key features and alert events for every asset in the fleet."""
    data = {a.asset: AssetData(a) for a in settings.fleet}
    health: dict[str, list[Point]] = {a: [] for a in data}
    for p in reader.points("health", model=settings.model.label):
        d = data.get(p.tags.get("asset", ""))
        if d is not None and is_number(p.fields.get("health")):
            sensor = p.tags.get("sensor", "")
            d.health.setdefault(sensor, []).append((p.time_ns, float(p.fields["health"])))
            health[d.asset.asset].append(p)
            if p.fields.get("phase") == "baseline":
                lo, hi = d.baseline.get(sensor, (p.time_ns, p.time_ns))
                d.baseline[sensor] = (min(lo, p.time_ns), max(hi, p.time_ns))
    wanted = {name for name, _, _ in KEY_FEATURES} | set(ENVELOPE_FIELDS)
    for p in reader.points("features"):
        d = data.get(p.tags.get("asset", ""))
        if d is None:
            continue
        for name in wanted & p.fields.keys():
            if is_number(p.fields[name]):
                d.features.setdefault(name, {}).setdefault(p.tags.get("sensor", ""), []).append(
                    (p.time_ns, float(p.fields[name])))
    for p in reader.points("alerts"):
        d = data.get(p.tags.get("asset", ""))
        if d is not None:
            d.alerts.append(p)
    for d in data.values():
        d.worst = worst_health(health[d.asset.asset])
        for series in (*d.health.values(), *(s for f in d.features.values() for s in f.values())):
            series.sort()
        d.alerts.sort(key=lambda p: p.time_ns)
    return list(data.values())


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


def _fmt(ns: int | None) -> str:
    return "-" if ns is None else _dt(ns).strftime("%Y-%m-%d %H:%M")


def safe_name(asset_id: str) -> str:
    """A file-name-safe form of an asset id.

    Examples
    --------
    >>> safe_name("pump 01/a")
    'pump_01_a'
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", asset_id)


def _mark_alerts(ax, alerts: list[Point], colour: ColorType | None = None) -> None:
    """Dashed vertical lines at alert events: red when opened, green when cleared, or all ``colour``."""
    for p in alerts:
        state = p.fields.get("state")
        mark = colour or ("#c4162a" if state in OPEN_STATES else "#37872d" if state == "cleared" else None)
        if mark:
            ax.axvline(_dt(p.time_ns), color=mark, linestyle="--", linewidth=1, alpha=0.8)


def health_spans(levels: HealthLevels) -> list[tuple[float, float, str]]:
    """``(low, high, colour)`` of each shaded health band, clipped to the plot's health axis.

    Examples
    --------
    >>> from predmaint.settings import AlertRuleSettings
    >>> health_spans(HealthLevels(AlertRuleSettings(warning=50.0, alarm=30.0, clear_at=70.0), True))
    [(-5.0, 30.0, '#f2495c'), (30.0, 50.0, '#ff9830'), (50.0, 70.0, '#fade2a')]
    """
    bottom, top = HEALTH_YLIM
    spans = []
    for b in levels.bands:
        lo = bottom if b.lo is None else max(float(b.lo), bottom)
        hi = top if b.hi is None else min(float(b.hi), top)
        if b.level in BAND_COLOURS and lo < hi:
            spans.append((lo, hi, BAND_COLOURS[b.level]))
    return spans


def _utc_time_axis(ax) -> None:
    """Dates with the year, in UTC, said on the axis (matplotlib's default shows neither)."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=timezone.utc)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=timezone.utc, show_offset=True))
    ax.set_xlabel("time (UTC)")


def _health_axes(ax, levels: HealthLevels) -> None:
    ax.set_ylim(*HEALTH_YLIM)
    ax.set_ylabel("health")
    for lo, hi, colour in health_spans(levels):
        ax.axhspan(lo, hi, color=colour, alpha=0.08, linewidth=0)
    ax.grid(True, alpha=0.3)


def plot_fleet(assets: list[AssetData], path: Path, levels: HealthLevels) -> Path:
    from matplotlib.figure import Figure

    # Fixed margins: constrained layout would cost a third of the rendering time.
    fig = Figure(figsize=(11, 4), dpi=100)
    fig.subplots_adjust(left=0.06, right=0.98, top=0.92, bottom=0.15)
    ax = fig.add_subplot()
    for d in assets:
        if d.worst:
            # matplotlib plots datetimes through its units registry, but its stubs accept only array-likes.
            (line,) = ax.plot([_dt(t) for t, _ in d.worst], [h for _, h in d.worst],  # type: ignore[arg-type]
                              label=d.asset.asset, linewidth=1.5)
            # In the asset's colour, so a mark says which asset raised it.
            _mark_alerts(ax, d.raised, line.get_color())
    _health_axes(ax, levels)
    _utc_time_axis(ax)
    ax.set_title("Fleet health (worst sensor per asset, champion model); dashed: alert raised, in the asset's colour")
    if any(d.health for d in assets):
        ax.legend(loc="lower left", ncols=min(6, len(assets)), fontsize="small")
    fig.savefig(path)
    return path


def plot_asset(d: AssetData, path: Path, levels: HealthLevels) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 2.4 * (1 + len(KEY_FEATURES))), dpi=100)
    fig.subplots_adjust(left=0.07, right=0.97, top=0.96, bottom=0.06, hspace=0.1)
    axes = fig.subplots(1 + len(KEY_FEATURES), 1, sharex=True)
    ax = axes[0]
    for sensor, series in sorted(d.health.items()):
        ax.plot([_dt(t) for t, _ in series], [h for _, h in series], label=sensor, linewidth=1.5)
    if d.baseline:
        # Health is 100 by definition while a model learns its baseline: shaded, so it is not read as "fine".
        lo, hi = min(b[0] for b in d.baseline.values()), max(b[1] for b in d.baseline.values())
        ax.axvspan(_dt(lo), _dt(hi), color=BASELINE_COLOUR, alpha=0.18, linewidth=0, label="baseline (learning)")
    _health_axes(ax, levels)
    ax.set_title(f"{d.asset.asset} ({d.asset.site} / {d.asset.line}): health per sensor and key features; "
                 "dashed: alert raised (red), cleared (green)")
    if d.health:
        ax.legend(loc="lower left", fontsize="small")
    for ax, (name, _, label) in zip(axes[1:], KEY_FEATURES):
        if name == "envelope":
            _envelope_lines(ax, d)
        else:
            for sensor, series in sorted(d.features.get(name, {}).items()):
                ax.plot([_dt(t) for t, _ in series], [v for _, v in series], label=sensor, linewidth=1.2)
        if name == "velocity_rms_mm_s":
            _zone_bands(ax, d.asset)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    for ax in axes:
        _mark_alerts(ax, d.alerts)
    _utc_time_axis(axes[-1])
    fig.savefig(path)
    return path


def _envelope_lines(ax, d: AssetData) -> None:
    """Every defect line's envelope ratio, per vibration sensor, and the ratio above which a fault is named."""
    plotted = False
    for name in ENVELOPE_FIELDS:
        line = name.removeprefix("env_").removesuffix("_ratio").upper()
        for sensor, series in sorted(d.features.get(name, {}).items()):
            ax.plot([_dt(t) for t, _ in series], [v for _, v in series], label=f"{sensor} {line}", linewidth=1.1)
            plotted = True
    if plotted:
        ax.axhline(DEFECT_RATIO_MIN, color="#555555", linestyle=":", linewidth=1,
                   label=f"fault named above {DEFECT_RATIO_MIN:g} x")
        ax.legend(loc="upper left", fontsize="x-small", ncols=3)


def _zone_bands(ax, asset: AssetSettings) -> None:
    """Shade ISO 10816-3 zones A-D with the boundaries of the asset's machine class."""
    bounds = ZONE_BOUNDARIES_MM_S.get((asset.iso_group, asset.iso_foundation))
    if not bounds:
        return
    top = max(ax.get_ylim()[1], bounds[-1] * 1.25)
    edges = (0.0, *bounds, top)
    for (lo, hi), colour, zone in zip(zip(edges, edges[1:]), ZONE_COLOURS, "ABCD"):
        ax.axhspan(lo, hi, color=colour, alpha=0.12, linewidth=0)
        ax.text(1.005, (lo + hi) / 2, zone, transform=ax.get_yaxis_transform(), va="center", fontsize="small")
    ax.set_ylim(0, top)


def render_report(settings: Settings, reader: PointReader, out_dir: str | Path) -> Path:
    """Write ``index.html`` and its PNG plots to ``out_dir``; return the HTML file's path.

    Parameters
    ----------
    settings
        Supplies the fleet (assets, their ISO class) and the champion model's name.
    reader
        Any point reader: :func:`predmaint.connectors.storage.open_reader` of ``settings.storage``.
    out_dir
        Created if missing; earlier report files there are overwritten.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    assets = load(settings, reader)
    if not any(d.health for d in assets):
        s = settings.storage
        where = (f"the SQLite store {s.sqlite_path}" if s.kind == "sqlite"
                 else f"InfluxDB at {s.url} ({s.database if s.kind == 'influx-v1' else s.bucket})")
        raise EmptyStoreError(f"report: {where} holds no health points of model {settings.model.label!r} for "
                              f"any asset of {settings.source}; run the pipeline first (predmaint run), or "
                              f"point storage (or --sqlite) at the store it wrote")
    levels = health_levels(settings)
    fleet_png = plot_fleet(assets, out / "fleet_health.png", levels)
    sections, rows = [], []
    for d in assets:
        png = plot_asset(d, out / f"asset_{safe_name(d.asset.asset)}.png", levels)
        latest, lowest = latest_and_lowest(d.worst)
        raised = d.raised
        rows.append(
            f"<tr><td><a href='#{html.escape(safe_name(d.asset.asset))}'>{html.escape(d.asset.asset)}</a></td>"
            f"<td>{html.escape(d.asset.site)} / {html.escape(d.asset.line)}</td>"
            f"<td>{_num(latest)}</td><td>{_num(lowest)}</td>"
            f"<td>{len(raised)}</td><td>{_fmt(raised[0].time_ns if raised else None)}</td></tr>")
        sections.append(
            f"<section id='{html.escape(safe_name(d.asset.asset))}'><h2>{html.escape(d.asset.asset)}</h2>"
            f"<img src='{html.escape(png.name)}' alt='{html.escape(d.asset.asset)}: health and key features'>"
            + _alert_table(d.alerts) + "</section>")
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>predmaint report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1150px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
img {{ max-width: 100%; }}
.open {{ color: #c4162a; font-weight: bold; }} .cleared {{ color: #37872d; }}
</style></head><body>
<h1>predmaint report</h1>
<p>Generated {generated} from {html.escape(settings.storage.kind)} storage; health from the champion model
<code>{html.escape(settings.model.label)}</code> (100 = like the sensor's own baseline, 0 = far outside it),
the worst of the asset's sensors per window. Shaded in the health plots: {html.escape(levels.describe())};
grey: a model's baseline, while it learns what normal is (its health is 100 by definition). Times are UTC.</p>
<table><tr><th>asset</th><th>site / line</th><th>latest health</th><th>lowest health</th>
<th>alerts raised</th><th>first raised</th></tr>
{''.join(rows)}
</table>
<h2>Fleet</h2>
<img src='{html.escape(fleet_png.name)}' alt='fleet health over time'>
{''.join(sections)}
</body></html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _alert_table(alerts: list[Point]) -> str:
    if not alerts:
        return "<p>No alert events.</p>"
    rows = []
    for p in alerts:
        state = str(p.fields.get("state", ""))
        css = "open" if state in OPEN_STATES else "cleared" if state == "cleared" else ""
        rows.append(f"<tr><td>{_fmt(p.time_ns)}</td><td>{html.escape(p.tags.get('sensor', ''))}</td>"
                    f"<td>{html.escape(p.tags.get('rule', ''))}</td><td>{html.escape(p.tags.get('severity', ''))}</td>"
                    f"<td class='{css}'>{html.escape(state)}</td><td>{_num(_float(p.fields.get('health')))}</td>"
                    f"<td>{html.escape(str(p.fields.get('fault') or '-'))}</td>"
                    f"<td>{html.escape(alert_reason(p.fields.get('explanation')))}</td>"
                    f"<td><code>{html.escape(str(p.fields.get('alert_id', '')))}</code></td></tr>")
    return ("<table><tr><th>time (UTC)</th><th>sensor</th><th>rule</th><th>severity</th><th>state</th>"
            "<th>health</th><th>fault</th><th>why</th><th>alert id</th></tr>" + "".join(rows) + "</table>")


def alert_reason(explanation) -> str:
    """One line of why an alert was raised, from its stored explanation (JSON): the evidence, else the top feature.

    Examples
    --------
    >>> alert_reason('[{"feature": "env_bpfo_ratio", "fault": "outer_race", '
    ...              '"evidence": "envelope line at BPFO is 40.0 x the envelope floor"}]')
    'envelope line at BPFO is 40.0 x the envelope floor'
    >>> alert_reason('[{"feature": "current_rms_b", "value": 12.84, "z": 9.31}]')
    'current_rms_b = 12.84 (z 9.3)'
    >>> alert_reason(None)
    '-'
    """
    try:
        items = json.loads(explanation) if isinstance(explanation, str) else list(explanation or [])
    except (ValueError, TypeError):
        return "-"
    for item in items:
        if isinstance(item, dict) and item.get("evidence"):
            return str(item["evidence"])
    top = next((i for i in items if isinstance(i, dict) and i.get("feature")), None)
    if top is None:
        return "-"
    text = f"{top['feature']}"
    if is_number(top.get("value")):
        text += f" = {float(top['value']):.4g}"
    if is_number(top.get("z")):
        text += f" (z {float(top['z']):.1f})"
    return text


def _float(v) -> float | None:
    return float(v) if is_number(v) else None


def add_parser(subparsers):
    """Add ``report`` to the ``predmaint`` command."""
    p = subparsers.add_parser("report", help="static HTML report with plots, read from storage")
    p.add_argument("--out", default=".predmaint/report", help="output directory (default .predmaint/report)")
    p.add_argument("--sqlite", metavar="PATH",
                   help="read this SQLite store instead of the configured storage (e.g. the demo's)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import dataclasses

    from predmaint.connectors.storage import open_reader
    from predmaint.errors import ConfigurationError
    from predmaint.settings import load_settings

    settings = load_settings(getattr(args, "config", None))
    if args.sqlite:
        if not Path(args.sqlite).is_file():
            raise ConfigurationError(f"--sqlite: no SQLite store at {args.sqlite}")
        settings = settings.replace(storage=dataclasses.replace(settings.storage, kind="sqlite",
                                                                sqlite_path=args.sqlite))
    reader = open_reader(settings.storage)
    try:
        path = render_report(settings, reader, args.out)
    finally:
        close = getattr(reader, "close", None)
        if close:
            close()
    print(f"report: {path}")
    return 0
