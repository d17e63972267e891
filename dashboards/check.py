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
"""

from __future__ import annotations

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


def dashboard_queries(doc: dict) -> list[DashboardQuery]:
    """Every InfluxQL query of a dashboard JSON document: panel targets, annotations, variables."""
    title = doc["title"]
    out = []
    for panel in doc.get("panels", []):
        for t in panel.get("targets", []):
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


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range, epoch milliseconds, and the ``$__interval`` Grafana would pick for it."""

    from_ms: int
    to_ms: int
    interval: str = ""

    def with_grafana_interval(self, max_data_points: int = 1000) -> "TimeRange":
        return TimeRange(self.from_ms, self.to_ms, grafana_interval(self.to_ms - self.from_ms, max_data_points))


_NICE_INTERVALS_S = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
                     86400, 7 * 86400, 30 * 86400)


def grafana_interval(range_ms: int, max_data_points: int = 1000) -> str:
    """The smallest round interval giving at most ``max_data_points`` buckets (Grafana rounds similarly).

    Examples
    --------
    >>> grafana_interval(6 * 3600 * 1000, 100)
    '5m'
    >>> grafana_interval(30 * 86400 * 1000)
    '1h'
    """
    wanted_s = range_ms / 1000 / max_data_points
    seconds = next((s for s in _NICE_INTERVALS_S if s >= wanted_s), _NICE_INTERVALS_S[-1])
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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


def check_dashboard(doc: dict, run: QueryRunner, schema: Schema, selection: dict[str, tuple[str, ...]],
                    time_range: TimeRange) -> list[CheckResult]:
    """Check every query of ``doc`` with the variables set to ``selection``.

    Custom (fixed-choice) variables not in ``selection`` keep the value the
    dashboard opens with. A repeated panel is checked once per value of its
    repeat variable, as Grafana draws one copy per value.
    """
    multi = variables_of(doc)
    variables = {name: Variable(tuple(values), multi.get(name, True))
                 for name, values in {**custom_defaults(doc), **selection}.items()}
    results = []
    for q in dashboard_queries(doc):
        if q.repeat and q.repeat in variables:
            for one in variables[q.repeat].values:
                scoped = {**variables, q.repeat: Variable((one,), False)}
                results.append(check(q, run, schema, scoped, time_range))
        else:
            results.append(check(q, run, schema, variables, time_range))
    return results


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
