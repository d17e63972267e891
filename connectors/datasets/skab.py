"""SKAB adapter: each Skoltech Anomaly Benchmark experiment as one labelled pump asset.

Source: ``waico/SKAB`` commit ``b2c0d46`` (see ``skab/SOURCE.md`` in the shared
data). The data is **GPL-3.0**: it is read in place from the shared folder and
never copied into this repository (not even into tests).

Layout: ``DATA/<folder>/<n>.csv`` for the experiments (``valve1/``,
``valve2/``, ``other/``; any other folder of the same format is picked up too)
and ``DATA/anomaly-free/anomaly-free.csv``. Files are ``;``-separated with a
header: ``datetime`` (``YYYY-MM-DD hh:mm:ss``, the rig's local time, no zone:
taken as UTC, only differences matter), eight sensor columns, then the labels
``anomaly`` and ``changepoint`` (absent from the anomaly-free run).

Each file becomes asset ``skab-<folder>-<n>`` with the eight columns as eight
``process`` sensors at 1 Hz (ids from :func:`~predmaint.connectors.datasets.base.sensor_name`):

================== ====================== =======
sensor             column                 unit
================== ====================== =======
accelerometer1rms  Accelerometer1RMS      g
accelerometer2rms  Accelerometer2RMS      g
current            Current                A
pressure           Pressure               bar
temperature        Temperature (motor)    degC
thermocouple       Thermocouple (fluid)   degC
voltage            Voltage                V
volumeflowraterms  Volume Flow RateRMS    l/min
================== ====================== =======

Neither vibration column is a waveform (they are RMS values) and neither
temperature is a bearing temperature, so all eight are ``process`` sensors. A
column not in this table keeps its sanitised name with unit ``"1"``.

Labels (:class:`SkabLabels`): per row ``anomaly`` and ``changepoint`` with the
rows' timestamps, and the published protocol's split: the first
:data:`TRAIN_ROWS` = 400 rows of each experiment are its training part, the
rest its test part (the anomaly-free run is all training, unlabelled).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from predmaint.connectors.datasets.base import (
    Recording,
    natural_key,
    parse_floats,
    parse_times_ms,
    process_sensor,
    read_table,
    require_dir,
    safe_id,
    scalar_readings,
    sensor_name,
)
from predmaint.errors import EvaluationError
from predmaint.models.skab_scoring import TRAIN_ROWS
from predmaint.telemetry import Reading

__all__ = ["SKAB_UNITS", "TRAIN_ROWS", "SkabLabels", "load_skab", "skab_asset_id", "skab_experiments"]

#: Column -> unit (SOURCE.md "Columns").
SKAB_UNITS = {
    "Accelerometer1RMS": "g",
    "Accelerometer2RMS": "g",
    "Current": "A",
    "Pressure": "bar",
    "Temperature": "degC",
    "Thermocouple": "degC",
    "Voltage": "V",
    "Volume Flow RateRMS": "l/min",
}
TIME_COLUMN = "datetime"
LABEL_COLUMNS = ("anomaly", "changepoint")
SAMPLE_RATE_HZ = 1.0


@dataclass(frozen=True)
class SkabLabels:
    """Per-row labels of one SKAB experiment.

    Attributes
    ----------
    ts_ms : numpy.ndarray
        Row timestamps, int64 epoch ms, increasing.
    anomaly, changepoint : numpy.ndarray
        0/1 per row (int8); all zero for the unlabelled anomaly-free run.
    labelled : bool
        False for the anomaly-free run.
    train_rows : int
        Rows of the training part (400, or every row of the anomaly-free run).
    """

    ts_ms: np.ndarray = field(repr=False, compare=False)
    anomaly: np.ndarray = field(repr=False, compare=False)
    changepoint: np.ndarray = field(repr=False, compare=False)
    labelled: bool = True
    train_rows: int = TRAIN_ROWS

    @property
    def rows(self) -> int:
        return int(self.ts_ms.shape[0])

    def test_part(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ts_ms, anomaly, changepoint)`` of the rows after the training part."""
        n = self.train_rows
        return self.ts_ms[n:], self.anomaly[n:], self.changepoint[n:]


def skab_asset_id(name: str) -> str:
    """``skab-<folder>-<n>`` from ``<folder>/<n>.csv``.

    Examples
    --------
    >>> skab_asset_id("valve1/0.csv"), skab_asset_id("anomaly-free/anomaly-free.csv")
    ('skab-valve1-0', 'skab-anomaly-free')
    """
    folder, _, file = name.rpartition("/")
    stem = file.removesuffix(".csv")
    return "skab-" + safe_id(stem if stem == folder or not folder else f"{folder}-{stem}")


def skab_experiments(data: Path, experiments: str | Sequence[str] | None = None,
                     anomaly_free: bool = True) -> list[str]:
    """Relative names of the SKAB files (``<folder>/<file>.csv``), naturally sorted, optionally filtered by glob(s)."""
    root = require_dir(Path(data), "SKAB")
    names = sorted((p.relative_to(root).as_posix() for p in root.glob("*/*.csv")), key=natural_key)
    if not anomaly_free:
        names = [n for n in names if not n.startswith("anomaly-free/")]
    if experiments is not None:
        patterns = [experiments] if isinstance(experiments, str) else list(experiments)
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not names:
        raise EvaluationError(f"SKAB: no <folder>/*.csv under {root} (patterns {experiments!r})")
    return names


def _recording(root: Path, name: str) -> Recording[SkabLabels]:
    path = root / name
    cols = read_table(path, delimiter=";")
    if TIME_COLUMN not in cols:
        raise EvaluationError(f"{path}: expected a {TIME_COLUMN!r} column, got {list(cols)}")
    ts = parse_times_ms(cols[TIME_COLUMN], str(path))
    if np.any(np.diff(ts) <= 0):
        raise EvaluationError(f"{path}: timestamps are not strictly increasing")
    labelled = all(c in cols for c in LABEL_COLUMNS)
    if not labelled and any(c in cols for c in LABEL_COLUMNS):
        raise EvaluationError(f"{path}: has one of {LABEL_COLUMNS} but not both")
    channels = [c for c in cols if c != TIME_COLUMN and c not in LABEL_COLUMNS]
    sensors = [process_sensor(sensor_name(c), SKAB_UNITS.get(c, "1"), SAMPLE_RATE_HZ) for c in channels]
    if len({s["sensor"] for s in sensors}) != len(sensors):
        raise EvaluationError(f"{path}: two columns give the same sensor id")
    values = np.column_stack([parse_floats(cols[c], f"{path}: {c}") for c in channels])
    if labelled:
        anomaly, changepoint = (parse_floats(cols[c], f"{path}: {c}") for c in LABEL_COLUMNS)
        if not (np.isin(anomaly, (0, 1)).all() and np.isin(changepoint, (0, 1)).all()):
            raise EvaluationError(f"{path}: labels must be 0 or 1")
        labels = SkabLabels(ts, anomaly.astype(np.int8), changepoint.astype(np.int8), True, TRAIN_ROWS)
    else:
        zeros = np.zeros(ts.shape[0], dtype=np.int8)
        labels = SkabLabels(ts, zeros, zeros.copy(), False, int(ts.shape[0]))
    asset = skab_asset_id(name)

    def readings() -> Iterator[Reading]:
        return scalar_readings(asset, sensors, ts, values)

    return Recording("skab", name, asset, {"asset": asset, "sensors": sensors}, readings, labels)


def load_skab(data: Path, experiments: str | Sequence[str] | None = None,
              anomaly_free: bool = True) -> list[Recording[SkabLabels]]:
    """One :class:`Recording` per SKAB file, read in place.

    Parameters
    ----------
    data : Path
        The SKAB folder (holding ``valve1/``, ``other/``, ``anomaly-free/``...).
    experiments : str or sequence of str, optional
        ``fnmatch`` glob(s) on the relative names (``"valve1/*"``).
    anomaly_free : bool, default True
        Include ``anomaly-free/anomaly-free.csv`` (training data only).

    Raises
    ------
    EvaluationError
        Missing folder, no file, unreadable or inconsistent rows.
    """
    root = Path(data)
    return [_recording(root, name) for name in skab_experiments(root, experiments, anomaly_free)]
