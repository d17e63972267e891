"""The wire contract: round trips, compact encoding, and every rejection rule."""

import base64
import json

import numpy as np
import pytest

from predmaint.telemetry import InvalidMessage, Reading, decode_reading, encode_reading


def reading(**kw):
    base = dict(asset="pump-01", sensor="de-accel", kind="vibration", ts_ms=1_767_225_600_000,
                sample_rate_hz=12800.0, unit="m/s2", samples=np.linspace(-1, 1, 4096).astype(np.float32))
    base.update(kw)
    return Reading(**base)


@pytest.mark.parametrize("encoding", ["json", "f32le-b64"])
def test_round_trip_keeps_samples_and_metadata(encoding):
    r = reading()
    back = decode_reading(encode_reading(r, encoding), b"pump-01")
    assert (back.asset, back.sensor, back.kind, back.ts_ms, back.sample_rate_hz) == \
        (r.asset, r.sensor, r.kind, r.ts_ms, r.sample_rate_hz)
    np.testing.assert_array_equal(back.samples, r.samples.astype(np.float64))


def test_base64_encoding_is_compact():
    r = reading()
    assert len(encode_reading(r, "f32le-b64")) < 0.5 * len(encode_reading(r, "json"))


def test_g_is_converted_to_m_per_s2():
    r = reading(unit="g", samples=np.ones(8, dtype=np.float32))
    back = decode_reading(encode_reading(r))
    assert back.unit == "m/s2"
    np.testing.assert_allclose(back.samples, 9.80665)


def test_three_phase_current_shares_the_envelope():
    r = reading(sensor="motor-current", kind="current", unit="A", sample_rate_hz=0.1, channels=3,
                samples=np.array([30.0, 30.2, 29.9], dtype=np.float32))
    back = decode_reading(encode_reading(r, "json"))
    assert back.channels == 3 and back.samples.reshape(-1, 3).shape == (1, 3)


def envelope(**kw):
    doc = json.loads(encode_reading(reading(samples=np.ones(4, dtype=np.float32)), "json"))
    doc.update(kw)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("value, reason", [
    (None, "empty message value"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (envelope(v=2), "unsupported envelope version 2"),
    (envelope(asset=""), "'asset' must be a non-empty string"),
    (envelope(sensor=7), "'sensor' must be a non-empty string"),
    (envelope(kind="pressure"), "'kind' must be one of"),
    (envelope(ts_ms="2026-01-01"), "'ts_ms' must be epoch milliseconds"),
    (envelope(ts_ms=True), "'ts_ms' must be epoch milliseconds"),
    (envelope(sample_rate_hz=0), "'sample_rate_hz' must be a positive number"),
    (envelope(unit="mm/s"), "unit 'mm/s' not accepted for kind 'vibration'"),
    (envelope(channels=0), "'channels' must be an integer"),
    (envelope(samples="abc"), "'samples' must be an array of numbers"),
    (envelope(samples=[]), "sample count 0"),
    (envelope(samples=[1.0, None]), "'samples' must be an array of numbers"),
    (envelope(encoding="f32le-b64", samples="***"), "not valid base64"),
    (envelope(encoding="f32le-b64", samples=base64.b64encode(b"abc").decode()), "multiple of 4"),
    (envelope(encoding="f32le-b64", samples=base64.b64encode(np.array([np.nan], "<f4").tobytes()).decode()),
     "NaN or infinity"),
    (envelope(encoding="zstd"), "unknown encoding 'zstd'"),
    (envelope(channels=3), "not a multiple of channels=3"),
])
def test_invalid_messages_are_rejected_with_the_rule_they_break(value, reason):
    with pytest.raises(InvalidMessage) as err:
        decode_reading(value)
    assert reason in err.value.reason


def test_key_must_match_asset_and_error_names_asset_and_sensor():
    with pytest.raises(InvalidMessage) as err:
        decode_reading(envelope(), b"pump-99")
    assert "differs from asset 'pump-01'" in err.value.reason
    assert "asset=pump-01 sensor=de-accel" in str(err.value)


def _features_message(**kw) -> bytes:
    doc = {"v": 1, "asset": "pump-01", "sensor": "de-overall", "kind": "vibration", "ts_ms": 1_767_225_600_000,
           "features": {"rms": 0.077, "kurt": 0.27}}
    doc.update(kw)
    return json.dumps(doc).encode()


def test_a_vibration_sensor_may_send_its_own_overall_values():
    r = decode_reading(_features_message())
    assert r.features == {"rms": 0.077, "kurt": 0.27} and r.samples.size == 0
    assert decode_reading(encode_reading(r)).features == r.features


@pytest.mark.parametrize("kw, reason", [
    (dict(kind="temperature"), "'features' is for kind 'vibration' only"),
    (dict(samples=[1.0]), "'samples' or 'features', not both"),
    (dict(features={}), "object of 1..64 named numbers"),
    (dict(features=[0.1]), "object of 1..64 named numbers"),
    (dict(features={f"f{i}": 1.0 for i in range(65)}), "object of 1..64 named numbers"),
    (dict(features={"snapshots": 1.0}), "feature name 'snapshots'"),
    (dict(features={"rms value": 1.0}), "feature name 'rms value'"),
    (dict(features={"x" * 65: 1.0}), "must be an identifier of at most 64"),
    (dict(features={"rms": "0.1"}), "feature 'rms' must be a finite number"),
    (dict(features={"rms": True}), "feature 'rms' must be a finite number"),
    (dict(features={"rms": 1e39}), "feature 'rms' must be a finite number"),
    (dict(features={"rms": 10 ** 400}), "feature 'rms' must be a finite number"),
])
def test_overall_values_are_checked_like_samples(kw, reason):
    with pytest.raises(InvalidMessage) as err:
        decode_reading(_features_message(**kw))
    assert reason in err.value.reason
