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

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3

from predmaint.connectors.retry import backoff_delay
from predmaint.domain import Point, PointReader, PointWriter, QueryReader
from predmaint.errors import SettingsError, StorageError, StorageUnavailable
from predmaint.settings import StorageSettings

log = logging.getLogger(__name__)


def _with_retries(fn, what: str, max_retries: int):
    """Call ``fn``; retry :class:`StorageUnavailable` with exponential backoff and jitter."""
    for attempt in range(max_retries + 1):
        try:
            return fn()
        except StorageUnavailable as exc:
            if attempt == max_retries:
                raise
            delay = backoff_delay(attempt + 1, 0.2, 30.0)
            log.warning("%s: %s; retry %d/%d in %.1f s", what, exc, attempt + 1, max_retries, delay)
            time.sleep(delay)


class _InfluxHTTP:
    """InfluxQL over ``/query`` and v1 ``/write``; shared by both InfluxDB flavours."""

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
            raise StorageUnavailable(f"{method} {path} on {self.url}: {type(exc).__name__}") from None
        if r.status == 429 or r.status >= 500:
            raise StorageUnavailable(f"{method} {path} on {self.url}: HTTP {r.status}")
        if r.status >= 300:
            raise StorageError(f"{method} {path} on {self.url}: HTTP {r.status}: {r.data[:300]!r}")
        return r

    def query(self, q: str) -> list[dict]:
        """Run InfluxQL; return the result's series (each with name, tags, columns, values)."""
        db = {"db": self.settings.database}
        if self.settings.retention_policy:
            db["rp"] = self.settings.retention_policy
        r = _with_retries(lambda: self._request("GET", "/query", {**db, "q": q, "epoch": "ns"}),
                          "influx query", self.settings.max_retries)
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
    """Writes line protocol to ``/write`` (InfluxDB 1.x; also 2.x/3.x v1 compatibility)."""

    def __init__(self, settings: StorageSettings, create_database: bool = True):
        super().__init__(settings)
        if create_database:
            _with_retries(lambda: self._request("POST", "/query", {"q": f'CREATE DATABASE "{settings.database}"'}),
                          "influx create database", settings.max_retries)

    def write(self, points: list[Point]) -> None:
        params = {"db": self.settings.database, "precision": "ns"}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        for i in range(0, len(points), self.settings.batch_size):
            body = "\n".join(p.to_line() for p in points[i:i + self.settings.batch_size]).encode()
            _with_retries(lambda: self._request("POST", "/write", params, body),
                          "influx /write", self.settings.max_retries)


class InfluxV2Writer(_InfluxHTTP):
    """Writes through influxdb-client's ``/api/v2/write`` (InfluxDB 1.8+, 2.x, 3.x)."""

    def __init__(self, settings: StorageSettings):
        super().__init__(settings)
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = settings.token.get() if settings.token else None
        password = settings.password  # a Secret whenever password_env is named, set or not
        if not token and settings.username and password is not None:
            if not password.get():
                instead = f" (or set {settings.token_env} to an API token)" if settings.token_env else ""
                raise SettingsError(f"storage.password_env: {settings.username_env} is set but "
                                    f"{settings.password_env} is not; set it{instead}")
            token = f"{settings.username}:{password.get()}"  # InfluxDB 1.8 convention
        # influxdb-client annotates ``token: str = None`` (an implicit Optional) but accepts None.
        self.client = InfluxDBClient(url=settings.url, token=token, org=settings.org,  # type: ignore[arg-type]
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
                if exc.status is not None and (exc.status == 429 or exc.status >= 500):
                    raise StorageUnavailable(f"/api/v2/write on {self.url}: HTTP {exc.status}") from None
                raise StorageError(f"/api/v2/write on {self.url}: HTTP {exc.status}: {exc.reason}") from None
            except urllib3.exceptions.HTTPError as exc:
                raise StorageUnavailable(f"/api/v2/write on {self.url}: {type(exc).__name__}") from None

        for i in range(0, len(points), self.settings.batch_size):
            lines = [p.to_line() for p in points[i:i + self.settings.batch_size]]
            _with_retries(lambda: send(lines), "influx /api/v2/write", self.settings.max_retries)

    def close(self) -> None:
        self.client.close()
        super().close()


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
