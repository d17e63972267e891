"""predmaint's Grafana dashboards, defined in Python.

Four dashboards, all InfluxQL (answered by InfluxDB 1.x, 2.x through the
bucket's DBRP mapping, and 3.x), all on the datasource uid
``predmaint-influxdb``:

* **Fleet overview**: health per asset over time, a status table worst first,
  ISO 10816-3 zones, open alerts.
* **Asset detail**: one asset's health with alert annotations, velocity RMS
  against its ISO zone boundaries, envelope peaks at the bearing defect lines,
  temperature, motor current, alert events.
* **Model comparison**: health per ``model`` tag, champion and challengers side by side.
* **Pipeline health**: throughput, processing lag, dead letters, alert events
  that ``predmaint notify`` could not deliver, and the live figures of the running
  pipeline from its Prometheus ``/metrics`` endpoint (datasource ``predmaint-prometheus``).

What is queried is exactly what :func:`predmaint.pipelines.points.to_points` writes (see
the README's storage schema). Filters on ``site``, ``line`` and ``asset`` are
regex matches (``=~ /^$asset$/``) so multi-value and "All" selections work.

The velocity panel's zone boundaries depend on each asset's ISO machine
group and foundation, and the health colours and the "health at or below"
choices on the alert rule that watches health: both are configuration, not
data, so :func:`dashboards` takes the settings that supply them (``python -m
predmaint.dashboards.build --config FILE`` regenerates the JSON for another
configuration). The health levels are those of
:func:`predmaint.pipelines.summary.health_levels`, which the static report uses too.

Every time-series and state-timeline panel sets Grafana's minimum interval to
the longest window length of the sensor kinds it shows (:class:`Intervals`):
points are stamped at window ends, so a shorter ``$__interval`` leaves most
buckets empty and, with ``fill(null)`` and ``spanNulls: false``, no two
adjacent points to draw a line between. ``predmaint dashboards check``
emulates Grafana's interval choice to prove it (:mod:`predmaint.dashboards.check`).
The two live panels on Prometheus need no minimum: Prometheus evaluates their
PromQL at every step, over ``$__rate_interval`` (at least four scrapes of the
datasource's 15 s ``timeInterval``), so every step has a value.
"""

from __future__ import annotations

from dataclasses import dataclass

from predmaint.dashboards.model import (
    PROMETHEUS,
    Annotation,
    CustomVariable,
    Dashboard,
    Override,
    Panel,
    PromTarget,
    QueryVariable,
    Step,
    Target,
    ValueText,
    escape_regex,
    thresholds,
    value_mappings,
)
from predmaint.features.iso10816 import ZONE_BOUNDARIES_MM_S
from predmaint.pipelines.summary import HealthLevels, health_levels
from predmaint.settings import Settings

TIME = "$timeFilter"
CHAMPION = '"champion" = true'
VIBRATION = "\"kind\" = 'vibration'"
TEMPERATURE = "\"kind\" = 'temperature'"
CURRENT = "\"kind\" = 'current'"
PER_INTERVAL = "GROUP BY time($__interval)"
MONITORING = "\"phase\" = 'monitoring'"
#: As the alert rules count a window: a value at the threshold is beyond it.
AT_OR_BELOW_THRESHOLD = '"health" <= $health_threshold'

#: Colours of the health rule's bands (:data:`predmaint.pipelines.summary.BAND_LEVELS`).
BAND_COLOURS = {"critical": "dark-red", "alarm": "red", "warning": "orange", "clearing": "yellow",
                "healthy": "green"}
ISO_ZONES = value_mappings(ValueText("1", "A", "green"), ValueText("2", "B", "yellow"),
                           ValueText("3", "C", "orange"), ValueText("4", "D", "red"))
ISO_ZONE_THRESHOLDS = thresholds(Step("green"), Step("yellow", 2), Step("orange", 3), Step("red", 4))
#: Zone boundaries drawn when an asset is not in the fleet the dashboards were built for:
#: group 2 (15-300 kW) on a rigid foundation, the strictest class.
DEFAULT_ISO_CLASS = (2, "rigid")

ASSET_DETAIL_UID = "predmaint-asset"
#: Tables grouped by tags may arrive as one frame per group; merge them into one table to sort it.
MERGE = {"id": "merge", "options": {}}


def interval_text(seconds: float) -> str:
    """A Grafana/InfluxQL duration for ``seconds``, in the largest unit that divides it.

    Examples
    --------
    >>> [interval_text(s) for s in (10, 300, 90, 3600, 0.5)]
    ['10s', '5m', '90s', '1h', '500ms']
    """
    ms = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class Intervals:
    """Minimum panel intervals: the longest window length of the fleet's sensors, of all kinds or of one.

    Examples
    --------
    >>> from predmaint.settings import load_settings
    >>> iv = Intervals.of(load_settings())
    >>> iv.all, iv.vibration, iv.temperature
    ('5m', '5m', '5m')
    """

    all: str
    vibration: str
    temperature: str
    current: str

    @classmethod
    def of(cls, settings: Settings) -> "Intervals":
        def longest(*kinds: str) -> str:
            lengths = [settings.window_length_s(a.asset, s.sensor) for a in settings.fleet for s in a.sensors
                       if not kinds or s.kind in kinds]
            return interval_text(max(lengths or [settings.window.length_s]))

        return cls(longest(), longest("vibration"), longest("temperature"), longest("current"))


def match(*tags: str) -> str:
    """``"tag" =~ /^$tag$/`` for each tag, ANDed: a template-variable filter.

    Examples
    --------
    >>> match("site", "asset")
    '"site" =~ /^$site$/ AND "asset" =~ /^$asset$/'
    """
    return " AND ".join(f'"{t}" =~ /^${t}$/' for t in tags)


def where(*clauses: str) -> str:
    return "WHERE " + " AND ".join(c for c in clauses if c)


FLEET = match("site", "line", "asset")


def health_thresholds(levels: HealthLevels) -> dict:
    """Grafana threshold steps at the health rule's levels, coloured by band.

    Examples
    --------
    >>> from predmaint.settings import AlertRuleSettings
    >>> steps = health_thresholds(HealthLevels(AlertRuleSettings(warning=50, alarm=30, clear_at=70), True))
    >>> [(s["color"], s["value"]) for s in steps["steps"]]
    [('red', None), ('orange', 30), ('yellow', 50), ('green', 70)]
    """
    return thresholds(*(Step(BAND_COLOURS[b.level], b.lo) for b in levels.bands))


def by_tag(select: str, measurement: str, filters: tuple[str, ...], tag: str, fill: str = "null") -> Target:
    """``select`` per interval, one series per value of ``tag``, named by it (time range always applied).

    Examples
    --------
    >>> print(by_tag('max("iso_zone")', "features", (VIBRATION,), "asset").query)
    SELECT max("iso_zone") FROM "features" WHERE "kind" = 'vibration' AND $timeFilter GROUP BY time($__interval), "asset" fill(null)
    """
    return Target(f'SELECT {select} FROM "{measurement}" {where(*filters, TIME)} {PER_INTERVAL}, "{tag}" fill({fill})',
                  alias=f"$tag_{tag}")


def count_bars(fill_opacity: int = 80, stacked: bool = True) -> dict:
    """Field defaults of a panel of counts drawn as bars."""
    custom: dict = {"drawStyle": "bars", "fillOpacity": fill_opacity}
    if stacked:
        custom["stacking"] = {"mode": "normal"}
    return {"unit": "none", "decimals": 0, "custom": custom}


def health_panel(title: str, levels: HealthLevels, aggregate: str, filters: tuple[str, ...], by: str, *,
                 description: str, area: bool = True, **layout) -> Panel:
    """``aggregate`` of health per interval and per ``by``, coloured by the health rule's bands.

    The description ends with where the colours come from. ``area`` shades the bands behind
    the lines; ``layout`` is passed to :class:`Panel` (width, height, repeat).
    """
    defaults = {"unit": "none", "min": 0, "max": 100, "decimals": 0, "thresholds": health_thresholds(levels)}
    if area:
        defaults["custom"] = {"thresholdsStyle": {"mode": "area"}, "lineWidth": 2}
    return Panel(title, description=f"{description} Colours: {levels.describe()}.",
                 targets=[by_tag(f'{aggregate}("health")', "health", filters, by)], defaults=defaults, **layout)


def iso_zone_panel(title: str, filters: tuple[str, ...], by: str, description: str = "", **layout) -> Panel:
    """Worst ISO 10816-3 zone of the vibration sensors per interval and per ``by``, as zone letters."""
    return Panel(title, type="state-timeline", description=description,
                 targets=[by_tag('max("iso_zone")', "features", (VIBRATION, *filters), by)],
                 defaults={"mappings": ISO_ZONES, "thresholds": ISO_ZONE_THRESHOLDS, "min": 1, "max": 4},
                 **layout)


def location_variables(asset_multi: bool = True) -> list[QueryVariable]:
    """Site, then line within the site, then asset within both: each narrows the next."""
    return [
        QueryVariable("site", "Site", 'SHOW TAG VALUES FROM "health" WITH KEY = "site"'),
        QueryVariable("line", "Line", f'SHOW TAG VALUES FROM "health" WITH KEY = "line" {where(match("site"))}'),
        QueryVariable("asset", "Asset",
                      f'SHOW TAG VALUES FROM "health" WITH KEY = "asset" {where(match("site", "line"))}',
                      multi=asset_multi, include_all=asset_multi),
    ]


def fleet_overview(levels: HealthLevels, iv: Intervals) -> Dashboard:
    health = health_panel(
        "Health per asset (worst sensor, champion model)", levels, "min", (CHAMPION, FLEET), "asset",
        width=24, height=9, min_interval=iv.all,
        description="Lowest health over the asset's sensors in each interval, from the champion model "
                    "(the one that drives alerts). 100 = indistinguishable from the sensor's baseline.")
    status = Panel(
        "Asset status, worst first", type="table", width=12, height=10,
        description="Latest champion health per asset and sensor in the time range, lowest first. "
                    "Click an asset for its detail dashboard.",
        targets=[Target(f'SELECT last("health") AS "health", "phase", "raw_score" FROM "health" '
                        f'{where(CHAMPION, FLEET, TIME)} GROUP BY "asset", "sensor"', result_format="table")],
        defaults={"thresholds": health_thresholds(levels)},
        overrides=[
            Override("byName", "health", {"custom.cellOptions": {"type": "color-background"}, "decimals": 0}),
            Override("byName", "asset", {"links": [{
                "title": "Asset detail",
                "url": f"/d/{ASSET_DETAIL_UID}/asset-detail?var-asset=${{__value.raw}}&${{__url_time_range}}"}]}),
        ],
        options={"sortBy": [{"displayName": "health", "desc": False}]},
        transformations=[MERGE, {"id": "organize", "options": {
            "renameByName": {"Time": "last window"},
            "indexByName": {"asset": 0, "sensor": 1, "health": 2, "phase": 3, "raw_score": 4, "Time": 5}}}])
    open_alerts = Panel(
        "Open alerts", type="table", width=12, height=10,
        description="Alerts whose latest event up to the end of the time range is not 'cleared', "
                    "whenever they were raised.",
        targets=[Target(
            # The inner query takes each stream's latest event; only its state tells
            # whether the alert is still open (InfluxQL has no HAVING, a subquery does it).
            'SELECT "alert_id", "severity", "state", "health" FROM ('
            'SELECT last("state") AS "state", "alert_id", "severity", "health" FROM "alerts" '
            f'{where(FLEET, "time <= ${__to}ms")} GROUP BY "asset", "sensor", "rule") '
            "WHERE \"state\" != 'cleared' GROUP BY \"asset\", \"sensor\", \"rule\"", result_format="table")],
        overrides=[Override("byName", "severity", {"custom.cellOptions": {"type": "color-text"}, "mappings": [
            {"type": "value", "options": {"warning": {"color": "yellow", "index": 0},
                                          "alarm": {"color": "orange", "index": 1},
                                          "critical": {"color": "red", "index": 2}}}]})],
        options={"sortBy": [{"displayName": "last event", "desc": True}]},
        transformations=[MERGE, {"id": "organize", "options": {
            "renameByName": {"Time": "last event"},
            "indexByName": {"asset": 0, "sensor": 1, "rule": 2, "severity": 3, "state": 4, "health": 5,
                            "Time": 6, "alert_id": 7}}}])
    zones = iso_zone_panel(
        "ISO 10816-3 zone per asset", (FLEET,), "asset", width=12, height=8, min_interval=iv.vibration,
        description="Worst velocity-severity zone of the asset's vibration sensors: A new, B acceptable, "
                    "C unsatisfactory (plan action), D damage.")
    events = Panel(
        "Alert events by severity", width=12, height=8,
        description="Raised, escalated, re-notified and cleared events per interval.",
        targets=[by_tag('count("event_id")', "alerts", (FLEET,), "severity", fill="none")],
        defaults=count_bars(), min_interval=iv.all)
    return Dashboard("predmaint-fleet", "predmaint: Fleet overview",
                     "Health, ISO zones and open alerts across the fleet.",
                     panels=[health, status, open_alerts, zones, events], variables=location_variables())


def _iso_overrides(settings: Settings) -> list[Override]:
    """Per-asset zone boundaries: series are named '<asset> <sensor>'."""
    out = []
    for asset in settings.fleet:
        key = (asset.iso_group, asset.iso_foundation)
        if key == DEFAULT_ISO_CLASS:
            continue
        out.append(Override("byRegexp", f"^{escape_regex(asset.asset)} ",
                            {"thresholds": _iso_steps(*key)}))
    return out


def _iso_steps(group: int, foundation: str) -> dict:
    ab, bc, cd = ZONE_BOUNDARIES_MM_S[(group, foundation)]
    return thresholds(Step("green"), Step("yellow", ab), Step("orange", bc), Step("red", cd))


def asset_detail(settings: Settings, levels: HealthLevels, iv: Intervals) -> Dashboard:
    asset = match("asset")
    health = health_panel(
        "Health per sensor (champion model)", levels, "mean", (CHAMPION, asset), "sensor", width=24, height=9,
        min_interval=iv.all,
        description="Marks: alert events (raised, escalated, re-notified, cleared) with the sensor, rule "
                    "and severity as tags.")
    velocity = Panel(
        "Velocity RMS against ISO 10816-3 zones", width=12, height=9,
        description="Broadband velocity RMS, 10-1000 Hz. Bands: zone A (green), B, C, D (red), with the "
                    "boundaries of the asset's machine group and foundation from the fleet configuration "
                    "(group 2 rigid for assets not in it).",
        targets=[Target(f'SELECT max("velocity_rms_mm_s") FROM "features" {where(VIBRATION, asset, TIME)} '
                        f'{PER_INTERVAL}, "asset", "sensor" fill(null)', alias="$tag_asset $tag_sensor")],
        defaults={"unit": "suffix: mm/s", "min": 0, "decimals": 2, "thresholds": _iso_steps(*DEFAULT_ISO_CLASS),
                  "custom": {"thresholdsStyle": {"mode": "line+area"}, "lineWidth": 2}},
        overrides=_iso_overrides(settings), min_interval=iv.vibration)
    zone = iso_zone_panel("ISO 10816-3 zone", (asset,), "sensor", width=12, height=9, min_interval=iv.vibration)
    ratios = Panel(
        "Envelope peaks over noise floor at bearing defect lines", width=12, height=9,
        description="Envelope-spectrum peak at each defect frequency divided by the local floor; "
                    "noise sits around 1.5-3. A rising BPFO/BPFI/BSF ratio points at the outer race, "
                    "inner race or rolling elements; FTF at the cage.",
        targets=[Target('SELECT mean("env_bpfo_ratio") AS "BPFO", mean("env_bpfi_ratio") AS "BPFI", '
                        'mean("env_bsf_ratio") AS "BSF", mean("env_2bsf_ratio") AS "2xBSF", '
                        'mean("env_ftf_ratio") AS "FTF" FROM "features" '
                        f'{where(VIBRATION, asset, TIME)} {PER_INTERVAL}, "sensor" fill(null)',
                        alias="$col $tag_sensor")],
        defaults={"unit": "none", "min": 0, "decimals": 1}, min_interval=iv.vibration)
    amplitudes = Panel(
        "Envelope peak amplitudes at bearing defect lines", width=12, height=9,
        targets=[Target('SELECT mean("env_bpfo") AS "BPFO", mean("env_bpfi") AS "BPFI", '
                        'mean("env_bsf") AS "BSF", mean("env_ftf") AS "FTF" FROM "features" '
                        f'{where(VIBRATION, asset, TIME)} {PER_INTERVAL}, "sensor" fill(null)',
                        alias="$col $tag_sensor")],
        defaults={"unit": "accMS2", "min": 0}, min_interval=iv.vibration)
    temperature = Panel(
        "Bearing temperature", width=8, height=8,
        description="Window mean (left axis) and least-squares slope (right axis).",
        targets=[Target('SELECT mean("temp_level_c") AS "level", mean("temp_rate_c_per_min") AS "rate" '
                        f'FROM "features" {where(TEMPERATURE, asset, TIME)} {PER_INTERVAL}, "sensor" fill(null)',
                        alias="$col $tag_sensor")],
        defaults={"unit": "celsius", "decimals": 1},
        overrides=[Override("byRegexp", "^rate ", {"unit": "suffix: °C/min", "custom.axisPlacement": "right",
                                                   "custom.lineStyle": {"fill": "dash", "dash": [10, 10]}})],
        min_interval=iv.temperature)
    imbalance = Panel(
        "Motor current imbalance (NEMA)", width=8, height=8,
        description="Largest deviation of a phase RMS from the three-phase mean, over the mean.",
        targets=[by_tag('mean("current_imbalance_pct")', "features", (CURRENT, asset), "sensor")],
        defaults={"unit": "percent", "min": 0, "decimals": 2}, min_interval=iv.current)
    phases = Panel(
        "Phase currents", width=8, height=8,
        targets=[Target('SELECT mean("current_rms_a") AS "A", mean("current_rms_b") AS "B", '
                        'mean("current_rms_c") AS "C" FROM "features" '
                        f'{where(CURRENT, asset, TIME)} {PER_INTERVAL}, "sensor" fill(null)', alias="phase $col")],
        defaults={"unit": "amp", "decimals": 2}, min_interval=iv.current)
    alerts = Panel(
        "Alert events", type="table", width=24, height=8,
        description="Every alert event of the asset in the time range, newest first, with the features "
                    "that deviated most (explanation).",
        targets=[Target('SELECT "sensor", "rule", "severity", "state", "health", "alert_id", "explanation" '
                        f'FROM "alerts" {where(asset, TIME)} ORDER BY time DESC', result_format="table")],
        overrides=[Override("byName", "explanation", {"custom.cellOptions": {"type": "json-view"}})])
    # One annotation for every event (raised, escalated, re-notified, cleared): the state is its
    # text, so a cleared alert reads as such without a second query that is empty until one clears.
    annotations = [Annotation("Alert events", 'SELECT "state", "alert_id", "sensor", "rule", "severity" '
                                              f'FROM "alerts" {where(asset, TIME)}', "red",
                              text_column="state", tags_column="sensor,rule,severity")]
    return Dashboard(ASSET_DETAIL_UID, "predmaint: Asset detail",
                     "One asset: health, vibration severity, bearing defect lines, temperature, current.",
                     panels=[health, velocity, zone, ratios, amplitudes, temperature, imbalance, phases, alerts],
                     variables=location_variables(asset_multi=False), annotations=annotations)


def model_comparison(levels: HealthLevels, iv: Intervals) -> Dashboard:
    models = match("model")
    per_asset = health_panel(
        "Health per model: $asset", levels, "min", (match("asset"), models), "model", area=False,
        width=8, height=8, repeat="asset", min_interval=iv.all,
        description="Worst sensor's health per model. Only the champion drives alerts; challengers "
                    "score the same windows side by side.")
    below = Panel(
        "Monitoring windows at or below $health_threshold health, per model", width=12, height=8,
        description="How often each model would have called a window unhealthy: a challenger that "
                    "flags far more windows than the champion on healthy assets is noisier.",
        targets=[by_tag('count("health")', "health", (MONITORING, AT_OR_BELOW_THRESHOLD, FLEET, models), "model",
                        fill="none")],
        defaults=count_bars(60, stacked=False), min_interval=iv.all)
    summary = Panel(
        "Per model and asset (monitoring phase)", type="table", width=12, height=8,
        targets=[Target('SELECT min("health") AS "min health", mean("health") AS "mean health", '
                        'count("health") AS "windows" FROM "health" '
                        f'{where(MONITORING, FLEET, models, TIME)} '
                        'GROUP BY "model", "asset"', result_format="table")],
        defaults={"decimals": 1, "thresholds": health_thresholds(levels)},
        overrides=[Override("byName", "min health", {"custom.cellOptions": {"type": "color-text"}})],
        options={"sortBy": [{"displayName": "min health", "desc": False}]},
        transformations=[MERGE, {"id": "organize", "options": {"excludeByName": {"Time": True}}}])
    raw = Panel(
        "Raw score per model", width=24, height=8,
        description="Each detector's own score; scales differ by detector (that is why health is "
                    "calibrated per model), so compare shapes, not levels.",
        targets=[Target(f'SELECT mean("raw_score") FROM "health" {where(FLEET, models, TIME)} '
                        f'{PER_INTERVAL}, "model", "asset" fill(null)', alias="$tag_model $tag_asset")],
        defaults={"unit": "none"}, min_interval=iv.all)
    variables: list[QueryVariable | CustomVariable] = [
        *location_variables(),
        QueryVariable("model", "Model", 'SHOW TAG VALUES FROM "health" WITH KEY = "model"'),
        CustomVariable("health_threshold", "Health at or below", tuple(f"{v:g}" for v in levels.thresholds),
                       f"Threshold for counting unhealthy windows; the choices are the levels of the {levels.describe()}."),
    ]
    return Dashboard("predmaint-models", "predmaint: Model comparison",
                     "Champion and challenger detectors on the same windows.",
                     panels=[per_asset, below, summary, raw], variables=variables)


def pipeline_health(iv: Intervals) -> Dashboard:
    throughput = Panel(
        "Throughput: windows stored per interval", width=12, height=8,
        description="Feature points written per interval, by sensor kind. Points are stamped at the "
                    "window end (event time), so this is data throughput; see lag for processing delay.",
        targets=[Target(f'SELECT count("snapshots") FROM "features" {where(FLEET, TIME)} {PER_INTERVAL} fill(0)',
                        alias="vibration"),
                 by_tag('count("readings")', "features", (FLEET,), "kind", fill="0")],
        defaults={"unit": "none", "decimals": 0,
                  "custom": {"drawStyle": "bars", "fillOpacity": 70, "stacking": {"mode": "normal"}}},
        min_interval=iv.all)
    lag = Panel(
        "Processing lag", width=12, height=8,
        description="Wall-clock time between a window's end and its processing (lag_s on health points). "
                    "Live data: the pipeline's delay, at least the allowed lateness (a window closes on a "
                    "reading that much after its end). A replay or a backfill: how old the data is.",
        targets=[Target('SELECT max("lag_s") AS "max", mean("lag_s") AS "mean" FROM "health" '
                        f'{where(CHAMPION, FLEET, TIME)} {PER_INTERVAL} fill(null)', alias="$col")],
        defaults={"unit": "s"}, min_interval=iv.all)
    newest_lag = Panel(
        "Lag of the newest window", type="stat", width=6, height=6,
        targets=[Target(f'SELECT last("lag_s") FROM "health" {where(CHAMPION, FLEET, TIME)}')],
        defaults={"unit": "s", "thresholds": thresholds(Step("green"), Step("orange", 900), Step("red", 3600))})
    dead_total = Panel(
        "Dead letters in range", type="stat", width=6, height=6,
        description="Messages that could not be processed (see the table for why).",
        targets=[Target(f'SELECT sum("count") FROM "deadletters" {where(TIME)}')],
        defaults={"unit": "none", "decimals": 0, "thresholds": thresholds(Step("green"), Step("orange", 1))},
        options={"graphMode": "none"})
    models = Panel(
        "Health points per model per interval", width=12, height=6,
        description="Each configured model should score every window: a model whose count drops is failing.",
        targets=[by_tag('count("health")', "health", (FLEET,), "model", fill="0")],
        defaults={"unit": "none", "decimals": 0}, min_interval=iv.all)
    dead = Panel(
        "Dead letters per interval, by step", width=12, height=8,
        description="Dead letters are stamped with their Kafka arrival time, not event time: the message "
                    "may have no valid event time.",
        targets=[by_tag('sum("count")', "deadletters", (), "step", fill="none")],
        defaults=count_bars(), min_interval=iv.all)
    dead_table = Panel(
        "Latest dead letters", type="table", width=12, height=8,
        targets=[Target('SELECT "reason", "asset", "sensor", "partition", "offset" FROM "deadletters" '
                        f'{where(TIME)} GROUP BY "step" ORDER BY time DESC LIMIT 100', result_format="table")],
        transformations=[MERGE], options={"sortBy": [{"displayName": "Time", "desc": True}]})
    return Dashboard("predmaint-pipeline", "predmaint: Pipeline health",
                     "Is the pipeline keeping up, what is it rejecting, and which alerts did not reach their targets?",
                     panels=[*live_metrics_panels(), throughput, lag, newest_lag, dead_total, models, dead, dead_table,
                             *undelivered_alert_panels(iv)],
                     variables=location_variables())


def live_metrics_panels() -> list[Panel]:
    """The running pipeline's own figures, scraped by Prometheus from ``predmaint run``'s ``/metrics``.

    They need no data in InfluxDB and answer "is it working right now?": readings per second,
    windows and dead letters per minute, and how far each Kafka partition's newest event is
    behind the wall clock (see :mod:`predmaint.connectors.metrics`).
    """
    rates = Panel(
        "Live: readings/s, windows and dead letters per minute (from /metrics)", width=12, height=8,
        datasource=PROMETHEUS,
        description="From predmaint run's Prometheus endpoint (metrics.port): valid readings per second, "
                    "sensor windows closed and inputs dead-lettered per minute, averaged over Grafana's rate "
                    "interval (at least four scrapes).",
        targets=[PromTarget("sum(rate(predmaint_readings_total[$__rate_interval]))", "readings/s"),
                 PromTarget("sum(rate(predmaint_windows_closed_total[$__rate_interval])) * 60", "windows/min"),
                 PromTarget("sum(rate(predmaint_dead_letters_total[$__rate_interval])) * 60", "dead letters/min"),
                 PromTarget("sum(rate(predmaint_alert_events_total[$__rate_interval])) * 60", "alert events/min")],
        defaults={"unit": "none", "decimals": 1, "min": 0})
    lag = Panel(
        "Live: event-time lag per Kafka partition (from /metrics)", width=12, height=8, datasource=PROMETHEUS,
        description="Wall clock minus the newest event time the pipeline has read from each partition. Live "
                    "data: a few seconds; growing steadily: the source stopped or the pipeline fell behind.",
        targets=[PromTarget("max by (partition) (predmaint_event_time_lag_seconds)", "partition {{partition}}")],
        defaults={"unit": "s", "min": 0})
    return [rates, lag]


def undelivered_alert_panels(iv: Intervals) -> list[Panel]:
    """The ``delivery_deadletter`` points ``predmaint notify`` writes when it gives up on an alert event.

    Not filtered by site, line or asset: events rejected at ingest carry none. The measurement
    appears with the first failed delivery, so until then these panels are empty (good news).
    """
    gave_up = ("after the target's last attempt, or at once when it refused the event for good (3xx, or "
               "4xx other than 408, 425 and 429); stamped with the alert's event time.")
    per_target = Panel(
        "Undelivered alert events per interval, by target", width=12, height=8,
        description=f"Alert events predmaint notify gave up on {gave_up} Empty is good news.",
        targets=[by_tag('count("attempts")', "delivery_deadletter", (), "target", fill="none")],
        defaults=count_bars(), min_interval=iv.all)
    latest = Panel(
        "Latest undelivered alert events", type="table", width=12, height=8,
        description=f"The newest 100 alert events predmaint notify gave up on {gave_up} The webhook or work "
                    "order for these alerts is missing on the target.",
        targets=[Target('SELECT "asset", "severity", "reason", "http_status", "attempts", "permanent", '
                        '"alert_id", "event_id" FROM "delivery_deadletter" '
                        f'{where(TIME)} GROUP BY "target", "kind", "state" ORDER BY time DESC LIMIT 100',
                        result_format="table")],
        transformations=[MERGE, {"id": "organize", "options": {
            "renameByName": {"Time": "event time"},
            "indexByName": {"Time": 0, "target": 1, "kind": 2, "asset": 3, "state": 4, "severity": 5,
                            "reason": 6, "http_status": 7, "attempts": 8, "permanent": 9, "alert_id": 10,
                            "event_id": 11}}}],
        options={"sortBy": [{"displayName": "event time", "desc": True}]})
    return [per_target, latest]


def dashboards(settings: Settings) -> list[Dashboard]:
    """Every predmaint dashboard.

    ``settings.fleet`` supplies per-asset ISO zone boundaries, ``settings.alert_rules`` the
    health levels (:func:`predmaint.pipelines.summary.health_levels`).
    """
    levels = health_levels(settings)
    iv = Intervals.of(settings)
    return [fleet_overview(levels, iv), asset_detail(settings, levels, iv), model_comparison(levels, iv),
            pipeline_health(iv)]
