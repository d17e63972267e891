"""Alert event -> HTTP request mappers: every priority-table branch, every state."""

import json

import pytest

from predmaint.connectors import cmms
from predmaint.connectors.cmms import AlertMappingError, auth_headers, build_request, extract_work_order_id

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


# --------------------------------------------------------------------------- every kind x every state
# Literal requests, pinned field by field (header order included: it is the
# order on the wire), so a refactoring of the mappers cannot drift.

STATES = ("raised", "escalated", "renotified", "cleared")
OPEN_STATES = STATES[:-1]
JSON_HEADERS = [("Content-Type", "application/json"), ("Accept", "application/json")]
MAXIMO_HREF = "/maximo/api/os/mxapisr/_U1IvMTAwMQ--"
WORK_ORDER = {"maintainx": "4/2", "upkeep": "Ab/1", "maximo": "https://mx.example.com" + MAXIMO_HREF}
OPTIONS = {
    "maintainx": {"asset_ids": {"pump-03": 8901}, "defaults": {"locationId": 2345}},
    "upkeep": {"asset_ids": {"pump-03": "gHhn43LMh3"}, "defaults": {"category": "Predictive"}},
    "maximo": {"asset_ids": {"pump-03": "11430"}, "defaults": {"siteid": "BEDFORD"}},
}


def _create(kind, e):
    t, d, a = cmms.title(e), cmms.description(e), e["alert_id"]
    return {
        "maintainx": ("POST", "/v1/workorders", JSON_HEADERS,
                      {"title": t, "description": d, "priority": "HIGH",
                       "externalData": {"predmaintAlertId": a}, "assetId": 8901, "locationId": 2345}),
        "upkeep": ("POST", "/api/v2/work-orders", JSON_HEADERS,
                   {"title": t, "description": d, "priority": 3, "assetId": "gHhn43LMh3",
                    "category": "Predictive"}),
        # transactionid: Maximo refuses a second create of the alert (409) while it remembers the id.
        "maximo": ("POST", "/maximo/api/os/mxapisr?lean=1",
                   JSON_HEADERS + [("properties", "ticketid,href"), ("transactionid", f"predmaint-{a}")],
                   {"description": t[:100], "description_longdescription": d, "reportedpriority": 1,
                    "externalrecid": a, "assetnum": "11430", "siteid": "BEDFORD"}),
    }[kind]


def _update(kind, e):
    t, d = cmms.title(e), cmms.description(e)
    return {
        "maintainx": ("PATCH", "/v1/workorders/4%2F2", JSON_HEADERS,
                      {"title": t, "description": d, "priority": "HIGH"}),
        "upkeep": ("PATCH", "/api/v2/work-orders/Ab%2F1", JSON_HEADERS,
                   {"title": t, "description": d, "priority": 3}),
        "maximo": ("POST", MAXIMO_HREF + "?lean=1",
                   JSON_HEADERS + [("x-method-override", "PATCH"), ("patchtype", "MERGE")],
                   {"description": t[:100], "description_longdescription": d, "reportedpriority": 1}),
    }[kind]


def _close(kind, e):
    return {
        "maintainx": ("PATCH", "/v1/workorders/4%2F2/status", JSON_HEADERS, {"status": "DONE"}),
        "upkeep": ("PATCH", "/api/v2/work-orders/Ab%2F1", JSON_HEADERS,
                   {"status": "complete", "description": cmms.description(e)}),
        "maximo": ("POST", MAXIMO_HREF + "?action=wsmethod:changeStatus&lean=1",
                   JSON_HEADERS + [("x-method-override", "PATCH")],
                   {"status": "RESOLVED", "memo": "predmaint: alert 0123456789abcdef cleared"}),
    }[kind]


def _as_tuple(req):
    return req.method, req.path, list(req.headers.items()), req.json


@pytest.mark.parametrize("kind", ["maintainx", "upkeep", "maximo"])
@pytest.mark.parametrize("state", STATES)
def test_every_kind_and_state_without_work_order(kind, state):
    e = ev(state=state, severity="critical", rule="r" * 120)  # long title: Maximo truncates
    if state == "cleared":
        with pytest.raises(AlertMappingError, match="cleared alert without a"):
            build_request(kind, e, None, OPTIONS[kind])
        return
    req = build_request(kind, e, None, OPTIONS[kind])
    assert _as_tuple(req) == _create(kind, e)
    assert req.action == "create"


@pytest.mark.parametrize("kind", ["maintainx", "upkeep", "maximo"])
@pytest.mark.parametrize("state", STATES)
def test_every_kind_and_state_with_work_order(kind, state):
    e = ev(state=state, severity="critical", rule="r" * 120)
    req = build_request(kind, e, WORK_ORDER[kind], OPTIONS[kind])
    expected, action = (_close, "close") if state == "cleared" else (_update, "update")
    assert _as_tuple(req) == expected(kind, e)
    assert req.action == action
    # Creation-only options (asset map, defaults) never leak into later requests.
    assert not {"assetId", "assetnum", "locationId", "category", "siteid"} & set(req.json)


@pytest.mark.parametrize("kind,status", [("maintainx", "ON_HOLD"), ("upkeep", "onHold"), ("maximo", "CLOSED")])
def test_close_status_override_every_kind(kind, status):
    req = build_request(kind, ev(state="cleared"), WORK_ORDER[kind], {"close_status": status})
    assert req.json["status"] == status and req.action == "close"


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("severity", ["warning", "alarm", "critical"])
def test_webhook_every_state_and_severity(state, severity):
    e = ev(state=state, severity=severity)
    for wo in (None, "ignored"):
        req = build_request("webhook", e, wo, {"close_status": "x", "defaults": {"y": 1}})
        assert _as_tuple(req) == ("POST", "", JSON_HEADERS,
                                  {"type": f"alert.{state}", "timestamp": EVENT["time"], "data": e})
        assert req.action == "notify"


@pytest.mark.parametrize("kind", ["maintainx", "upkeep", "maximo"])
@pytest.mark.parametrize("state", OPEN_STATES)
@pytest.mark.parametrize("severity", ["warning", "alarm", "critical"])
def test_every_priority_in_every_open_state(kind, state, severity):
    expected = TABLES[kind][1][severity]
    for wo in (None, WORK_ORDER[kind]):
        req = build_request(kind, ev(state=state, severity=severity), wo)
        assert req.json[PRIORITY_FIELD[kind]] == expected, (state, wo)


def test_auth_headers_without_secret_or_unknown_kind():
    for kind in cmms.KINDS:
        assert auth_headers(kind, None) == {} and auth_headers(kind, "") == {}
    with pytest.raises(AlertMappingError, match="servicenow"):
        auth_headers("servicenow", "k")


def test_kinds_are_exactly_the_documented_ones():
    assert cmms.KINDS == ("webhook", "maintainx", "upkeep", "maximo")


def test_extract_work_order_id_json_shapes_every_json_kind():
    for kind in ("maintainx", "upkeep"):
        for doc, expected in [({"id": 5}, "5"), ({"result": {"id": "R"}}, "R"), ({"workOrder": {"id": 6}}, "6"),
                              ({"data": {"id": "D"}}, "D"), ({"id": ""}, None), ({"id": None}, None), ({}, None)]:
            assert extract_work_order_id(kind, 201, {}, json.dumps(doc).encode()) == expected, (kind, doc)
        # A Location header means nothing to these APIs.
        assert extract_work_order_id(kind, 201, {"Location": "http://h/x/9"}, b"") is None


def test_extract_work_order_id_maximo_prefers_location_and_keeps_path_only():
    body = b'{"href": "http://h/maximo/api/os/mxapisr/_BODY"}'
    assert extract_work_order_id("maximo", 201, {"LOCATION": "http://h/maximo/api/os/mxapisr/_HDR"}, body) \
        == "/maximo/api/os/mxapisr/_HDR"
    assert extract_work_order_id("maximo", 201, {}, b'{"href": "maximo/api/os/mxapisr/_REL"}') \
        == "/maximo/api/os/mxapisr/_REL"
    assert extract_work_order_id("maximo", 201, {}, b'{"id": 3}') is None
    assert extract_work_order_id("maximo", 302, {"Location": "http://h/x"}, b"") is None


# --------------------------------------------------------------------------- lookup before a second create

AID = EVENT["alert_id"]


def test_lookup_requests_are_the_documented_list_queries():
    since = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    mx = cmms.lookup_request("maintainx", EVENT, since)
    # createdAt[gte] reaches back LOOKUP_CLOCK_SKEW_S (an hour) before the create began; 200 is the API's maximum.
    assert (mx.method, mx.action, mx.json) == ("GET", "lookup", {})
    assert mx.path == "/v1/workorders?createdAt%5Bgte%5D=2027-01-15T07%3A00%3A00.000Z&limit=200"
    assert cmms.lookup_request("maintainx", EVENT, since, "c2").path.endswith("&limit=200&cursor=c2")
    assert cmms.lookup_request("upkeep", EVENT, since).path == "/api/v2/work-orders?isComplete=0&limit=100&offset=0"
    assert cmms.lookup_request("upkeep", EVENT, since, "200").path.endswith("&offset=200")
    mo = cmms.lookup_request("maximo", EVENT, since)
    assert mo.path == ("/maximo/api/os/mxapisr?lean=1&oslc.select=href%2Cticketid%2Cexternalrecid"
                       "&oslc.where=externalrecid%3D%220123456789abcdef%22")
    for kind in ("maintainx", "upkeep", "maximo"):
        names = {h.lower() for h in cmms.lookup_request(kind, EVENT, since).headers}
        assert not names & {"authorization", "session-token", "apikey"}  # credentials come at send time


def test_lookup_request_refuses_what_it_cannot_search():
    with pytest.raises(AlertMappingError, match="webhook targets have no work orders"):
        cmms.lookup_request("webhook", EVENT, 0.0)
    with pytest.raises(AlertMappingError, match="unknown target kind"):
        cmms.lookup_request("servicenow", EVENT, 0.0)
    with pytest.raises(AlertMappingError, match="without an alert id.*pump-03"):
        cmms.lookup_request("upkeep", ev(alert_id=None), 0.0)
    # A quote would end the oslc.where string early (and '%' makes it a LIKE): refused, not escaped.
    for bad in ('ab"c', "ab%", "a b"):
        with pytest.raises(AlertMappingError, match="cannot be searched for in maximo"):
            cmms.lookup_request("maximo", ev(alert_id=bad), 0.0)
    assert cmms.lookup_request("maintainx", ev(alert_id='ab"c'), 0.0).action == "lookup"  # a filter, not a query


def _body(doc):
    return json.dumps(doc).encode()


def _desc(alert):
    return cmms.description(ev(alert_id=alert, event_id=f"{alert}:0"))


def test_parse_lookup_maintainx():
    other, mine = {"id": 5, "description": _desc(AID + "0")}, {"id": 7, "description": _desc(AID)}
    found = cmms.parse_lookup("maintainx", EVENT, _body({"workOrders": [other, mine], "nextCursor": "n"}))
    assert found == cmms.LookupPage("7", None)
    # Not on this page: the cursor leads on. A longer alert id sharing the prefix is another alert.
    assert cmms.parse_lookup("maintainx", EVENT, _body({"workOrders": [other], "nextCursor": "n"})) == \
        cmms.LookupPage(None, "n")
    assert cmms.parse_lookup("maintainx", EVENT, _body({"workOrders": [], "nextCursor": None})) == cmms.LookupPage()
    assert cmms.parse_lookup("maintainx", EVENT, _body({"workOrders": [], "nextCursor": ""})) == cmms.LookupPage()
    # Deleted, id-less or description-less work orders are not adopted.
    for bad in ({"id": 7, "description": _desc(AID), "deletedAt": "2027-01-01T00:00:00.000Z"},
                {"id": None, "description": _desc(AID)}, {"id": 7}, {"id": 7, "description": 3}, "x"):
        assert cmms.parse_lookup("maintainx", EVENT, _body({"workOrders": [bad]})) == cmms.LookupPage()


def test_parse_lookup_upkeep_pages_by_offset():
    mine = {"id": "Ab1", "description": _desc(AID)}
    assert cmms.parse_lookup("upkeep", EVENT, _body({"success": True, "results": [mine]})) == \
        cmms.LookupPage("Ab1", None)
    full = [{"id": f"X{i}", "description": _desc(f"{i:016x}")} for i in range(100)]
    assert cmms.parse_lookup("upkeep", EVENT, _body({"results": full})) == cmms.LookupPage(None, "100")
    assert cmms.parse_lookup("upkeep", EVENT, _body({"results": full}), page="300") == cmms.LookupPage(None, "400")
    assert cmms.parse_lookup("upkeep", EVENT, _body({"results": full[:99]}), page="300") == cmms.LookupPage()
    assert cmms.parse_lookup("upkeep", EVENT, _body({"success": False})) == cmms.LookupPage()


def test_parse_lookup_maximo_keeps_the_href_path_and_checks_externalrecid():
    href = "https://mx.example.com" + MAXIMO_HREF
    assert cmms.parse_lookup("maximo", EVENT, _body({"member": [{"href": href, "externalrecid": AID}]})) == \
        cmms.LookupPage(MAXIMO_HREF, None)
    # A server that ignored the filter hands back other alerts' requests: never adopted.
    assert cmms.parse_lookup("maximo", EVENT, _body({"member": [{"href": href, "externalrecid": "x"}]})) == \
        cmms.LookupPage()
    assert cmms.parse_lookup("maximo", EVENT, _body({"member": [{"href": href}]})) == cmms.LookupPage(MAXIMO_HREF)
    for doc in ({"member": [{"externalrecid": AID}]}, {"member": "x"}, {"member": []}, []):
        assert cmms.parse_lookup("maximo", EVENT, _body(doc)) == cmms.LookupPage()


@pytest.mark.parametrize("kind", ["maintainx", "upkeep", "maximo"])
@pytest.mark.parametrize("body", [None, b"", b"<html>proxy error</html>", b"\xff\xfe", b"[1, 2]", b'"s"'])
def test_parse_lookup_of_an_unexpected_answer_finds_nothing(kind, body):
    assert cmms.parse_lookup(kind, EVENT, body) == cmms.LookupPage()


def test_only_maximo_creates_carry_a_transaction_id():
    for kind in ("maintainx", "upkeep"):
        assert "transactionid" not in build_request(kind, EVENT).headers
    assert build_request("maximo", EVENT).headers["transactionid"] == f"predmaint-{AID}"
    # Updates and closes never carry it: Maximo would refuse the second update of an alert within five minutes.
    assert "transactionid" not in build_request("maximo", ev(state="escalated"), MAXIMO_HREF).headers
    assert "transactionid" not in build_request("maximo", ev(state="cleared"), MAXIMO_HREF).headers
