"""Map predmaint alert events to HTTP requests for webhooks and CMMS APIs.

Every mapper is a pure function: alert event (dict) in, :class:`HttpRequest`
out. The request carries method, path (relative to the target's base URL),
non-secret headers and the JSON body. Credentials are never part of an
:class:`HttpRequest`; :func:`auth_headers` adds them at send time so that a
request can be logged, compared in tests or stored without leaking a key.

Targets
-------
``webhook``
    Generic JSON webhook. ``POST`` to the configured URL; the body is a
    Standard Webhooks style envelope ``{"type": "alert.<state>",
    "timestamp": <event time>, "data": <event>}``; the caller signs it with
    :mod:`predmaint.connectors.webhooks` and uses the event id as ``webhook-id``, which
    receivers use to deduplicate at-least-once retransmissions.
``maintainx``
    ``POST /v1/workorders`` (``Authorization: Bearer <key>``) with title,
    description and priority ``NONE|LOW|MEDIUM|HIGH``; later events of the same
    alert ``PATCH /v1/workorders/{id}``; a cleared alert sets the status to
    ``DONE`` through ``PATCH /v1/workorders/{id}/status``.
``upkeep``
    ``POST /api/v2/work-orders`` (``Session-Token`` header) with priority
    0-3 and ``assetId``; updates and completion (``status: complete``) use
    ``PATCH /api/v2/work-orders/{id}``.
``maximo``
    IBM Maximo service request: ``POST /maximo/api/os/mxapisr?lean=1``
    (``apikey`` header). The created resource's ``href`` identifies it;
    updates ``POST {href}?lean=1`` with ``x-method-override: PATCH`` and
    ``patchtype: MERGE``; a cleared alert calls the ``changeStatus`` action
    (status ``RESOLVED`` by default).

Each CMMS is one :class:`_CmmsSpec` entry in ``_SPECS`` (paths, priorities,
credential header, how work orders are identified); supporting another CMMS
means adding an entry there.

The caller keeps the alert-id -> work-order-id map (see
:mod:`predmaint.connectors.deliverer`) and passes the known id to
:func:`build_request`.

Creating a work order once, across a crash
------------------------------------------
The map is written when the create's answer (the new id) comes back. A
process killed after the CMMS created the work order but before the outbox
recorded the answer (``predmaint chaos``, scenario ``notify_kill9``) must not
create it again when it restarts. The outbox therefore records "create in
flight" *before* the create request is sent
(:meth:`~predmaint.connectors.outbox.Outbox.begin_create`); every later create
attempt for the same alert and target first searches the CMMS for a work
order carrying the alert id (:func:`lookup_request`, :func:`parse_lookup`),
adopts the one it finds, and only creates when the search finds none.

Why a search and not an idempotency key: of the three APIs only Maximo has a
duplicate-request guard, and it expires after five minutes, while a stopped
notify can restart hours later. A search by a field the create wrote works
whatever the downtime, with the same code path for every kind. What each API
offers (sources as stored in this project's reference search, December 2026):

``maintainx``
    No idempotency key: the MaintainX OpenAPI document (API version 1, as
    mirrored in ``api-evangelist/maintainx``,
    ``openapi/_original/maintainx-openapi-original.json``) defines none on
    ``POST /workorders``. ``externalData`` (sent on create) is returned by
    ``GET /workorders/{id}`` but not by the list. ``GET /workorders`` filters
    by ``createdAt[gte]`` (ISO 8601 UTC), pages with ``limit`` (at most 200)
    and ``cursor``/``nextCursor``, and returns each work order's
    ``description``. The lookup lists the work orders created since the
    create began (less :data:`LOOKUP_CLOCK_SKEW_S`) and matches the
    description's last line, ``predmaint alert <alert id>`` (:func:`description`).
    The list's ``title`` filter is not used: the spec does not say whether it
    is exact or a substring, and a renamed work order would escape it.
``upkeep``
    No idempotency key found in the UpKeep API reference
    (developers.onupkeep.com, v2). ``GET /api/v2/work-orders`` lists work
    orders (``{"results": [...]}``) with ``limit`` and ``offset``; public
    clients filter it with ``isComplete=0``. The filter table of that page
    could not be read from the stored copy, so no date filter is relied on:
    the lookup reads the open work orders, page by page, and matches the
    description's ``predmaint alert <alert id>`` line.
``maximo``
    The IBM Maximo REST API guide ("Handling duplicate requests",
    ibm-maximo-dev.github.io/maximo-restapi-documentation) documents a
    ``transactionid`` request header: a create or update whose id was seen
    before is refused with ``409 Conflict``; ids live five minutes by default
    (escalation ``OSLCTXN``). Every create sends ``transactionid:
    predmaint-<alert id>`` (it also catches a create that was still being
    committed when the lookup ran), and a 409 on a create is retried, so the
    next attempt's lookup finds the record. The lookup is
    ``oslc.where=externalrecid="<alert id>"`` ("Filtering": ``=`` on a quoted
    string without ``%`` is an equality), ``externalrecid`` being set on create.

Residual risk (documented, not handled): a work order whose marker line or
``externalrecid`` a person removed before notify restarted, a MaintainX list
or UpKeep open list longer than :data:`LOOKUP_MAX_PAGES` pages (the work
order is then created, with a warning: a duplicate is better than a lost
alert), an UpKeep work order completed before the restart (``isComplete=0``
hides it), and on MaintainX and UpKeep a create the CMMS commits *after* the
lookup of the next attempt (a request that timed out on our side but is
still running on theirs) -- Maximo's ``transactionid`` covers that case for
five minutes.

Status values for closing (``DONE``, ``complete``, ``RESOLVED``) are defaults
taken from public descriptions of those APIs, not verified against live
tenants; each target can override them with ``close_status``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from predmaint.errors import AlertMappingError

__all__ = [
    "KINDS",
    "LOOKUP_CLOCK_SKEW_S",
    "LOOKUP_MAX_PAGES",
    "MAINTAINX_PRIORITY",
    "MAXIMO_PRIORITY",
    "UPKEEP_PRIORITY",
    "WEBHOOK_SEVERITY",
    "AlertMappingError",
    "HttpRequest",
    "LookupPage",
    "auth_headers",
    "build_request",
    "description",
    "extract_work_order_id",
    "lookup_request",
    "parse_lookup",
    "title",
]

# Severity -> priority tables. Explicit so a new severity fails loudly
# (AlertMappingError) instead of silently landing on a default priority.

#: Generic webhook: severity is passed through, but only known values.
WEBHOOK_SEVERITY: dict[str, str] = {"warning": "warning", "alarm": "alarm", "critical": "critical"}
#: MaintainX priorities are NONE/LOW/MEDIUM/HIGH; NONE is kept for humans.
MAINTAINX_PRIORITY: dict[str, str] = {"warning": "LOW", "alarm": "MEDIUM", "critical": "HIGH"}
#: UpKeep priority 0 (none) .. 3 (highest); 0 is never assigned by an alert.
UPKEEP_PRIORITY: dict[str, int] = {"warning": 1, "alarm": 2, "critical": 3}
#: Maximo ticket priority: 1 is the most urgent.
MAXIMO_PRIORITY: dict[str, int] = {"warning": 3, "alarm": 2, "critical": 1}

_STATES = ("raised", "escalated", "renotified", "cleared")

#: How far before the recorded start of a create a lookup searches: the CMMS's clock may be behind ours.
LOOKUP_CLOCK_SKEW_S = 3600.0
#: Result pages one lookup reads at most; past them the work order is created (a possible duplicate, logged).
LOOKUP_MAX_PAGES = 25


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, without credentials.

    Attributes
    ----------
    method : str
        ``GET``, ``POST`` or ``PATCH``.
    path : str
        Path (with query) appended to the target's base URL; ``""`` means
        the URL itself (generic webhook).
    headers : dict
        Non-secret headers (content type, Maximo method override...).
    json : dict
        Body, serialised by :meth:`body_bytes`.
    action : str
        ``create``, ``update``, ``close``, ``notify`` (generic webhook) or
        ``lookup`` (search for a work order already created), used by the
        caller to maintain the work-order map.
    """

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    action: str = "notify"

    def body_bytes(self) -> bytes:
        """Serialise :attr:`json` compactly and deterministically.

        Deterministic bytes matter: the webhook signature covers the exact
        body, and retries of one event should send the same payload.

        Examples
        --------
        >>> HttpRequest("POST", "", json={"b": 1, "a": "é"}).body_bytes()
        b'{"a":"\\xc3\\xa9","b":1}'
        """
        return json.dumps(self.json, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")


def _priority(kind: str, table: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    # Any JSON value: one that is not a key of the table (None, a number, a list) fails below.
    severity: Any = event.get("severity")
    try:
        return table[severity]
    except (KeyError, TypeError):
        raise AlertMappingError(
            f"unknown severity {severity!r} for {kind} (asset {event.get('asset')!r}, "
            f"alert {event.get('alert_id')!r}); known: {sorted(table)}"
        ) from None


def _state(event: Mapping[str, Any]) -> str:
    state = event.get("state")
    if state not in _STATES:
        raise AlertMappingError(
            f"unknown alert state {state!r} (asset {event.get('asset')!r}, "
            f"alert {event.get('alert_id')!r}); known: {list(_STATES)}"
        )
    return state


def title(event: Mapping[str, Any]) -> str:
    """Short human title for a work order.

    Examples
    --------
    >>> title({"severity": "critical", "asset": "pump-03", "rule": "health_low",
    ...        "site": "plant-1", "line": "line-a", "sensor": "de-accel"})
    'CRITICAL pump-03 (plant-1/line-a): health_low on de-accel'
    """
    return (f"{str(event.get('severity', '')).upper()} {event.get('asset')} "
            f"({event.get('site')}/{event.get('line')}): {event.get('rule')} on {event.get('sensor')}")


def _fmt_num(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def description(event: Mapping[str, Any], max_features: int = 5) -> str:
    """Plain-text description: state, numbers and the top explanation features.

    Examples
    --------
    >>> print(description({"state": "raised", "severity": "alarm", "asset": "p1",
    ...     "site": "s", "line": "l", "sensor": "x", "rule": "health_low",
    ...     "time": "2026-11-23T12:05:00Z", "health": 23.5, "value": 23.5,
    ...     "alert_id": "00ff00ff00ff00ff", "event_id": "00ff00ff00ff00ff:1",
    ...     "model": "hst", "explanation": [{"feature": "env_bpfo", "value": 0.9,
    ...     "baseline_mean": 0.1, "z": 8.1}]}))
    Alert raised (alarm) on asset p1 at s/l, sensor x, rule health_low.
    Time: 2026-11-23T12:05:00Z; health 23.5; value 23.5; model hst.
    Top contributing features:
    - env_bpfo = 0.9 (baseline 0.1, z = 8.1)
    predmaint alert 00ff00ff00ff00ff, event 00ff00ff00ff00ff:1

    A row that states its own evidence (a named fault, a never-seen move) is given as it says:

    >>> print(description({"explanation": [{"feature": "value_mean", "value": 0.0, "stat": "novelty",
    ...     "evidence": "value_mean moved from 4.89-6.14 to -0.08-1.17, a move not seen in 526 readings"}]})
    ...       .splitlines()[3])
    - value_mean = 0: value_mean moved from 4.89-6.14 to -0.08-1.17, a move not seen in 526 readings
    """
    lines = [
        f"Alert {event.get('state')} ({event.get('severity')}) on asset {event.get('asset')} "
        f"at {event.get('site')}/{event.get('line')}, sensor {event.get('sensor')}, "
        f"rule {event.get('rule')}.",
        f"Time: {event.get('time')}; health {_fmt_num(event.get('health'))}; "
        f"value {_fmt_num(event.get('value'))}; model {event.get('model')}.",
    ]
    expl = event.get("explanation") or []
    if expl:
        lines.append("Top contributing features:")
        for item in list(expl)[:max_features]:
            head = f"- {item.get('feature')} = {_fmt_num(item.get('value'))}"
            lines.append(f"{head}: {item['evidence']}" if item.get("evidence") else
                         f"{head} (baseline {_fmt_num(item.get('baseline_mean'))}, z = {_fmt_num(item.get('z'))})")
    lines.append(f"predmaint alert {event.get('alert_id')}, event {event.get('event_id')}")
    return "\n".join(lines)


_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def _no_fields(_: Any) -> dict[str, Any]:
    return {}


# -- looking up a work order created before a crash (see "Creating a work order once" above) ----------


@dataclass(frozen=True)
class LookupPage:
    """What one page of a work-order lookup found (:func:`parse_lookup`).

    Attributes
    ----------
    work_order_id : str or None
        The alert's work order (Maximo: its href path) when this page holds it.
    next_page : str or None
        Token for the next page (pass it to :func:`lookup_request`); ``None``
        when there is no further page.
    """

    work_order_id: str | None = None
    next_page: str | None = None


def _carries_marker(record: Any, alert_id: str) -> bool:
    """Whether a work order's description carries :func:`description`'s ``predmaint alert <id>`` line."""
    text = record.get("description") if isinstance(record, dict) else None
    # The word boundary keeps alert "ab12" from matching a work order of alert "ab123".
    return isinstance(text, str) and re.search(rf"predmaint alert {re.escape(alert_id)}\b", text) is not None


def _iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _has_id(record: Any) -> bool:
    return isinstance(record, dict) and record.get("id") not in (None, "")


#: The MaintainX list's documented maximum page size.
_MAINTAINX_PAGE = 200


def _maintainx_lookup(alert_id: str, since: float, page: str | None) -> str:
    query = [("createdAt[gte]", _iso_utc(since)), ("limit", str(_MAINTAINX_PAGE))]
    if page:
        query.append(("cursor", page))
    return "/v1/workorders?" + urlencode(query)


def _maintainx_found(doc: Any, alert_id: str, page: str | None) -> LookupPage:
    orders = doc.get("workOrders") if isinstance(doc, dict) else None
    for wo in orders if isinstance(orders, list) else []:
        # The list documents deletedAt: a deleted work order is not one to keep updating.
        if _carries_marker(wo, alert_id) and _has_id(wo) and not wo.get("deletedAt"):
            return LookupPage(str(wo["id"]))
    cursor = doc.get("nextCursor") if isinstance(doc, dict) else None
    return LookupPage(None, cursor if isinstance(cursor, str) and cursor else None)


_UPKEEP_PAGE = 100


def _upkeep_lookup(alert_id: str, since: float, page: str | None) -> str:
    # No date filter (see the module docstring): the open work orders, newest pages included, are read.
    return "/api/v2/work-orders?" + urlencode([("isComplete", "0"), ("limit", str(_UPKEEP_PAGE)),
                                               ("offset", page or "0")])


def _upkeep_found(doc: Any, alert_id: str, page: str | None) -> LookupPage:
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list):
        return LookupPage()
    for wo in results:
        if _carries_marker(wo, alert_id) and _has_id(wo):
            return LookupPage(str(wo["id"]))
    # Offset paging says nothing about a next page: a full page may have one.
    full = len(results) >= _UPKEEP_PAGE
    return LookupPage(None, str(int(page or 0) + len(results)) if full else None)


#: Characters an alert id may have to be put between the double quotes of an oslc.where value.
_OSLC_SAFE = re.compile(r"[A-Za-z0-9._:-]+")


def _maximo_lookup(alert_id: str, since: float, page: str | None) -> str:
    if not _OSLC_SAFE.fullmatch(alert_id):
        raise AlertMappingError(f"alert id {alert_id!r} cannot be searched for in maximo: an oslc.where value "
                                f"may only hold letters, digits, '.', '_', ':' and '-'")
    # '=' on a quoted string without '%' is an equality (Maximo REST API guide, "Filtering").
    query = [("lean", "1"), ("oslc.select", "href,ticketid,externalrecid"),
             ("oslc.where", f'externalrecid="{alert_id}"')]
    return "/maximo/api/os/mxapisr?" + urlencode(query, quote_via=quote)


def _maximo_found(doc: Any, alert_id: str, page: str | None) -> LookupPage:
    members = doc.get("member") if isinstance(doc, dict) else None
    for m in members if isinstance(members, list) else []:
        # externalrecid is selected, so it is compared too: a server that ignored the filter must not
        # hand us another alert's service request.
        if isinstance(m, dict) and m.get("href") and m.get("externalrecid", alert_id) == alert_id:
            return LookupPage(_href_path(str(m["href"])))
    return LookupPage()


@dataclass(frozen=True, kw_only=True)
class _CmmsSpec:
    """Everything the mappers need to know about one CMMS API.

    Attributes
    ----------
    kind : str
        Target kind naming this CMMS in configs.
    priorities : mapping
        Alert severity -> the API's priority value.
    auth_header, auth_prefix : str
        The API key travels as ``{auth_header: auth_prefix + key}``.
    create_path : str
        Where new work orders are POSTed; unless ``ids_are_hrefs``, also the
        collection a work order's ``/{id}`` is appended to.
    create_headers : mapping
        Extra headers of the create request.
    ids_are_hrefs : bool
        Work orders are identified by their resource href (``Location``
        header or ``href`` in the body), whose path is the record's path.
        Otherwise the id is the ``id`` of the JSON answer.
    title_field, title_max, description_field, priority_field : str, int
        Body fields of the work order's summary (sent on create and update);
        ``title_max`` truncates the title (``None``: no limit).
    asset_field : str
        Create-body field of the CMMS asset id (option ``asset_ids``).
    alert_ref : callable
        Alert id -> create-body fields that record it in the CMMS.
    record_noun : str
        What the CMMS calls a work order, for error messages.
    patch_method, patch_headers : str, mapping
        Method and extra headers of update and close requests.
    update_suffix, update_headers : str, mapping
        Appended to the record path, and extra headers, for an update.
    close_suffix : str
        Appended to the record path for a close.
    close_status : str
        Status a cleared alert sets (option ``close_status`` overrides it).
    close_fields : callable
        Event -> extra fields of the close body.
    lookup_path : callable
        ``(alert_id, since, page)`` -> path and query of the request that
        searches for the alert's work order created at or after ``since``.
    lookup_found : callable
        ``(decoded answer, alert_id, page)`` -> :class:`LookupPage`.
    create_transaction_id : bool
        Send ``transactionid: predmaint-<alert id>`` with every create (the
        API refuses a repeated id with 409).
    """

    kind: str
    priorities: Mapping[str, Any]
    auth_header: str
    auth_prefix: str = ""
    create_path: str
    create_headers: Mapping[str, str] = field(default_factory=dict)
    ids_are_hrefs: bool = False
    title_field: str = "title"
    title_max: int | None = None
    description_field: str = "description"
    priority_field: str = "priority"
    asset_field: str = "assetId"
    alert_ref: Callable[[Any], dict[str, Any]] = _no_fields
    record_noun: str = "work order"
    patch_method: str = "PATCH"
    patch_headers: Mapping[str, str] = field(default_factory=dict)
    update_suffix: str = ""
    update_headers: Mapping[str, str] = field(default_factory=dict)
    close_suffix: str = ""
    close_status: str
    close_fields: Callable[[Mapping[str, Any]], dict[str, Any]] = _no_fields
    lookup_path: Callable[[str, float, str | None], str]
    lookup_found: Callable[[Any, str, str | None], LookupPage]
    create_transaction_id: bool = False


_SPECS: dict[str, _CmmsSpec] = {spec.kind: spec for spec in (
    _CmmsSpec(
        kind="maintainx", priorities=MAINTAINX_PRIORITY,
        auth_header="Authorization", auth_prefix="Bearer ",
        create_path="/v1/workorders",
        alert_ref=lambda alert_id: {"externalData": {"predmaintAlertId": alert_id}},
        close_suffix="/status", close_status="DONE",
        lookup_path=_maintainx_lookup, lookup_found=_maintainx_found,
    ),
    _CmmsSpec(
        kind="upkeep", priorities=UPKEEP_PRIORITY,
        auth_header="Session-Token",
        create_path="/api/v2/work-orders",
        close_status="complete",
        close_fields=lambda event: {"description": description(event)},
        lookup_path=_upkeep_lookup, lookup_found=_upkeep_found,
    ),
    _CmmsSpec(
        kind="maximo", priorities=MAXIMO_PRIORITY,
        auth_header="apikey",
        create_path="/maximo/api/os/mxapisr?lean=1",
        # 'properties' makes Maximo return the new record's href (and
        # ticketid) in the 201 body, besides the Location header.
        create_headers={"properties": "ticketid,href"},
        ids_are_hrefs=True,
        # The DESCRIPTION column is 100 characters; the whole text goes to
        # the long description.
        title_field="description", title_max=100,
        description_field="description_longdescription", priority_field="reportedpriority",
        asset_field="assetnum",
        alert_ref=lambda alert_id: {"externalrecid": alert_id},
        record_noun="service request",
        # Updates are POSTs with a method override; MERGE keeps fields we do
        # not send (a plain PATCH would reset child objects).
        patch_method="POST", patch_headers={"x-method-override": "PATCH"},
        update_suffix="?lean=1", update_headers={"patchtype": "MERGE"},
        close_suffix="?action=wsmethod:changeStatus&lean=1", close_status="RESOLVED",
        close_fields=lambda event: {"memo": f"predmaint: alert {event.get('alert_id')} cleared"},
        lookup_path=_maximo_lookup, lookup_found=_maximo_found, create_transaction_id=True,
    ),
)}

#: Target kinds understood by :func:`build_request`.
KINDS = ("webhook", *_SPECS)


def _spec(kind: str) -> _CmmsSpec:
    try:
        return _SPECS[kind]
    except (KeyError, TypeError):
        raise AlertMappingError(f"unknown target kind {kind!r}; known: {list(KINDS)}") from None


def _asset_ref(options: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    # CMMS asset ids are the CMMS's own (MaintainX integers, UpKeep object ids,
    # Maximo assetnum); the pipeline's asset name maps to them through config.
    return (options.get("asset_ids") or {}).get(event.get("asset"))


def _href_path(href: str) -> str:
    # Only the path of an href is kept so the target's configured base URL
    # (which may be a proxy) stays in charge.
    path = urlsplit(href).path or href
    if not path.startswith("/"):
        path = "/" + path
    return path


def _record_path(spec: _CmmsSpec, work_order_id: str) -> str:
    if spec.ids_are_hrefs:
        return _href_path(str(work_order_id))
    return f"{spec.create_path}/{quote(str(work_order_id), safe='')}"


def _webhook(event: Mapping[str, Any]) -> HttpRequest:
    # The severity travels inside the event; the table only refuses unknown ones.
    _priority("webhook", WEBHOOK_SEVERITY, event)
    state = _state(event)
    body = {"type": f"alert.{state}", "timestamp": event.get("time"), "data": dict(event)}
    return HttpRequest("POST", "", dict(_JSON_HEADERS), body, "notify")


def _cmms_request(spec: _CmmsSpec, event: Mapping[str, Any], work_order_id: str | None,
                  options: Mapping[str, Any]) -> HttpRequest:
    """Create, update or close the alert's work order, as ``spec`` says the CMMS wants it."""
    state = _state(event)
    priority = _priority(spec.kind, spec.priorities, event)
    if work_order_id is None:
        if state == "cleared":
            raise AlertMappingError(f"a cleared alert without a {spec.record_noun} cannot be closed")
        return _create(spec, event, priority, options)
    path = _record_path(spec, work_order_id)
    if state == "cleared":
        return _close(spec, event, path, options)
    return _update(spec, event, path, priority)


def _summary(spec: _CmmsSpec, event: Mapping[str, Any], priority: Any) -> dict[str, Any]:
    # Every event of an alert restates it, so an escalation rewrites title and priority.
    return {spec.title_field: title(event)[:spec.title_max], spec.description_field: description(event),
            spec.priority_field: priority}


def _create(spec: _CmmsSpec, event: Mapping[str, Any], priority: Any,
            options: Mapping[str, Any]) -> HttpRequest:
    body = {**_summary(spec, event, priority), **spec.alert_ref(event.get("alert_id"))}
    asset = _asset_ref(options, event)
    if asset is not None:
        body[spec.asset_field] = asset
    body.update(options.get("defaults") or {})
    headers = {**_JSON_HEADERS, **spec.create_headers}
    if spec.create_transaction_id:
        # One id per alert: a second create of the alert within the id's life is refused (409), not duplicated.
        headers["transactionid"] = f"predmaint-{event.get('alert_id')}"
    return HttpRequest("POST", spec.create_path, headers, body, "create")


def _update(spec: _CmmsSpec, event: Mapping[str, Any], path: str, priority: Any) -> HttpRequest:
    headers = {**_JSON_HEADERS, **spec.patch_headers, **spec.update_headers}
    return HttpRequest(spec.patch_method, path + spec.update_suffix, headers,
                       _summary(spec, event, priority), "update")


def _close(spec: _CmmsSpec, event: Mapping[str, Any], path: str, options: Mapping[str, Any]) -> HttpRequest:
    body = {"status": options.get("close_status") or spec.close_status, **spec.close_fields(event)}
    return HttpRequest(spec.patch_method, path + spec.close_suffix, {**_JSON_HEADERS, **spec.patch_headers},
                       body, "close")


def build_request(kind: str, event: Mapping[str, Any], work_order_id: str | None = None,
                  options: Mapping[str, Any] | None = None) -> HttpRequest:
    """Map one alert event to the request for one target.

    Parameters
    ----------
    kind : {"webhook", "maintainx", "upkeep", "maximo"}
        Target kind.
    event : mapping
        Alert event as produced on the ``alerts`` topic.
    work_order_id : str, optional
        Work order (or Maximo href) already created for this alert on this
        target; ``None`` creates one. Ignored by ``webhook``.
    options : mapping, optional
        Target options: ``asset_ids`` (pipeline asset -> CMMS asset id),
        ``defaults`` (extra fields merged into the create body, e.g. Maximo
        ``siteid``) and ``close_status``.

    Returns
    -------
    HttpRequest
        The request, without credentials.

    Raises
    ------
    AlertMappingError
        Unknown kind, state or severity, or a cleared alert without a work
        order on a CMMS target.

    Examples
    --------
    >>> ev = {"state": "raised", "severity": "critical", "asset": "pump-03",
    ...       "alert_id": "a1", "event_id": "a1:1"}
    >>> r = build_request("maintainx", ev)
    >>> (r.method, r.path, r.json["priority"], r.action)
    ('POST', '/v1/workorders', 'HIGH', 'create')
    >>> r = build_request("upkeep", dict(ev, state="cleared"), work_order_id="Xy12")
    >>> (r.method, r.path, r.json["status"], r.action)
    ('PATCH', '/api/v2/work-orders/Xy12', 'complete', 'close')
    """
    if kind == "webhook":
        return _webhook(event)
    return _cmms_request(_spec(kind), event, work_order_id, options or {})


def _lookup_spec(kind: str, event: Mapping[str, Any]) -> tuple[_CmmsSpec, str]:
    if kind == "webhook":
        raise AlertMappingError("webhook targets have no work orders to look up")
    spec = _spec(kind)
    alert = event.get("alert_id")
    if not isinstance(alert, str) or not alert:
        raise AlertMappingError(f"cannot look up a {spec.record_noun} in {kind} for an event without an alert id "
                                f"(asset {event.get('asset')!r})")
    return spec, alert


def lookup_request(kind: str, event: Mapping[str, Any], since: float, page: str | None = None) -> HttpRequest:
    """The request that searches a CMMS for the work order of ``event``'s alert.

    Used before creating a work order again after a create whose answer was
    never recorded (see "Creating a work order once" above).

    Parameters
    ----------
    kind : {"maintainx", "upkeep", "maximo"}
        Target kind.
    event : mapping
        The alert event (its ``alert_id`` is searched for).
    since : float
        Unix time at which the first create began; the search reaches back
        :data:`LOOKUP_CLOCK_SKEW_S` further (MaintainX filters on it).
    page : str, optional
        ``next_page`` of the previous :class:`LookupPage`.

    Returns
    -------
    HttpRequest
        A ``GET`` with action ``lookup``, without credentials.

    Raises
    ------
    AlertMappingError
        A webhook kind, an unknown kind, an event without alert id, or (Maximo)
        an alert id that cannot be quoted in ``oslc.where``.

    Examples
    --------
    >>> ev = {"alert_id": "00ff00ff00ff00ff", "state": "raised"}
    >>> lookup_request("maintainx", ev, since=7200.0).path
    '/v1/workorders?createdAt%5Bgte%5D=1970-01-01T01%3A00%3A00.000Z&limit=200'
    >>> lookup_request("maximo", ev, since=0.0).path
    '/maximo/api/os/mxapisr?lean=1&oslc.select=href%2Cticketid%2Cexternalrecid&oslc.where=externalrecid%3D%2200ff00ff00ff00ff%22'
    """
    spec, alert = _lookup_spec(kind, event)
    path = spec.lookup_path(alert, since - LOOKUP_CLOCK_SKEW_S, page)
    return HttpRequest("GET", path, {"Accept": "application/json"}, {}, "lookup")


def parse_lookup(kind: str, event: Mapping[str, Any], body: bytes | None, page: str | None = None) -> LookupPage:
    """Find ``event``'s work order in the 2xx answer to :func:`lookup_request`.

    A work order is the alert's when its description carries the
    ``predmaint alert <alert id>`` line (MaintainX, UpKeep) or its
    ``externalrecid`` is the alert id (Maximo). An answer that is not the
    expected JSON finds nothing and has no next page.

    Examples
    --------
    >>> ev = {"alert_id": "a1", "state": "raised"}
    >>> parse_lookup("maintainx", ev, b'{"workOrders": [{"id": 7, "description": "predmaint alert a1, event a1:0"}]}')
    LookupPage(work_order_id='7', next_page=None)
    >>> parse_lookup("upkeep", ev, b'{"results": []}')
    LookupPage(work_order_id=None, next_page=None)
    """
    spec, alert = _lookup_spec(kind, event)
    return spec.lookup_found(_json_or_none(body), alert, page)


def auth_headers(kind: str, secret: str | None) -> dict[str, str]:
    """Credential headers for a target kind.

    The returned dict contains the secret: send it, never log or store it.
    ``webhook`` targets authenticate by signature instead (see
    :mod:`predmaint.connectors.webhooks`), so they get no header here.

    Examples
    --------
    >>> sorted(auth_headers("upkeep", "t"))
    ['Session-Token']
    >>> auth_headers("webhook", "t")
    {}
    """
    if kind == "webhook" or not secret:
        return {}
    spec = _spec(kind)
    return {spec.auth_header: spec.auth_prefix + secret}


def extract_work_order_id(kind: str, status: int, headers: Mapping[str, str],
                          body: bytes | None) -> str | None:
    """Find the created work order's id in a CMMS response.

    Parameters
    ----------
    kind : str
        Target kind.
    status : int
        HTTP status (only 2xx responses are inspected).
    headers : mapping
        Response headers (names case-insensitive); Maximo's ``Location``.
    body : bytes or None
        Response body.

    Returns
    -------
    str or None
        MaintainX/UpKeep id, Maximo resource href (path), or ``None``.

    Examples
    --------
    >>> extract_work_order_id("maintainx", 201, {}, b'{"id": 42}')
    '42'
    >>> extract_work_order_id("upkeep", 200, {}, b'{"success": true, "result": {"id": "Ab1"}}')
    'Ab1'
    >>> extract_work_order_id("maximo", 201, {"Location": "https://m/maximo/api/os/mxapisr/_U1IvMTAwMQ--"}, b"")
    '/maximo/api/os/mxapisr/_U1IvMTAwMQ--'
    """
    if not 200 <= status < 300 or kind == "webhook":
        return None
    doc = _json_or_none(body)
    spec = _SPECS.get(kind)
    if spec is not None and spec.ids_are_hrefs:
        return _href_id(headers, doc)
    return _json_id(doc)


def _json_or_none(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _href_id(headers: Mapping[str, str], doc: Any) -> str | None:
    lower = {str(k).lower(): v for k, v in headers.items()}
    href = lower.get("location") or (doc.get("href") if isinstance(doc, dict) else None)
    return _href_path(str(href)) if href else None


def _json_id(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    # MaintainX answers {"id": ...} on create and {"workOrder": {...}} on GET;
    # UpKeep wraps records in {"success": true, "result": {...}}.
    for candidate in (doc, doc.get("result"), doc.get("workOrder"), doc.get("data")):
        if isinstance(candidate, dict) and candidate.get("id") not in (None, ""):
            return str(candidate["id"])
    return None
