"""Storage writers: line protocol, InfluxDB's overwrite rule, and the real InfluxDB 1.x server."""

import time

import pytest

from predmaint.connectors.storage import InfluxV1Writer, InfluxV2Writer, SQLiteStore, StorageError
from predmaint.domain import Point
from predmaint.errors import SettingsError, StorageUnavailable
from predmaint.settings import StorageSettings


def test_line_protocol_escapes_and_types():
    p = Point("m x", {"asset": "a,b=c", "empty": ""}, {"f": 1.5, "i": 3, "b": False, "s": 'say "hi"'}, 7)
    assert p.to_line() == 'm\\ x,asset=a\\,b\\=c f=1.5,i=3i,b=false,s="say \\"hi\\"" 7'


def test_sqlite_store_overwrites_same_series_and_time_and_merges_fields(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.write([Point("health", {"asset": "a"}, {"health": 90.0, "phase": "x"}, 1)])
    store.write([Point("health", {"asset": "a"}, {"health": 80.0}, 1),
                 Point("health", {"asset": "b"}, {"health": 70.0}, 1)])
    a = store.points("health", asset="a")
    assert len(a) == 1 and a[0].fields == {"health": 80.0, "phase": "x"}
    assert len(store.points("health")) == 2


@pytest.mark.integration
def test_influx_v1_writer_round_trip_and_overwrite(influxdb):
    settings = StorageSettings(kind="influx-v1", url=influxdb.url, database="storage_test", batch_size=2)
    w = InfluxV1Writer(settings)
    pts = [Point("health", {"asset": f"a{i % 2}"}, {"health": float(i)}, 1_000 + i) for i in range(5)]
    w.write(pts)
    w.write(pts[:2])  # replay: overwrites, no duplicates
    got = w.points("health")
    assert [(p.tags["asset"], p.fields["health"], p.time_ns) for p in got] == \
        [(p.tags["asset"], p.fields["health"], p.time_ns) for p in pts]
    assert w.points("health", asset="a1")[0].fields["health"] == 1.0


@pytest.mark.integration
def test_influxql_error_is_reported(influxdb):
    w = InfluxV1Writer(StorageSettings(kind="influx-v1", url=influxdb.url, database="storage_test"))
    with pytest.raises(StorageError, match="error parsing query"):
        w.query("SELEKT nonsense")


def test_pipelined_sink_partition_has_everything_stored_at_snapshot(tmp_path):
    from predmaint.connectors.storage_sink import _PipelinedPartition

    part = _PipelinedPartition(SQLiteStore(tmp_path / "s.sqlite"), max_queued_batches=2)
    for i in range(20):
        part.write_batch([Point("health", {"asset": "a"}, {"health": float(i)}, i)])
    part.snapshot()
    assert len(SQLiteStore(tmp_path / "s.sqlite").points("health")) == 20
    part.close()


def test_pipelined_sink_partition_raises_a_failed_write_before_the_epoch_commits():
    from predmaint.connectors.local_services import free_ports
    from predmaint.connectors.storage_sink import _PipelinedPartition

    port, = free_ports(1)  # nothing listens there
    settings = StorageSettings(kind="influx-v1", url=f"http://127.0.0.1:{port}", max_retries=0, timeout_s=1)
    part = _PipelinedPartition(InfluxV1Writer(settings, create_database=False), max_queued_batches=2)
    part.write_batch([Point("health", {"asset": "a"}, {"health": 1.0}, 1)])
    # max_retries 0: no retry; the cause names the storage, the request and what went wrong.
    with pytest.raises(StorageUnavailable, match=rf"^storage: InfluxDB at http://127\.0\.0\.1:{port}: "
                                                 r"cannot connect \(Connection refused\) on /write$"):
        part.snapshot()
    with pytest.raises(StorageUnavailable):  # and from every later write_batch
        part.write_batch([Point("health", {"asset": "a"}, {"health": 2.0}, 2)])
    part.close()  # never raises: bytewax calls it from a destructor


def test_closing_a_sink_partition_stops_a_write_that_waits_for_storage_and_never_raises():
    from predmaint.connectors.local_services import free_ports
    from predmaint.connectors.storage_sink import _PipelinedPartition

    port, = free_ports(1)
    settings = StorageSettings(kind="influx-v1", url=f"http://127.0.0.1:{port}", retry_for_s=60, timeout_s=1)
    part = _PipelinedPartition(InfluxV1Writer(settings, create_database=False), max_queued_batches=2)
    part.write_batch([Point("health", {"asset": "a"}, {"health": 1.0}, 1)])
    time.sleep(0.3)  # the writer thread is retrying now
    started = time.monotonic()
    part.close()  # as when the worker unwinds after another partition failed
    assert time.monotonic() - started < 3 and not part.thread.is_alive()


@pytest.mark.parametrize("value", [0, -1, "soon", True])
def test_retry_for_s_must_be_positive_seconds(value):
    with pytest.raises(SettingsError, match=r"^storage\.retry_for_s: must be a number of seconds > 0"):
        StorageSettings(retry_for_s=value)


def test_max_retries_is_an_optional_non_negative_count():
    assert StorageSettings().max_retries is None and StorageSettings(max_retries=0).max_retries == 0
    with pytest.raises(SettingsError, match=r"^storage\.max_retries: must be an integer >= 0 or empty"):
        StorageSettings(max_retries=-1)


_INFLUX_ENV = ("PREDMAINT_INFLUX_TOKEN", "PREDMAINT_INFLUX_USERNAME", "PREDMAINT_INFLUX_PASSWORD")


def _v2_writer_auth(monkeypatch, **env):
    """The Authorization header an InfluxV2Writer built with ``env`` sends (no request is made)."""
    for name in _INFLUX_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    w = InfluxV2Writer(StorageSettings(kind="influx-v2", url="http://127.0.0.1:9"))
    try:
        return w.client.api_client.default_headers.get("Authorization")
    finally:
        w.close()


def test_influx_v2_writer_username_without_password_is_a_settings_error(monkeypatch):
    # The password Secret exists (password_env is named) but its variable is
    # unset: this used to send the token "user:None".
    with pytest.raises(SettingsError, match=r"storage\.password_env: .*PREDMAINT_INFLUX_PASSWORD"):
        _v2_writer_auth(monkeypatch, PREDMAINT_INFLUX_USERNAME="user")


def test_influx_v2_writer_token_precedence(monkeypatch):
    assert _v2_writer_auth(monkeypatch, PREDMAINT_INFLUX_USERNAME="user",
                           PREDMAINT_INFLUX_PASSWORD="pw") == "Token user:pw"
    assert _v2_writer_auth(monkeypatch, PREDMAINT_INFLUX_TOKEN="tok", PREDMAINT_INFLUX_USERNAME="user") == "Token tok"
    # Neither: refused before any request, naming the setting (an InfluxDB 2.x answers 401 to every write).
    with pytest.raises(SettingsError, match=r"^storage\.token_env: PREDMAINT_INFLUX_TOKEN is not set"):
        _v2_writer_auth(monkeypatch)
