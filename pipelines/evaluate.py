"""``predmaint evaluate {nab,ims,cwru}``: the stream's feature and model code, offline, on public data.

Each evaluation replays a dataset through the functions the dataflow calls --
:mod:`features` for window features, :class:`predmaint.models.sensor_model.SensorModel`
built from ``settings.model`` (spec, params, baseline, learning gate, health
calibration) and :class:`predmaint.models.alerting.AlertState` with the first alert rule
-- without Kafka, and measures the result against the dataset's ground truth:

``nab``
    NAB's machine-temperature series (5-minute readings). Readings are grouped
    into event-time tumbling windows of ``evaluation.nab.window_s`` the way the
    stream groups a temperature sensor's readings (late readings are dropped,
    a window is emitted when the watermark passes its end), each window gets
    :func:`predmaint.features.temperature.temperature_features`, the model scores it and
    the alert rule runs on its health. A NAB *detection* is a row where an
    alert event of a kind listed in ``evaluation.nab.detections`` is emitted
    (the row whose arrival closed the window), so the threshold is the alert
    rule's, from the config. Scored with :mod:`predmaint.models.nab_scoring` (profile and
    label windows from the NAB folder) and printed beside NAB's published table.
``ims``
    IMS bearing test 2 (984 snapshots, bearing 1 fails). One window per
    snapshot and bearing, built from the per-snapshot feature tables; the
    columns named in ``evaluation.ims.features`` are renamed and converted to
    the stream's features of the same definition (``std`` is ``accel_rms``...).
    Reports the hours between the first raised alert on the failed bearing and
    the last live snapshot, and the alerts raised on any bearing before
    ``evaluation.ims.quiet_before_snapshot``.
``cwru``
    CWRU drive-end recordings. 4,096-sample windows get
    :func:`predmaint.features.vibration.vibration_features` with the stream's parameters
    (:func:`predmaint.pipelines.steps.vibration_parameters`) for a 6205 bearing at the
    file's rpm; the 48 kHz normal recording is decimated to 12 kHz first. The
    model learns the first half of the normal windows as its baseline and is
    then frozen; the ROC AUC of its raw score separates each fault's windows
    from the held-out normal windows.

Every parameter comes from the settings file (``model``, ``alert_rules[0]``,
``window.allowed_lateness_s`` and the ``evaluation`` block); nothing is chosen
per series or per file. The evaluations are pure functions of settings and
data (:func:`evaluate_nab`, :func:`evaluate_ims`, :func:`evaluate_cwru`);
:func:`run` loads, prints, plots and writes JSON.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from predmaint.errors import ConfigurationError, EvaluationError
from predmaint.features.aggregate import FeatureAccumulator
from predmaint.features.vibration import vibration_features
from predmaint.models.alerting import AlertEvent, AlertState
from predmaint.models.sensor_model import Assessment, SensorModel
from predmaint.pipelines.steps import assess_window, new_model, temperature_window_features, vibration_parameters
from predmaint.settings import AssetSettings, BearingSettings, Settings, SettingsError, load_settings

G = 9.80665  # IMS and CWRU record acceleration in g; the stream's features are in m/s^2
NAB_DEFAULT_SERIES = "realKnownCause/machine_temperature_system_failure.csv"
NAB_PUBLISHED = "results/standard_scores_machine_temperature.csv"

#: IMS table statistic -> (stream feature of the same definition, scale, offset).
#: The table's ``std`` is RMS about the mean (the stream's ``accel_rms``), ``max``
#: is the largest |x| and ``kurt`` is excess kurtosis (the stream's is Pearson, +3).
#: Statistics not listed keep their name and value.
IMS_TO_STREAM = {
    "std": ("accel_rms", G, 0.0),
    "max": ("accel_peak", G, 0.0),
    "kurt": ("kurtosis", 1.0, 3.0),
    "skew": ("skewness", 1.0, 0.0),
    "crest_factor": ("crest_factor", 1.0, 0.0),
}


#: Names the folder that holds the datasets (``nab/``, ``ims_bearing_test2/``...), when ``--data`` does not.
SHARED_DATA_ENV = "PREDMAINT_SHARED_DATA"


def shared_data_dir() -> Path:
    """The datasets' folder, ``$PREDMAINT_SHARED_DATA``; never guessed from where predmaint is installed."""
    value = os.environ.get(SHARED_DATA_ENV)
    if not value:
        raise ConfigurationError(f"no dataset folder: give --data DIR or set {SHARED_DATA_ENV} "
                              f"(the folder holding nab/, ims_bearing_test2/, cwru_bearing/)")
    return Path(value)


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------


def eval_config(settings: Settings, name: str) -> dict:
    """The ``evaluation.<name>`` block of the settings (a mapping), or a :class:`SettingsError`."""
    block = (settings.evaluation or {}).get(name)
    if not isinstance(block, dict):
        raise SettingsError(f"{settings.source}: evaluation.{name}: missing or not a mapping "
                            f"(see pipelines/default.yaml)")
    return block


def _where(settings: Settings, name: str) -> str:
    return f"{settings.source}: evaluation.{name}"


def _get(block: dict, key: str, where: str, kind: type | tuple[type, ...]):
    """``block[key]`` checked against ``kind``; errors name ``where.key``."""
    if key not in block:
        raise SettingsError(f"{where}.{key}: missing")
    value = block[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise SettingsError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


# ----------------------------------------------------------------------------
# The stream, offline
# ----------------------------------------------------------------------------


@dataclass
class SensorReplay:
    """One sensor's ``assess`` state: the champion model and the first alert rule.

    The same sequence as :func:`predmaint.pipelines.steps.assess`: drop the window
    bookkeeping fields, score then learn, cap health by the ISO zone in
    monitoring, and advance the alert rule on the monitoring health.
    """

    model: SensorModel
    alerts: AlertState
    asset: str = "evaluate"
    sensor: str = "sensor"

    @classmethod
    def from_settings(cls, settings: Settings, asset: str, sensor: str,
                      baseline_windows: int | None = None) -> SensorReplay:
        m = settings.model
        bw = m.baseline_windows if baseline_windows is None else baseline_windows
        rules = settings.alert_rules
        if not rules or getattr(rules[0], "metric", "health") != "health":
            raise SettingsError(f"{settings.source}: alert_rules[0]: evaluate replays the first alert rule on "
                                f"the model's health; it must have metric: health")
        return cls(new_model(m, baseline_windows=bw), AlertState(rules[0]), asset, sensor)

    def step(self, features: dict, end_ns: int) -> tuple[Assessment, list[AlertEvent]]:
        a = assess_window(self.model, features)
        if a.phase != "monitoring":
            return a, []
        return a, self.alerts.update(self.asset, self.sensor, end_ns, a.health, a.explanation)


@dataclass(frozen=True)
class EventWindow:
    """A tumbling event-time window as the stream emits it."""

    window_id: int
    rows: tuple[int, ...]  # input rows in the window, in arrival order
    emitted_at: int  # the row whose arrival moved the watermark past the window's end

    def end_s(self, length_s: float) -> float:
        return (self.window_id + 1) * length_s


def event_time_windows(times_s: Sequence[float] | np.ndarray, length_s: float,
                       allowed_lateness_s: float) -> tuple[list[EventWindow], list[int]]:
    """Group rows into tumbling windows the way the dataflow does, in arrival (row) order.

    The watermark is the newest event time minus ``allowed_lateness_s``; a row
    older than the watermark is late (the stream dead-letters it), and a window
    is emitted when the watermark passes its end. Windows still open after the
    last row are not emitted (a silent sensor keeps its window open).

    Parameters
    ----------
    times_s : sequence or array of float
        Event time of each row, seconds since the epoch, in arrival order.
    length_s, allowed_lateness_s : float

    Returns
    -------
    (list of EventWindow, list of int)
        Emitted windows in emission order, and the indices of late rows.

    Examples
    --------
    >>> wins, late = event_time_windows([0, 300, 600, 900, 500, 1400], 600, 120)
    >>> [(w.window_id, w.rows, w.emitted_at) for w in wins], late
    ([(0, (0, 1), 3), (1, (2, 3), 5)], [4])
    """
    open_rows: dict[int, list[int]] = {}
    emitted: list[EventWindow] = []
    late: list[int] = []
    newest = -math.inf
    for i, t in enumerate(times_s):
        if t < newest - allowed_lateness_s:
            late.append(i)
            continue
        newest = max(newest, t)
        open_rows.setdefault(int(t // length_s), []).append(i)
        watermark = newest - allowed_lateness_s
        for wid in sorted(w for w in open_rows if (w + 1) * length_s <= watermark):
            emitted.append(EventWindow(wid, tuple(open_rows.pop(wid)), i))
    return emitted, late


# ----------------------------------------------------------------------------
# NAB
# ----------------------------------------------------------------------------


@dataclass
class NabResult:
    series: str
    score: float
    counts: dict
    detections: list[int]  # row indices
    windows: list[tuple[int, int]]  # label windows as row ranges
    window_rows: list[int]  # emitting row of every model window
    health: list[float]
    late_rows: int
    values: np.ndarray  # the series, for the plot
    published: list[tuple[str, float]] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"series": self.series, "score": self.score, "counts": self.counts,
                "detections": len(self.detections), "late_rows": self.late_rows,
                "published_best": max((s for _, s in self.published), default=None), **self.params}


def load_nab_series(path: Path) -> tuple[list[datetime], np.ndarray]:
    """Timestamps (naive, read as UTC) and values of a NAB data file, in row order."""
    if not path.is_file():
        raise EvaluationError(f"NAB series not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"timestamp", "value"} <= set(rows[0]):
        raise EvaluationError(f"{path}: expected columns timestamp,value")
    return [datetime.fromisoformat(r["timestamp"]) for r in rows], np.array([float(r["value"]) for r in rows])


def load_nab_published(path: Path, series: str) -> list[tuple[str, float]]:
    """(detector, raw standard score) rows of NAB's published table for ``series``, best first."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("File") == series]
    return sorted(((r["Detector"], float(r["Score"])) for r in rows), key=lambda r: -r[1])


def evaluate_nab(settings: Settings, timestamps: Sequence[datetime], values: np.ndarray,
                 label_windows: Sequence[tuple[datetime, datetime]], cost, series: str = NAB_DEFAULT_SERIES,
                 ) -> NabResult:
    """NAB raw score of the stream's temperature model and alert rule on one series.

    Parameters
    ----------
    settings : Settings
        Uses ``model``, ``alert_rules[0]``, ``window.allowed_lateness_s`` and
        ``evaluation.nab`` (``window_s``, ``features``, ``detections``).
    timestamps, values
        The series in row order (:func:`load_nab_series`).
    label_windows
        NAB anomaly windows (:func:`predmaint.models.nab_scoring.load_windows`).
    cost : predmaint.models.nab_scoring.CostMatrix
        The profile's weights.
    series : str
        Name reported with the result.

    Returns
    -------
    NabResult
    """
    from predmaint.models.nab_scoring import label_rows

    cfg = eval_config(settings, "nab")
    where = _where(settings, "nab")
    length_s = float(_get(cfg, "window_s", where, (int, float)))
    keep = list(_get(cfg, "features", where, list))
    kinds = set(_get(cfg, "detections", where, list))
    times = np.array([t.replace(tzinfo=timezone.utc).timestamp() for t in timestamps])
    wins, late = event_time_windows(times, length_s, settings.window.allowed_lateness_s)
    replay = SensorReplay.from_settings(settings, "nab", series)
    detected = np.zeros(len(values), dtype=bool)
    health, window_rows = [], []
    for w in wins:
        idx = np.asarray(w.rows)
        if len(idx) > 1 and np.unique(times[idx]).size < 2:
            continue  # a rate needs two distinct times; the stream dead-letters such a window too
        feats = temperature_window_features(times[idx], np.asarray(values)[idx])
        missing = [k for k in keep if k not in feats]
        if missing:
            raise SettingsError(f"{where}.features: {missing} are not temperature features ({sorted(feats)})")
        a, events = replay.step({k: feats[k] for k in keep}, int(round(w.end_s(length_s) * 1e9)))
        if any(e.state in kinds for e in events):
            detected[w.emitted_at] = True
        health.append(a.health)
        window_rows.append(w.emitted_at)
    rows = label_rows(timestamps, label_windows, cost)  # checks the label windows against the rows
    return NabResult(series=series, score=rows.score(detected), counts=rows.counts(detected),
                     detections=[int(i) for i in np.flatnonzero(detected)], windows=rows.bounds,
                     window_rows=window_rows, health=health, late_rows=len(late), values=np.asarray(values),
                     params={"window_s": length_s, "features": keep, "detection_events": sorted(kinds)})


def run_nab(settings: Settings, data: Path, series: str) -> NabResult:
    from predmaint.models.nab_scoring import load_profile, load_windows

    cfg = eval_config(settings, "nab")
    profile = _get(cfg, "profile", _where(settings, "nab"), str)
    needed = [data / "config" / "profiles.json", data / "labels" / "combined_windows.json"]
    for p in needed:
        if not p.is_file():
            raise EvaluationError(f"NAB file not found: {p} (--data must hold config/, labels/ and data/)")
    timestamps, values = load_nab_series(data / "data" / series)
    try:
        windows = load_windows(needed[1], series)
    except KeyError as exc:
        raise EvaluationError(str(exc)) from None
    try:
        result = evaluate_nab(settings, timestamps, values, windows, load_profile(needed[0], profile), series)
    except (KeyError, ValueError) as exc:  # unknown profile, label windows that do not match the rows
        raise EvaluationError(f"{data}: {series}: {exc}") from None
    result.published = load_nab_published(data / NAB_PUBLISHED, series)
    result.params["profile"] = profile
    return result


# ----------------------------------------------------------------------------
# IMS
# ----------------------------------------------------------------------------


@dataclass
class ImsResult:
    failed_bearing: int
    lead_time_h: float
    false_alerts: int
    first_alert: dict[int, int | None]  # bearing -> snapshot of its first raised alert
    raised: dict[int, list[int]]  # bearing -> snapshots of every raised alert
    health: dict[int, list[float]]
    last_live: int
    quiet_before: int
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"lead_time_h": self.lead_time_h, "false_alerts": self.false_alerts,
                "failed_bearing": self.failed_bearing,
                "first_alert_snapshot": {str(b): s for b, s in self.first_alert.items()},
                "alerts": {str(b): len(v) for b, v in self.raised.items()},
                "last_live_snapshot": self.last_live, "quiet_before_snapshot": self.quiet_before, **self.params}


def load_ims_tables(paths: Iterable[Path]) -> tuple[np.ndarray, list[datetime], dict[str, np.ndarray]]:
    """Per-snapshot tables joined on ``file_index``: (indices, timestamps, columns).

    Every table needs ``file_index``; one needs ``timestamp``. Rows are sorted
    by ``file_index`` and every table must cover the same snapshots.
    """
    columns: dict[str, np.ndarray] = {}
    index = None
    timestamps = None
    for path in paths:
        if not path.is_file():
            raise EvaluationError(f"IMS feature table not found: {path}")
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or "file_index" not in rows[0]:
            raise EvaluationError(f"{path}: expected a file_index column")
        rows.sort(key=lambda r: int(r["file_index"]))
        idx = np.array([int(r["file_index"]) for r in rows])
        if index is not None and not np.array_equal(idx, index):
            raise EvaluationError(f"{path}: file_index differs from the other tables'")
        index = idx
        if "timestamp" in rows[0]:
            timestamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
        for name in rows[0]:
            if name.startswith("Bearing"):
                columns[name] = np.array([float(r[name]) for r in rows])
    if index is None or timestamps is None:
        raise EvaluationError("IMS tables: need at least one table with file_index and timestamp columns")
    return index, timestamps, columns


def ims_snapshot_features(columns: dict[str, np.ndarray], bearing: int, stats: Sequence[str],
                          row: int) -> dict[str, float]:
    """The window features of ``bearing`` at table row ``row``, in the stream's names and units.

    Examples
    --------
    >>> cols = {"Bearing1_ch1_std": np.array([0.1]), "Bearing1_ch1_kurt": np.array([0.5])}
    >>> {k: round(v, 4) for k, v in ims_snapshot_features(cols, 1, ["std", "kurt"], 0).items()}
    {'accel_rms': 0.9807, 'kurtosis': 3.5}
    """
    out = {}
    for stat in stats:
        name, scale, offset = IMS_TO_STREAM.get(stat, (stat, 1.0, 0.0))
        out[name] = float(columns[f"Bearing{bearing}_ch1_{stat}"][row]) * scale + offset
    return out


def evaluate_ims(settings: Settings, index: np.ndarray, timestamps: Sequence[datetime],
                 columns: dict[str, np.ndarray], failed_bearing: int | None = None) -> ImsResult:
    """Replay every bearing's snapshots through its own model and alert rule.

    Parameters
    ----------
    settings : Settings
        Uses ``model``, ``alert_rules[0]`` and ``evaluation.ims``
        (``features``, ``failed_bearing``, ``last_live_snapshot``,
        ``quiet_before_snapshot``).
    index, timestamps, columns
        From :func:`load_ims_tables`.
    failed_bearing : int, optional
        Overrides ``evaluation.ims.failed_bearing``.

    Returns
    -------
    ImsResult
        ``lead_time_h`` is 0 when the failed bearing never alerted.
    """
    cfg = eval_config(settings, "ims")
    where = _where(settings, "ims")
    stats = list(_get(cfg, "features", where, list))
    failed = failed_bearing if failed_bearing is not None else _get(cfg, "failed_bearing", where, int)
    last_live = _get(cfg, "last_live_snapshot", where, int)
    quiet_before = _get(cfg, "quiet_before_snapshot", where, int)
    bearings = sorted({int(k.split("_")[0][len("Bearing"):]) for k in columns})
    if failed not in bearings:
        raise EvaluationError(f"bearing {failed} is not in the tables (have {bearings})")
    for b in bearings:
        missing = [s for s in stats if f"Bearing{b}_ch1_{s}" not in columns]
        if missing:
            raise SettingsError(f"{where}.features: {missing} not in the tables for bearing {b}")
    if last_live not in set(index.tolist()):
        raise EvaluationError(f"snapshot {last_live} ({where}.last_live_snapshot) is not in the tables")
    live = [r for r, i in enumerate(index) if i <= last_live]  # rows after the rig stopped are not data
    t_ns = [int(timestamps[r].replace(tzinfo=timezone.utc).timestamp() * 1e9) for r in live]
    raised: dict[int, list[int]] = {}
    health: dict[int, list[float]] = {}
    for b in bearings:
        replay = SensorReplay.from_settings(settings, "ims-test2", f"bearing{b}")
        raised[b], health[b] = [], []
        for r, end_ns in zip(live, t_ns):
            a, events = replay.step(ims_snapshot_features(columns, b, stats, r), end_ns)
            health[b].append(a.health)
            raised[b].extend(int(index[r]) for e in events if e.state == "raised")
    first = {b: (v[0] if v else None) for b, v in raised.items()}
    lead_h = 0.0
    first_failed = first[failed]
    if first_failed is not None:
        row_of = {int(i): r for r, i in enumerate(index)}
        lead_h = (timestamps[row_of[last_live]] - timestamps[row_of[first_failed]]).total_seconds() / 3600.0
    false_alerts = sum(1 for v in raised.values() for s in v if s < quiet_before)
    return ImsResult(failed, float(lead_h), int(false_alerts), first, raised, health, last_live, quiet_before,
                     {"features": [IMS_TO_STREAM.get(s, (s,))[0] for s in stats]})


def run_ims(settings: Settings, data: Path, feature_files: list[Path] | None, bearing: int | None) -> ImsResult:
    files = feature_files or [data / "features" / "test2_raw.csv", data / "features" / "test2_spectral.csv"]
    index, timestamps, columns = load_ims_tables(files)
    return evaluate_ims(settings, index, timestamps, columns, bearing)


# ----------------------------------------------------------------------------
# CWRU
# ----------------------------------------------------------------------------


@dataclass
class CwruResult:
    auc: dict[str, float]
    scores: dict[str, list[float]]  # "baseline", "normal" (held out) and each fault
    windows: dict[str, int]
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        med = {k: float(np.median(v)) for k, v in self.scores.items() if v}
        return {"auc": self.auc, "windows": self.windows, "median_raw_score": med, **self.params}


def load_cwru(path: Path, unit_scale: float, decimate_by: int = 1) -> tuple[np.ndarray, float]:
    """Drive-end acceleration (in m/s^2 after ``unit_scale``) and rpm of one CWRU ``.mat`` file."""
    from scipy.io import loadmat
    from scipy.signal import decimate

    if not path.is_file():
        raise EvaluationError(f"CWRU file not found: {path}")
    mat = loadmat(path)
    de = [k for k in mat if k.endswith("_DE_time")]
    rpm = [k for k in mat if k.endswith("RPM")]
    if len(de) != 1 or len(rpm) != 1:
        raise EvaluationError(f"{path}: expected one *_DE_time and one *RPM variable, got {sorted(mat)}")
    x = mat[de[0]].ravel().astype(float) * unit_scale
    if decimate_by > 1:
        x = decimate(x, decimate_by)  # anti-aliasing filter, then keep every n-th sample
    return x, float(np.ravel(mat[rpm[0]])[0])


def cwru_asset(cfg: dict, rpm: float, where: str = "evaluation.cwru") -> AssetSettings:
    """The registry entry a CWRU drive-end sensor would have (bearing, ISO class) at ``rpm``."""
    try:
        bearing = BearingSettings(**_get(cfg, "bearing", where, dict))
    except (TypeError, SettingsError) as exc:
        raise SettingsError(f"{where}.bearing: {exc}") from None
    return AssetSettings(asset="cwru", site="cwru", line="rig", sensors=(), rpm=rpm, bearing=bearing,
                         iso_group=_get(cfg, "iso_group", where, int),
                         iso_foundation=_get(cfg, "iso_foundation", where, str))


def window_features(signal: np.ndarray, sample_rate_hz: float, asset: AssetSettings,
                    window_samples: int) -> list[dict]:
    """Features of consecutive, non-overlapping windows, each folded like a one-snapshot stream window."""
    params = vibration_parameters(asset)
    out = []
    for start in range(0, signal.size - window_samples + 1, window_samples):
        snap = vibration_features(signal[start:start + window_samples], sample_rate_hz, **params)
        out.append(FeatureAccumulator().add(snap).result())
    return out


def evaluate_cwru(settings: Settings, normal: list[dict], faults: dict[str, list[dict]]) -> CwruResult:
    """ROC AUC of the frozen baseline model's raw score: each fault's windows vs held-out normal windows.

    The model learns the first ``baseline_fraction`` of the normal windows (all
    as its baseline: the recording is shorter than ``model.baseline_windows``)
    and is frozen: each later window is scored by a copy, so no test window is
    learned.
    """
    from sklearn.metrics import roc_auc_score

    cfg = eval_config(settings, "cwru")
    fraction = float(_get(cfg, "baseline_fraction", _where(settings, "cwru"), (int, float)))
    n_base = int(len(normal) * fraction)
    if n_base < 2 or n_base >= len(normal):
        raise EvaluationError(f"CWRU: {len(normal)} normal windows cannot be split {fraction} baseline / held out")
    replay = SensorReplay.from_settings(settings, "cwru", "de-accel", baseline_windows=n_base)
    baseline_scores = [replay.step(x, 0)[0].raw_score for x in normal[:n_base]]

    def score(x: dict) -> float:
        return copy.deepcopy(replay).step(x, 0)[0].raw_score  # a copy: the model stays frozen

    scores = {"baseline": baseline_scores, "normal": [score(x) for x in normal[n_base:]]}
    auc = {}
    for name, wins in faults.items():
        scores[name] = [score(x) for x in wins]
        labels = [0] * len(scores["normal"]) + [1] * len(wins)
        auc[name] = float(roc_auc_score(labels, scores["normal"] + scores[name]))
    return CwruResult(auc, scores, {k: len(v) for k, v in scores.items()},
                      {"baseline_windows": n_base})


def run_cwru(settings: Settings, data: Path) -> CwruResult:
    cfg = eval_config(settings, "cwru")
    where = _where(settings, "cwru")
    n = _get(cfg, "window_samples", where, int)
    fs = float(_get(cfg, "sample_rate_hz", where, (int, float)))
    scale = float(_get(cfg, "unit_scale", where, (int, float)))
    normal_cfg = _get(cfg, "normal", where, dict)
    x, rpm = load_cwru(data / _get(normal_cfg, "file", f"{where}.normal", str), scale,
                       _get(normal_cfg, "decimate", f"{where}.normal", int))
    normal = window_features(x, fs, cwru_asset(cfg, rpm, where), n)
    faults = {}
    for name, filename in _get(cfg, "faults", where, dict).items():
        x, rpm = load_cwru(data / filename, scale)
        faults[name] = window_features(x, fs, cwru_asset(cfg, rpm, where), n)
    result = evaluate_cwru(settings, normal, faults)
    result.params["window_samples"] = n
    return result


# ----------------------------------------------------------------------------
# Output: tables and plots
# ----------------------------------------------------------------------------


def _table(rows: list[tuple], header: tuple) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def targets_met(settings: Settings, name: str, payload: dict) -> dict[str, bool]:
    """Which ``evaluation.<name>.targets`` the JSON payload meets (``*_min``: >=, ``*_max``: <=)."""
    out = {}
    for key, target in (eval_config(settings, name).get("targets") or {}).items():
        metric, _, bound = key.rpartition("_")
        value: object = payload
        for part in metric.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            out[key] = bool(value >= target) if bound == "min" else bool(value <= target)
        else:
            out[key] = False
    return out


def format_nab(r: NabResult) -> str:
    rows: list[tuple] = [("predmaint (this run)", f"{r.score:.3f}", r.counts["tp"], r.counts["fp"], len(r.detections))]
    rows += [(d, f"{s:.3f}", "", "", "") for d, s in r.published]
    head = (f"NAB {r.series}, profile {r.params.get('profile')}: {len(r.window_rows)} windows of "
            f"{r.params['window_s']:g} s, {r.late_rows} late rows dropped, detections = "
            f"{'/'.join(r.params['detection_events'])} alert events")
    return head + "\n" + _table(rows, ("detector", "raw score", "TP rows", "FP rows", "detections"))


def format_ims(r: ImsResult) -> str:
    rows = [(f"bearing {b}" + (" (failed)" if b == r.failed_bearing else ""),
             r.first_alert[b] if r.first_alert[b] is not None else "-", len(r.raised[b]),
             sum(1 for s in r.raised[b] if s < r.quiet_before)) for b in sorted(r.raised)]
    head = (f"IMS test 2: lead time {r.lead_time_h:.1f} h (first alert on bearing {r.failed_bearing} -> "
            f"snapshot {r.last_live}); {r.false_alerts} alert(s) before snapshot {r.quiet_before}")
    return head + "\n" + _table(rows, ("bearing", "first alert", "alerts", f"before {r.quiet_before}"))


def format_cwru(r: CwruResult) -> str:
    rows = [(k, r.windows[k], f"{np.median(v):.3g}", f"{r.auc[k]:.4f}" if k in r.auc else "-")
            for k, v in r.scores.items()]
    head = f"CWRU: baseline {r.params['baseline_windows']} normal windows; ROC AUC vs held-out normal windows"
    return head + "\n" + _table(rows, ("windows", "count", "median raw score", "ROC AUC"))


def _figure(nrows: int, height: float):
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in CI
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, 1, figsize=(14, height), squeeze=False, sharex=True)
    return plt, fig, axes[:, 0]


def plot_nab(r: NabResult, path: Path) -> None:
    plt, fig, (ax0, ax1) = _figure(2, 7)
    ax0.plot(r.values, lw=0.5, color="tab:blue")
    ax0.set_ylabel("value")
    ax1.plot(r.window_rows, r.health, lw=0.7, color="tab:green")
    ax1.set_ylabel("health")
    ax1.set_xlabel("row")
    for ax in (ax0, ax1):
        for a, b in r.windows:
            ax.axvspan(a, b, color="tab:red", alpha=0.15)
        for d in r.detections:
            ax.axvline(d, color="k", lw=0.6)
    ax0.set_title(f"NAB {r.series}: raw score {r.score:.3f} (shaded: label windows, lines: detections)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_ims(r: ImsResult, path: Path) -> None:
    plt, fig, (ax,) = _figure(1, 5)
    for b, h in sorted(r.health.items()):
        line, = ax.plot(h, lw=0.7, label=f"bearing {b}")
        for s in r.raised[b]:
            ax.plot(s, 0, "v", color=line.get_color())
    ax.axvline(r.quiet_before, color="grey", ls="--")
    ax.axvline(r.last_live, color="tab:red", ls="--")
    ax.set_xlabel("snapshot (10 min apart)")
    ax.set_ylabel("health")
    ax.set_title(f"IMS test 2: lead time {r.lead_time_h:.1f} h, {r.false_alerts} alert(s) before "
                 f"snapshot {r.quiet_before} (markers: raised alerts)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_cwru(r: CwruResult, path: Path) -> None:
    plt, fig, (ax,) = _figure(1, 5)
    names = list(r.scores)
    for i, name in enumerate(names):
        v = np.maximum(np.asarray(r.scores[name]), 1e-3)
        ax.plot(np.full(v.size, i) + np.linspace(-0.2, 0.2, v.size), v, "o", ms=3)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\nAUC {r.auc[n]:.3f}" if n in r.auc else n for n in names])
    ax.set_yscale("log")
    ax.set_ylabel("raw anomaly score")
    ax.set_title("CWRU drive end: raw score per window")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``evaluate {nab,ims,cwru}`` to a ``predmaint`` sub-command set."""
    p = subparsers.add_parser("evaluate", help="run the stream's features and model offline on NAB, IMS, CWRU",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="dataset", required=True)

    def common(q: argparse.ArgumentParser, name: str) -> None:
        q.add_argument("--data", type=Path, default=None,
                       help=f"dataset folder (default: $PREDMAINT_SHARED_DATA/{name})")
        q.add_argument("--plot", type=Path, default=None,
                       help=f"PNG to write (default: .predmaint/evaluate-{name}.png)")
        q.add_argument("--json", action="store_true", help="print one JSON object (the table goes to stderr)")
        q.add_argument("--check", action="store_true", help="exit 1 if a target in evaluation.*.targets is missed")
        # SUPPRESS: do not overwrite a --config given before the sub-command.
        q.add_argument("--config", default=argparse.SUPPRESS, help="YAML settings file")
        q.set_defaults(func=run, dataset_dir=name)

    q = sub.add_parser("nab", help="NAB machine temperature: raw NAB score vs the published table")
    common(q, "nab")
    q.add_argument("--series", default=NAB_DEFAULT_SERIES, help="label key and path under DATA/data")
    q = sub.add_parser("ims", help="IMS test 2 run to failure: alert lead time and early false alerts")
    common(q, "ims_bearing_test2")
    q.add_argument("--features", type=Path, action="append", default=None,
                   help="per-snapshot feature table joined on file_index; repeat for several "
                        "(default: DATA/features/test2_raw.csv and test2_spectral.csv)")
    q.add_argument("--bearing", type=int, default=None, help="the bearing that failed (default from config)")
    q = sub.add_parser("cwru", help="CWRU bearing faults: ROC AUC of fault vs held-out normal windows")
    common(q, "cwru_bearing")
    return p


def run(args: argparse.Namespace) -> int:
    """Run one evaluation; print the table (or JSON), write the plot. 0 ok, 1 target missed (--check).

    Errors are raised (:class:`~predmaint.errors.EvaluationError`, settings errors) for the CLI to report."""
    name = args.dataset
    settings = load_settings(getattr(args, "config", None))
    data = args.data or shared_data_dir() / args.dataset_dir
    if not data.is_dir():
        raise ConfigurationError(f"--data: folder not found: {data} (give --data or set {SHARED_DATA_ENV})")
    result: NabResult | ImsResult | CwruResult
    if name == "nab":
        result = run_nab(settings, data, args.series)
        text, plotter = format_nab(result), lambda path: plot_nab(result, path)  # noqa: E731
    elif name == "ims":
        # A name of its own: the lambda would see ``result`` as the union of the three results.
        ims = result = run_ims(settings, data, args.features, args.bearing)
        text, plotter = format_ims(ims), lambda path: plot_ims(ims, path)  # noqa: E731
    else:
        result = run_cwru(settings, data)
        text, plotter = format_cwru(result), lambda path: plot_cwru(result, path)  # noqa: E731
    payload = result.to_json()
    met = targets_met(settings, name, payload)
    payload["targets_met"] = met
    plot_path = args.plot or Path(".predmaint") / f"evaluate-{name}.png"
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plotter(plot_path)
    summary = "\n".join([text] + [f"target {k} {eval_config(settings, name)['targets'][k]}: "
                                  f"{'met' if ok else 'MISSED'}" for k, ok in met.items()]
                        + [f"plot: {plot_path}"])
    if args.json:
        print(summary, file=sys.stderr)
        print(json.dumps({name: payload}, allow_nan=False))
    else:
        print(summary)
    return 1 if args.check and not all(met.values()) else 0
