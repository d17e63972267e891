"""A small typed model of Grafana dashboard JSON (Grafana 11.3, InfluxDB datasource in InfluxQL mode).

Only what predmaint's dashboards use is modelled: time series, table, stat
and state-timeline panels with raw InfluxQL targets, query and custom
template variables, and InfluxQL annotations. Every object renders to the
JSON Grafana stores (``to_json``); :class:`Dashboard` lays panels out on
Grafana's 24-column grid in the order given, so definitions only say how
wide and tall a panel is.

Examples
--------
>>> panel = Panel("Health", targets=[Target('SELECT mean("health") FROM "health" WHERE $timeFilter')])
>>> doc = Dashboard("demo", "Demo", panels=[panel]).to_json()
>>> doc["panels"][0]["targets"][0]["datasource"]["uid"], doc["panels"][0]["gridPos"]
('predmaint-influxdb', {'h': 8, 'w': 12, 'x': 0, 'y': 0})
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: The datasource provisioned by ``dashboards/provisioning/datasources/influxdb.yaml``.
DATASOURCE_UID = "predmaint-influxdb"
#: The Prometheus datasource (``.../datasources/prometheus.yaml``): it scrapes ``predmaint run``'s ``/metrics``.
PROMETHEUS_UID = "predmaint-prometheus"
#: Schema version written by Grafana 11.0-11.2 and accepted by 11.3, which migrates it on load.
SCHEMA_VERSION = 39
#: Every predmaint dashboard carries this tag; dashboard links and ``push`` use it.
TAG = "predmaint"
GRID_COLUMNS = 24


def escape_regex(value: str) -> str:
    """Escape regex metacharacters the way Grafana's ``escapeRegex`` does (``-`` is left alone).

    Grafana applies this to multi-value variable values inside InfluxQL ``/.../`` literals,
    so ``/`` is escaped too.

    Examples
    --------
    >>> print(escape_regex("pump-01 (a/b)"))
    pump-01 \\(a\\/b\\)
    """
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


@dataclass(frozen=True)
class DatasourceRef:
    type: str = "influxdb"
    uid: str = DATASOURCE_UID

    def to_json(self) -> dict:
        return {"type": self.type, "uid": self.uid}


INFLUX = DatasourceRef()
PROMETHEUS = DatasourceRef("prometheus", PROMETHEUS_UID)


@dataclass(frozen=True)
class Target:
    """One raw InfluxQL query of a panel.

    ``alias`` uses Grafana's InfluxQL alias patterns (``$tag_asset``, ``$col``).
    ``result_format`` is ``time_series`` or ``table``.
    """

    query: str
    alias: str = ""
    result_format: str = "time_series"
    ref_id: str = ""

    def to_json(self, ref_id: str) -> dict:
        doc = {"refId": self.ref_id or ref_id, "datasource": INFLUX.to_json(), "query": self.query,
               "rawQuery": True, "resultFormat": self.result_format}
        if self.alias:
            doc["alias"] = self.alias
        return doc


@dataclass(frozen=True)
class PromTarget:
    """One PromQL query of a panel on the Prometheus datasource; ``legend`` uses ``{{label}}`` patterns."""

    expr: str
    legend: str = ""

    def to_json(self, ref_id: str) -> dict:
        return {"refId": ref_id, "datasource": PROMETHEUS.to_json(), "expr": self.expr, "range": True,
                "instant": False, "legendFormat": self.legend or "__auto", "editorMode": "code"}


@dataclass(frozen=True)
class Step:
    """A threshold step: ``color`` from ``value`` upwards (``None`` is the base step)."""

    color: str
    value: float | None = None

    def to_json(self) -> dict:
        return {"color": self.color, "value": self.value}


def thresholds(*steps: Step) -> dict:
    return {"mode": "absolute", "steps": [s.to_json() for s in steps]}


@dataclass(frozen=True)
class ValueText:
    """A value mapping: show ``value`` as ``text`` in ``color``."""

    value: str
    text: str
    color: str


def value_mappings(*items: ValueText) -> list[dict]:
    return [{"type": "value", "options": {i.value: {"text": i.text, "color": i.color, "index": n}
                                          for n, i in enumerate(items)}}]


@dataclass(frozen=True)
class Override:
    """Field properties for the fields a matcher selects (``byName``, ``byRegexp``, ``byFrameRefID``)."""

    matcher: str
    options: str
    properties: dict[str, Any]

    def to_json(self) -> dict:
        return {"matcher": {"id": self.matcher, "options": self.options},
                "properties": [{"id": k, "value": v} for k, v in self.properties.items()]}


@dataclass
class Panel:
    """A panel. ``type`` is a Grafana panel plugin id; ``defaults`` are field-config defaults
    (``unit``, ``min``, ``max``, ``thresholds``, ``mappings``, ``custom``...) merged over the type's own."""

    title: str
    targets: Sequence[Target | PromTarget] = field(default_factory=list)
    type: str = "timeseries"
    description: str = ""
    width: int = 12
    height: int = 8
    defaults: dict[str, Any] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict] = field(default_factory=list)
    #: Name of a multi-value variable: Grafana draws one copy of the panel per selected value.
    repeat: str = ""
    #: Grafana's "Min interval" query option: ``$__interval`` is never shorter (e.g. ``"5m"``,
    #: the window length, so that every interval holds a window and lines are continuous).
    min_interval: str = ""
    #: The panel's datasource; its targets must be of that kind (:class:`Target` for InfluxDB,
    #: :class:`PromTarget` for Prometheus).
    datasource: DatasourceRef = INFLUX

    def to_json(self, panel_id: int, x: int, y: int) -> dict:
        defaults = _merge(_TYPE_DEFAULTS.get(self.type, {}), self.defaults)
        doc = {
            "id": panel_id, "type": self.type, "title": self.title, "description": self.description,
            "datasource": self.datasource.to_json(),
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": [o.to_json() for o in self.overrides]},
            "options": _merge(_TYPE_OPTIONS.get(self.type, {}), self.options),
            "transformations": list(self.transformations),
        }
        if self.repeat:
            doc.update(repeat=self.repeat, repeatDirection="h", maxPerRow=3)
        if self.min_interval:
            doc["interval"] = self.min_interval
        return doc


@dataclass(frozen=True)
class QueryVariable:
    """A template variable filled by an InfluxQL query (``SHOW TAG VALUES ...``)."""

    name: str
    label: str
    query: str
    multi: bool = True
    include_all: bool = True

    def to_json(self) -> dict:
        doc = {
            "type": "query", "name": self.name, "label": self.label, "datasource": INFLUX.to_json(),
            "query": {"query": self.query, "refId": "InfluxVariableQueryEditor-VariableQuery"},
            "definition": self.query, "multi": self.multi, "includeAll": self.include_all,
            # Refresh on time-range change too: a newly added asset appears without reloading.
            "refresh": 2, "sort": 1, "regex": "", "hide": 0, "options": [],
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if self.include_all else {},
        }
        return doc


@dataclass(frozen=True)
class CustomVariable:
    """A template variable with fixed choices; the first is the default."""

    name: str
    label: str
    values: tuple[str, ...]
    description: str = ""

    def to_json(self) -> dict:
        options = [{"selected": i == 0, "text": v, "value": v} for i, v in enumerate(self.values)]
        return {"type": "custom", "name": self.name, "label": self.label, "description": self.description,
                "query": ",".join(self.values), "multi": False, "includeAll": False, "hide": 0,
                "current": {"selected": True, "text": self.values[0], "value": self.values[0]},
                "options": options}


@dataclass(frozen=True)
class Annotation:
    """Events from an InfluxQL query drawn on every time-series panel of the dashboard.

    ``text_column`` and ``tags_column`` (comma-separated) name selected columns.
    """

    name: str
    query: str
    color: str
    text_column: str = ""
    tags_column: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "datasource": INFLUX.to_json(), "enable": True, "hide": False,
                "iconColor": self.color,
                "target": {"refId": "Anno", "query": self.query, "rawQuery": True, "resultFormat": "table",
                           "fromAnnotations": True, "textEditor": True, "textColumn": self.text_column,
                           "tagsColumn": self.tags_column}}


_BUILT_IN_ANNOTATION = {
    "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
}


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str = ""
    panels: list[Panel] = field(default_factory=list)
    variables: Sequence[QueryVariable | CustomVariable] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    time_from: str = "now-6h"
    refresh: str = "1m"

    def to_json(self) -> dict:
        return {
            "id": None, "uid": self.uid, "title": self.title, "description": self.description,
            "tags": [TAG], "timezone": "utc", "editable": True, "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "fiscalYearStartMonth": 0, "liveNow": False,
            "time": {"from": self.time_from, "to": "now"}, "timepicker": {}, "refresh": self.refresh,
            "links": [{"type": "dashboards", "tags": [TAG], "title": "predmaint", "asDropdown": False,
                       "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False}],
            "annotations": {"list": [_BUILT_IN_ANNOTATION] + [a.to_json() for a in self.annotations]},
            "templating": {"list": [v.to_json() for v in self.variables]},
            "panels": self._layout(),
        }

    def _layout(self) -> list[dict]:
        """Place panels left to right, wrapping to a new row when the 24 columns are used up."""
        out, x, y, row_height = [], 0, 0, 0
        for i, panel in enumerate(self.panels, start=1):
            if x + panel.width > GRID_COLUMNS:
                x, y, row_height = 0, y + row_height, 0
            out.append(panel.to_json(i, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return out


def _merge(base: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` over ``base`` (dicts merge, everything else replaces)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_TYPE_DEFAULTS: dict[str, dict] = {
    "timeseries": {
        "color": {"mode": "palette-classic"},
        "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "pointSize": 4, "showPoints": "never",
                   # Gaps in data are real (a sensor that stops sending): do not draw across them.
                   "spanNulls": False, "axisPlacement": "auto", "thresholdsStyle": {"mode": "off"}},
        "thresholds": thresholds(Step("green")),
    },
    "table": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}},
              "thresholds": thresholds(Step("green"))},
    "stat": {"color": {"mode": "thresholds"}, "thresholds": thresholds(Step("green"))},
    "state-timeline": {"color": {"mode": "thresholds"}, "custom": {"fillOpacity": 80, "lineWidth": 0},
                       "thresholds": thresholds(Step("green"))},
}

_TYPE_OPTIONS: dict[str, dict] = {
    "timeseries": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                   "tooltip": {"mode": "multi", "sort": "none"}},
    "table": {"showHeader": True, "cellHeight": "sm",
              "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": ""}},
    "stat": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
             "colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto",
             "orientation": "auto"},
    "state-timeline": {"showValue": "auto", "mergeValues": True, "alignValue": "left", "rowHeight": 0.9,
                       "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                       "tooltip": {"mode": "single", "sort": "none"}},
}
