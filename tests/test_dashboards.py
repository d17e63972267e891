"""Grafana dashboards: generated JSON is current, and every query returns data from a real pipeline run.

Grafana cannot run here, so each panel target, annotation and template
variable of the committed JSON is executed the way Grafana's InfluxDB
datasource would (variables substituted, InfluxQL sent) against the real
InfluxDB 1.x that the pipeline wrote to (``predmaint run --until-end`` in a
subprocess, real Tansu broker), and must name only measurements, fields and
tags that exist and return data. The push to Grafana is checked against a
loopback HTTP server that records what a Grafana would receive.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from connectors.storage import open_reader
from dashboards import build
from dashboards.check import (
    DashboardQuery,
    Schema,
    TimeRange,
    Variable,
    check,
    check_dashboard,
    dashboard_queries,
    summarise,
    tag_values,
)
from dashboards.model import DATASOURCE_UID
from dashboards.push import PushError, add_parser, push
from pipelines.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
JSON_FILES = sorted((REPO / "dashboards" / "json").glob("predmaint-*.json"))


def load_dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in JSON_FILES}


# --- the generated JSON --------------------------------------------------------------------------


def test_committed_json_matches_the_definitions():
    proc = subprocess.run([sys.executable, "-m", "dashboards.build", "--check"], cwd=REPO,
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


def test_dashboards_use_the_provisioned_influxql_datasource_and_fit_the_grid():
    provisioned = yaml.safe_load((REPO / "dashboards/provisioning/datasources/influxdb.yaml").read_text())
    assert [d["uid"] for d in provisioned["datasources"]] == [DATASOURCE_UID]
    docs = load_dashboards()
    assert len(docs) == 4
    assert len({d["uid"] for d in docs.values()}) == 4
    for name, doc in docs.items():
        assert doc["schemaVersion"] >= 39 and doc["tags"] == ["predmaint"], name
        refs = [p["datasource"] for p in doc["panels"]]
        refs += [t["datasource"] for p in doc["panels"] for t in p["targets"]]
        refs += [v["datasource"] for v in doc["templating"]["list"] if v["type"] == "query"]
        refs += [a["datasource"] for a in doc["annotations"]["list"] if not a.get("builtIn")]
        assert all(r == {"type": "influxdb", "uid": DATASOURCE_UID} for r in refs), name
        assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"]), name
        for p in doc["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (name, p["title"])
            assert p["targets"] and all(t["rawQuery"] for t in p["targets"]), (name, p["title"])
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
    out = {k: tuple(v) for k, v in values.items()}
    out["health_threshold"] = ("50",)
    return out


@pytest.mark.integration
@pytest.mark.parametrize("which", ["faulty asset", "all"])
def test_every_panel_query_returns_data(dashboard_run, which):
    settings, run, schema = dashboard_run
    chosen = selection(settings, run, which)
    results = []
    for doc in load_dashboards().values():
        results += check_dashboard(doc, run, schema, chosen, time_range(settings))
    failed = [r for r in results if not r.ok]
    report = summarise(results)
    print(f"\n{which}: {len(results) - len(failed)}/{len(results)} queries returned data\n{report}")
    assert not failed, "\n".join(f"{r.query.name}: {r.reason}\n    {r.sent}" for r in failed)
    panels = sum(len(d["panels"]) for d in load_dashboards().values())
    assert sum(r.query.kind == "target" for r in results) >= panels


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
    with pytest.raises(PushError, match="401") as err:
        push(url, token, "predmaint")
    assert token not in str(err.value) and token not in caplog.text
    # The command reads the token from the environment and exits non-zero without echoing it.
    monkeypatch.setenv("GRAFANA_TOKEN", token)
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboards", "push", "--url", url])
    assert args.func(args) == 1
    out = capsys.readouterr()
    assert "401" in out.err and token not in out.out + out.err
    monkeypatch.delenv("GRAFANA_TOKEN")
    assert args.func(args) == 2 and "GRAFANA_TOKEN" in capsys.readouterr().err
