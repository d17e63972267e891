"""NAB adapter: every series of a Numenta Anomaly Benchmark folder as one labelled asset.

Source: ``numenta/NAB`` commit ``ea702d7`` (MIT), laid out as in the
repository (``DATA/data/<category>/<series>.csv``, ``DATA/labels/combined_windows.json``,
``DATA/config/profiles.json``, ``DATA/results/<detector>/``); see
``nab/SOURCE.md`` in the shared data. The shared copy holds 47 of NAB's 58
series; a series added under ``data/`` (with its windows in
``combined_windows.json``) is picked up without any change here.

Each series ``<category>/<file>.csv`` (columns ``timestamp,value``, no time
zone: taken as UTC) becomes

* asset ``nab-<category>-<file>`` with one sensor ``value`` of kind
  ``process``, unit ``"1"`` (NAB states no units) and ``sample_rate_hz`` = 1 /
  the series' median step (5 min for most, 1 h for realAdExchange, 30 min for
  nyc_taxi);
* one reading per row, in event-time order. Rows with equal timestamps stay
  (a stable sort keeps their file order); the machine-temperature file steps
  back once (12 timestamps appear twice): its readings are sorted by time,
  while the labels keep the rows in file order, as NAB scores them;
* labels :class:`~predmaint.models.nab_corpus.NabLabels`: the row timestamps in
  file order and the series' windows from ``labels/combined_windows.json``
  (read with :func:`predmaint.models.nab_scoring.load_windows`).

:func:`load_nab_published` reads the published detectors' per-file raw scores
for :func:`predmaint.models.nab_corpus.score_published`, and
:func:`load_nab_profiles` the three cost matrices.

Examples
--------
>>> nab_asset_id("realKnownCause/machine_temperature_system_failure.csv")
'nab-realKnownCause-machine_temperature_system_failure'
"""

from __future__ import annotations

import csv
import fnmatch
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from predmaint.connectors.datasets.base import (
    Recording,
    natural_key,
    nominal_rate_hz,
    parse_floats,
    parse_times_ms,
    process_sensor,
    read_table,
    require_dir,
    safe_id,
    scalar_readings,
)
from predmaint.errors import EvaluationError
from predmaint.models.nab_corpus import NAB_PROFILES, NabLabels
from predmaint.models.nab_scoring import CostMatrix, load_profile, load_windows
from predmaint.telemetry import Reading

__all__ = [
    "NAB_SENSOR",
    "NAB_UNIT",
    "NabLabels",
    "load_nab",
    "load_nab_profiles",
    "load_nab_published",
    "nab_asset_id",
    "nab_detectors",
    "nab_series",
]

NAB_SENSOR = "value"
#: NAB's values are CPU load, temperatures, counts... with no unit stated: unitless here.
NAB_UNIT = "1"
WINDOWS_FILE = "labels/combined_windows.json"
PROFILES_FILE = "config/profiles.json"


def nab_asset_id(name: str) -> str:
    """The asset id of a series (its name without ``.csv``, ``/`` as ``-``, prefixed ``nab-``)."""
    stem = name.removesuffix(".csv")
    return "nab-" + safe_id(stem.replace("/", "-"))


def nab_series(data: Path, series: str | Sequence[str] | None = None) -> list[str]:
    """Names (relative to ``DATA/data``) of the series present, optionally filtered by glob(s).

    Parameters
    ----------
    data : Path
        The NAB folder (holding ``data/``, ``labels/``...).
    series : str or sequence of str, optional
        ``fnmatch`` patterns on the relative name (``"realKnownCause/*"``,
        ``"*machine_temperature*"``); a plain name matches itself.

    Raises
    ------
    EvaluationError
        No ``data/`` folder, or no series matches.
    """
    root = require_dir(Path(data) / "data", "NAB")
    names = sorted((p.relative_to(root).as_posix() for p in root.rglob("*.csv")), key=natural_key)
    if series is not None:
        patterns = [series] if isinstance(series, str) else list(series)
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not names:
            raise EvaluationError(f"NAB: no series under {root} matches {patterns}")
    if not names:
        raise EvaluationError(f"NAB: no *.csv series under {root}")
    return names


def _read_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    cols = read_table(path)
    if "timestamp" not in cols or "value" not in cols:
        raise EvaluationError(f"{path}: expected columns timestamp,value, got {list(cols)}")
    ts = parse_times_ms(cols["timestamp"], str(path))
    if ts.size < 2:
        raise EvaluationError(f"{path}: fewer than two rows")
    return ts, parse_floats(cols["value"], str(path))


def load_nab(data: Path, series: str | Sequence[str] | None = None) -> list[Recording[NabLabels]]:
    """One :class:`Recording` per NAB series (see the module docstring).

    Parameters
    ----------
    data : Path
        The NAB folder.
    series : str or sequence of str, optional
        Glob(s) on the relative names (:func:`nab_series`); default all.

    Raises
    ------
    EvaluationError
        Missing folders or files, unreadable rows, or a series without an entry
        in ``labels/combined_windows.json``.
    """
    data = Path(data)
    windows_path = data / WINDOWS_FILE
    if not windows_path.is_file():
        raise EvaluationError(f"NAB: label windows not found: {windows_path}")
    out = []
    for name in nab_series(data, series):
        path = data / "data" / name
        ts, values = _read_series(path)
        try:
            windows = tuple(load_windows(windows_path, name))
        except KeyError:
            raise EvaluationError(f"NAB: series {name!r} has no entry in {windows_path}") from None
        asset = nab_asset_id(name)
        sensors = [process_sensor(NAB_SENSOR, NAB_UNIT, nominal_rate_hz(ts, str(path)))]
        order = np.argsort(ts, kind="stable")

        def readings(asset: str = asset, sensors: list = sensors, t: np.ndarray = ts[order],
                     v: np.ndarray = values[order]) -> Iterator[Reading]:
            return scalar_readings(asset, sensors, t, v[:, None])

        labels = NabLabels(name, ts.astype("datetime64[ms]"), windows)
        out.append(Recording("nab", name, asset, {"asset": asset, "sensors": sensors}, readings, labels))
    return out


def load_nab_profiles(data: Path, names: Sequence[str] = tuple(NAB_PROFILES)) -> dict[str, CostMatrix]:
    """NAB's application profiles from ``DATA/config/profiles.json`` (via :func:`~predmaint.models.nab_scoring.load_profile`)."""
    path = Path(data) / PROFILES_FILE
    if not path.is_file():
        raise EvaluationError(f"NAB: profiles not found: {path}")
    try:
        return {n: load_profile(path, n) for n in names}
    except KeyError as exc:
        raise EvaluationError(f"NAB: {exc.args[0]}") from None


def nab_detectors(data: Path) -> list[str]:
    """The detectors with published results (folders of ``DATA/results``)."""
    root = require_dir(Path(data) / "results", "NAB results")
    return sorted((p.name for p in root.iterdir() if p.is_dir()), key=str.lower)


def load_nab_published(
    data: Path,
    files: Sequence[str] | None = None,
    detectors: Sequence[str] | None = None,
    profiles: Sequence[str] = tuple(NAB_PROFILES),
) -> dict[str, dict[str, dict[str, float]]]:
    """Published per-file raw scores: detector -> profile -> file -> score.

    Reads ``DATA/results/<detector>/<detector>_<profile>_scores.csv`` (columns
    ``Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count``; the
    ``Totals`` row is skipped). A missing profile file leaves that profile out.

    Parameters
    ----------
    data : Path
        The NAB folder.
    files : sequence of str, optional
        Keep only these series (default: every file listed).
    detectors : sequence of str, optional
        Default: every folder of ``results/`` (:func:`nab_detectors`), ``null`` included.
    profiles : sequence of str
    """
    wanted = None if files is None else set(files)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for det in detectors if detectors is not None else nab_detectors(data):
        for profile in profiles:
            path = Path(data) / "results" / det / f"{det}_{profile}_scores.csv"
            if not path.is_file():
                continue
            scores: dict[str, float] = {}
            try:
                with open(path, newline="", encoding="utf-8") as fh:
                    for row in csv.DictReader(fh):
                        name = row.get("File") or ""
                        if name and (wanted is None or name in wanted):
                            scores[name] = float(row["Score"])
            except (OSError, KeyError, ValueError, csv.Error) as exc:
                raise EvaluationError(f"{path}: unreadable: {exc!r}") from None
            out.setdefault(det, {})[profile] = scores
    return out
