"""Push the dashboards to a running Grafana, and the ``predmaint dashboards`` command.

docker-compose.yml provisions the dashboards from files; ``push`` is for a
Grafana that predmaint does not provision (Grafana Cloud, a shared server).
It creates the folder if needed and overwrites dashboards by uid, so pushing
twice is harmless.

The API token comes from the environment (``GRAFANA_TOKEN`` by default: a
service-account token with the Editor role on the folder). It is never
printed or logged, and error messages carry Grafana's answer, not the request.

::

    GRAFANA_TOKEN=glsa_... predmaint dashboards push --url https://grafana.example.com
    predmaint dashboards build [--check]
    predmaint dashboards check        # run every panel query against the configured InfluxDB
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import datetime, timedelta, timezone

from predmaint.dashboards import build
from predmaint.dashboards.definitions import dashboards as all_dashboards
from predmaint.dashboards.model import Dashboard
from predmaint.errors import ConfigurationError, DashboardError
from predmaint.settings import load_settings

log = logging.getLogger(__name__)

DEFAULT_TOKEN_ENV = "GRAFANA_TOKEN"
DEFAULT_FOLDER = "predmaint"


def push(url: str, token: str, folder: str = DEFAULT_FOLDER, dashboards: list[Dashboard] | None = None,
         timeout_s: float = 15.0) -> list[str]:
    """Create or overwrite every dashboard in ``folder`` of the Grafana at ``url``.

    Parameters
    ----------
    url
        Grafana's base URL, e.g. ``http://localhost:3000``.
    token
        A Grafana service-account or API token (sent as a bearer token, never logged).
    folder
        Folder title; created if no folder has it.
    dashboards
        What to push; default: every dashboard, built for the packaged fleet.
    timeout_s
        Per-request timeout.

    Returns
    -------
    list of str
        The URL of each dashboard, as Grafana reports it.
    """
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException
    from niquests.exceptions import RequestException

    if not token:
        raise DashboardError("no Grafana token given")
    if dashboards is None:
        dashboards = all_dashboards(load_settings())
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    try:
        folder_uid = _ensure_folder(api, folder)
        urls = []
        for d in dashboards:
            answer = api.dashboard.update_dashboard({
                "dashboard": d.to_json(), "folderUid": folder_uid, "overwrite": True,
                "message": "predmaint dashboards push"})
            urls.append(answer.get("url", d.uid))
            log.info("pushed dashboard %s to folder %r", d.uid, folder)
        return urls
    except GrafanaException as exc:
        # The exception's message is Grafana's answer; it does not contain the request headers.
        raise DashboardError(f"Grafana at {url} refused: HTTP {exc.status_code}: {exc.message}") from None
    except RequestException as exc:
        # niquests' message repeats the whole connection pool's state; the cause is enough.
        text = str(exc)
        reason = next((r for r in ("Connection refused", "Name or service not known", "timed out",
                                   "No route to host", "certificate verify failed") if r in text), type(exc).__name__)
        raise DashboardError(f"--url: cannot reach Grafana at {url} ({reason})") from None


def _ensure_folder(api, title: str) -> str:
    for f in api.folder.get_all_folders():
        if f.get("title") == title:
            return f["uid"]
    return api.folder.create_folder(title)["uid"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``dashboards`` with ``push``, ``build`` and ``check`` to the ``predmaint`` command."""
    p = subparsers.add_parser("dashboards", help="Grafana dashboards: build the JSON, push it, check its queries")
    sub = p.add_subparsers(dest="dashboards_command", required=True)

    push_p = sub.add_parser("push", help="create or update the dashboards in a running Grafana")
    push_p.add_argument("--url", required=True, help="Grafana base URL, e.g. http://localhost:3000")
    push_p.add_argument("--folder", default=DEFAULT_FOLDER, help=f"folder title (default {DEFAULT_FOLDER})")
    push_p.add_argument("--token-env", default=DEFAULT_TOKEN_ENV,
                        help=f"environment variable holding the API token (default {DEFAULT_TOKEN_ENV})")

    build_p = sub.add_parser("build", help="write dashboards/json/*.json from the definitions")
    build.add_arguments(build_p)

    check_p = sub.add_parser("check", help="run every dashboard query against the configured InfluxDB")
    check_p.add_argument("--hours", type=float, default=6.0,
                         help="time range of the data checks: the last HOURS (default 6); lines are also drawn "
                              "over the dashboards' default range, 1 h, 24 h and 7 d up to --end")
    check_p.add_argument("--end", help="end of the time range, ISO 8601 (default: now)")
    check_p.add_argument("--require-data", action="store_true",
                         help="fail on queries that return nothing (default: only on unknown names and errors; "
                              "an empty dead-letter panel is good news)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``predmaint dashboards ...``; ``args.config`` names the settings file (``--config``)."""
    settings = load_settings(getattr(args, "config", None))
    if args.dashboards_command == "build":
        return build.run(settings, args)
    if args.dashboards_command == "check":
        return _run_check(settings, args)
    token = os.environ.get(args.token_env, "")
    if not token:
        raise ConfigurationError(f"--token-env: set {args.token_env} to a Grafana API token")
    urls = push(args.url, token, args.folder, all_dashboards(settings))
    for u in urls:
        print(f"pushed {args.url.rstrip('/')}{u}")
    return 0


def _run_check(settings, args) -> int:
    from predmaint.connectors.storage import open_query_reader
    from predmaint.dashboards.check import (
        Schema,
        TimeRange,
        check_dashboard,
        check_drawable,
        summarise,
        summarise_drawable,
        tag_values,
    )

    if settings.storage.kind == "sqlite":
        raise ConfigurationError(f"{settings.source}: storage.kind is sqlite; the dashboards need InfluxDB")
    end = datetime.fromisoformat(args.end.replace("Z", "+00:00")) if args.end else datetime.now(timezone.utc)
    start = end - timedelta(hours=args.hours)
    time_range = TimeRange(int(start.timestamp() * 1000), int(end.timestamp() * 1000)).with_grafana_interval()
    reader = open_query_reader(settings.storage)
    try:
        schema = Schema.load(reader.query)
        # Every value of every variable: the "All" selection.
        selection = {name: tuple(tag_values(reader.query, f'SHOW TAG VALUES FROM "health" WITH KEY = "{name}"'))
                     for name in ("site", "line", "asset", "model")}
        failed = 0
        for text in build.render(settings).values():
            doc = json.loads(text)
            results = check_dashboard(doc, reader.query, schema, selection, time_range)
            print(summarise(results))
            failed += sum(not r.ok and (args.require_data or not r.empty) for r in results)
            # Every line over the default range, 1 h, 24 h and 7 d, at the interval Grafana would choose.
            drawn = check_drawable(doc, reader.query, selection, time_range.to_ms)
            print(summarise_drawable(drawn))
            failed += sum(not r.ok for r in drawn)
    finally:
        reader.close()
    return 1 if failed else 0
