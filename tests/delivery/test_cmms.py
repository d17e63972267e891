"""Alert event -> HTTP request mappers: every priority-table branch, every state."""

import json

import pytest

from connectors import cmms
from connectors.cmms import AlertMappingError, auth_headers, build_request, extract_work_order_id

EVENT = {
    "v": 1, "event_id": "0123456789abcdef:1", "alert_id": "0123456789abcdef", "state": "raised",
    "severity": "alarm", "rule": "health_low", "site": "plant-1", "line": "line-a", "asset": "pump-03",
    "sensor": "de-accel", "time": "2026-11-23T12:05:00Z", "health": 23.5, "value": 23.5,
    "explanation": [{"feature": f"f{i}", "value": 0.9, "baseline_mean": 0.1, "z": 8.1} for i in range(7)],
    "model": "hst-v1", "notify": True,
}

TABLES = {
    "webhook": (cmms.WEBHOOK_SEVERITY, {"warning": "warning", "alarm": "alarm", "critical": "critical"}),
    "maintainx": (cmms.MAINTAINX_PRIORITY, {"warning": "LOW", "alarm": "MEDIUM", "critical": "HIGH"}),
    "upkeep": (cmms.UPKEEP_PRIORITY, {"warning": 1, "alarm": 2, "critical": 3}),
    "maximo": (cmms.MAXIMO_PRIORITY, {"warning": 3, "alarm": 2, "critical": 1}),
}
PRIORITY_FIELD = {"maintainx": "priority", "upkeep": "priority", "maximo": "reportedpriority"}


def ev(**kw):
    return dict(EVENT, **kw)


def test_tables_are_exactly_as_documented():
    for kind, (table, expected) in TABLES.items():
        assert table == expected, kind
    assert set(cmms.MAINTAINX_PRIORITY.values()) <= {"NONE", "LOW", "MEDIUM", "HIGH"}
    assert set(cmms.UPKEEP_PRIORITY.values()) <= {0, 1, 2, 3}


@pytest.mark.parametrize("kind", ["maintainx", "upkeep", "maximo"])
@pytest.mark.parametrize("severity", ["warning", "alarm", "critical"])
@pytest.mark.parametrize("wo", [None, "WO-7"])
def test_every_priority_branch_create_and_update(kind, severity, wo):
    req = build_request(kind, ev(severity=severity, state="raised" if wo is None else "escalated"), wo)
    assert req.json[PRIORITY_FIELD[kind]] == TABLES[kind][1][severity]
    assert req.action == ("create" if wo is None else "update")


@pytest.mark.parametrize("severity", ["warning", "alarm", "critical"])
def test_webhook_every_severity(severity):
    req = build_request("webhook", ev(severity=severity))
    assert req.json["data"]["severity"] == severity


@pytest.mark.parametrize("kind", ["webhook", "maintainx", "upkeep", "maximo"])
@pytest.mark.parametrize("bad", ["info", "CRITICAL", None, ""])
def test_unknown_severity_is_a_mapping_error(kind, bad):
    with pytest.raises(AlertMappingError) as ei:
        build_request(kind, ev(severity=bad))
    assert "pump-03" in str(ei.value) and "0123456789abcdef" in str(ei.value)


@pytest.mark.parametrize("kind", ["webhook", "maintainx", "upkeep", "maximo"])
def test_unknown_state_and_kind(kind):
    with pytest.raises(AlertMappingError):
        build_request(kind, ev(state="acknowledged"))
    with pytest.raises(AlertMappingError):
        build_request("servicenow", EVENT)
    with pytest.raises(AlertMappingError):
        auth_headers("servicenow", "k")


@pytest.mark.parametrize("state", ["raised", "escalated", "cleared"])
def test_generic_webhook_envelope(state):
    req = build_request("webhook", ev(state=state), work_order_id="ignored")
    assert (req.method, req.path, req.action) == ("POST", "", "notify")
    assert req.json["type"] == f"alert.{state}"
    assert req.json["timestamp"] == EVENT["time"]
    assert req.json["data"] == ev(state=state)
    # Deterministic compact body: retries send the same bytes.
    assert req.body_bytes() == build_request("webhook", ev(state=state)).body_bytes()
    assert b'": ' not in req.body_bytes() and b'", "' not in req.body_bytes()


def test_maintainx_requests():
    opts = {"asset_ids": {"pump-03": 8901}, "defaults": {"locationId": 2345}}
    c = build_request("maintainx", ev(severity="critical"), None, opts)
    assert (c.method, c.path, c.action) == ("POST", "/v1/workorders", "create")
    assert c.json["priority"] == "HIGH" and c.json["assetId"] == 8901 and c.json["locationId"] == 2345
    assert c.json["title"].startswith("CRITICAL pump-03")
    assert "pump-03" in c.json["description"] and "f4" in c.json["description"]
    assert "f5" not in c.json["description"]  # top 5 features only
    assert c.json["externalData"] == {"predmaintAlertId": "0123456789abcdef"}
    u = build_request("maintainx", ev(state="escalated", severity="critical"), "42")
    assert (u.method, u.path, u.json["priority"]) == ("PATCH", "/v1/workorders/42", "HIGH")
    x = build_request("maintainx", ev(state="cleared"), "42")
    assert (x.method, x.path, x.json, x.action) == ("PATCH", "/v1/workorders/42/status", {"status": "DONE"}, "close")
    x2 = build_request("maintainx", ev(state="cleared"), "42", {"close_status": "ON_HOLD"})
    assert x2.json == {"status": "ON_HOLD"}
    # Without asset map no assetId is invented.
    assert "assetId" not in build_request("maintainx", EVENT).json


def test_upkeep_requests():
    c = build_request("upkeep", ev(severity="warning"), None, {"asset_ids": {"pump-03": "gHhn43LMh3"}})
    assert (c.method, c.path, c.json["priority"], c.json["assetId"]) == ("POST", "/api/v2/work-orders", 1, "gHhn43LMh3")
    u = build_request("upkeep", ev(state="escalated", severity="critical"), "Ab/1")
    assert (u.method, u.path, u.json["priority"]) == ("PATCH", "/api/v2/work-orders/Ab%2F1", 3)
    x = build_request("upkeep", ev(state="cleared"), "Ab1")
    assert (x.method, x.json["status"], x.action) == ("PATCH", "complete", "close")


def test_maximo_requests():
    c = build_request("maximo", ev(severity="critical", rule="x" * 200), None,
                      {"asset_ids": {"pump-03": "11430"}, "defaults": {"siteid": "BEDFORD"}})
    assert (c.method, c.path) == ("POST", "/maximo/api/os/mxapisr?lean=1")
    assert c.json["reportedpriority"] == 1 and c.json["assetnum"] == "11430" and c.json["siteid"] == "BEDFORD"
    assert len(c.json["description"]) == 100  # Maximo DESCRIPTION column width
    assert "x" * 150 in c.json["description_longdescription"]
    assert c.json["externalrecid"] == "0123456789abcdef"
    assert c.headers["properties"] == "ticketid,href"
    href = "https://maximo.example.com/maximo/api/os/mxapisr/_U1IvMTAwMQ--"
    u = build_request("maximo", ev(state="escalated"), href)
    assert (u.method, u.path) == ("POST", "/maximo/api/os/mxapisr/_U1IvMTAwMQ--?lean=1")
    assert u.headers["x-method-override"] == "PATCH" and u.headers["patchtype"] == "MERGE"
    x = build_request("maximo", ev(state="cleared"), "/maximo/api/os/mxapisr/_U1IvMTAwMQ--")
    assert x.path == "/maximo/api/os/mxapisr/_U1IvMTAwMQ--?action=wsmethod:changeStatus&lean=1"
    assert x.json["status"] == "RESOLVED" and "patchtype" not in x.headers and x.action == "close"


@pytest.mark.parametrize("kind", ["maintainx", "upkeep", "maximo"])
def test_cleared_without_work_order_is_mapping_error(kind):
    with pytest.raises(AlertMappingError):
        build_request(kind, ev(state="cleared"), None)


def test_requests_carry_no_credentials():
    for kind in cmms.KINDS:
        for wo in (None, "1"):
            for state in ("raised", "escalated", "cleared"):
                if state == "cleared" and wo is None and kind != "webhook":
                    continue
                req = build_request(kind, ev(state=state), wo)
                names = {h.lower() for h in req.headers}
                assert not names & {"authorization", "session-token", "apikey"}


def test_auth_headers():
    assert auth_headers("maintainx", "k1") == {"Authorization": "Bearer k1"}
    assert auth_headers("upkeep", "k2") == {"Session-Token": "k2"}
    assert auth_headers("maximo", "k3") == {"apikey": "k3"}
    assert auth_headers("webhook", "k4") == {}
    assert auth_headers("maintainx", None) == {}


def test_extract_work_order_id_variants():
    assert extract_work_order_id("maintainx", 201, {}, json.dumps({"id": 7}).encode()) == "7"
    assert extract_work_order_id("maintainx", 200, {}, b'{"workOrder": {"id": 8}}') == "8"
    assert extract_work_order_id("upkeep", 200, {}, b'{"success": true, "result": {"id": "X"}}') == "X"
    assert extract_work_order_id("upkeep", 200, {}, b"not json") is None
    assert extract_work_order_id("upkeep", 200, {}, b"[1]") is None
    assert extract_work_order_id("maintainx", 500, {}, b'{"id": 1}') is None
    assert extract_work_order_id("webhook", 200, {}, b'{"id": 1}') is None
    assert extract_work_order_id("maximo", 201, {}, b'{"href": "http://h/maximo/api/os/mxapisr/_A"}') \
        == "/maximo/api/os/mxapisr/_A"
    assert extract_work_order_id("maximo", 201, {"location": "http://h/maximo/api/os/mxapisr/_B"}, b"") \
        == "/maximo/api/os/mxapisr/_B"
    assert extract_work_order_id("maximo", 201, {}, b"") is None
