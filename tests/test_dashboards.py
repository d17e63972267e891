"""Grafana dashboards: generated JSON is current, and every query returns data from a real pipeline run.

Grafana cannot run here, so each panel target, annotation and template
variable of the committed JSON is executed the way Grafana's InfluxDB
datasource would (variables substituted, InfluxQL sent) against the real
InfluxDB 1.x that the pipeline wrote to (``predmaint run --until-end`` in a
subprocess, real Tansu broker), and must name only measurements, fields and
tags that exist and return data. Of the measurements written only when
something happens, alerts and dead letters are in that run; undelivered alerts
(``delivery_deadletter``) are not: their queries must still be accepted, and
return data once ``predmaint notify`` has given up on a delivery. The push to Grafana is checked against a loopback HTTP server that
records what a Grafana would receive.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from predmaint.connectors.storage import open_reader
from predmaint.dashboards import build
from predmaint.dashboards.check import (
    NOT_WRITTEN_YET,
    DashboardQuery,
    Schema,
    TimeRange,
    Variable,
    check,
    check_dashboard,
    check_drawable,
    dashboard_queries,
    event_only_measurements,
    line_panels,
    summarise,
    summarise_drawable,
    tag_values,
)
from predmaint.dashboards.model import DATASOURCE_UID, PROMETHEUS_UID
from predmaint.dashboards.push import push
from predmaint.errors import DashboardError
from predmaint.pipelines import cli
from predmaint.pipelines.summary import DEFAULT_HEALTH_RULE
from predmaint.settings import AlertRuleSettings, Settings, load_settings
from tests.pipeline_runs import write_config

REPO = Path(__file__).resolve().parents[1]
JSON_FILES = sorted((REPO / "dashboards" / "json").glob("predmaint-*.json"))


def load_dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in JSON_FILES}


# --- the generated JSON --------------------------------------------------------------------------


def test_committed_json_matches_the_definitions():
    proc = subprocess.run([sys.executable, "-m", "predmaint.dashboards.build", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_fails_when_the_json_was_edited_by_hand(tmp_path):
    settings = load_settings()
    build.write(settings, tmp_path)
    assert build.differences(settings, tmp_path) == []
    edited = tmp_path / JSON_FILES[0].name
    edited.write_text(edited.read_text().replace('"refresh": "1m"', '"refresh": "5s"'))
    problems = build.differences(settings, tmp_path)
    assert len(problems) == 1 and edited.name in problems[0] and '"refresh"' in problems[0]
    (tmp_path / "predmaint-retired.json").write_text("{}")
    assert any("no longer generated" in p for p in build.differences(settings, tmp_path))


def rendered(settings) -> dict[str, dict]:
    """Dashboard uid -> JSON document, rendered from ``settings``."""
    return {json.loads(text)["uid"]: json.loads(text) for text in build.render(settings).values()}


def health_coloured(docs: dict[str, dict]) -> dict[tuple[str, str], list]:
    """(dashboard, panel title) -> threshold steps of every panel coloured like health (its base step is
    the colour of the rule's worst band, so never the type default green)."""
    out = {}
    for uid, doc in docs.items():
        for p in doc["panels"]:
            steps = p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
            if steps and steps[0]["color"] in ("dark-red", "red"):
                out[(uid, p["title"])] = [(s["color"], s["value"]) for s in steps]
    return out


def health_threshold_variable(docs: dict[str, dict]) -> tuple[list[str], str, str]:
    """The model comparison's ``health_threshold`` choices, its default, and its description."""
    v = next(v for v in docs["predmaint-models"]["templating"]["list"] if v["name"] == "health_threshold")
    return [o["value"] for o in v["options"]], v["current"]["value"], v["description"]


def test_health_colours_and_threshold_choices_follow_the_health_alert_rule():
    settings = load_settings()
    packaged = next(r for r in settings.alert_rules if r.metric == "health")
    iso = next(r for r in settings.alert_rules if r.metric != "health")
    strict = AlertRuleSettings(name="health_strict", warning=80.0, alarm=60.0, critical=40.0, clear_at=90.0)
    loose = AlertRuleSettings(name="health_loose", warning=20.0, alarm=15.0, critical=5.0, clear_at=35.0)

    def steps(rule):
        return [("dark-red", None), ("red", rule.critical), ("orange", rule.alarm), ("yellow", rule.warning),
                ("green", rule.clear_at)]

    default_docs = rendered(settings)
    default = health_coloured(default_docs)
    # The health panels of the fleet, asset and model dashboards, timeseries and tables.
    assert {uid for uid, _ in default} == {"predmaint-fleet", "predmaint-asset", "predmaint-models"}
    assert len(default) == 5 and all(s == steps(packaged) for s in default.values())
    levels = [f"{v:g}" for v in (packaged.warning, packaged.alarm, packaged.critical, packaged.clear_at)]
    assert health_threshold_variable(default_docs)[:2] == (levels, levels[0])
    # The first rule on health counts, wherever it stands; later ones do not.
    docs = rendered(settings.replace(alert_rules=(iso, strict, loose)))
    coloured = health_coloured(docs)
    assert coloured.keys() == default.keys() and all(s == steps(strict) for s in coloured.values())
    choices, current, description = health_threshold_variable(docs)
    assert (choices, current) == (["80", "60", "40", "90"], "80") and "health_strict" in description
    health = next(p for p in docs["predmaint-fleet"]["panels"] if p["title"].startswith("Health per asset"))
    assert "warning at or below 80" in health["description"]
    # The pipeline dashboard shows no health: the rule does not change it.
    assert docs["predmaint-pipeline"] == default_docs["predmaint-pipeline"]


def test_without_a_health_alert_rule_the_dashboards_say_so_and_use_the_default_rule():
    settings = load_settings()
    iso_only = settings.replace(alert_rules=tuple(r for r in settings.alert_rules if r.metric != "health"))
    docs = rendered(iso_only)
    rule = DEFAULT_HEALTH_RULE
    # The rule predmaint applies when alert_rules is left out: alarm and clear_at only.
    assert rule.metric == "health" and rule == Settings().alert_rules[0]
    assert rule.warning is None and rule.critical is None
    expected = [("red", None), ("yellow", rule.alarm), ("green", rule.clear_at)]
    coloured = health_coloured(docs)
    assert len(coloured) == 5 and all(s == expected for s in coloured.values())
    choices, current, description = health_threshold_variable(docs)
    assert choices == [f"{rule.alarm:g}", f"{rule.clear_at:g}"] and current == choices[0]
    assert "no alert rule watches health" in description


def test_dashboards_use_the_provisioned_influxql_datasource_and_fit_the_grid():
    provisioned = yaml.safe_load((REPO / "dashboards/provisioning/datasources/influxdb.yaml").read_text())
    assert [d["uid"] for d in provisioned["datasources"]] == [DATASOURCE_UID]
    docs = load_dashboards()
    assert len(docs) == 4
    assert len({d["uid"] for d in docs.values()}) == 4
    for name, doc in docs.items():
        assert doc["schemaVersion"] >= 39 and doc["tags"] == ["predmaint"], name
        # InfluxDB everywhere, except the live panels, whose targets are all PromQL on the Prometheus datasource.
        influx, prometheus = {"type": "influxdb", "uid": DATASOURCE_UID}, {"type": "prometheus", "uid": PROMETHEUS_UID}
        refs = [v["datasource"] for v in doc["templating"]["list"] if v["type"] == "query"]
        refs += [a["datasource"] for a in doc["annotations"]["list"] if not a.get("builtIn")]
        for p in doc["panels"]:
            refs += [p["datasource"]] if p["datasource"] != prometheus else []
            assert all(t["datasource"] == p["datasource"] for t in p["targets"]), (name, p["title"])
        assert all(r == influx for r in refs), name
        assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"]), name
        for p in doc["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (name, p["title"])
            assert p["targets"] and all(t.get("rawQuery") or "expr" in t for t in p["targets"]), (name, p["title"])
        for q in dashboard_queries(doc):
            # InfluxQL only: Flux is absent from InfluxDB 3.x.
            assert "from(bucket" not in q.query and "|>" not in q.query, q.name
        names = {v["name"] for v in doc["templating"]["list"]}
        assert {"site", "line", "asset"} <= names, name


# --- every query against a real pipeline run ------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard_run(pipeline_run):
    """The shared pipeline run (tests/conftest.py), its InfluxQL runner and the schema it wrote."""
    settings = pipeline_run[1]
    run = open_reader(settings.storage).query
    return settings, run, Schema.load(run)


def undelivered(query: str) -> bool:
    return '"delivery_deadletter"' in query


def time_range(settings) -> TimeRange:
    """The simulated period, stretched to now: dead letters carry their Kafka arrival time, not event time."""
    start = datetime.fromisoformat(settings.simulator.start.replace("Z", "+00:00"))
    start_ms = int(start.timestamp() * 1000)
    end_ms = max(start_ms + int(settings.simulator.hours * 3600 * 1000), int(time.time() * 1000)) + 60_000
    return TimeRange(start_ms, end_ms).with_grafana_interval()


def selection(settings, run, which: str) -> dict[str, tuple[str, ...]]:
    """Template-variable values: the faulty asset alone, or everything ("All").

    The faulty asset comes first, so a single-value variable (Asset detail's
    asset) shows the asset that has alerts.
    """
    fault = settings.asset(settings.simulator.faults[0].asset)
    values = {key: tag_values(run, f'SHOW TAG VALUES FROM "health" WITH KEY = "{key}"')
              for key in ("site", "line", "asset", "model")}
    values["asset"] = [fault.asset] + [a for a in values["asset"] if a != fault.asset]
    if which == "faulty asset":
        values.update(site=[fault.site], line=[fault.line], asset=[fault.asset])
    # health_threshold, a custom variable, keeps the value the dashboard opens with.
    return {k: tuple(v) for k, v in values.items()}


@pytest.mark.integration
@pytest.mark.parametrize("which", ["faulty asset", "all"])
def test_every_panel_query_returns_data(dashboard_run, which):
    settings, run, schema = dashboard_run
    chosen = selection(settings, run, which)
    results = []
    for doc in load_dashboards().values():
        results += check_dashboard(doc, run, schema, chosen, time_range(settings))
    # The run has no delivery dead letters: those queries were sent and accepted, and are empty.
    not_yet = [r for r in results if r.reason == NOT_WRITTEN_YET]
    failed = [r for r in results if not r.ok and r not in not_yet]
    report = summarise(results)
    print(f"\n{which}: {len(results) - len(failed)}/{len(results)} queries returned data or "
          f"name a measurement not written yet\n{report}")
    assert not failed, "\n".join(f"{r.query.name}: {r.reason}\n    {r.sent}" for r in failed)
    assert {r.query for r in not_yet} == {q for d in load_dashboards().values() for q in dashboard_queries(d)
                                          if undelivered(q.query)}
    assert len(not_yet) == 2
    panels = sum(1 for d in load_dashboards().values() for p in d["panels"] if p["datasource"]["uid"] == DATASOURCE_UID)
    assert sum(r.query.kind == "target" for r in results) >= panels


@pytest.mark.integration
def test_schema_loads_in_three_queries_and_matches_asking_each_measurement(dashboard_run):
    _, run, schema = dashboard_run
    sent = []

    def counting(q: str) -> list[dict]:
        sent.append(q)
        return run(q)

    again = Schema.load(counting, event_only={})
    assert sent == ["SHOW MEASUREMENTS", "SHOW FIELD KEYS", "SHOW TAG KEYS"]
    names = {row[0] for s in run("SHOW MEASUREMENTS") for row in s["values"]}
    assert {"features", "health", "alerts", "deadletters"} <= names == again.fields.keys() == again.tags.keys()
    for name in names:  # what one query per measurement and kind of key (the old way) answers
        assert again.fields[name] == {r[0] for s in run(f'SHOW FIELD KEYS FROM "{name}"') for r in s["values"]}
        assert again.tags[name] == {r[0] for s in run(f'SHOW TAG KEYS FROM "{name}"') for r in s["values"]}
    # By default the measurements written only when something happens are known from their writers; the
    # run had alerts and rejected inputs but no undelivered alert, so only that one is marked absent.
    assert schema.absent == {"delivery_deadletter"} == set(event_only_measurements()) - names
    for name in ("alerts", "deadletters"):  # what the pipeline wrote is within what the checker declares
        fields, tags = event_only_measurements()[name]
        assert again.fields[name] <= fields and again.tags[name] <= tags


class Gone(BaseHTTPRequestHandler):
    """A webhook target that refuses every delivery for good (410), so notify dead-letters at once."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(410)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.mark.integration
def test_undelivered_alert_panels_show_what_predmaint_notify_gave_up_on(pipeline_run, broker, influxdb, tmp_path):
    settings = pipeline_run[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gone)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # The shared run's alerts topic, delivered to a target that refuses them; dead letters go
        # to a database of their own, so the shared run's database keeps none.
        target = {"name": "gone", "kind": "webhook", "url": f"http://127.0.0.1:{server.server_address[1]}/alerts",
                  "timeout_s": 5}
        config = write_config(tmp_path, "undelivered", broker, influxdb, "dash_undelivered", "e2e", [target])
        proc = subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), "notify",
                               "--exit-when-idle", "2"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        server.shutdown()
        server.server_close()
    run = open_reader(load_settings(config).storage).query
    written = Schema.load(run, event_only={})
    schema = Schema.load(run)
    assert "delivery_deadletter" in written.fields and "delivery_deadletter" not in schema.absent
    # What notify really wrote is within the keys the checker declares for the measurement.
    fields, tags = event_only_measurements()["delivery_deadletter"]
    assert written.fields["delivery_deadletter"] <= fields and written.tags["delivery_deadletter"] <= tags
    doc = load_dashboards()["predmaint-pipeline.json"]
    queries = [q for q in dashboard_queries(doc) if undelivered(q.query)]
    results = [check(q, run, schema, {}, time_range(settings)) for q in queries]
    assert len(results) == 2 and all(r.ok for r in results), summarise(results)
    table = run(next(r.sent for r in results if "LIMIT" in r.sent))
    rows = [dict(zip(s["columns"], row)) | s.get("tags", {}) for s in table for row in s["values"]]
    assert rows and all(r["target"] == "gone" and r["http_status"] == 410 and r["permanent"] for r in rows)


@pytest.mark.integration
def test_template_variables_list_the_fleet_and_models(dashboard_run):
    settings, run, _ = dashboard_run
    def show(key: str) -> list[str]:
        return tag_values(run, f'SHOW TAG VALUES FROM "health" WITH KEY = "{key}"')

    assert show("site") == sorted({a.site for a in settings.fleet})
    assert show("asset") == sorted(a.asset for a in settings.fleet)
    models = show("model")
    assert models == sorted(m.label for m in (settings.model, *settings.challengers)) and len(models) >= 2
    fault = settings.asset(settings.simulator.faults[0].asset)
    line_query = next(v["query"]["query"] for v in load_dashboards()["predmaint-fleet.json"]["templating"]["list"]
                      if v["name"] == "asset")
    narrowed = tag_values(run, line_query.replace("$site", fault.site).replace("$line", fault.line))
    assert narrowed == sorted(a.asset for a in settings.fleet if a.line == fault.line and a.site == fault.site)


def data_end_ms(settings) -> int:
    """The end of the simulated period: the ranges Grafana would show end there."""
    start = datetime.fromisoformat(settings.simulator.start.replace("Z", "+00:00"))
    return int((start.timestamp() + settings.simulator.hours * 3600) * 1000)


@pytest.mark.integration
@pytest.mark.parametrize("which", ["faulty asset", "all"])
def test_every_line_is_drawn_at_the_interval_grafana_would_choose(dashboard_run, which):
    settings, run, _ = dashboard_run
    chosen = selection(settings, run, which)
    docs = load_dashboards().values()
    results = [r for doc in docs for r in check_drawable(doc, run, chosen, data_end_ms(settings))]
    failed = [r for r in results if not r.ok]
    assert not failed, summarise_drawable(failed)
    # The default range and 1 h, 24 h, 7 d, each at Grafana's interval, never below the window length.
    assert {r.range_name for r in results} == {"default (now-6h)", "1h", "24h", "7d"}
    assert {r.interval for r in results} == {"5m"}
    # Every line panel had lines to draw (so the check looked at real series).
    panels = {(d["title"], p["title"]) for d in docs for p in line_panels(d)}
    assert len(panels) >= 10 and {(r.query.dashboard, r.query.panel) for r in results if r.lines} == panels


@pytest.mark.integration
def test_a_line_panel_without_a_minimum_interval_draws_nothing_and_the_check_fails(dashboard_run):
    settings, run, _ = dashboard_run
    fleet = load_dashboards()["predmaint-fleet.json"]
    (health,) = [p for p in fleet["panels"] if p["title"].startswith("Health per asset")]
    assert health["interval"] == "5m"
    bare = {**fleet, "panels": [{k: v for k, v in health.items() if k != "interval"}]}
    by_range = {r.range_name: r for r in check_drawable(bare, run, selection(settings, run, "all"),
                                                        data_end_ms(settings))}
    # Grafana's own choice on a wide panel: 10 s at 6 h, 2 s at 1 h, 1 min at 24 h: one window in
    # every 30, 150 or 5 buckets, never two adjacent; at 7 d it picks 5 min by itself.
    assert {name: (r.interval, r.ok) for name, r in by_range.items()} == {
        "default (now-6h)": ("10s", False), "1h": ("2s", False), "24h": ("1m", False), "7d": ("5m", True)}
    assert all("no two adjacent points" in r.reason and "pump-03" in r.reason
               for r in by_range.values() if not r.ok)
    # The same panel with its minimum interval draws over every range.
    assert all(r.ok for r in check_drawable({**fleet, "panels": [health]}, run, selection(settings, run, "all"),
                                            data_end_ms(settings)))


@pytest.mark.integration
def test_dashboards_check_command_draws_every_line_over_the_four_ranges(pipeline_run, capsys):
    tmp, settings, _ = pipeline_run
    end = datetime.fromtimestamp(data_end_ms(settings) / 1000, tz=timezone.utc).isoformat()
    assert cli.main(["--config", str(tmp / "w1.yaml"), "dashboards", "check", "--end", end]) == 0
    out = capsys.readouterr().out
    drawn = [line for line in out.splitlines() if line.startswith("drawn ")]
    assert drawn and not [line for line in out.splitlines() if line.startswith("FAIL")], out
    for name in ("default (now-6h)", "1h", "24h", "7d"):
        assert any(f"over {name} at 5m" in line for line in drawn), name


@pytest.mark.integration
def test_checker_rejects_names_the_pipeline_does_not_write(dashboard_run):
    settings, run, schema = dashboard_run
    tr = time_range(settings)
    everything = selection(settings, run, "all")

    def verdict(query: str):
        q = DashboardQuery("negative", "probe", "target", "A", query)
        return check(q, run, schema, {k: Variable(v) for k, v in everything.items()}, tr)

    good = verdict('SELECT mean("velocity_rms_mm_s") FROM "features" WHERE "asset" =~ /^$asset$/ AND $timeFilter '
                   'GROUP BY time($__interval)')
    assert good.ok, good.reason
    # InfluxDB answers a misspelt field with an empty result, not an error...
    misspelt = 'SELECT mean("velocity_rms") FROM "features" WHERE $timeFilter GROUP BY time($__interval)'
    assert run(misspelt.replace("$timeFilter", "time > 0").replace("$__interval", "1h")) == []
    # ...which the checker reports as an unknown field, not as "no data".
    bad_field = verdict(misspelt)
    assert not bad_field.ok and 'unknown field or tag "velocity_rms"' in bad_field.reason
    bad_measurement = verdict('SELECT mean("health") FROM "vibration" WHERE $timeFilter')
    assert not bad_measurement.ok and 'measurement "vibration"' in bad_measurement.reason
    bad_tag = verdict('SELECT mean("health") FROM "health" WHERE "machine" =~ /^$asset$/ AND $timeFilter')
    assert not bad_tag.ok and '"machine"' in bad_tag.reason
    empty = verdict('SELECT mean("health") FROM "health" WHERE "asset" = \'ghost-asset\' AND $timeFilter')
    assert not empty.ok and empty.reason == "no data"
    unset = verdict('SELECT mean("health") FROM "health" WHERE "asset" =~ /^$machine$/')
    assert not unset.ok and "$machine" in unset.reason


# --- push to Grafana -----------------------------------------------------------------------------


class RecordingGrafana(BaseHTTPRequestHandler):
    """Answers the three Grafana HTTP API calls ``push`` makes and records them."""

    requests: list = []
    folders: list = []
    status = 200

    def log_message(self, *args):  # keep the test output clean
        pass

    def _answer(self, code: int, doc) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((self.command, self.path, self.headers.get("Authorization"), body))
        return body

    def do_GET(self):
        self._record()
        if self.status != 200:
            return self._answer(self.status, {"message": "invalid API key"})
        if self.path.startswith("/api/folders"):
            return self._answer(200, self.folders)
        self._answer(404, {"message": "not found"})

    def do_POST(self):
        body = self._record()
        if self.path == "/api/folders":
            folder = {"uid": "f-" + body["title"], "title": body["title"]}
            self.folders.append(folder)
            return self._answer(200, folder)
        if self.path == "/api/dashboards/db":
            uid = body["dashboard"]["uid"]
            return self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x", "version": 1})
        self._answer(404, {"message": "not found"})


@pytest.fixture
def grafana():
    RecordingGrafana.requests, RecordingGrafana.folders, RecordingGrafana.status = [], [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", RecordingGrafana
    server.shutdown()
    server.server_close()


def test_push_creates_the_folder_once_and_overwrites_dashboards_with_the_token(grafana, caplog):
    url, recorder = grafana
    token = "glsa_secret-token-0123456789"
    caplog.set_level(logging.DEBUG)
    urls = push(url, token, "predmaint")
    push(url, token, "predmaint")
    assert sorted(urls) == sorted(f"/d/{d['uid']}/x" for d in load_dashboards().values())
    assert all(auth == f"Bearer {token}" for _, _, auth, _ in recorder.requests)
    created = [r for r in recorder.requests if r[:2] == ("POST", "/api/folders")]
    assert len(created) == 1, "the second push must reuse the folder"
    posted = [body for method, path, _, body in recorder.requests if path == "/api/dashboards/db"]
    assert len(posted) == 8
    assert all(b["overwrite"] and b["folderUid"] == "f-predmaint" for b in posted)
    # What is pushed is what is committed (same fleet): Grafana and the provisioned files agree.
    assert {b["dashboard"]["uid"]: b["dashboard"] for b in posted[:4]} == \
        {d["uid"]: d for d in load_dashboards().values()}
    assert token not in caplog.text


def test_push_refused_reports_grafana_not_the_token(grafana, monkeypatch, capsys, caplog):
    url, recorder = grafana
    recorder.status = 401
    token = "glsa_secret-token-0123456789"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DashboardError, match="401") as err:
        push(url, token, "predmaint")
    assert token not in str(err.value) and token not in caplog.text
    # The command reads the token from the environment and exits non-zero without echoing it.
    monkeypatch.setenv("GRAFANA_TOKEN", token)
    # Through the command line, where errors become messages and exit codes.
    assert cli.main(["dashboards", "push", "--url", url]) == 1
    out = capsys.readouterr()
    assert "401" in out.err and token not in out.out + out.err
    monkeypatch.delenv("GRAFANA_TOKEN")
    assert cli.main(["dashboards", "push", "--url", url]) == 2 and "GRAFANA_TOKEN" in capsys.readouterr().err
