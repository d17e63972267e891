"""The telemetry wire contract: one versioned JSON envelope for every reading.

Every message on the telemetry topic is keyed by its asset id (so one asset's
readings stay in one partition, in order) and carries a JSON object::

    {"v": 1, "asset": "pump-01", "sensor": "de-accel", "kind": "vibration",
     "ts_ms": 1763900000000, "sample_rate_hz": 12800.0, "unit": "m/s2",
     "encoding": "f32le-b64", "channels": 1, "samples": "<base64>"}

An optional ``rpm`` gives the shaft speed for variable-speed machines.

A vibration sensor that computes its own overall values (a wireless
transmitter, a data collector's route export, a table of per-snapshot
statistics) sends them instead of the waveform, as ``"features": {"rms":
0.077, "kurt": 0.1, ...}`` with no ``samples``, ``encoding`` or ``channels``
(``sample_rate_hz`` and ``unit`` are optional: each value has its own unit).
The registry says which a sensor sends (``reports: samples | features``).
``ts_ms`` is the event time of the first sample, milliseconds since the Unix
epoch, UTC. ``samples`` is either a JSON array of numbers (``"encoding":
"json"``, fine for a handful of scalar readings) or base64 of little-endian
float32 (``"encoding": "f32le-b64"``): decoding 4,096 samples from a JSON array
costs ~2.4 ms, from base64 ~0.08 ms. Multi-channel readings (3-phase current)
interleave channels sample by sample, ``channels`` says how many.

Hostile input is refused before it can hurt: the message size and the JSON
nesting depth are checked before parsing, every error of the parser becomes
:class:`InvalidMessage`, ids and sample values are bounded, and event time must
fit InfluxDB and may not run ahead of the broker's clock (see the constants
below). Dead letters quote untrusted text only through :func:`clip` and
:func:`clip_original`, so one always fits the broker and InfluxDB.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from predmaint.errors import InvalidMessage

ENVELOPE_VERSION = 1
KINDS = ("vibration", "temperature", "current", "process")
ENCODINGS = ("json", "f32le-b64")
#: Units accepted per kind, with the factor that converts to the unit used
#: by ``features`` (m/s2 for acceleration, degC, A).
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "vibration": {"m/s2": 1.0, "g": 9.80665},
    "temperature": {"degC": 1.0},
    "current": {"A": 1.0},
}
#: ``process`` (any scalar process value: pressure, flow, voltage, load, a temperature that is
#: not a bearing's...) takes its unit as registered, unconverted; this bounds its length.
MAX_PROCESS_UNIT_CHARS = 32
MAX_SAMPLES = 1 << 20
#: Largest message value decoded, in bytes (checked before parsing): the producer's request limit
#: (:func:`predmaint.connectors.kafka_io.produce`); base64 of ``MAX_SAMPLES`` float32 samples is 5.6 MB.
MAX_MESSAGE_BYTES = 8 << 20
#: Deepest nesting of JSON arrays and objects accepted (the envelope needs 2: itself and ``samples``).
#: ``json.loads`` recurses once per level and fails with RecursionError near 1,000; deeper
#: documents are refused by a scan before parsing.
MAX_NESTING = 8
#: Most overall values one ``features`` message may carry, and the longest name of one. Names
#: become InfluxDB field names, so they are plain identifiers.
MAX_FEATURES = 64
MAX_FEATURE_NAME_CHARS = 64
_FEATURE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Names the window aggregation keeps for itself (see :mod:`predmaint.features.aggregate`).
RESERVED_FEATURES = ("snapshots", "readings")
#: Longest ``asset`` / ``sensor`` id, in characters: ids become Kafka keys and dead-letter fields.
MAX_ID_CHARS = 256
#: Largest sample magnitude, float32's: the range of the ``f32le-b64`` encoding, so both encodings
#: carry the same values, and the features' moments (up to the 4th power, over ``MAX_SAMPLES``
#: samples) stay finite in float64. Applies in the canonical unit (checked before converting, so
#: the conversion cannot overflow either).
MAX_SAMPLE_ABS = float(np.finfo(np.float32).max)
#: Latest event time accepted: 2262-01-01T00:00:00Z in epoch milliseconds. InfluxDB stores int64
#: nanoseconds, which end at 2262-04-11T23:47:16Z; the margin keeps window ends (up to a window
#: length after the event) in range too.
MAX_TS_MS = 9_214_646_400_000
#: How far ``ts_ms`` may run ahead of the message's broker timestamp: one day, in milliseconds.
#: Event time drives each asset's watermark, which never goes back, so one reading stamped in the
#: future (a wrong clock, seconds sent as milliseconds) would make every later real reading of
#: the asset "late". Plant clocks drift by seconds to minutes and a time zone mix-up is at most
#: 14 h; a reading a day ahead of its arrival is never its real time.
MAX_AHEAD_OF_BROKER_MS = 86_400_000
#: Bounds on what a dead letter quotes (the reason, ids and names, the original message): with
#: them a dead letter's Kafka value stays far below the broker's default 1 MB message size (the
#: original, JSON-escaped, takes at most ~400 KB) and every InfluxDB string field below its 64 KB.
MAX_REASON_CHARS = 1024
MAX_FIELD_CHARS = 256
MAX_ORIGINAL_BYTES = 64 * 1024

# Values quoted in reasons: long strings, lists and numbers are shortened ('xxxx...xxxx').
_quote = reprlib.Repr()
_quote.maxstring = _quote.maxother = 60
_quote.maxlong = 40
_quote.maxlist = _quote.maxdict = 4
_quote.maxlevel = 2


def clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, marked with how long it was.

    Examples
    --------
    >>> clip("pump-01")
    'pump-01'
    >>> clip("x" * 1000, 40)
    'xxxxxxxxxxxxxx...[truncated, 1000 chars]'
    """
    if len(text) <= limit:
        return text
    marker = f"...[truncated, {len(text)} chars]"
    return text[:max(0, limit - len(marker))] + marker


def clip_original(original: bytes | None, limit: int = MAX_ORIGINAL_BYTES) -> str | None:
    """The original message as text (invalid UTF-8 replaced), its first ``limit`` bytes, marked when cut.

    Examples
    --------
    >>> clip_original(b'{"v": 1}')
    '{"v": 1}'
    >>> clip_original(b"abcdef", 4), clip_original(b"\\xff") == "\\ufffd"
    ('abcd...[truncated, 6 bytes]', True)
    """
    if original is None:
        return None
    text = bytes(original[:limit]).decode("utf-8", "replace")
    return text if len(original) <= limit else f"{text}...[truncated, {len(original)} bytes]"


def _show(value: object) -> str:
    """``repr(value)``, shortened: reasons quote untrusted values."""
    return _quote.repr(value)


def _iso(ts_ms: int) -> str:
    try:
        return datetime.fromtimestamp(ts_ms / 1000.0, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{ts_ms} ms"


def _nested_deeper_than(buf: bytes, limit: int) -> bool:
    r"""Whether JSON text ``buf`` (UTF-8) nests arrays/objects deeper than ``limit``, brackets in strings aside.

    Up to the first syntax error (where ``json.loads`` stops) this is the depth the parser
    would reach, so a document it passes cannot exhaust the parser's recursion.

    Examples
    --------
    >>> _nested_deeper_than(b'{"a": [1, 2]}', 2), _nested_deeper_than(b"[[[1]]]", 2)
    (False, True)
    >>> _nested_deeper_than(b'["[[[["]', 2), _nested_deeper_than(rb'["\"[[[["]', 2)
    (False, False)
    >>> _nested_deeper_than(rb'["\\", [[[1]]]]', 2)
    True
    """
    if buf.count(b"[") + buf.count(b"{") <= limit:
        return False  # the common case, at C speed: the envelope has one '{' and at most one '['
    a = np.frombuffer(buf, dtype=np.uint8)
    step = (a == 0x5B).astype(np.int32) + (a == 0x7B)  # '[' '{'
    step -= (a == 0x5D) | (a == 0x7D)  # ']' '}'
    quote = a == 0x22
    if quote.any():
        # A quote closes or opens a string unless an odd run of backslashes precedes it.
        backslash = a == 0x5C
        count = np.cumsum(backslash, dtype=np.int32)
        run = count - np.maximum.accumulate(np.where(backslash, 0, count))
        escaped = np.zeros_like(quote)
        escaped[1:] = run[:-1] % 2 == 1
        in_string = np.cumsum(quote & ~escaped, dtype=np.int32) % 2 == 1
        step[in_string] = 0
    return bool(np.cumsum(step, dtype=np.int32).max() > limit)


@dataclass(frozen=True)
class Source:
    """Where a message came from, for the dead letters of steps after decoding.

    ``time_ns`` is the broker's timestamp (0 when unknown), ``original`` the message value.
    """

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    time_ns: int = 0
    original: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Reading:
    """One decoded telemetry message, samples converted to the canonical unit.

    Examples
    --------
    >>> r = Reading("pump-01", "temp", "temperature", 1_700_000_000_000, 0.1,
    ...             "degC", np.array([61.5], dtype=np.float32))
    >>> decode_reading(encode_reading(r)).samples.tolist()
    [61.5]
    """

    asset: str
    sensor: str
    kind: str
    ts_ms: int
    sample_rate_hz: float
    unit: str
    samples: np.ndarray = field(repr=False)
    channels: int = 1
    #: Shaft speed at the time of the reading, for variable-speed machines.
    rpm: float | None = None
    #: A vibration sensor's own overall values, sent instead of samples (``samples`` is then empty).
    features: dict[str, float] | None = None
    #: The message it was decoded from (set by the flow's ``decode`` step; not compared).
    source: Source | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.asset}/{self.sensor}"

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000.0, tz=timezone.utc)


def encode_reading(reading: Reading, encoding: str = "f32le-b64") -> bytes:
    """Serialise a reading to the v1 envelope."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encode: unknown encoding {encoding!r}, expected one of {ENCODINGS}")
    if reading.features is not None:
        return json.dumps(
            {"v": ENVELOPE_VERSION, "asset": reading.asset, "sensor": reading.sensor, "kind": reading.kind,
             "ts_ms": int(reading.ts_ms), "features": {k: float(v) for k, v in reading.features.items()}},
            separators=(",", ":")).encode()
    payload: object
    if encoding == "json":
        # JSON numbers carry the full float64 value (a few scalars per message).
        payload = [float(x) for x in np.asarray(reading.samples, dtype=np.float64)]
    else:
        payload = base64.b64encode(np.asarray(reading.samples, dtype="<f4").tobytes()).decode("ascii")
    return json.dumps(
        {
            "v": ENVELOPE_VERSION,
            "asset": reading.asset,
            "sensor": reading.sensor,
            "kind": reading.kind,
            "ts_ms": int(reading.ts_ms),
            "sample_rate_hz": float(reading.sample_rate_hz),
            "unit": reading.unit,
            "encoding": encoding,
            "channels": int(reading.channels),
            "samples": payload,
            **({"rpm": float(reading.rpm)} if reading.rpm is not None else {}),
        },
        separators=(",", ":"),
    ).encode()


def _require(cond: bool, reason: str | Callable[[], str], asset: str | None, sensor: str | None) -> None:
    """Raise :class:`InvalidMessage` unless ``cond``; ``reason`` may be a function, so that the message
    (quoting the offending value) is built only for a message that breaks the rule: formatting every
    check's reason cost ten times the parse of a valid message."""
    if not cond:
        raise InvalidMessage(reason() if callable(reason) else reason, asset, sensor)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)  # JSON true is not the number 1


def _positive(x: object) -> bool:
    """Whether ``x`` is a finite number > 0 (an integer too large for a float is not)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x) and x > 0
    except OverflowError:
        return False


def _id_field(doc: dict, name: str) -> str | None:
    """``doc[name]`` if it is a usable id (a string of 1..MAX_ID_CHARS characters), else None."""
    value = doc.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS else None


def _parse(value: bytes | str) -> object:
    """``json.loads`` behind the size and nesting limits; every parser error becomes InvalidMessage."""
    buf = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
    if len(buf) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"message of {len(buf)} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes")
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"not JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if _nested_deeper_than(buf, MAX_NESTING):
        raise InvalidMessage(f"not JSON we accept: arrays/objects nested deeper than {MAX_NESTING} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"not JSON: {exc}") from None
    except ValueError as exc:
        # An integer literal longer than Python's int-conversion limit (sys.get_int_max_str_digits).
        raise InvalidMessage(f"not JSON we accept: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise InvalidMessage("not JSON we accept: nested too deeply to parse") from None


def _features(raw: object, a: str | None, s: str | None) -> dict[str, float]:
    """A ``features`` object checked: 1..MAX_FEATURES identifiers, each a finite number in float32's range."""
    _require(isinstance(raw, dict) and 0 < len(raw) <= MAX_FEATURES,
             lambda: f"field 'features' must be an object of 1..{MAX_FEATURES} named numbers, got {_show(raw)}", a, s)
    assert isinstance(raw, dict)  # checked by _require above
    out: dict[str, float] = {}
    for name, value in raw.items():
        _require(len(name) <= MAX_FEATURE_NAME_CHARS and bool(_FEATURE_NAME.match(name))
                 and name not in RESERVED_FEATURES,
                 lambda: f"feature name {_show(name)} must be an identifier of at most {MAX_FEATURE_NAME_CHARS} "
                 f"characters (letters, digits, '_'), not one of {RESERVED_FEATURES}", a, s)
        finite = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            finite = finite and math.isfinite(value) and abs(value) <= MAX_SAMPLE_ABS
        except OverflowError:  # an integer beyond any float
            finite = False
        _require(finite,
                 lambda: f"feature {name!r} must be a finite number within float32's range, got {_show(value)}", a, s)
        out[name] = float(value)
    return out


def decode_reading(value: bytes | None, key: bytes | None = None, *, broker_ts_ms: int | None = None,
                   source: Source | None = None) -> Reading:
    """Parse and validate one message; raise :class:`InvalidMessage` on any breach.

    ``broker_ts_ms`` is the message's broker timestamp, when known: ``ts_ms`` may be at most
    :data:`MAX_AHEAD_OF_BROKER_MS` ahead of it. ``source`` (where the message was read) is kept
    on the reading (given here, not added after: a ``dataclasses.replace`` per message cost
    2 % of the pipeline's time).

    Examples
    --------
    >>> decode_reading(b'{"v": 2}')
    Traceback (most recent call last):
    ...
    predmaint.errors.InvalidMessage: decode: asset=? sensor=?: unsupported envelope version 2, expected 1
    """
    if value is None:
        raise InvalidMessage("empty message value")
    doc = _parse(value)
    if not isinstance(doc, dict):
        raise InvalidMessage("envelope is not a JSON object")
    asset, sensor = doc.get("asset"), doc.get("sensor")
    a, s = _id_field(doc, "asset"), _id_field(doc, "sensor")
    v = doc.get("v")
    _require(_is_int(v) and v == ENVELOPE_VERSION,
             lambda: f"unsupported envelope version {_show(v)}, expected {ENVELOPE_VERSION}", a, s)
    for name, given, usable in (("asset", asset, a), ("sensor", sensor, s)):
        if usable is None:
            size = f" ({len(given)} characters)" if isinstance(given, str) else ""
            raise InvalidMessage(f"field {name!r} must be a non-empty string of at most {MAX_ID_CHARS} "
                                 f"characters, got {_show(given)}{size}", a, s)
    if key is not None:
        _require(key.decode("utf-8", "replace") == asset,
                 lambda: f"message key {_show(key)} ({len(key)} bytes) differs from asset {_show(asset)}", a, s)
    kind = doc.get("kind")
    _require(isinstance(kind, str) and kind in KINDS,
             lambda: f"field 'kind' must be one of {KINDS}, got {_show(kind)}", a, s)
    # _require raised unless these hold; the asserts only tell the type checker.
    assert isinstance(asset, str) and isinstance(sensor, str) and isinstance(kind, str)
    ts_ms = doc.get("ts_ms")
    _require(isinstance(ts_ms, int) and not isinstance(ts_ms, bool) and 0 < ts_ms <= MAX_TS_MS,
             lambda: f"field 'ts_ms' must be epoch milliseconds after 1970 and before 2262 (InfluxDB's range), "
             f"got {_show(ts_ms)}", a, s)
    assert isinstance(ts_ms, int)  # checked by _require above
    if broker_ts_ms is not None:
        _require(ts_ms <= broker_ts_ms + MAX_AHEAD_OF_BROKER_MS,
                 lambda: f"field 'ts_ms' {_iso(ts_ms)} is more than {MAX_AHEAD_OF_BROKER_MS / 3_600_000:g} h ahead of "
                 f"the broker timestamp {_iso(broker_ts_ms)} (a wrong clock or unit; it would move the "
                 f"asset's watermark ahead for good)", a, s)
    if "features" in doc:
        _require(kind == "vibration", lambda: f"field 'features' is for kind 'vibration' only, got kind {kind!r}", a, s)
        _require("samples" not in doc, "a message carries 'samples' or 'features', not both", a, s)
        return Reading(asset, sensor, kind, ts_ms, 0.0, "", np.empty(0), 1, None,
                       _features(doc.get("features"), a, s), source=source)
    rate = doc.get("sample_rate_hz")
    _require(_positive(rate), lambda: f"field 'sample_rate_hz' must be a positive number, got {_show(rate)}", a, s)
    assert isinstance(rate, (int, float))  # checked by _require above
    unit = doc.get("unit")
    if kind == "process":
        _require(isinstance(unit, str) and 0 < len(unit) <= MAX_PROCESS_UNIT_CHARS,
                 f"field 'unit' must be a string of 1..{MAX_PROCESS_UNIT_CHARS} characters for kind 'process'",
                 a, s)
        assert isinstance(unit, str)  # checked by _require above
        factors = {unit: 1.0}
    else:
        factors = UNIT_FACTORS[kind]
        # A list or mapping is not hashable: test the type before membership.
        _require(isinstance(unit, str) and unit in factors,
                 lambda: f"unit {_show(unit)} not accepted for kind {kind!r}, expected one of {sorted(factors)}", a, s)
        assert isinstance(unit, str)  # a key of factors, checked by _require above
    channels = doc.get("channels", 1)
    _require(isinstance(channels, int) and not isinstance(channels, bool) and 1 <= channels <= 16,
             lambda: f"field 'channels' must be an integer 1..16, got {_show(channels)}", a, s)
    assert isinstance(channels, int)  # checked by _require above
    rpm = doc.get("rpm")
    _require(rpm is None or _positive(rpm),
             lambda: f"field 'rpm' must be a positive number when present, got {_show(rpm)}", a, s)
    encoding = doc.get("encoding", "json")
    raw = doc.get("samples")
    if encoding == "json":
        _require(isinstance(raw, list) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw),
            "field 'samples' must be an array of numbers", a, s)
        try:
            samples = np.asarray(raw, dtype=np.float64)
        except OverflowError:  # an integer beyond any float
            raise InvalidMessage(f"field 'samples' has values beyond the float32 range "
                                 f"(|x| <= {MAX_SAMPLE_ABS:.4g} {unit})", a, s) from None
    elif encoding == "f32le-b64":
        _require(isinstance(raw, str), "field 'samples' must be a base64 string", a, s)
        assert isinstance(raw, str)  # checked by _require above
        try:
            buf = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidMessage("field 'samples' is not valid base64", a, s) from None
        _require(len(buf) % 4 == 0, "samples byte length is not a multiple of 4 (float32)", a, s)
        samples = np.frombuffer(buf, dtype="<f4").astype(np.float64)
    else:
        raise InvalidMessage(f"unknown encoding {_show(encoding)}, expected one of {ENCODINGS}", a, s)
    _require(0 < samples.size <= MAX_SAMPLES, lambda: f"sample count {samples.size} outside 1..{MAX_SAMPLES}", a, s)
    _require(samples.size % channels == 0,
             lambda: f"sample count {samples.size} is not a multiple of channels={channels}", a, s)
    _require(bool(np.isfinite(samples).all()), "samples contain NaN or infinity", a, s)
    factor = factors[unit]
    # Bounded before the conversion, so that it cannot overflow.
    _require(bool((np.abs(samples) <= MAX_SAMPLE_ABS / factor).all()),
             lambda: f"field 'samples' has values beyond the float32 range (|x| <= {MAX_SAMPLE_ABS:.4g} "
             f"{next(u for u, f in factors.items() if f == 1.0)})", a, s)
    if factor != 1.0:
        samples = samples * factor
    canonical_unit = next(u for u, f in factors.items() if f == 1.0)
    return Reading(asset, sensor, kind, ts_ms, float(rate), canonical_unit, samples, channels,
                   None if rpm is None else float(rpm), source=source)
