"""SKAB metrics as the SKAB protocol defines them: outlier F1/FAR/MAR and the changepoint NAB score.

SKAB (Skoltech Anomaly Benchmark, ``waico/SKAB``; Katser & Kozitsin 2020,
doi:10.34740/KAGGLE/DSV/1693952) scores detectors on the **test part** of each
experiment, the rows after the first :data:`TRAIN_ROWS` = 400 (``skab/SOURCE.md``
"The published protocol"). The rules below restate those of SKAB's metric code
(``core/metrics.py``, from the ``tsad`` library; GPL-3.0, no code copied):

**Outlier detection** (the ``anomaly`` column), confusion counts summed over
the test parts of all experiments: ``F1 = TP / (TP + (FP + FN) / 2)``,
``FAR = 100 * FP / (FP + TN)``, ``MAR = 100 * FN / (FN + TP)`` (percent).
SKAB rounds to 2 decimals when printing; these functions do not round.

**Changepoint detection** (the ``changepoint`` column): a NAB-style score with
SKAB's own scoring function, not NAB's sigmoid:

* each true changepoint at time ``t`` opens a window ``[t, t + 60 s]`` (both
  ends inclusive) to its **right**; when a window reaches the next one's start
  (``end_i >= start_i+1``), the next window starts at ``end_i`` instead;
* a window's first predicted changepoint at time ``d`` scores
  ``y(k) = (tp + fp) / 2 * (1 - tanh(x_k) / tanh(pi / 2)) - fp`` with
  ``x_k = -pi/2 + k * pi / 999`` and ``k = min(999, floor(1000 * (d - start) / (end - start)))``
  (``tp`` at the window's start, ``-fp`` at its end); a window without a
  prediction scores ``-fn``; every prediction before the first window,
  strictly between two windows or after the last scores ``-fp`` (flat: no
  distance weighting); further predictions inside a window count nothing;
* summed over experiments, ``score = 100 * (S - null) / (perfect - null)``
  with ``null = -fn`` and ``perfect = tp`` per window.

The profiles are NAB's (standard ``fp`` 0.11, low-FP 0.22, low-FN ``fn`` 2).
SKAB derives predicted changepoints from binary outlier predictions as
``|diff|`` with the first value kept (:func:`changepoints_from_outliers`).

Examples
--------
>>> ts = np.arange(600) * 1000
>>> true = np.zeros(600, dtype=int); true[100:200] = 1
>>> s = outlier_score([(true, true)])
>>> (s.f1, s.far_pct, s.mar_pct)
(1.0, 0.0, 0.0)
>>> cp = changepoints_from_outliers(true)
>>> changepoint_score([(ts, cp, cp)]).standard
100.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from predmaint.models.nab_scoring import CostMatrix

__all__ = [
    "SKAB_PROFILES",
    "TRAIN_ROWS",
    "WINDOW_S",
    "ChangepointScore",
    "OutlierScore",
    "SkabPublished",
    "changepoint_score",
    "changepoint_windows",
    "changepoints_from_outliers",
    "outlier_score",
    "published_table",
    "window_weight",
]

#: Rows of each experiment's training part (SKAB protocol).
TRAIN_ROWS = 400
#: Width of the scoring window to the right of each true changepoint, seconds.
WINDOW_S = 60.0
#: SKAB's NAB profiles (its ``table_of_coef``: Standard, LowFP, LowFN), with NAB's profile names.
SKAB_PROFILES: dict[str, CostMatrix] = {
    "standard": CostMatrix(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostMatrix(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostMatrix(tp=1.0, fp=0.11, fn=2.0),
}
_STEPS = 1000  # SKAB's scoring-function resolution ("detalization")


def _binary(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr == 1


@dataclass(frozen=True)
class OutlierScore:
    """Outlier-detection metrics summed over experiments (F1 in [0, 1], FAR and MAR in %)."""

    f1: float
    far_pct: float
    mar_pct: float
    tp: int
    tn: int
    fp: int
    fn: int
    experiments: int


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def outlier_score(experiments: Iterable[tuple[np.ndarray, np.ndarray]]) -> OutlierScore:
    """F1, FAR and MAR of binary predictions, counts summed over experiments.

    Parameters
    ----------
    experiments : iterable of (true, predicted)
        Per experiment, the ``anomaly`` labels and the predictions (1 =
        anomalous) of its **test part** (rows after the first 400).

    Returns
    -------
    OutlierScore
        A ratio with a zero denominator is NaN.

    Examples
    --------
    >>> true = np.array([0, 0, 1, 1]); pred = np.array([1, 0, 1, 0])
    >>> s = outlier_score([(true, pred)])
    >>> (s.tp, s.tn, s.fp, s.fn), s.f1, s.far_pct, s.mar_pct
    ((1, 1, 1, 1), 0.5, 50.0, 50.0)
    """
    tp = tn = fp = fn = n = 0
    for true, pred in experiments:
        t, p = _binary(true, "true"), _binary(pred, "predicted")
        if t.shape != p.shape:
            raise ValueError(f"labels have {t.shape[0]} rows, predictions {p.shape[0]}")
        tp += int((t & p).sum())
        tn += int((~t & ~p).sum())
        fp += int((~t & p).sum())
        fn += int((t & ~p).sum())
        n += 1
    return OutlierScore(_ratio(tp, tp + (fp + fn) / 2), 100.0 * _ratio(fp, fp + tn), 100.0 * _ratio(fn, fn + tp),
                        tp, tn, fp, fn, n)


def changepoints_from_outliers(predicted) -> np.ndarray:
    """SKAB's changepoint predictions from outlier predictions: ``|diff|``, the first value kept.

    Examples
    --------
    >>> changepoints_from_outliers([1, 1, 0, 0, 1]).tolist()
    [1, 0, 1, 0, 1]
    """
    p = np.asarray(predicted).astype(np.int64)
    if p.size == 0:
        return p
    out = np.abs(np.diff(p, prepend=p[0]))
    out[0] = p[0]
    return out


def changepoint_windows(ts_ms, true_cp, window_s: float = WINDOW_S) -> list[tuple[int, int]]:
    """Scoring windows ``(start_ms, end_ms)`` to the right of each true changepoint, overlaps cut.

    Examples
    --------
    >>> changepoint_windows(np.arange(5) * 30_000, [0, 1, 1, 0, 0])
    [(30000, 90000), (90000, 120000)]
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    cps = ts[_binary(true_cp, "true_cp")]
    width = round(window_s * 1000)
    wins = [[t, t + width] for t in np.sort(cps).tolist()]
    for i in range(len(wins) - 1):
        wins[i + 1][0] = max(wins[i][1], wins[i + 1][0])
    return [(a, b) for a, b in wins]


def window_weight(position: float, cost: CostMatrix) -> float:
    """SKAB's score of a window's first detection at ``position`` (0 = window start, 1 = end).

    Examples
    --------
    >>> cm = SKAB_PROFILES["standard"]
    >>> window_weight(0.0, cm), window_weight(1.0, cm), round(window_weight(0.5, cm), 4)
    (1.0, -0.11, 0.444)
    """
    k = min(_STEPS - 1, int(position * _STEPS))
    x = -math.pi / 2 + k * math.pi / (_STEPS - 1)
    half = (cost.tp + cost.fp) / 2
    return half * (1.0 - math.tanh(x) / math.tanh(math.pi / 2)) - cost.fp


@dataclass(frozen=True)
class ChangepointScore:
    """SKAB's changepoint NAB scores (normalised, per profile) and the counts SKAB publishes beside them.

    Attributes
    ----------
    scores : dict
        Profile name -> normalised score (100 perfect, 0 null).
    missed : int
        Windows without a predicted changepoint ("missed CPs").
    false_positives : int
        Predicted changepoints outside every window ("FPs").
    changepoints : int
        True changepoints (windows) scored.
    experiments : int
    raw : dict
        Profile name -> summed raw score ``S``.
    """

    scores: dict[str, float]
    missed: int
    false_positives: int
    changepoints: int
    experiments: int
    raw: dict[str, float] = field(default_factory=dict)

    @property
    def standard(self) -> float:
        return self.scores["standard"]

    @property
    def low_fp(self) -> float:
        return self.scores["reward_low_FP_rate"]

    @property
    def low_fn(self) -> float:
        return self.scores["reward_low_FN_rate"]


def changepoint_score(
    experiments: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    window_s: float = WINDOW_S,
    profiles: Mapping[str, CostMatrix] = SKAB_PROFILES,
) -> ChangepointScore:
    """SKAB's changepoint NAB score over experiments (see the module docstring).

    Parameters
    ----------
    experiments : iterable of (ts_ms, true_cp, predicted_cp)
        Per experiment, over its **test part**: row timestamps (epoch ms,
        increasing), the ``changepoint`` labels and the predicted changepoints
        (1 = changepoint; :func:`changepoints_from_outliers` turns outlier
        predictions into these).
    window_s : float, default 60
    profiles : mapping, default :data:`SKAB_PROFILES`

    Returns
    -------
    ChangepointScore
        Scores are NaN when no experiment has a changepoint.

    Examples
    --------
    One changepoint at t = 10 s, a detection 30 s later (the window's middle),
    one false alarm far after it:

    >>> ts = np.arange(200) * 1000
    >>> true = np.zeros(200, dtype=int); true[10] = 1
    >>> pred = np.zeros(200, dtype=int); pred[[40, 150]] = 1
    >>> s = changepoint_score([(ts, true, pred)])
    >>> round(s.standard, 2), s.missed, s.false_positives
    (66.7, 0, 1)
    >>> changepoint_score([(ts, true, np.zeros(200, dtype=int))]).scores
    {'standard': 0.0, 'reward_low_FP_rate': 0.0, 'reward_low_FN_rate': 0.0}
    """
    raw = {p: 0.0 for p in profiles}
    n_windows = missed = fps = n = 0
    for ts_ms, true_cp, pred_cp in experiments:
        ts = np.asarray(ts_ms, dtype=np.int64)
        pred = _binary(pred_cp, "predicted_cp")
        if not (ts.shape == pred.shape == np.asarray(true_cp).shape):
            raise ValueError("ts_ms, true_cp and predicted_cp must have the same length")
        if np.any(np.diff(ts) < 0):
            raise ValueError("ts_ms must be increasing")
        wins = changepoint_windows(ts, true_cp, window_s)
        times = ts[pred]
        n += 1
        if not wins:
            fps += int(times.size)
            for p, cost in profiles.items():
                raw[p] -= cost.fp * times.size
            continue
        first_hits: list[tuple[int, int, int]] = []
        exp_fp = int((times < wins[0][0]).sum())
        exp_missed = 0
        for i, (a, b) in enumerate(wins):
            inside = times[(times >= a) & (times <= b)]
            if inside.size:
                first_hits.append((a, int(inside[0]), b))
            else:
                exp_missed += 1
            nxt = wins[i + 1][0] if i + 1 < len(wins) else None
            exp_fp += int(((times > b) & (times < nxt)).sum()) if nxt is not None else int((times > b).sum())
        for p, cost in profiles.items():
            raw[p] += -cost.fp * exp_fp - cost.fn * exp_missed + sum(
                window_weight((d - a) / (b - a), cost) for a, d, b in first_hits)
        n_windows += len(wins)
        missed += exp_missed
        fps += exp_fp
    scores = {}
    for p, cost in profiles.items():
        null, perfect = -cost.fn * n_windows, cost.tp * n_windows
        scores[p] = 100.0 * (raw[p] - null) / (perfect - null) if perfect != null else math.nan
    return ChangepointScore(scores, missed, fps, n_windows, n, raw)


@dataclass(frozen=True)
class SkabPublished:
    """SKAB's published leaderboard (upstream README, v0.9 "proposed leaderboard").

    Attributes
    ----------
    outlier : dict
        Detector -> (F1, FAR %, MAR %).
    changepoint : dict
        Detector -> (NAB standard, NAB low FP, NAB low FN, missed CPs, FPs).
    experiments : int
        Experiments the figures cover (34).
    note : str
    """

    outlier: dict[str, tuple[float, float, float]]
    changepoint: dict[str, tuple[float, float, float, int, int]]
    experiments: int
    note: str


def published_table() -> SkabPublished:
    """The published SKAB table (``skab/SOURCE.md``, from ``waico/SKAB``'s README), as data.

    The figures cover **all 34 experiments** of SKAB v0.9; the shared data
    holds 27 of them (7 held back), so a score of ours over those 27 is not the
    same measurement: compare like with like and say which files a figure covers.

    Examples
    --------
    >>> t = published_table()
    >>> t.experiments, t.outlier["Conv-AE"], t.changepoint["MSCRED"][:3]
    (34, (0.78, 13.55, 28.02), (32.42, 16.53, 40.28))
    """
    return SkabPublished(
        outlier={
            "Conv-AE": (0.78, 13.55, 28.02),
            "MSET": (0.78, 39.73, 14.13),
            "T-squared + Q (PCA)": (0.76, 26.62, 24.92),
            "LSTM-AE": (0.74, 29.96, 25.92),
            "T-squared": (0.66, 19.21, 42.6),
            "LSTM-VAE": (0.56, 9.13, 55.03),
            "Vanilla LSTM": (0.54, 12.54, 59.53),
            "Vanilla AE": (0.39, 2.59, 75.15),
            "MSCRED": (0.36, 49.94, 69.88),
            "Isolation forest": (0.29, 2.56, 82.89),
        },
        changepoint={
            "MSCRED": (32.42, 16.53, 40.28, 55, 342),
            "Isolation forest": (26.16, 19.5, 30.82, 76, 135),
            "T-squared + Q (PCA)": (25.35, 14.51, 31.33, 72, 232),
            "Conv-AE": (23.61, 21.54, 27.55, 82, 23),
            "LSTM-AE": (23.51, 20.11, 25.91, 88, 69),
            "T-squared": (19.54, 10.2, 24.31, 70, 106),
            "MSET": (13.84, 10.22, 17.37, 96, 66),
        },
        experiments=34,
        note=("SKAB v0.9 leaderboard over all 34 experiments (test parts: rows after the first 400); "
              "the shared data holds 27 of them, so scores over those 27 are not directly comparable."),
    )
