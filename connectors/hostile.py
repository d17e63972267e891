"""Hostile telemetry: messages that break the contract in many ways, for the dead-letter path and ``predmaint chaos``.

Each kind below once crashed ``predmaint run`` or was accepted silently (issue
12); each must now become one dead letter whose reason contains the kind's
``expect`` text, while the flow goes on. :func:`hostile_kinds` lists them
for one registered asset; :func:`hostile_mix` interleaves many of them with
good telemetry. Pure functions of the settings: two calls give the same bytes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from predmaint.settings import Settings
from predmaint.telemetry import Reading, encode_reading


@dataclass(frozen=True)
class HostileKind:
    """One way a message can be hostile.

    Attributes
    ----------
    name : str
        Short name, as listed in the chaos table.
    key, value : bytes or None
        The Kafka message.
    expect : str
        Text the dead letter's reason must contain.
    sensor : str or None
        The sensor the dead letter must name (None: none can be known).
    heavy : bool
        Large (hundreds of KB): mixed in a few times only, to keep a run bounded.
    """

    name: str
    key: bytes | None
    value: bytes
    expect: str
    sensor: str | None
    heavy: bool = False


#: The kind that is an exact copy of a good message (dead-lettered by the flow's ``dedupe`` step).
DUPLICATE = "duplicate"


def _ms(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


def hostile_kinds(settings: Settings, ts_ms: int | None = None) -> list[HostileKind]:
    """Every hostile kind for the first asset of ``settings`` (a vibration, a temperature and a current sensor).

    ``ts_ms`` is the event time of the kinds that need a plausible one (default:
    30 minutes after the simulator's start).
    """
    asset = settings.fleet[0]
    a = asset.asset
    start = int(settings.simulator.start_time.timestamp() * 1000)
    ts = start + 1_800_000 if ts_ms is None else ts_ms
    temp = next(s for s in asset.sensors if s.kind == "temperature")
    vib = next(s for s in asset.sensors if s.kind == "vibration")
    cur = next(s for s in asset.sensors if s.kind == "current")
    t_channels = 2 if temp.ambient_channel >= 0 else 1
    t = {"v": 1, "asset": a, "sensor": temp.sensor, "kind": "temperature", "ts_ms": ts, "sample_rate_hz": 0.1,
         "unit": "degC", "encoding": "json", "channels": t_channels, "samples": [61.5, 24.0][:t_channels]}
    samples = np.sin(np.arange(4096) * 0.3).astype(np.float32)
    v = json.loads(encode_reading(Reading(a, vib.sensor, "vibration", ts, vib.sample_rate_hz or 12800.0, "m/s2",
                                          samples)))
    c = {**t, "sensor": cur.sensor, "kind": "current", "unit": "A", "channels": 3, "samples": [10.0, 10.1, 9.9]}
    key = a.encode()

    def raw(doc: dict) -> bytes:
        return json.dumps(doc).encode()

    huge_int = raw(t).replace(f'"ts_ms": {ts}'.encode(), b'"ts_ms": ' + b"9" * 5000)
    far_ahead = int(time.time() * 1000) + 30 * 86_400_000
    return [
        HostileKind("nested_100k", key, b"[" * 100_000, "nested", None, heavy=True),
        HostileKind("int_5000_digits", key, huge_int, "digits", None),
        HostileKind("vibration_1e300", key, raw({**v, "encoding": "json",
                                                 "samples": [1e300 * (-1) ** i for i in range(4096)]}),
                    "float32", vib.sensor, heavy=True),
        HostileKind("temperature_1e300", key, raw({**t, "samples": [1e300] * t_channels}), "float32", temp.sensor),
        HostileKind("asset_id_400kb", b"x" * 400_000, raw({**t, "asset": "x" * 400_000}), "'asset'", temp.sensor,
                    heavy=True),
        HostileKind("ts_year_2999", key, raw({**t, "ts_ms": _ms(2999)}), "before 2262", temp.sensor),
        HostileKind("ts_far_ahead", key, raw({**t, "ts_ms": far_ahead}), "ahead of the broker", temp.sensor),
        HostileKind("version_true", key, raw({**t, "v": True}), "envelope version", temp.sensor),
        HostileKind("vibration_2_channels", key, raw({**v, "channels": 2, "encoding": "json",
                                                      "samples": [0.1] * 8192}),
                    "vibration needs 1 channel", vib.sensor, heavy=True),
        HostileKind("not_json", key, b"this is not json", "JSON", None),
        HostileKind("empty", key, b"", "not JSON", None),
        HostileKind("json_array", key, b"[1, 2, 3]", "object", None),
        HostileKind("version_99", key, raw({**t, "v": 99}), "envelope version", temp.sensor),
        HostileKind("unknown_asset", b"ghost-asset", raw({**t, "asset": "ghost-asset"}), "not in the registry",
                    temp.sensor),
        HostileKind("unknown_sensor", key, raw({**t, "sensor": "ghost-sensor"}), "not registered", "ghost-sensor"),
        HostileKind("wrong_kind", key, raw({**t, "kind": "current", "unit": "A"}), "differs from the registry",
                    temp.sensor),
        HostileKind("wrong_sample_rate", key, raw({**v, "sample_rate_hz": 1000.0}), "sample rate", vib.sensor),
        HostileKind("temperature_channels", key, raw({**t, "channels": 3, "samples": [1.0, 2.0, 3.0]}),
                    "temperature needs", temp.sensor),
        HostileKind("current_2_channels", key, raw({**c, "channels": 2, "samples": [10.0, 10.1]}),
                    "current needs 3 phase channels", cur.sensor),
        HostileKind("samples_not_array", key, raw({**t, "samples": "not-an-array"}), "'samples'", temp.sensor),
        HostileKind("ts_is_text", key, raw({**t, "ts_ms": "yesterday"}), "'ts_ms'", temp.sensor),
        HostileKind("ts_negative", key, raw({**t, "ts_ms": -5}), "'ts_ms'", temp.sensor),
        HostileKind("missing_samples", key, raw({k: x for k, x in t.items() if k != "samples"}), "'samples'",
                    temp.sensor),
        HostileKind("bad_base64", key, raw({**v, "samples": "%%%not base64%%%"}), "'samples'", vib.sensor),
        HostileKind("samples_nan", key, raw({**t, "samples": [float("nan")] * t_channels}), "NaN or infinity",
                    temp.sensor),
        HostileKind("invalid_utf8", key, b'{"v": 1, "asset": "\xff\xfe"}', "UTF-8", None),
        HostileKind("short_base64", key, raw({**v, "samples": base64.b64encode(b"\x00\x01\x02").decode()}),
                    "multiple of 4", vib.sensor),
        # An exact copy of the good message just before it (its key and value are filled in by hostile_mix).
        HostileKind(DUPLICATE, None, b"", "duplicate", None),
    ]


def hostile_mix(good: Sequence[tuple[bytes | None, bytes]], kinds: Sequence[HostileKind], n: int,
                heavy_max: int = 5) -> tuple[list[tuple[bytes | None, bytes]], list[HostileKind]]:
    """``n`` hostile messages spread evenly through ``good``; returns the mixture and what was mixed in, in order.

    The kinds take turns; a heavy kind is used at most ``heavy_max`` times
    (its turn then goes to the next light kind), so that a run stays bounded
    in bytes whatever ``n``.
    """
    light = [k for k in kinds if not k.heavy]
    used = {k.name: 0 for k in kinds}
    chosen: list[HostileKind] = []
    for i in range(n):
        k = kinds[i % len(kinds)]
        if k.heavy and used[k.name] >= heavy_max:
            k = light[i % len(light)]
        used[k.name] += 1
        chosen.append(k)
    out: list[tuple[bytes | None, bytes]] = []
    every = max(1, len(good) // max(n, 1))
    hostile = iter(chosen)
    mixed: list[HostileKind] = []
    for i, m in enumerate(good):
        out.append(m)
        if i % every == every // 2:
            h = next(hostile, None)
            if h is not None:
                if h.name == DUPLICATE:
                    h = HostileKind(DUPLICATE, m[0], m[1], h.expect, json.loads(m[1]).get("sensor"))
                out.append((h.key, h.value))
                mixed.append(h)
    # More hostile than good messages: the rest at the end (copies need a good message, so not those).
    rest = [h for h in hostile if h.name != DUPLICATE]
    out.extend((h.key, h.value) for h in rest)
    return out, mixed + rest
