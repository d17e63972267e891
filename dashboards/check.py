"""Run every query of the generated dashboards against a real InfluxDB, as Grafana would.

Grafana cannot run here, so the dashboards are verified by doing what
Grafana's InfluxDB datasource does with each panel target, annotation and
template variable: substitute the template variables (``$site``, ``$asset``,
``$timeFilter``, ``$__interval``, ``${__to}``...), send the InfluxQL, and look
at what comes back.

A query passes only if

1. every measurement it names exists (``SHOW MEASUREMENTS``);
2. every other double-quoted identifier is a field or tag key of those
   measurements (``SHOW FIELD KEYS`` / ``SHOW TAG KEYS``) or an alias the query
   defines: InfluxQL answers a misspelt field with an empty result, not an
   error, so this is the only way to tell "no data yet" from "wrong name";
3. InfluxDB accepts it; and
4. it returns at least one non-null value.

Queries therefore quote every identifier, which the definitions do.

Some measurements are written only when something happens
(:func:`event_only_measurements`: ``alerts``, ``deadletters``,
``delivery_deadletter``), so a healthy database may not have them yet. For those, 1 and 2 use the keys their
writer gives them (as well as any the database has), the query is still sent
(InfluxDB must accept it), and returning nothing while the database has no
such measurement is reported as :data:`NOT_WRITTEN_YET`, not as a failure.

Returning data is not enough for a line to appear: Grafana joins only adjacent
non-null points (the panels keep ``spanNulls`` off, since a gap is a sensor
that stopped). :func:`check_drawable` therefore emulates Grafana's interval
choice (``range / max data points``, rounded by :func:`round_interval_ms`, not
below the panel's minimum interval) for the dashboard's default range and for
1 h, 24 h and 7 d, and fails a line panel whose series has values but no two
adjacent points.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from predmaint.dashboards.model import escape_regex

NO_DATA = "no data"
NOT_WRITTEN_YET = ("no data: the measurement is written only when something happens (an alert, a rejected input, "
                   "an undelivered alert), and nothing has yet")
#: ``run(query) -> series`` as :meth:`predmaint.connectors.storage._InfluxHTTP.query` returns them.
QueryRunner = Callable[[str], list[dict]]


@dataclass(frozen=True)
class DashboardQuery:
    """One query found in a dashboard's JSON."""

    dashboard: str
    panel: str
    kind: str  # target | annotation | variable
    ref_id: str
    query: str
    #: For a repeated panel, the variable it repeats over.
    repeat: str = ""

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} [{self.kind} {self.ref_id}]"


def event_only_measurements() -> dict[str, tuple[set[str], set[str]]]:
    """Measurement -> (field keys, tag keys) of the measurements written only when something happens.

    A healthy deployment may not have them yet: ``alerts`` (an alert event),
    ``deadletters`` (an input the pipeline rejected) and ``delivery_deadletter``
    (``predmaint notify`` gave up on an alert event). Their keys come from their
    writers (:func:`predmaint.pipelines.points.alert_point`,
    :func:`predmaint.pipelines.points.dead_letter_point`,
    :func:`predmaint.connectors.deadletters.deadletter_to_influx`) applied to a record with
    every item set, so they follow the writers.

    Examples
    --------
    >>> keys = event_only_measurements()
    >>> sorted(keys)
    ['alerts', 'deadletters', 'delivery_deadletter']
    >>> sorted(keys["delivery_deadletter"][1]), sorted(keys["alerts"][1])
    (['asset', 'kind', 'line', 'site', 'state', 'target'], ['asset', 'line', 'rule', 'sensor', 'severity', 'site'])
    >>> {"reason", "attempts", "http_status", "alert_id"} <= keys["delivery_deadletter"][0]
    True
    """
    from predmaint.connectors.deadletters import deadletter_to_influx
    from predmaint.domain import DeadLetter
    from predmaint.models.alerting import AlertEvent
    from predmaint.pipelines.points import alert_point, dead_letter_point

    asset = {"site": "site", "line": "line", "asset": "asset"}
    points = [alert_point(asset, AlertEvent("a", 0, "raised", "alarm", "rule", "asset", "sensor", 0, 1.0), 1.0),
              dead_letter_point(DeadLetter("reason", "decode", "asset", "sensor", "topic", 0, 0))]
    keys = {p.measurement: (set(p.fields), set(p.tags)) for p in points}
    undelivered = deadletter_to_influx({
        "event_id": "a:0", "alert_id": "a", "asset": "asset", "site": "site", "line": "line",
        "state": "raised", "severity": "alarm", "target": "target", "kind": "webhook", "reason": "HTTP 500",
        "http_status": 500, "attempts": 1, "permanent": False, "event_time": "2026-01-01T00:00:00Z",
        "failed_at": "2026-01-01T00:00:00Z"})
    keys[undelivered["measurement"]] = (set(undelivered["fields"]), set(undelivered["tags"]))
    return keys


def influx_targets(panel: dict) -> list[dict]:
    """The InfluxQL targets of a panel (a Prometheus panel's PromQL is checked by :func:`prometheus_metrics`)."""
    return [t for t in panel.get("targets", []) if t.get("datasource", {}).get("type", "influxdb") == "influxdb"]


def prometheus_metrics(doc: dict) -> dict[str, set[str]]:
    """Panel title -> the ``predmaint_*`` metric names its PromQL targets read.

    Examples
    --------
    >>> doc = {"panels": [{"title": "p", "targets": [{"datasource": {"type": "prometheus"},
    ...                                               "expr": "sum(rate(predmaint_readings_total[1m]))"}]}]}
    >>> prometheus_metrics(doc)
    {'p': {'predmaint_readings_total'}}
    """
    out: dict[str, set[str]] = {}
    for panel in doc.get("panels", []):
        for t in panel.get("targets", []):
            if t.get("datasource", {}).get("type") == "prometheus":
                out.setdefault(panel["title"], set()).update(re.findall(r"\bpredmaint_\w+", t["expr"]))
    return out


def dashboard_queries(doc: dict) -> list[DashboardQuery]:
    """Every InfluxQL query of a dashboard JSON document: panel targets, annotations, variables."""
    title = doc["title"]
    out = []
    for panel in doc.get("panels", []):
        for t in influx_targets(panel):
            out.append(DashboardQuery(title, panel["title"], "target", t["refId"], t["query"],
                                      panel.get("repeat", "")))
    for a in doc.get("annotations", {}).get("list", []):
        if a.get("builtIn"):
            continue
        out.append(DashboardQuery(title, a["name"], "annotation", a["target"]["refId"], a["target"]["query"]))
    for v in doc.get("templating", {}).get("list", []):
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append(DashboardQuery(title, f"${v['name']}", "variable", v["name"], q))
    return out


#: Grafana's default "Max data points" is the panel's width in pixels; 1,920 (a full-width panel on a
#: wide screen) is the most it gets in practice, so the finest interval Grafana would choose.
MAX_DATA_POINTS = 1920


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range, epoch milliseconds, and the ``$__interval`` Grafana would pick for it."""

    from_ms: int
    to_ms: int
    interval: str = ""

    def with_grafana_interval(self, max_data_points: int = MAX_DATA_POINTS, min_interval: str = "") -> "TimeRange":
        return TimeRange(self.from_ms, self.to_ms,
                         grafana_interval(self.to_ms - self.from_ms, max_data_points, min_interval))


#: Grafana's ``roundInterval`` (packages/grafana-data/src/datetime/rangeutil.ts): below the first
#: bound of a row, the interval becomes that row's value (milliseconds).
_GRAFANA_ROUNDING_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000),
    (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000),
    (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
    (2700000, 1800000), (5400000, 3600000), (9000000, 7200000), (16200000, 10800000),
    (32400000, 21600000), (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000))
_YEAR_MS = 31536000000
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": _YEAR_MS}


def round_interval_ms(interval_ms: float) -> int:
    """Grafana's rounding of ``range / max data points`` to a nice interval.

    Examples
    --------
    >>> [round_interval_ms(ms) for ms in (11_250, 21_600, 86_400, 315_000, 604_800)]
    [10000, 20000, 60000, 300000, 600000]
    """
    return next((value for bound, value in _GRAFANA_ROUNDING_MS if interval_ms < bound), _YEAR_MS)


def interval_ms(text: str) -> int:
    """A Grafana interval (``10s``, ``5m``, ``1h``, ``>5m``...) in milliseconds.

    Examples
    --------
    >>> interval_ms("5m"), interval_ms(">10s"), interval_ms("500ms")
    (300000, 10000, 500)
    """
    m = re.fullmatch(r">?\s*(\d+)(ms|s|m|h|d|w|y)", text.strip())
    if not m:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def format_interval(ms: int) -> str:
    """Milliseconds as an InfluxQL duration in the largest unit that divides them.

    Examples
    --------
    >>> format_interval(300000), format_interval(86_400_000), format_interval(500)
    ('5m', '1d', '500ms')
    """
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def grafana_interval(range_ms: int, max_data_points: int = MAX_DATA_POINTS, min_interval: str = "") -> str:
    """The ``$__interval`` Grafana computes: ``range / max data points``, rounded, and not below ``min_interval``.

    ``min_interval`` is the panel's "Min interval" query option (its JSON ``interval``).

    Examples
    --------
    >>> grafana_interval(6 * 3600 * 1000, 100)
    '5m'
    >>> grafana_interval(6 * 3600 * 1000)   # the 6 h default on a wide panel: 11.25 s
    '10s'
    >>> grafana_interval(6 * 3600 * 1000, min_interval="5m"), grafana_interval(7 * 86400 * 1000, min_interval="5m")
    ('5m', '5m')
    >>> grafana_interval(30 * 86400 * 1000, 1000)
    '30m'
    """
    ms = round_interval_ms(range_ms / max_data_points)
    if min_interval:
        ms = max(ms, interval_ms(min_interval))
    return format_interval(ms)


@dataclass(frozen=True)
class Variable:
    """A template variable's selected values and how Grafana formats them."""

    values: tuple[str, ...]
    #: Multi-value or include-All variables are regex-escaped and joined as ``(a|b)``.
    multi: bool = True


def variables_of(doc: dict) -> dict[str, bool]:
    """Variable name -> whether Grafana formats it as a multi-value regex."""
    return {v["name"]: bool(v.get("multi") or v.get("includeAll"))
            for v in doc.get("templating", {}).get("list", [])}


def custom_defaults(doc: dict) -> dict[str, tuple[str, ...]]:
    """Custom (fixed-choice) variable name -> the value selected when the dashboard opens."""
    return {v["name"]: (v["current"]["value"],) for v in doc.get("templating", {}).get("list", [])
            if v["type"] == "custom"}


def interpolate(query: str, variables: dict[str, Variable], time_range: TimeRange) -> str:
    """Substitute template variables the way Grafana's InfluxDB datasource does.

    Examples
    --------
    >>> q = 'SELECT "x" FROM "m" WHERE "asset" =~ /^$asset$/ AND $timeFilter GROUP BY time($__interval)'
    >>> print(interpolate(q, {"asset": Variable(("pump-01", "fan.1"))}, TimeRange(0, 60000, "1m")))
    SELECT "x" FROM "m" WHERE "asset" =~ /^(pump-01|fan\\.1)$/ AND time >= 0ms and time <= 60000ms GROUP BY time(1m)
    """
    builtins = {
        "timeFilter": f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms",
        "__interval": time_range.interval, "interval": time_range.interval,
        "__from": str(time_range.from_ms), "__to": str(time_range.to_ms),
    }

    def value(name: str) -> str:
        if name in builtins:
            return builtins[name]
        if name not in variables:
            raise KeyError(f"template variable ${name} has no value")
        v = variables[name]
        if not v.multi:
            return v.values[0]
        escaped = [escape_regex(x) for x in v.values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    # ${name} and ${name:format} first, then bare $name; \w+ is greedy, so $__interval is
    # read whole and the $ that closes a regex (/^$asset$/) is left alone.
    query = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: value(m.group(1)), query)
    return re.sub(r"\$(\w+)", lambda m: value(m.group(1)), query)


@dataclass
class Schema:
    """Measurements with their field and tag keys, read from the database."""

    fields: dict[str, set[str]] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)
    #: Measurements known only from their writer (:func:`event_only_measurements`): not in the database.
    absent: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, run: QueryRunner,
             event_only: dict[str, tuple[set[str], set[str]]] | None = None) -> "Schema":
        """Three queries, however many measurements there are.

        ``SHOW FIELD KEYS`` and ``SHOW TAG KEYS`` without ``FROM`` answer one series per
        measurement (InfluxDB 1.x, 2.x and 3.x); ``SHOW MEASUREMENTS`` still decides which
        measurements exist. ``event_only`` defaults to :func:`event_only_measurements`.

        Examples
        --------
        >>> answers = {
        ...     "SHOW MEASUREMENTS": [{"name": "measurements", "columns": ["name"], "values": [["health"]]}],
        ...     "SHOW FIELD KEYS": [{"name": "health", "columns": ["fieldKey", "fieldType"],
        ...                          "values": [["health", "float"]]}],
        ...     "SHOW TAG KEYS": [{"name": "health", "columns": ["tagKey"], "values": [["asset"]]}]}
        >>> s = Schema.load(answers.__getitem__, event_only={"dead": ({"reason"}, {"target"})})
        >>> s.fields, s.tags, s.absent
        ({'health': {'health'}, 'dead': {'reason'}}, {'health': {'asset'}, 'dead': {'target'}}, {'dead'})
        """
        names = [row[0] for s in run("SHOW MEASUREMENTS") for row in s["values"]]
        fields, tags = _keys_by_measurement(run("SHOW FIELD KEYS")), _keys_by_measurement(run("SHOW TAG KEYS"))
        schema = cls({n: fields.get(n, set()) for n in names}, {n: tags.get(n, set()) for n in names})
        declared = event_only_measurements() if event_only is None else event_only
        for name, (field_keys, tag_keys) in declared.items():
            if name not in schema.fields:
                schema.absent.add(name)
            schema.fields[name] = schema.fields.get(name, set()) | field_keys
            schema.tags[name] = schema.tags.get(name, set()) | tag_keys
        return schema

    def keys(self, measurement: str) -> set[str]:
        return self.fields.get(measurement, set()) | self.tags.get(measurement, set())


def _keys_by_measurement(series: list[dict]) -> dict[str, set[str]]:
    """``SHOW FIELD KEYS`` / ``SHOW TAG KEYS`` answers: one series per measurement, the key first."""
    out: dict[str, set[str]] = {}
    for s in series:
        out.setdefault(s["name"], set()).update(row[0] for row in s.get("values", []))
    return out


_IDENT = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _identifiers(query: str) -> tuple[list[str], list[str], set[str]]:
    """The double-quoted identifiers of ``query``: measurements (after FROM), other names, aliases (after AS)."""
    measurements, names, aliases = [], [], set()
    for m in _IDENT.finditer(query):
        before = query[:m.start()].rstrip().upper()
        ident = m.group(1)
        if before.endswith("FROM"):
            measurements.append(ident)
        elif before.endswith(" AS"):
            aliases.add(ident)
        else:
            names.append(ident)
    return measurements, names, aliases


def unknown_names(query: str, schema: Schema) -> list[str]:
    """Measurements, fields and tags ``query`` names that the database does not have.

    Examples
    --------
    >>> s = Schema({"health": {"health", "lag_s"}}, {"health": {"asset"}})
    >>> unknown_names('SELECT mean("health") AS "h" FROM "health" GROUP BY "asset"', s)
    []
    >>> unknown_names('SELECT mean("helth") FROM "health"', s)
    ['field or tag "helth" (not in health)']
    >>> unknown_names('SELECT mean("x") FROM "vibration"', s)
    ['measurement "vibration"']
    """
    measurements, names, aliases = _identifiers(query)
    problems = [f'measurement "{m}"' for m in measurements if m not in schema.fields]
    if problems:
        return problems  # its fields are unknown too; saying so adds nothing
    known = set().union(*(schema.keys(m) for m in measurements)) if measurements else set()
    where = ", ".join(measurements)
    problems += [f'field or tag "{n}" (not in {where})' for n in names if n not in known | aliases | {"time"}]
    return problems


@dataclass(frozen=True)
class CheckResult:
    query: DashboardQuery
    sent: str
    ok: bool
    reason: str = ""
    series: int = 0
    values: int = 0

    @property
    def empty(self) -> bool:
        """Valid, but nothing came back (:data:`NO_DATA` or :data:`NOT_WRITTEN_YET`)."""
        return self.reason in (NO_DATA, NOT_WRITTEN_YET)


def has_values(series: list[dict]) -> int:
    """How many non-null, non-time values the series hold (NaN counts as null)."""
    count = 0
    for s in series:
        for row in s.get("values", []):
            for column, v in zip(s["columns"], row):
                if column != "time" and v is not None and not (isinstance(v, float) and math.isnan(v)):
                    count += 1
    return count


def check(query: DashboardQuery, run: QueryRunner, schema: Schema, variables: dict[str, Variable],
          time_range: TimeRange) -> CheckResult:
    """Check one query (see the module docstring for what passes)."""
    try:
        sent = interpolate(query.query, variables, time_range)
    except KeyError as exc:
        return CheckResult(query, query.query, False, str(exc.args[0]))
    unknown = unknown_names(sent, schema)
    if unknown:
        return CheckResult(query, sent, False, "unknown " + "; ".join(unknown))
    try:
        series = run(sent)
    except Exception as exc:  # noqa: BLE001 - any refusal is a failed check, reported with its text
        return CheckResult(query, sent, False, f"query failed: {exc}")
    n = has_values(series)
    if not n:
        measurements = set(_identifiers(sent)[0])
        reason = NOT_WRITTEN_YET if measurements and measurements <= schema.absent else NO_DATA
        return CheckResult(query, sent, False, reason, len(series), 0)
    return CheckResult(query, sent, True, "", len(series), n)


def _selected(doc: dict, selection: dict[str, tuple[str, ...]]) -> dict[str, Variable]:
    multi = variables_of(doc)
    return {name: Variable(tuple(values), multi.get(name, True))
            for name, values in {**custom_defaults(doc), **selection}.items()}


def _scoped(q: DashboardQuery, variables: dict[str, Variable]) -> list[dict[str, Variable]]:
    """The variables of each copy Grafana draws of ``q``'s panel: one per value of a repeat variable."""
    if q.repeat and q.repeat in variables:
        return [{**variables, q.repeat: Variable((one,), False)} for one in variables[q.repeat].values]
    return [variables]


def check_dashboard(doc: dict, run: QueryRunner, schema: Schema, selection: dict[str, tuple[str, ...]],
                    time_range: TimeRange) -> list[CheckResult]:
    """Check every query of ``doc`` with the variables set to ``selection``.

    Custom (fixed-choice) variables not in ``selection`` keep the value the
    dashboard opens with. A repeated panel is checked once per value of its
    repeat variable, as Grafana draws one copy per value.
    """
    variables = _selected(doc, selection)
    return [check(q, run, schema, scoped, time_range)
            for q in dashboard_queries(doc) for scoped in _scoped(q, variables)]


# --- can Grafana draw the lines? ----------------------------------------------------------------------

#: The time ranges besides the dashboard's default over which every line is drawn.
DRAW_RANGES_MS = {"1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000}


@dataclass(frozen=True)
class DrawResult:
    """Whether every line of one panel target would be drawn over one time range."""

    query: DashboardQuery
    range_name: str
    interval: str
    sent: str
    ok: bool
    reason: str = ""
    lines: int = 0

    @property
    def name(self) -> str:
        return f"{self.query.name} over {self.range_name} at {self.interval}"


def line_panels(doc: dict) -> list[dict]:
    """The time-series panels of ``doc`` that draw lines (not bars or points)."""
    return [p for p in doc.get("panels", []) if p["type"] == "timeseries" and influx_targets(p)
            and p["fieldConfig"]["defaults"].get("custom", {}).get("drawStyle", "line") == "line"]


def range_ms(text: str) -> int:
    """A dashboard's relative time range (``now-6h``) in milliseconds.

    Examples
    --------
    >>> range_ms("now-6h"), range_ms("now-7d")
    (21600000, 604800000)
    """
    return interval_ms(text.removeprefix("now-"))


def isolated_lines(series: list[dict]) -> list[str]:
    """The lines (series x value column) that hold values but no two adjacent non-null ones.

    Grafana joins only adjacent non-null points of a line when ``spanNulls`` is off, so such a
    line shows nothing. Rows are the ``GROUP BY time()`` buckets, in order.

    Examples
    --------
    >>> rows = [[0, 1.0, 5.0], [1, None, 6.0], [2, 2.0, None]]
    >>> isolated_lines([{"name": "health", "tags": {"asset": "p1"}, "columns": ["time", "a", "b"], "values": rows}])
    ['health {asset=p1} a']
    """
    out = []
    for s in series:
        columns = s["columns"]
        rows = s.get("values", [])
        for i, column in enumerate(columns):
            if column == "time":
                continue
            present = [r[i] is not None and not (isinstance(r[i], float) and math.isnan(r[i])) for r in rows]
            if any(present) and not any(a and b for a, b in itertools.pairwise(present)):
                tags = ",".join(f"{k}={v}" for k, v in sorted((s.get("tags") or {}).items()))
                out.append(f"{s['name']}{f' {{{tags}}}' if tags else ''} {column}")
    return out


def check_drawable(doc: dict, run: QueryRunner, selection: dict[str, tuple[str, ...]], end_ms: int,
                   ranges_ms: dict[str, int] | None = None,
                   max_data_points: int = MAX_DATA_POINTS) -> list[DrawResult]:
    """Run every line panel's targets as Grafana would over each range ending at ``end_ms``; check each line draws.

    For each range (the dashboard's default, then :data:`DRAW_RANGES_MS`), the
    interval is Grafana's: ``range / max_data_points`` rounded to Grafana's nice
    intervals, not below the panel's minimum interval. A target fails when one
    of its lines has values but no two adjacent points; one that returns
    nothing is left to :func:`check` (no data is not a drawing problem).
    """
    ranges = {f"default ({doc['time']['from']})": range_ms(doc["time"]["from"]), **(ranges_ms or DRAW_RANGES_MS)}
    variables = _selected(doc, selection)
    results = []
    for panel in line_panels(doc):
        for t in influx_targets(panel):
            q = DashboardQuery(doc["title"], panel["title"], "target", t["refId"], t["query"], panel.get("repeat", ""))
            for name, length in ranges.items():
                interval = grafana_interval(length, panel.get("maxDataPoints") or max_data_points,
                                            panel.get("interval", ""))
                tr = TimeRange(end_ms - length, end_ms, interval)
                for scoped in _scoped(q, variables):
                    sent = interpolate(q.query, scoped, tr)
                    try:
                        series = run(sent)
                    except Exception as exc:  # noqa: BLE001 - reported like check() does
                        results.append(DrawResult(q, name, interval, sent, False, f"query failed: {exc}"))
                        continue
                    isolated = isolated_lines(series)
                    reason = ("no two adjacent points (nothing drawn): " + "; ".join(isolated[:5])
                              + (f" and {len(isolated) - 5} more" if len(isolated) > 5 else "")) if isolated else ""
                    results.append(DrawResult(q, name, interval, sent, not isolated, reason, len(series)))
    return results


def summarise_drawable(results: Iterable[DrawResult]) -> str:
    return "\n".join(f"{'drawn' if r.ok else 'FAIL '} {r.name}" + (f": {r.reason}" if r.reason else "")
                     for r in results)


def tag_values(run: QueryRunner, query: str) -> list[str]:
    """The values a ``SHOW TAG VALUES`` variable query returns."""
    return sorted({row[1] for s in run(query) for row in s["values"]})


def summarise(results: Iterable[CheckResult]) -> str:
    lines = []
    for r in results:
        status = "ok   " if r.ok else "EMPTY" if r.empty else "FAIL "
        detail = f"{r.series} series, {r.values} values" if r.ok else r.reason
        lines.append(f"{status} {r.query.name}: {detail}")
    return "\n".join(lines)
