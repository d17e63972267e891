"""What every dataset adapter returns: a labelled :class:`Recording` of one asset.

An adapter (:mod:`~predmaint.connectors.datasets.nab`, ``skab``, ``ims``,
``cwru``) reads one public corpus in place and turns each labelled recording
into

* a **registry entry** in the YAML registry format of the README ("Asset
  registry"): ``{"asset", "rpm"?, "iso_group"?, "bearing"?, "sensors": [...]}``
  without ``site``/``line``, which the evaluation adds;
* its **readings**: :class:`predmaint.telemetry.Reading` objects in event-time
  order, built directly (not through ``decode_reading``), whose asset, sensor,
  kind and unit match the registry entry;
* its **labels**, a frozen dataclass of the corpus.

Scalar channels (NAB values, SKAB's pump sensors, IMS per-snapshot features)
use the kind :data:`PROCESS_KIND` with a free-form unit (``"1"`` when
unitless): one reading per value, ``samples`` a 1-element float64 array,
``channels=1`` and ``sample_rate_hz`` = 1 / the nominal cadence. Timestamps are
epoch milliseconds UTC taken from the data: gaps stay gaps, nothing is
resampled.

Examples
--------
>>> import numpy as np
>>> sensors = [process_sensor("value", "1", 1 / 300)]
>>> rec = Recording("nab", "a/b.csv", "nab-a-b", {"asset": "nab-a-b", "sensors": sensors},
...                 lambda: scalar_readings("nab-a-b", sensors, np.array([0, 300_000]), np.array([[1.0], [2.0]])),
...                 None)
>>> [(r.ts_ms, r.samples.tolist(), r.kind) for r in rec.stream()]
[(0, [1.0], 'process'), (300000, [2.0], 'process')]
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from predmaint.errors import EvaluationError
from predmaint.telemetry import Reading

__all__ = [
    "CORPORA",
    "PROCESS_KIND",
    "Recording",
    "natural_key",
    "nominal_rate_hz",
    "parse_floats",
    "parse_times_ms",
    "process_sensor",
    "read_table",
    "require_dir",
    "safe_id",
    "scalar_readings",
    "sensor_name",
]

#: The corpora with an adapter.
CORPORA = ("nab", "skab", "ims", "cwru")
#: The telemetry contract's kind for generic scalar channels (free-form unit, as registered).
PROCESS_KIND = "process"

LabelsT = TypeVar("LabelsT")


@dataclass(frozen=True)
class Recording(Generic[LabelsT]):
    """One labelled recording of one asset, ready to be replayed as telemetry.

    Parameters
    ----------
    corpus : str
        ``"nab"``, ``"skab"``, ``"ims"`` or ``"cwru"``.
    name : str
        Id relative to the corpus folder, e.g.
        ``"realKnownCause/machine_temperature_system_failure.csv"``, ``"valve1/0.csv"``,
        ``"test2/bearing1"`` (IMS: run and bearing), ``"normal_0_97.mat"``.
    asset : str
        Asset id, safe for the registry and InfluxDB tags (:func:`safe_id`).
    registry : dict
        Registry entry (README "Asset registry") without site and line.
    readings : callable or tuple
        A callable returning an iterable of :class:`Reading` in event-time
        order (called afresh for every replay), or a tuple of them.
    labels
        The corpus' labels dataclass.
    """

    corpus: str
    name: str
    asset: str
    registry: dict[str, Any] = field(repr=False)
    readings: Callable[[], Iterable[Reading]] | tuple[Reading, ...] = field(repr=False)
    labels: LabelsT = field(repr=False)

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ValueError(f"corpus {self.corpus!r} is not one of {CORPORA}")
        if safe_id(self.asset) != self.asset:
            raise ValueError(f"asset id {self.asset!r} is not registry-safe (use safe_id)")
        if self.registry.get("asset") != self.asset:
            raise ValueError(f"registry entry names asset {self.registry.get('asset')!r}, not {self.asset!r}")

    def stream(self) -> Iterator[Reading]:
        """The readings, in event-time order."""
        return iter(self.readings) if isinstance(self.readings, tuple) else iter(self.readings())

    @property
    def sensors(self) -> dict[str, dict[str, Any]]:
        """The registry's sensors by id."""
        return {s["sensor"]: s for s in self.registry.get("sensors", [])}


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_id(text: str) -> str:
    """An id of letters, digits, ``_``, ``.`` and ``-`` only (anything else becomes one ``-``).

    Examples
    --------
    >>> safe_id("nab/realKnownCause/machine temp.csv")
    'nab-realKnownCause-machine-temp.csv'
    >>> safe_id("12k_Drive_End_OR007@6_0_130")
    '12k_Drive_End_OR007-6_0_130'
    """
    out = _UNSAFE.sub("-", text).strip("-")
    if not out:
        raise ValueError(f"no usable characters in id {text!r}")
    return out


def sensor_name(column: str) -> str:
    """A sensor id from a column name: lower case, letters and digits only.

    Examples
    --------
    >>> sensor_name("Volume Flow RateRMS"), sensor_name("Accelerometer1RMS")
    ('volumeflowraterms', 'accelerometer1rms')
    """
    out = re.sub(r"[^a-z0-9]+", "", column.lower())
    if not out:
        raise ValueError(f"no usable characters in column name {column!r}")
    return out


def process_sensor(sensor: str, unit: str, sample_rate_hz: float) -> dict[str, Any]:
    """Registry entry of a scalar :data:`PROCESS_KIND` sensor.

    Examples
    --------
    >>> process_sensor("pressure", "bar", 1.0)
    {'sensor': 'pressure', 'kind': 'process', 'unit': 'bar', 'sample_rate_hz': 1.0}
    """
    return {"sensor": sensor, "kind": PROCESS_KIND, "unit": unit, "sample_rate_hz": float(sample_rate_hz)}


def scalar_readings(asset: str, sensors: Sequence[dict[str, Any]], ts_ms: np.ndarray,
                    values: np.ndarray) -> Iterator[Reading]:
    """One reading per finite value: row by row (``ts_ms`` order), then sensor by sensor.

    ``values`` has one row per timestamp and one column per sensor; a NaN is a
    missing value and yields no reading.

    Examples
    --------
    >>> s = [process_sensor("a", "1", 1.0), process_sensor("b", "1", 1.0)]
    >>> [(r.sensor, r.ts_ms, r.samples.tolist()) for r in scalar_readings(
    ...     "x", s, np.array([0, 1000]), np.array([[1.0, np.nan], [3.0, 4.0]]))]
    [('a', 0, [1.0]), ('a', 1000, [3.0]), ('b', 1000, [4.0])]
    """
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 2 or vals.shape != (len(ts_ms), len(sensors)):
        raise ValueError(f"values shape {vals.shape}, expected ({len(ts_ms)}, {len(sensors)})")
    specs = [(s["sensor"], s["kind"], float(s["sample_rate_hz"]), s["unit"]) for s in sensors]
    finite = np.isfinite(vals)
    for i, t in enumerate(np.asarray(ts_ms, dtype=np.int64).tolist()):
        row, ok = vals[i], finite[i]
        for j, (sensor, kind, rate, unit) in enumerate(specs):
            if ok[j]:
                yield Reading(asset, sensor, kind, t, rate, unit, row[j : j + 1].copy(), 1)


def parse_times_ms(texts: Sequence[str], where: str) -> np.ndarray:
    """ISO-like timestamps (``YYYY-MM-DD hh:mm:ss``, no zone: taken as UTC) as int64 epoch ms.

    Examples
    --------
    >>> parse_times_ms(["2014-01-01 00:00:00", "2014-01-01 00:05:00"], "x").tolist()
    [1388534400000, 1388534700000]
    """
    try:
        return np.array(list(texts), dtype="datetime64[ms]").astype(np.int64)
    except ValueError as exc:
        raise EvaluationError(f"{where}: unreadable timestamp ({exc})") from None


def nominal_rate_hz(ts_ms: np.ndarray, where: str) -> float:
    """1 / the median positive step between timestamps (the series' nominal cadence), in Hz.

    Examples
    --------
    >>> nominal_rate_hz(np.array([0, 300_000, 600_000, 1_500_000]), "x") == 1 / 300
    True
    """
    steps = np.diff(np.sort(np.asarray(ts_ms, dtype=np.int64)))
    steps = steps[steps > 0]
    if steps.size == 0:
        raise EvaluationError(f"{where}: fewer than two distinct timestamps, no cadence")
    return 1000.0 / float(np.median(steps))


def read_table(path: Path, delimiter: str = ",") -> dict[str, list[str]]:
    """A CSV file as columns (header name -> cell strings), in header order.

    Raises
    ------
    EvaluationError
        Missing file, no header, or a row whose length differs from the header.
    """
    if not path.is_file():
        raise EvaluationError(f"dataset file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvaluationError(f"{path}: unreadable: {exc}") from None
    if not rows or not rows[0]:
        raise EvaluationError(f"{path}: empty file, expected a header row")
    header, body = rows[0], [r for r in rows[1:] if r]
    bad = next((i for i, r in enumerate(body) if len(r) != len(header)), None)
    if bad is not None:
        raise EvaluationError(f"{path}: data row {bad + 1} has {len(body[bad])} cells, header has {len(header)}")
    if len(set(header)) != len(header):
        raise EvaluationError(f"{path}: duplicate column names in the header")
    columns = list(zip(*body)) if body else [() for _ in header]
    return {name: list(col) for name, col in zip(header, columns)}


def parse_floats(cells: Sequence[str], where: str) -> np.ndarray:
    """Cells as float64 (empty cells are NaN)."""
    try:
        return np.array([c if c.strip() else "nan" for c in cells], dtype=np.float64)
    except ValueError as exc:
        raise EvaluationError(f"{where}: not a number ({exc})") from None


def natural_key(text: str) -> tuple:
    """Sort key that orders ``valve1/2.csv`` before ``valve1/10.csv``.

    Examples
    --------
    >>> sorted(["a/10.csv", "a/2.csv", "b/1.csv"], key=natural_key)
    ['a/2.csv', 'a/10.csv', 'b/1.csv']
    """
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text))


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else :class:`EvaluationError` naming ``what``."""
    if not path.is_dir():
        raise EvaluationError(f"{what}: folder not found: {path}")
    return path
