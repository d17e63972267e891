"""Time-series storage: InfluxDB (v1 ``/write`` or influxdb-client) or an embedded SQLite store.

All writers take :class:`Point` batches and have the same contract: when
``write`` returns, the batch is stored; a point with the same measurement, tag
set and timestamp overwrites the fields it names (InfluxDB's rule, which the
SQLite store copies), so replays after a restart are idempotent as long as
timestamps are deterministic.

Readers answer the small set of questions the demo summary, the report and
the tests ask (:meth:`points`), and InfluxDB readers also run raw InfluxQL,
which InfluxDB 1.x, 2.x (``/query`` with DBRP) and 3.x all answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import urllib3

from predmaint.connectors.retry import RetryWindow
from predmaint.domain import Point, PointReader, PointWriter, QueryReader
from predmaint.errors import SettingsError, StorageError, StorageUnavailable
from predmaint.settings import StorageSettings

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Backoff while storage is unavailable: full jitter in a window that starts at
#: 0.2 s and doubles up to 5 s, so a server that is back is written to within 5 s.
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 5.0
#: While an outage lasts, one warning per this many seconds (not one per attempt).
WARN_EVERY_S = 30.0


def _retryable_status(status: int) -> bool:
    """408 (timeout), 429 (overloaded) and 5xx may succeed later; other refusals will not.

    Examples
    --------
    >>> [status for status in (400, 401, 404, 408, 413, 429, 500, 503) if _retryable_status(status)]
    [408, 429, 500, 503]
    """
    return status in (408, 429) or status >= 500


def _server_says(body: bytes) -> str:
    """The error text of an InfluxDB answer, on one line (``{"error": ...}`` or ``{"message": ...}``)."""
    text = body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
        if isinstance(doc, dict):
            text = str(doc.get("error") or doc.get("message") or text)
    except ValueError:
        pass
    return " ".join(text.split())[:300] or "(no message)"


def _connection_problem(exc: BaseException, timeout_s: float) -> str:
    """What went wrong below HTTP, in words (connection refused, timeout, reset...)."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return _connection_problem(exc.reason, timeout_s)
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # before ConnectTimeoutError: a subclass
        os_error = exc.__cause__ or exc.__context__
        reason = getattr(os_error, "strerror", None) or str(exc).rsplit(": ", 1)[-1]
        return f"cannot connect ({reason})"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"no connection within {timeout_s:g} s"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"no answer within {timeout_s:g} s (storage.timeout_s)"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return f"connection lost ({exc.args[-1] if exc.args else type(exc).__name__})"
    return type(exc).__name__


class _InfluxHTTP:
    """InfluxQL over ``/query`` and v1 ``/write``; shared by both InfluxDB flavours.

    Every request goes through :meth:`_retrying`: while the server is
    unavailable (:class:`StorageUnavailable`: connection refused, timeouts,
    408, 429, 5xx) the call blocks and retries with capped exponential
    backoff for ``storage.retry_for_s``, which is what holds the dataflow back
    during a database restart (backpressure). Other refusals raise
    :class:`StorageError` at once.
    """

    def __init__(self, settings: StorageSettings):
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(total=settings.timeout_s), retries=False)
        self.headers: dict[str, str] = {}
        token = settings.token
        if token is not None and token.get():
            # InfluxDB 2.x/3.x v1-compatible endpoints take the API token this way.
            self.headers["Authorization"] = f"Token {token.get()}"
        self.auth: dict[str, str] = {}
        password = settings.password
        password_value = password.get() if password is not None else None
        if settings.username and password_value:
            self.auth = {"u": settings.username, "p": password_value}
        self._cancelled = threading.Event()

    def _where(self) -> str:
        return f"storage: InfluxDB at {self.url}"

    def cancel(self) -> None:
        """Stop waiting for an unavailable server: a call retrying now raises :class:`StorageError` soon."""
        self._cancelled.set()

    def _retrying(self, fn: Callable[[], _T], waiting: str) -> _T:
        """``fn()``, retried while it raises :class:`StorageUnavailable`, for ``storage.retry_for_s``.

        ``waiting`` names what waits meanwhile (``writes``, ``queries``...)
        for the one warning per :data:`WARN_EVERY_S`.
        """
        s = self.settings
        window: RetryWindow | None = None
        while True:
            try:
                result = fn()
            except StorageUnavailable as exc:
                now = time.monotonic()
                if window is None:
                    window = RetryWindow(s.retry_for_s, base_s=BACKOFF_BASE_S, max_s=BACKOFF_MAX_S,
                                         max_retries=s.max_retries, warn_every_s=WARN_EVERY_S)
                delay = window.failed(now)
                if delay is None:
                    if window.attempts == 1:
                        raise  # no retries allowed (storage.max_retries: 0): the cause as it is
                    spent = window.elapsed_s(now)
                    limit = (f"storage.max_retries = {s.max_retries}"
                             if spent < s.retry_for_s else f"storage.retry_for_s = {s.retry_for_s:g}")
                    raise StorageError(f"{exc}; gave up after retrying for {spent:.0f} s "
                                       f"({window.attempts} attempts, {limit})") from None
                if window.should_warn(now):
                    log.warning("%s; %s on hold, retrying for up to %.0f s more (storage.retry_for_s)",
                                exc, waiting, s.retry_for_s - window.elapsed_s(now))
                if self._cancelled.wait(delay):
                    raise StorageError(f"{exc}; stopped retrying: the writer was closed") from None
            else:
                if window is not None:
                    log.info("%s answers again after %.1f s (%d failed attempts); %s resumed",
                             self._where(), window.elapsed_s(time.monotonic()), window.attempts, waiting)
                return result

    def _request(self, method: str, path: str, fields: dict, body: bytes | None = None):
        try:
            if body is None:
                r = self.http.request(method, f"{self.url}{path}", fields={**fields, **self.auth},
                                      headers=self.headers)
            else:
                from urllib.parse import urlencode
                r = self.http.request(method, f"{self.url}{path}?{urlencode({**fields, **self.auth})}",
                                      body=body, headers={**self.headers, "Content-Type": "text/plain"})
        except urllib3.exceptions.HTTPError as exc:
            raise StorageUnavailable(
                f"{self._where()}: {_connection_problem(exc, self.settings.timeout_s)} on {path}") from None
        if r.status < 300:
            return r
        message = f"{self._where()}: HTTP {r.status} on {path}: {_server_says(r.data)}"
        # InfluxDB 1.x answers a write to a missing retention policy with 500:
        # retrying cannot fix that setting.
        if _retryable_status(r.status) and "retention policy not found" not in message:
            raise StorageUnavailable(message)
        raise StorageError(message)

    def query(self, q: str) -> list[dict]:
        """Run InfluxQL; return the result's series (each with name, tags, columns, values)."""
        db = {"db": self.settings.database}
        if self.settings.retention_policy:
            db["rp"] = self.settings.retention_policy
        r = self._retrying(lambda: self._request("GET", "/query", {**db, "q": q, "epoch": "ns"}), "queries")
        doc = json.loads(r.data)
        series = []
        for result in doc.get("results", []):
            if "error" in result:
                raise StorageError(f"InfluxQL error for {q!r}: {result['error']}")
            series.extend(result.get("series", []))
        return series

    def points(self, measurement: str, **tags: str) -> list[Point]:
        where = " AND ".join(f'"{k}" = \'{v}\'' for k, v in tags.items())
        q = f'SELECT * FROM "{measurement}"' + (f" WHERE {where}" if where else "") + " GROUP BY *"
        out = []
        for s in self.query(q):
            cols = s["columns"]
            for row in s["values"]:
                fields = {c: v for c, v in zip(cols[1:], row[1:]) if v is not None}
                out.append(Point(s["name"], dict(s.get("tags", {})), fields, int(row[0])))
        out.sort(key=lambda p: p.time_ns)
        return out

    def close(self) -> None:
        self.http.clear()


class InfluxV1Writer(_InfluxHTTP):
    """Writes line protocol to ``/write`` (InfluxDB 1.x; also 2.x/3.x v1 compatibility).

    It creates ``storage.database`` first. A refusal (no admin rights, a
    name the server rejects, an endpoint without ``CREATE DATABASE``) is
    only a warning: the database may exist already, and if it does not the
    first write says so (``HTTP 404 on /write: database not found``).
    """

    def __init__(self, settings: StorageSettings, create_database: bool = True):
        super().__init__(settings)
        if create_database:
            self._create_database()

    def _create_database(self) -> None:
        statement = f'CREATE DATABASE "{self.settings.database}"'

        def create() -> str:
            try:
                r = self._request("POST", "/query", {"q": statement})
            except StorageUnavailable:
                raise
            except StorageError as exc:
                return str(exc)
            results = json.loads(r.data).get("results", [])
            return "; ".join(str(res["error"]) for res in results if "error" in res)

        refused = self._retrying(create, "start-up")
        if refused:
            log.warning("%s: %s refused (%s); writing to it anyway", self._where(), statement, refused)

    def write(self, points: list[Point]) -> None:
        params = {"db": self.settings.database, "precision": "ns"}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        for i in range(0, len(points), self.settings.batch_size):
            body = "\n".join(p.to_line() for p in points[i:i + self.settings.batch_size]).encode()
            self._retrying(lambda: self._request("POST", "/write", params, body), "writes")


class InfluxV2Writer(_InfluxHTTP):
    """Writes through influxdb-client's ``/api/v2/write`` (InfluxDB 1.8+, 2.x, 3.x)."""

    def __init__(self, settings: StorageSettings):
        super().__init__(settings)
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = v2_token(settings)  # fails naming storage.token_env before any request when there is none
        self.client = InfluxDBClient(url=settings.url, token=token, org=settings.org,
                                     timeout=int(settings.timeout_s * 1000))
        # Synchronous: each bytewax batch becomes one request and is stored when
        # write() returns, which is what recovery snapshots rely on.
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def write(self, points: list[Point]) -> None:
        from influxdb_client.rest import ApiException

        def send(lines):
            try:
                # influxdb-client's WritePrecision constants are plain str, but the
                # parameter is annotated as the WritePrecision class.
                self.api.write(bucket=self.settings.bucket, org=self.settings.org, record=lines,
                               write_precision="ns")  # type: ignore[arg-type]
            except ApiException as exc:
                said = _server_says(exc.body if isinstance(exc.body, bytes) else str(exc.body or exc.reason).encode())
                message = f"{self._where()}: HTTP {exc.status} on /api/v2/write: {said}"
                if exc.status is not None and _retryable_status(exc.status):
                    raise StorageUnavailable(message) from None
                raise StorageError(message) from None
            except urllib3.exceptions.HTTPError as exc:
                raise StorageUnavailable(f"{self._where()}: {_connection_problem(exc, self.settings.timeout_s)} "
                                         f"on /api/v2/write") from None

        for i in range(0, len(points), self.settings.batch_size):
            lines = [p.to_line() for p in points[i:i + self.settings.batch_size]]
            self._retrying(lambda: send(lines), "writes")

    def close(self) -> None:
        self.client.close()
        super().close()


def v2_token(settings: StorageSettings) -> str:
    """The API token ``influx-v2`` writes with: ``storage.token_env``, or 1.8's ``user:password``.

    Fails before any request, naming the setting, when neither is set: without
    a token an InfluxDB 2.x answers every write with 401.
    """
    token = settings.token.get() if settings.token else None
    if token:
        return token
    password = settings.password  # a Secret whenever password_env is named, set or not
    if settings.username and password is not None:
        if not password.get():
            instead = f" (or set {settings.token_env} to an API token)" if settings.token_env else ""
            raise SettingsError(f"storage.password_env: {settings.username_env} is set but "
                                f"{settings.password_env} is not; set it{instead}")
        return f"{settings.username}:{password.get()}"  # InfluxDB 1.8 convention
    if not settings.token_env:
        raise SettingsError("storage.token_env: storage.kind influx-v2 needs an API token; name the "
                            "environment variable that holds it")
    raise SettingsError(f"storage.token_env: {settings.token_env} is not set (storage.kind influx-v2 needs an "
                        f"InfluxDB API token; for InfluxDB 1.8, {settings.username_env} and "
                        f"{settings.password_env} instead)")


def check_credentials(settings: StorageSettings) -> None:
    """Fail at once, naming the setting, if ``settings`` cannot be used as they are (no request made)."""
    if settings.kind == "influx-v2":
        v2_token(settings)
    elif settings.kind == "influx-v1":
        password = settings.password
        if settings.username and (password is None or not password.get()):
            raise SettingsError(f"storage.password_env: {settings.username_env} is set but "
                                f"{settings.password_env} is not")


def probe(settings: StorageSettings) -> str:
    """Reach the configured storage and check what writing needs; say what was found.

    * ``influx-v1``: ``/ping``, then ``SHOW DATABASES`` with the configured
      credentials, and ``storage.database`` must be among them;
    * ``influx-v2``: a token, ``/health`` (a 1.x server before 1.8 has none),
      then ``storage.org`` and ``storage.bucket`` through ``/api/v2/buckets``
      with the token (InfluxDB 1.8 and 3.x have no such endpoint: then only the token and health);
    * ``sqlite``: the file's folder can be written.

    Raises :class:`SettingsError` or :class:`StorageError` in one line naming the setting.
    """
    check_credentials(settings)
    if settings.kind == "sqlite":
        folder = Path(settings.sqlite_path).resolve().parent
        while not folder.exists():
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            raise SettingsError(f"storage.sqlite_path: {settings.sqlite_path}: {folder} cannot be written")
        return f"SQLite store at {settings.sqlite_path}"
    one_try = dataclasses.replace(settings, max_retries=0)
    http = _InfluxHTTP(one_try)
    try:
        if settings.kind == "influx-v1":
            return _probe_v1(http)
        return _probe_v2(http)
    finally:
        http.close()


def _probe_get(http: "_InfluxHTTP", path: str, fields: dict, setting: str):
    try:
        return http.http.request("GET", f"{http.url}{path}", fields=fields, headers=http.headers)
    except urllib3.exceptions.HTTPError as exc:
        raise StorageError(f"{setting}: {http._where()}: "
                           f"{_connection_problem(exc, http.settings.timeout_s)} on {path}") from None


def _probe_v1(http: "_InfluxHTTP") -> str:
    s = http.settings
    r = _probe_get(http, "/ping", {}, "storage.url")
    if r.status >= 300:
        raise StorageError(f"storage.url: {http._where()}: HTTP {r.status} on /ping: not an InfluxDB "
                           f"({_server_says(r.data)})")
    version = r.headers.get("X-Influxdb-Version", "?")
    r = _probe_get(http, "/query", {"q": "SHOW DATABASES", **http.auth}, "storage.url")
    if r.status in (401, 403):
        raise StorageError(f"storage.username_env, storage.password_env: {http._where()}: HTTP {r.status} on "
                           f"/query: {_server_says(r.data)}")
    if r.status >= 300:
        raise StorageError(f"storage.url: {http._where()}: HTTP {r.status} on /query: {_server_says(r.data)}")
    databases = {row[0] for res in json.loads(r.data).get("results", [])
                 for series in res.get("series", []) for row in series.get("values", [])}
    if s.database not in databases:
        raise StorageError(f"storage.database: {http._where()} (version {version}) has no database "
                           f"{s.database!r}; create it (CREATE DATABASE \"{s.database}\") or let predmaint run "
                           f"create it with an admin user")
    if s.retention_policy:
        r = _probe_get(http, "/query", {"q": f'SHOW RETENTION POLICIES ON "{s.database}"', **http.auth}, "storage.url")
        policies = {row[0] for res in json.loads(r.data).get("results", [])
                    for series in res.get("series", []) for row in series.get("values", [])}
        if r.status >= 300 or s.retention_policy not in policies:
            raise StorageError(f"storage.retention_policy: database {s.database!r} on {http.url} has no retention "
                               f"policy {s.retention_policy!r} (it has {sorted(policies)})")
        return f"InfluxDB {version} at {http.url}: database {s.database!r}, retention policy {s.retention_policy!r} found"
    return f"InfluxDB {version} at {http.url}: database {s.database!r} found"


def v2_buckets_answer(status: int, body: bytes, org: str, bucket: str) -> str | None:
    """What InfluxDB's answer to ``GET /api/v2/buckets?org=ORG&name=BUCKET`` means; ``None``: no such endpoint.

    Raises :class:`StorageError` naming the setting to fix.

    Examples
    --------
    >>> v2_buckets_answer(200, b'{"buckets": [{"name": "plant"}]}', "acme", "plant")
    "org 'acme', bucket 'plant' found"
    >>> v2_buckets_answer(200, b'{"buckets": []}', "acme", "plant")
    Traceback (most recent call last):
    ...
    predmaint.errors.StorageError: storage.bucket: no bucket 'plant' in org 'acme'
    >>> v2_buckets_answer(404, b'{"code": "not found", "message": "organization name acme not found"}', "acme", "p")
    Traceback (most recent call last):
    ...
    predmaint.errors.StorageError: storage.org: organization name acme not found (HTTP 404 on /api/v2/buckets)
    >>> v2_buckets_answer(401, b'{"code": "unauthorized", "message": "unauthorized access"}', "acme", "p")
    Traceback (most recent call last):
    ...
    predmaint.errors.StorageError: storage.token_env: the token was refused: unauthorized access (HTTP 401 on /api/v2/buckets)
    >>> v2_buckets_answer(404, b'404 page not found', "acme", "p") is None
    True
    """
    said = _server_says(body)
    if status in (401, 403):
        raise StorageError(f"storage.token_env: the token was refused: {said} (HTTP {status} on /api/v2/buckets)")
    if status == 404 and "organization" in said:
        raise StorageError(f"storage.org: {said} (HTTP 404 on /api/v2/buckets)")
    if status == 404:
        return None
    if status >= 300:
        raise StorageError(f"storage.url: HTTP {status} on /api/v2/buckets: {said}")
    names = [b.get("name") for b in json.loads(body).get("buckets", [])]
    if bucket not in names:
        raise StorageError(f"storage.bucket: no bucket {bucket!r} in org {org!r}")
    return f"org {org!r}, bucket {bucket!r} found"


def _probe_v2(http: "_InfluxHTTP") -> str:
    s = http.settings
    http.headers["Authorization"] = f"Token {v2_token(s)}"
    r = _probe_get(http, "/health", {}, "storage.url")
    if r.status == 404:
        raise StorageError(f"storage.kind: influx-v2, but {http._where()} has no InfluxDB 2.x API (HTTP 404 on "
                           f"/health, and so on /api/v2/write); an InfluxDB 1.x before 1.8 takes storage.kind "
                           f"influx-v1")
    if r.status >= 300:
        raise StorageError(f"storage.url: {http._where()}: HTTP {r.status} on /health: {_server_says(r.data)}")
    r = _probe_get(http, "/api/v2/buckets", {"org": s.org, "name": s.bucket}, "storage.url")
    found = v2_buckets_answer(r.status, r.data, s.org, s.bucket)
    if found is None:
        found = "org and bucket not checked (no /api/v2/buckets: InfluxDB 1.8 or 3.x)"
    return f"InfluxDB at {http.url}: healthy; {found}"


class SQLiteStore:
    """Embedded store with InfluxDB's overwrite rule, for running without a server."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS points (measurement TEXT NOT NULL, tagset TEXT NOT NULL, "
            "time_ns INTEGER NOT NULL, tags TEXT NOT NULL, fields TEXT NOT NULL, "
            "PRIMARY KEY (measurement, tagset, time_ns))")

    def write(self, points: list[Point]) -> None:
        rows = [(p.measurement, json.dumps(sorted(p.tags.items())), p.time_ns,
                 json.dumps(p.tags), json.dumps(p.fields)) for p in points]
        with self.db:
            self.db.executemany(
                "INSERT INTO points VALUES (?, ?, ?, ?, ?) ON CONFLICT (measurement, tagset, time_ns) "
                "DO UPDATE SET fields = json_patch(points.fields, excluded.fields)", rows)

    def points(self, measurement: str, **tags: str) -> list[Point]:
        cur = self.db.execute("SELECT tags, fields, time_ns FROM points WHERE measurement = ? ORDER BY time_ns",
                              (measurement,))
        out = []
        for tags_json, fields_json, t in cur:
            ptags = json.loads(tags_json)
            if all(ptags.get(k) == v for k, v in tags.items()):
                out.append(Point(measurement, ptags, json.loads(fields_json), t))
        return out

    def close(self) -> None:
        self.db.close()


def open_writer(settings: StorageSettings) -> PointWriter:
    """The writer ``settings.kind`` selects."""
    if settings.kind == "influx-v1":
        return InfluxV1Writer(settings)
    if settings.kind == "influx-v2":
        return InfluxV2Writer(settings)
    return SQLiteStore(settings.sqlite_path)


def open_reader(settings: StorageSettings) -> PointReader:
    if settings.kind == "sqlite":
        return SQLiteStore(settings.sqlite_path)
    return _InfluxHTTP(settings)


def open_query_reader(settings: StorageSettings) -> QueryReader:
    """The InfluxQL reader of an InfluxDB ``settings.kind`` (the SQLite store has no query language)."""
    return _InfluxHTTP(settings)
