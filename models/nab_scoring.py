"""NAB (Numenta Anomaly Benchmark) raw scoring.

A re-implementation of the scoring rules of ``numenta/NAB`` (``nab/sweeper.py``,
the code that produced the published ``results/<detector>/*_scores.csv`` files).
No NAB code is copied; the rules are:

* **Probationary period.** The first ``min(floor(p * N), p * 5000)`` rows of a
  series (``p`` = ``probationary_percent``, 0.15 by default, ``N`` = number of
  rows) are not scored at all: detections there count for nothing and a window
  lying entirely inside it is neither a hit nor a miss.
* **Scaled sigmoid.** ``S(y) = 2 / (1 + exp(5 y)) - 1`` and ``S(y) = -1`` for
  ``y > 3``.
* **Row weights.** A row at index ``i`` inside a window spanning rows
  ``[a, b]`` (width ``w = b - a + 1``) has the weight
  ``tp * S(-(b - i + 1) / w) / S(-1)``; the window's first row therefore
  weighs exactly ``tp``. A row after a window weighs
  ``fp * S((i - b_prev) / (w_prev - 1))`` relative to the closest preceding
  window; a row before any window weighs ``-fp``.
* **Raw score.** Each scored window contributes the largest weight among its
  detected rows (in practice its earliest detection), or ``-fn`` when nothing
  in it is detected; every detected row outside the windows adds its (negative)
  weight.
* **Thresholds.** A row is a detection when ``anomaly_score >= threshold``.
  NAB's optimiser sweeps every distinct anomaly score as a threshold and picks
  the one with the highest raw score summed over the *whole corpus*; the
  threshold in NAB's published ``*_standard_scores.csv`` files is that
  corpus-wide threshold, and the per-file ``Score`` column is the raw score of
  the file at that threshold (:func:`score_series`). :func:`best_threshold`
  runs the same sweep on a single series.

Windows are matched to rows by exact timestamp equality and rows are scored in
the order given (NAB scores by row order; the machine-temperature file is not
monotonic in time).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from typing import Any

import numpy as np

__all__ = [
    "CostMatrix",
    "LabelledRows",
    "label_rows",
    "load_profile",
    "load_windows",
    "probationary_length",
    "scaled_sigmoid",
    "row_weights",
    "score_detections",
    "score_series",
    "count_detections",
    "best_threshold",
]

DEFAULT_SERIES = "realKnownCause/machine_temperature_system_failure.csv"

# Markers in :attr:`LabelledRows.window` for rows outside every label window and in probation.
_OUTSIDE = -1
_PROBATION = -2


@dataclass(frozen=True)
class CostMatrix:
    """Weights of a NAB application profile.

    Parameters
    ----------
    tp, fp, fn, tn : float
        ``tpWeight``, ``fpWeight``, ``fnWeight`` and ``tnWeight`` of the
        profile. ``tn`` is carried for completeness; NAB's raw score does not
        use it.

    Examples
    --------
    >>> CostMatrix(tp=1.0, fp=0.11, fn=1.0, tn=1.0).fp
    0.11
    """

    tp: float
    fp: float
    fn: float
    tn: float = 1.0


def load_profile(profiles_json_path: str | PathLike[str], name: str = "standard") -> CostMatrix:
    """Read one application profile from NAB's ``config/profiles.json``.

    Parameters
    ----------
    profiles_json_path : path-like
        Path of ``profiles.json``.
    name : str, default "standard"
        Profile name (``standard``, ``reward_low_FP_rate``,
        ``reward_low_FN_rate``).

    Returns
    -------
    CostMatrix

    Raises
    ------
    KeyError
        If the profile is not in the file.

    Examples
    --------
    >>> import json, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "profiles.json")
    >>> with open(p, "w") as f:
    ...     json.dump({"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0,
    ...                "fpWeight": 0.11, "tnWeight": 1.0}}}, f)
    >>> load_profile(p)
    CostMatrix(tp=1.0, fp=0.11, fn=1.0, tn=1.0)
    """
    with open(profiles_json_path, encoding="utf-8") as fh:
        profiles = json.load(fh)
    if name not in profiles:
        raise KeyError(f"profile {name!r} not in {profiles_json_path} (have {sorted(profiles)})")
    cm = profiles[name]["CostMatrix"]
    return CostMatrix(
        tp=float(cm["tpWeight"]),
        fp=float(cm["fpWeight"]),
        fn=float(cm["fnWeight"]),
        tn=float(cm.get("tnWeight", 1.0)),
    )


def load_windows(
    combined_windows_json_path: str | PathLike[str],
    series: str = DEFAULT_SERIES,
) -> list[tuple[datetime, datetime]]:
    """Read the anomaly windows of one series from NAB's ``combined_windows.json``.

    Parameters
    ----------
    combined_windows_json_path : path-like
        Path of ``labels/combined_windows.json``.
    series : str
        Key of the series, e.g.
        ``"realKnownCause/machine_temperature_system_failure.csv"``.

    Returns
    -------
    list of (datetime, datetime)
        ``(start, end)`` of each window (both inclusive), sorted by start.

    Raises
    ------
    KeyError
        If the series is not in the file.

    Examples
    --------
    >>> import json, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "w.json")
    >>> with open(p, "w") as f:
    ...     json.dump({"a/b.csv": [["2014-01-01 00:10:00.000000",
    ...                             "2014-01-01 00:20:00.000000"]]}, f)
    >>> load_windows(p, "a/b.csv")
    [(datetime.datetime(2014, 1, 1, 0, 10), datetime.datetime(2014, 1, 1, 0, 20))]
    """
    with open(combined_windows_json_path, encoding="utf-8") as fh:
        allwin = json.load(fh)
    if series not in allwin:
        raise KeyError(f"series {series!r} not in {combined_windows_json_path}")
    windows = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in allwin[series]]
    return sorted(windows)


def probationary_length(n_rows: int, probationary_percent: float = 0.15) -> int:
    """Number of leading rows NAB leaves unscored.

    ``min(floor(probationary_percent * n_rows), probationary_percent * 5000)``,
    rounded up to a whole row (rows with index below the bound are excluded).

    Examples
    --------
    >>> probationary_length(22695)
    750
    >>> probationary_length(1000)
    150
    """
    bound = min(math.floor(probationary_percent * n_rows), probationary_percent * 5000)
    return int(math.ceil(bound))


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid ``2 / (1 + exp(5 y)) - 1``, and ``-1`` for ``y > 3``.

    ``y = -1`` is a window's left edge (S ≈ 0.98661), ``y = 0`` its right edge
    (S = 0); positive ``y`` lie after the window.

    Examples
    --------
    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), scaled_sigmoid(3.5)
    (0.98661, 0.0, -1.0)
    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def _as_datetime64(timestamps: Sequence[Any] | np.ndarray) -> np.ndarray:
    arr = np.asarray(timestamps)
    if arr.ndim != 1:
        raise ValueError(f"timestamps must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[us]")
    if arr.dtype.kind in "OUS":
        return np.array(
            [np.datetime64(t if isinstance(t, datetime) else datetime.fromisoformat(str(t)), "us") for t in arr],
            dtype="datetime64[us]",
        )
    raise TypeError(f"timestamps must be datetimes, datetime64 or ISO strings, got dtype {arr.dtype}")


def _window_bounds(ts: np.ndarray, windows: Sequence[tuple[Any, Any]]) -> list[tuple[int, int]]:
    """Row indices ``(first, last)`` of each window, located by timestamp equality."""
    bounds: list[tuple[int, int]] = []
    prev_end = -1
    for start, end in windows:
        s64, e64 = _as_datetime64([start, end])
        s_hits = np.flatnonzero(ts == s64)
        if s_hits.size == 0:
            raise ValueError(f"window start {start} is not one of the timestamps")
        a = int(s_hits[0])
        e_hits = np.flatnonzero(ts[a:] == e64)
        if e_hits.size == 0:
            raise ValueError(f"window end {end} is not one of the timestamps at or after its start")
        b = a + int(e_hits[0])
        if a <= prev_end:
            raise ValueError("windows must be sorted and must not overlap")
        if b == a:
            raise ValueError(f"window {start}..{end} covers a single row; NAB's FP weighting is undefined for it")
        bounds.append((a, b))
        prev_end = b
    return bounds


@dataclass(frozen=True)
class LabelledRows:
    """A series' rows labelled once for scoring: each row's NAB weight and label window.

    Build it with :func:`label_rows`; :meth:`score` and :meth:`counts` then
    score any number of detection sequences without relabelling the rows.

    Attributes
    ----------
    weights : numpy.ndarray
        The contribution a detection on each row would make: TP weights inside
        windows, FP weights (negative) outside.
    window : numpy.ndarray
        Per row: the label window's index, ``-1`` outside windows, ``-2`` in
        the probationary period (not scored).
    bounds : list of (int, int)
        First and last row of each label window.
    cost : CostMatrix
    """

    weights: np.ndarray
    window: np.ndarray
    bounds: list[tuple[int, int]]
    cost: CostMatrix

    def _per_row(self, values: Sequence[Any] | np.ndarray, name: str) -> np.ndarray:
        arr = np.asarray(values)
        if arr.shape != self.weights.shape:
            raise ValueError(f"{name} has shape {arr.shape}, timestamps {self.weights.shape}")
        return arr

    def score(self, detections: Sequence[bool] | np.ndarray) -> float:
        """NAB raw score of a binary detection sequence (see :func:`score_detections`)."""
        det = self._per_row(detections, "detections").astype(bool)
        win = self.window
        score = float(self.weights[det & (win == _OUTSIDE)].sum())
        for k in np.unique(win[win >= 0]):
            hits = self.weights[(win == k) & det]
            score += max(-self.cost.fn, float(hits.max())) if hits.size else -self.cost.fn
        return score

    def counts(self, detections: Sequence[bool] | np.ndarray) -> dict[str, int]:
        """Row-level TP/TN/FP/FN counts (see :func:`count_detections`)."""
        det = self._per_row(detections, "detections").astype(bool)
        inside, outside = self.window >= 0, self.window == _OUTSIDE
        return {
            "tp": int((det & inside).sum()),
            "tn": int((~det & outside).sum()),
            "fp": int((det & outside).sum()),
            "fn": int((~det & inside).sum()),
        }


def label_rows(
    timestamps: Sequence[Any] | np.ndarray,
    windows: Sequence[tuple[Any, Any]],
    cost: CostMatrix,
    probationary_percent: float = 0.15,
) -> LabelledRows:
    """Each row's NAB weight and label window, for scoring detections on this series.

    Parameters
    ----------
    timestamps : sequence of datetime, datetime64 or ISO strings
        Row timestamps in row order.
    windows : sequence of (start, end)
        Anomaly windows; each boundary must equal one of the timestamps.
    cost : CostMatrix
    probationary_percent : float, default 0.15
        Fraction of leading rows left unscored (capped at
        ``probationary_percent * 5000`` rows).

    Returns
    -------
    LabelledRows

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2014, 1, 1) + timedelta(minutes=5 * i) for i in range(8)]
    >>> rows = label_rows(t, [(t[3], t[5])], CostMatrix(1.0, 0.11, 1.0), probationary_percent=0.0)
    >>> rows.bounds, rows.window.tolist()
    ([(3, 5)], [-1, -1, -1, 0, 0, 0, -1, -1])
    >>> det = [0, 0, 0, 0, 1, 0, 0, 0]
    >>> round(rows.score(det), 3), rows.counts(det)
    (0.944, {'tp': 1, 'tn': 5, 'fp': 0, 'fn': 2})
    """
    ts = _as_datetime64(timestamps)
    n = ts.shape[0]
    bounds = _window_bounds(ts, windows)
    weights = np.empty(n, dtype=float)
    win = np.full(n, _OUTSIDE, dtype=np.int64)
    max_tp = scaled_sigmoid(-1.0)

    # Rows before the first window: no preceding window -> full FP penalty.
    first = bounds[0][0] if bounds else n
    weights[:first] = -cost.fp
    for k, (a, b) in enumerate(bounds):
        width = b - a + 1
        for i in range(a, b + 1):
            weights[i] = scaled_sigmoid(-(b - i + 1) / width) * cost.tp / max_tp
        win[a : b + 1] = k
        nxt = bounds[k + 1][0] if k + 1 < len(bounds) else n
        for i in range(b + 1, nxt):
            weights[i] = scaled_sigmoid((i - b) / (width - 1)) * cost.fp
    win[: probationary_length(n, probationary_percent)] = _PROBATION
    return LabelledRows(weights, win, bounds, cost)


def row_weights(
    timestamps: Sequence[Any] | np.ndarray,
    windows: Sequence[tuple[Any, Any]],
    cost: CostMatrix,
) -> np.ndarray:
    """Per-row NAB weight (NAB's per-row ``S(t)_<profile>`` column).

    Parameters
    ----------
    timestamps : sequence of datetime, datetime64 or ISO strings
        Row timestamps in row order.
    windows : sequence of (start, end)
        Anomaly windows; each boundary must equal one of the timestamps.
    cost : CostMatrix

    Returns
    -------
    numpy.ndarray
        The contribution a detection on each row would make: TP weights inside
        windows, FP weights (negative) outside.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2014, 1, 1) + timedelta(minutes=5 * i) for i in range(10)]
    >>> w = row_weights(t, [(t[4], t[6])], CostMatrix(1.0, 0.11, 1.0))
    >>> [round(float(x), 3) for x in w]
    [-0.11, -0.11, -0.11, -0.11, 1.0, 0.944, 0.692, -0.093, -0.109, -0.11]
    """
    return label_rows(timestamps, windows, cost, 0.0).weights


def score_detections(
    timestamps: Sequence[Any] | np.ndarray,
    detections: Sequence[bool] | np.ndarray,
    windows: Sequence[tuple[Any, Any]],
    cost: CostMatrix,
    probationary_percent: float = 0.15,
) -> float:
    """NAB raw score of a binary detection sequence.

    Parameters
    ----------
    timestamps : sequence of datetime, datetime64 or ISO strings
        Row timestamps in row order.
    detections : array-like of bool
        ``True`` where the detector fires.
    windows : sequence of (start, end)
        Anomaly windows (see :func:`load_windows`).
    cost : CostMatrix
        Profile weights.
    probationary_percent : float, default 0.15
        Fraction of leading rows left unscored (capped at
        ``probationary_percent * 5000`` rows).

    Returns
    -------
    float
        Sum over scored windows of the best detection weight (or ``-fn`` for a
        missed window) plus the weights of all detections outside windows.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2014, 1, 1) + timedelta(minutes=5 * i) for i in range(20)]
    >>> cm = CostMatrix(tp=1.0, fp=0.11, fn=1.0)
    >>> det = [False] * 20
    >>> score_detections(t, det, [(t[10], t[13])], cm, probationary_percent=0.0)
    -1.0
    >>> det[10] = True
    >>> score_detections(t, det, [(t[10], t[13])], cm, probationary_percent=0.0)
    1.0
    """
    return label_rows(timestamps, windows, cost, probationary_percent).score(detections)


def count_detections(
    timestamps: Sequence[Any] | np.ndarray,
    detections: Sequence[bool] | np.ndarray,
    windows: Sequence[tuple[Any, Any]],
    probationary_percent: float = 0.15,
) -> dict[str, int]:
    """Row-level TP/TN/FP/FN counts over the scored (post-probation) rows.

    These are the ``TP, TN, FP, FN`` columns of NAB's ``*_scores.csv`` files:
    every detected row inside a window is a TP, every undetected one an FN.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2014, 1, 1) + timedelta(minutes=5 * i) for i in range(8)]
    >>> det = [0, 0, 1, 0, 1, 0, 0, 1]
    >>> count_detections(t, det, [(t[3], t[5])], probationary_percent=0.0)
    {'tp': 1, 'tn': 3, 'fp': 2, 'fn': 2}
    """
    # Counts do not depend on the profile's weights.
    return label_rows(timestamps, windows, CostMatrix(1.0, 1.0, 1.0), probationary_percent).counts(detections)


def score_series(
    timestamps: Sequence[Any] | np.ndarray,
    anomaly_scores: Sequence[float] | np.ndarray,
    threshold: float,
    windows: Sequence[tuple[Any, Any]],
    cost: CostMatrix,
    probationary_percent: float = 0.15,
) -> float:
    """NAB raw score of anomaly scores thresholded at ``threshold``.

    A row is a detection when ``anomaly_score >= threshold``.

    Parameters
    ----------
    timestamps : sequence of datetime, datetime64 or ISO strings
    anomaly_scores : array-like of float
    threshold : float
    windows : sequence of (start, end)
    cost : CostMatrix
    probationary_percent : float, default 0.15

    Returns
    -------
    float

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2014, 1, 1) + timedelta(minutes=5 * i) for i in range(20)]
    >>> s = [0.1] * 20
    >>> s[10] = 0.9
    >>> cm = CostMatrix(tp=1.0, fp=0.11, fn=1.0)
    >>> score_series(t, s, 0.5, [(t[10], t[13])], cm, probationary_percent=0.0)
    1.0
    """
    scores = np.asarray(anomaly_scores, dtype=float)
    return score_detections(timestamps, scores >= threshold, windows, cost, probationary_percent)


def best_threshold(
    timestamps: Sequence[Any] | np.ndarray,
    anomaly_scores: Sequence[float] | np.ndarray,
    windows: Sequence[tuple[Any, Any]],
    cost: CostMatrix,
    probationary_percent: float = 0.15,
) -> tuple[float, float]:
    """Threshold that maximises the raw score of one series, as NAB's sweep does.

    Every distinct anomaly score of a scored row is tried as a threshold
    (detections are ``score >= threshold``), plus "no detection at all"
    (returned as ``math.inf``). Ties go to the highest threshold, as in NAB's
    optimiser.

    Note that NAB publishes, per detector and profile, one threshold optimised
    over its whole 58-file corpus; the threshold that is best for a single file
    is in general different and scores at least as high.

    Parameters
    ----------
    timestamps : sequence of datetime, datetime64 or ISO strings
    anomaly_scores : array-like of float
    windows : sequence of (start, end)
    cost : CostMatrix
    probationary_percent : float, default 0.15

    Returns
    -------
    (float, float)
        ``(threshold, raw_score)``.

    Examples
    --------
    >>> from datetime import datetime, timedelta
    >>> t = [datetime(2014, 1, 1) + timedelta(minutes=5 * i) for i in range(20)]
    >>> s = [0.1] * 20
    >>> s[10], s[2] = 0.9, 0.95
    >>> cm = CostMatrix(tp=1.0, fp=0.11, fn=1.0)
    >>> best_threshold(t, s, [(t[10], t[13])], cm, probationary_percent=0.0)
    (0.9, 0.89)
    """
    rows = label_rows(timestamps, windows, cost, probationary_percent)
    scores = rows._per_row(anomaly_scores, "anomaly_scores").astype(float)
    weights, win = rows.weights, rows.window
    keep = win != _PROBATION
    scores, weights, win = scores[keep], weights[keep], win[keep]
    window_ids = np.unique(win[win >= 0])
    best_in = {int(k): -cost.fn for k in window_ids}
    fp_sum = 0.0
    best = (math.inf, sum(best_in.values()))
    order = np.argsort(-scores, kind="stable")
    j = 0
    while j < order.size:
        level = scores[order[j]]
        # Activate every row at this score level, then evaluate the threshold.
        while j < order.size and scores[order[j]] == level:
            r = order[j]
            if win[r] == _OUTSIDE:
                fp_sum += weights[r]
            else:
                k = int(win[r])
                best_in[k] = max(best_in[k], float(weights[r]))
            j += 1
        total = fp_sum + sum(best_in.values())
        if total > best[1]:
            best = (float(level), float(total))
    return best
