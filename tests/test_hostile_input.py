"""One hostile message never stops the pipeline ("Lose nothing, crash never", part A).

Each message below crashed ``predmaint run`` (and, with recovery, every restart
replayed it into the same crash) or was accepted silently. Now each becomes a
dead letter whose reason names the rule it broke, bounded in size, and the flow
goes on. The unit tests call the envelope decoder and the flow steps; the last
test produces all of them, mixed into good data, to the real broker and runs
``predmaint run --until-end`` into the real InfluxDB.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter, namedtuple
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import yaml

from predmaint import telemetry
from predmaint.connectors.kafka_io import dead_letter_value
from predmaint.domain import DeadLetter
from predmaint.errors import InvalidMessage
from predmaint.features.time_domain import time_domain_features
from predmaint.features.vibration import vibration_features
from predmaint.models.alerting import AlertEvent
from predmaint.models.sensor_model import Assessment
from predmaint.pipelines import intake, points, steps, windows
from predmaint.settings import load_settings
from predmaint.telemetry import Reading, decode_reading, encode_reading

Msg = namedtuple("Msg", "topic partition offset key value timestamp")
SETTINGS = load_settings()
BROKER_MS = 1_767_225_600_123  # the broker's timestamp of the unit tests' messages
TS_MS = 1_767_225_600_000
KAFKA_MESSAGE_MAX = 1_000_000  # the broker's and confluent-kafka's default message size
INFLUX_MAX_NS = 2**63 - 1


def envelope(**kw) -> dict:
    doc = {"v": 1, "asset": "pump-01", "sensor": "bearing-temp", "kind": "temperature", "ts_ms": TS_MS,
           "sample_rate_hz": 0.1, "unit": "degC", "encoding": "json", "channels": 2, "samples": [61.5, 24.0]}
    doc.update(kw)
    return doc


def vibration(**kw) -> dict:
    samples = np.sin(np.arange(4096) * 0.3).astype(np.float32)
    doc = json.loads(encode_reading(Reading("pump-01", "de-accel", "vibration", TS_MS, 12800.0, "m/s2", samples)))
    doc.update(kw)
    return doc


def raw(doc: dict) -> bytes:
    return json.dumps(doc).encode()


def message(value: bytes, key: bytes | None = b"pump-01", *, partition: int = 0, offset: int = 0,
            broker_ms: int | None = BROKER_MS) -> Msg:
    return Msg("telemetry", partition, offset, key, value, (0, 0) if broker_ms is None else (1, broker_ms))


def dead_letter(value: bytes, key: bytes | None = b"pump-01", **kw) -> DeadLetter:
    d = intake.decode(SETTINGS, message(value, key, **kw))
    assert isinstance(d, DeadLetter), d
    assert d.step == "decode" and d.original
    assert_bounded(d)
    return d


def assert_bounded(d: DeadLetter) -> None:
    """What leaves the flow for this dead letter fits the broker and InfluxDB."""
    key = (d.asset or "").encode()
    value = dead_letter_value(d.reason, d.step, asset=d.asset, sensor=d.sensor, topic=d.topic,
                              partition=d.partition, offset=d.offset, original=d.original)
    assert len(key) + len(value) < KAFKA_MESSAGE_MAX
    json.loads(value)
    p = points.dead_letter_point(d)
    assert 0 <= p.time_ns <= INFLUX_MAX_NS
    assert all(len(v) <= 2048 for v in p.fields.values() if isinstance(v, str))
    assert all(len(v) <= 256 for v in p.tags.values())


def ms(year: int, days: float = 0.0) -> int:
    return int((datetime(year, 1, 1, tzinfo=timezone.utc) + timedelta(days=days)).timestamp() * 1000)


# 1. 100,000 nested '[' (RecursionError in json.loads)

@pytest.mark.parametrize("value", [b"[" * 100_000, b'{"a":' * 100_000,
                                   raw(envelope(samples=json.loads("[" * 40 + "1.0" + "]" * 40)))])
def test_deeply_nested_json_is_a_dead_letter_not_a_recursion_error(value):
    with pytest.raises(InvalidMessage, match="nested"):
        decode_reading(value)
    assert "nested" in dead_letter(value).reason


def test_brackets_inside_strings_do_not_count_as_nesting():
    doc = envelope(sensor='[{\\"' + "[" * 200, asset="pump-01")
    r = decode_reading(raw(doc), b"pump-01")
    assert r.sensor == doc["sensor"]
    # Escaped quotes do not end a string: the brackets after them are still text.
    doc = envelope(sensor='\\"[[[[' * 40 + '\\\\')
    assert decode_reading(raw(doc)).sensor == doc["sensor"]


def test_a_message_beyond_the_size_cap_is_refused_before_parsing():
    value = raw(envelope(samples=[1.0] * 10)) + b" " * telemetry.MAX_MESSAGE_BYTES
    with pytest.raises(InvalidMessage, match="bytes"):
        decode_reading(value)


# 2. an integer literal of 5,000 digits (ValueError from Python's int-conversion limit)

@pytest.mark.parametrize("field", ["ts_ms", "samples", "v"])
def test_an_integer_of_5000_digits_is_a_dead_letter_not_a_value_error(field):
    value = raw(envelope(**{field: 7})).replace(b": 7", b": " + b"9" * 5000)
    assert b"9" * 5000 in value
    with pytest.raises(InvalidMessage, match="not JSON"):
        decode_reading(value)
    assert "digits" in dead_letter(value).reason


# 3. vibration samples of 1e300 as a JSON array (OverflowError in the time-domain features)

@pytest.mark.parametrize("x", [np.full(4096, 1e300), 1e300 + 1e298 * np.sin(np.arange(4096)),
                               np.random.default_rng(0).uniform(-1e300, 1e300, 4096), np.full(4096, -1e200)])
def test_time_domain_features_of_huge_samples_do_not_overflow(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f = time_domain_features(x)
        assert f["accel_peak"] >= 0.0
        try:
            vibration_features(x, 12800.0, shaft_hz=24.7, iso_group=2, iso_foundation="rigid")
        except ValueError:
            pass  # a refusal is fine; an OverflowError crashed the flow


def test_time_domain_features_of_a_huge_constant_are_those_of_a_constant():
    f = time_domain_features(np.full(100, 1e300))
    assert f["accel_rms"] == 0.0 and math.isnan(f["kurtosis"])


def test_vibration_samples_beyond_float32_range_are_a_dead_letter():
    doc = vibration(encoding="json", samples=[1e300 * (-1) ** i for i in range(4096)])
    with pytest.raises(InvalidMessage, match="float32"):
        decode_reading(raw(doc))
    d = dead_letter(raw(doc))
    assert (d.asset, d.sensor) == ("pump-01", "de-accel") and "'samples'" in d.reason


def test_samples_that_overflow_in_unit_conversion_are_a_dead_letter():
    doc = vibration(encoding="json", unit="g", samples=[3e38] * 4096)
    with pytest.raises(InvalidMessage, match="float32"):
        decode_reading(raw(doc))


def test_snapshot_features_never_raise_on_huge_samples():
    r = Reading("pump-01", "de-accel", "vibration", TS_MS, 12800.0, "m/s2", np.full(4096, 1e300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d = intake.snapshot_features(SETTINGS, r)
    assert isinstance(d, DeadLetter) and d.step == "snapshot_features" and d.sensor == "de-accel"


def test_snapshot_features_refuse_infinite_features(monkeypatch):
    # An overflow that no feature check catches (NaN, a flat-lined signal's shape, stays allowed).
    monkeypatch.setattr(intake, "vibration_features", lambda *a, **k: {"accel_rms": math.inf, "kurtosis": math.nan})
    r = Reading("pump-01", "de-accel", "vibration", TS_MS, 12800.0, "m/s2", np.ones(4096))
    d = intake.snapshot_features(SETTINGS, r)
    assert isinstance(d, DeadLetter) and "not finite" in d.reason and "accel_rms" in d.reason, d
    monkeypatch.setattr(intake, "vibration_features", lambda *a, **k: {"accel_rms": 0.0, "kurtosis": math.nan})
    assert isinstance(intake.snapshot_features(SETTINGS, r), intake.Snapshot)


# 4. a temperature of 1e300 (non-finite raw_score / health written to InfluxDB: 400)

def test_a_temperature_of_1e300_is_a_dead_letter():
    d = dead_letter(raw(envelope(samples=[1e300, 24.0])))
    assert (d.asset, d.sensor) == ("pump-01", "bearing-temp") and "float32" in d.reason


def test_to_points_never_writes_a_non_finite_field():
    w = windows.WindowFeatures("pump-01", "bearing-temp", "temperature", 300_000_000_000,
                             {"temp_level_c": math.inf, "temp_rate_c_per_min": math.nan, "readings": 30.0})
    bad = Assessment(raw_score=math.inf, health=math.nan, phase="monitoring", learned=False)
    worse = Assessment(raw_score=math.nan, health=math.inf, phase="monitoring", learned=False)
    event = AlertEvent("a", 0, "raised", "alarm", "health_low", "pump-01", "bearing-temp", 300_000_000_000, math.nan)
    s = steps.ScoredAssetWindow("pump-01", w.end_ns, (steps.ScoredWindow(w, bad, {"m1": bad, "m2": worse}),),
                                (event,), {"bearing-temp": math.nan})
    written = points.to_points(SETTINGS, s, now_ns=w.end_ns)
    for p in written:
        assert p.fields, p
        for k, v in p.fields.items():
            assert not (isinstance(v, float) and not math.isfinite(v)), (p.measurement, k, v)
        assert "inf" not in p.to_line() and "nan" not in p.to_line()
    health = [p for p in written if p.measurement == "health"]
    # The health points stay (health unknown, not invented), with what is known about them.
    assert len(health) == 2 and all(p.fields["phase"] == "monitoring" and "health" not in p.fields for p in health)
    assert [p.fields["readings"] for p in written if p.measurement == "features"] == [30.0]
    assert [p.fields["alert_id"] for p in written if p.measurement == "alerts"] == ["a"]


# 5. an asset id of 400 KB (the dead-letter message exceeded the broker's message size)

def test_an_asset_id_of_400_kb_gives_a_bounded_dead_letter():
    asset = "x" * 400_000
    d = dead_letter(raw(envelope(asset=asset)), asset.encode())
    assert "'asset'" in d.reason and "400000 characters" in d.reason
    assert d.asset is None or len(d.asset) <= 256


def test_a_400_kb_message_key_gives_a_bounded_dead_letter():
    d = dead_letter(raw(envelope()), b"k" * 400_000)
    assert "message key" in d.reason and d.asset == "pump-01"


def test_huge_values_in_any_field_give_bounded_reasons():
    for field in ("v", "kind", "unit", "ts_ms", "sample_rate_hz", "channels", "rpm", "encoding", "sensor"):
        d = dead_letter(raw(envelope(**{field: "y" * 300_000})))
        assert f"'{field}'" in d.reason or field in d.reason, (field, d.reason[:200])
        assert len(d.reason) <= 1024, field


def test_every_string_of_a_dead_letter_is_bounded_with_a_marker():
    d = DeadLetter("r" * 2_000_000, "decode", "a" * 2_000_000, "s" * 2_000_000, "t" * 2_000_000, 3, 9,
                   b"\xff" * 2_000_000, BROKER_MS * 1_000_000)
    value = dead_letter_value(d.reason, d.step, asset=d.asset, sensor=d.sensor, topic=d.topic,
                              partition=d.partition, offset=d.offset, original=d.original)
    assert len(value) < KAFKA_MESSAGE_MAX
    doc = json.loads(value)
    for k in ("reason", "asset", "sensor", "original"):
        assert "truncated" in doc[k], k
    assert "truncated" in doc["source"]["topic"]
    p = points.dead_letter_point(d)
    assert "truncated" in p.fields["reason"] and "truncated" in p.fields["asset"]
    assert all(len(v) <= 2048 for v in p.fields.values() if isinstance(v, str))


def test_short_dead_letters_are_not_marked():
    value = dead_letter_value("why", "decode", asset="pump-01", sensor="s", topic="t", partition=0, offset=1,
                              original=b'{"v": 1}')
    assert "truncated" not in value.decode() and json.loads(value)["original"] == '{"v": 1}'


# 6. ts_ms in the year 2999 (beyond InfluxDB; the asset's watermark jumped ahead for good)

@pytest.mark.parametrize("ts_ms", [ms(2999), ms(2262, 200), 2**63 // 1_000_000 + 1, -5])
def test_event_time_beyond_influxdb_range_is_a_dead_letter(ts_ms):
    with pytest.raises(InvalidMessage, match="'ts_ms'"):
        decode_reading(raw(envelope(ts_ms=ts_ms)))
    assert "'ts_ms'" in dead_letter(raw(envelope(ts_ms=ts_ms)), broker_ms=None).reason


def test_event_time_far_ahead_of_the_broker_time_is_a_dead_letter():
    ahead = telemetry.MAX_AHEAD_OF_BROKER_MS
    d = dead_letter(raw(envelope(ts_ms=BROKER_MS + ahead + 1)))
    assert "ahead of the broker" in d.reason and d.sensor == "bearing-temp"
    # A clock a little ahead, or no broker timestamp: accepted.
    assert isinstance(intake.decode(SETTINGS, message(raw(envelope(ts_ms=BROKER_MS + ahead)))), Reading)
    assert isinstance(intake.decode(SETTINGS, message(raw(envelope(ts_ms=ms(2200))), broker_ms=None)), Reading)
    # The replay stamps messages with their event time: always accepted.
    assert isinstance(intake.decode(SETTINGS, message(raw(envelope(ts_ms=ms(2200))), broker_ms=ms(2200))), Reading)


@pytest.mark.parametrize("broker_ms", [ms(2999), 2**62, -7])
def test_an_absurd_broker_timestamp_does_not_stamp_a_dead_letter_beyond_influxdb(broker_ms):
    d = dead_letter(b"not json", broker_ms=broker_ms, offset=12)
    assert 0 <= points.dead_letter_point(d).time_ns <= INFLUX_MAX_NS


# 7. accepted silently: "v": true, vibration with channels: 2

@pytest.mark.parametrize("v", [True, 1.0, "1"])
def test_the_version_must_be_the_integer_1(v):
    with pytest.raises(InvalidMessage, match="envelope version"):
        decode_reading(raw(envelope(v=v)))


def test_channels_must_be_an_integer_not_a_boolean():
    with pytest.raises(InvalidMessage, match="'channels'"):
        decode_reading(raw(envelope(channels=True, samples=[61.5])))


def test_vibration_with_two_channels_is_a_dead_letter():
    doc = vibration(channels=2, encoding="json", samples=[0.1] * 8192)
    d = dead_letter(raw(doc))
    assert "vibration needs 1 channel" in d.reason and (d.asset, d.sensor) == ("pump-01", "de-accel")


# 8. dead letters overwrote each other in InfluxDB

def point_key(d: DeadLetter):
    p = points.dead_letter_point(d)
    return p.measurement, tuple(sorted(p.tags.items())), p.time_ns


def test_decode_dead_letters_of_different_partitions_do_not_collide():
    a = dead_letter(b"not json", partition=0, offset=5)
    b = dead_letter(b"not json", partition=1, offset=5)
    c = dead_letter(b"not json", partition=0, offset=1_000_005)  # the same broker millisecond
    d = dead_letter(b"not json", partition=0, offset=5 + 10**8)
    assert len({point_key(a), point_key(b), point_key(c), point_key(d)}) == 4
    assert points.dead_letter_point(a).tags["partition"] == "0"
    # Deterministic: a replay writes the same point again.
    assert point_key(dead_letter(b"not json", partition=0, offset=5)) == point_key(a)


def test_decode_dead_letters_without_broker_time_do_not_collide():
    a = dead_letter(b"not json", offset=5, broker_ms=None)
    b = dead_letter(b"not json", offset=1_000_005, broker_ms=None)
    assert point_key(a) != point_key(b)


def test_window_dead_letters_of_different_sensors_do_not_collide():
    end_ns = 300_000_000_000
    a = DeadLetter("window features: x", "window_features", "pump-01", "motor-current", time_ns=end_ns)
    b = DeadLetter("window features: x", "window_features", "pump-02", "motor-current", time_ns=end_ns)
    assert point_key(a) != point_key(b)
    assert point_key(a) == point_key(DeadLetter("other", "window_features", "pump-01", "motor-current",
                                                time_ns=end_ns))
    # Still at the window end (to the millisecond).
    assert points.dead_letter_point(a).time_ns // 1_000_000 == end_ns // 1_000_000


def test_snapshot_feature_dead_letters_point_back_at_their_message_not_at_1970():
    doc = vibration(encoding="json", samples=[0.1, 0.2] * 64)  # too few samples for the vibration features
    reading = intake.decode(SETTINGS, message(raw(doc), partition=4, offset=77))
    assert isinstance(reading, Reading)
    d = intake.snapshot_features(SETTINGS, reading)
    assert isinstance(d, DeadLetter) and d.step == "snapshot_features"
    assert (d.topic, d.partition, d.offset, d.original) == ("telemetry", 4, 77, raw(doc))
    assert points.dead_letter_point(d).time_ns // 10**9 == BROKER_MS // 1000  # at its arrival, not in 1970


def test_the_reason_and_the_original_are_truncated_with_a_marker():
    d = dead_letter(raw(envelope(asset="ghost", sensor="s" * 200, samples=[1.0] * 100_000)), b"ghost")
    doc = json.loads(dead_letter_value(d.reason, d.step, asset=d.asset, sensor=d.sensor, topic=d.topic,
                                       partition=d.partition, offset=d.offset, original=d.original))
    assert "truncated" in doc["original"] and len(doc["original"]) < len(d.original)


# All of them on the real broker, mixed into good data, through `predmaint run --until-end`.

def hostile_messages(settings) -> list[tuple[bytes | None, bytes, str, str | None]]:
    """(key, value, what the dead letter's reason must say, its sensor) for every hostile kind but copies.

    The kinds live in :mod:`predmaint.connectors.hostile`, shared with ``predmaint chaos``.
    """
    from predmaint.connectors.hostile import DUPLICATE, hostile_kinds

    return [(k.key, k.value, k.expect, k.sensor) for k in hostile_kinds(settings) if k.name != DUPLICATE]


def test_every_hostile_kind_is_a_bounded_dead_letter_with_its_reason():
    from predmaint.connectors.hostile import hostile_kinds

    kinds = [k for k in hostile_kinds(SETTINGS, ts_ms=TS_MS) if k.value]
    assert len(kinds) >= 20
    for k in kinds:
        d = intake.decode(SETTINGS, message(k.value, k.key))
        assert isinstance(d, DeadLetter) and k.expect in d.reason and d.sensor == k.sensor, (k.name, d)
        assert_bounded(d)


@pytest.mark.integration
def test_hostile_messages_mixed_into_good_data_are_dead_lettered_and_the_flow_goes_on(broker, influxdb, tmp_path):
    from predmaint.connectors import kafka_io
    from predmaint.connectors.fleet_simulator import fleet_messages
    from predmaint.connectors.storage import open_reader
    from tests.pipeline_runs import run_pipeline, write_config

    config = write_config(tmp_path, "hostile", broker, influxdb, "hostile", "hostile")
    doc = yaml.safe_load(config.read_text())
    doc["simulator"]["hours"] = 1
    doc["simulator"]["faults"] = []
    config.write_text(yaml.safe_dump(doc))
    settings = load_settings(config)
    hostile = hostile_messages(settings)
    good = list(fleet_messages(settings))
    mixed: list[tuple[bytes | None, bytes]] = []
    every = len(good) // (len(hostile) + 1)
    for i, m in enumerate(good):
        mixed.append((m.key, m.value))
        if i % every == every // 2 and len(mixed) < len(good) + len(hostile) and (i // every) < len(hostile):
            k, value, _, _ = hostile[i // every]
            mixed.append((k, value))
    assert len(mixed) == len(good) + len(hostile)
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, mixed)

    run_pipeline(config)

    dead = kafka_io.read_topic(settings.kafka.bootstrap, settings.kafka.dead_letter_topic)
    assert all(len(k or b"") + len(v or b"") < KAFKA_MESSAGE_MAX for k, v in dead)
    docs = [json.loads(v) for _, v in dead]
    reasons = [d["reason"] for d in docs]
    assert len(docs) == len(hostile), reasons
    # Several kinds may share a reason's words ("'samples'", "JSON"): each group has a dead letter per message.
    groups = Counter((expected, sensor) for _, _, expected, sensor in hostile)
    for (expected, sensor), n in groups.items():
        assert sum(expected in d["reason"] and d["sensor"] == sensor for d in docs) >= n, (expected, reasons)
    assert all(d["step"] == "decode" and d["original"] is not None and d["source"]["offset"] is not None
               for d in docs)  # the empty message's original is "", not missing

    reader = open_reader(settings.storage)
    try:
        stored = reader.query('SELECT count("count") FROM "deadletters"')
        assert stored[0]["values"][0][1] == len(docs)
        counts = {(s["tags"]["asset"], s["tags"]["model"]): s["values"][0][1]
                  for s in reader.query('SELECT count("health") FROM "health" GROUP BY "asset", "model"')}
    finally:
        reader.close()
    expected = int(settings.simulator.hours * 3600 / settings.window.length_s) * 3
    models = [m.label for m in (settings.model, *settings.challengers)]
    assert counts == {(a.asset, m): expected for a in settings.fleet for m in models}
