"""TailCalibration: any raw score -> a tail probability, from the score's own recent healthy values.

Why each choice:

* **A probability, not a distance.** Raw scores have different scales per
  statistic, feature, sensor and detector. Converting each into "how often
  does a healthy window score at least this much" (``p``, or the surprise
  ``-log10 p``) makes one threshold mean the same false-alarm rate everywhere.
* **Peaks over threshold.** Alerts live in the far tail, beyond anything a
  few hundred healthy scores contain, so an empirical quantile cannot reach
  them. Extreme-value theory says the excesses over a high threshold follow a
  generalised Pareto distribution (GPD); it is fitted to the largest
  ``tail_fraction`` of the kept scores by the method of moments, with the
  shape clipped to ``[0, max_shape]`` (between an exponential and a heavy
  tail; a light, bounded tail is not extrapolated). After Siffer et al.,
  "Anomaly detection in streams with extreme value theory" (SPOT), KDD 2017.
* **Rolling healthy reference.** The last ``size`` scores the owner chose to
  learn (its healthy ones) are kept, so the calibration follows the sensor
  instead of being frozen on the first dozen windows.
* **Honest with few scores.** Until ``min_excesses / tail_fraction`` scores
  exist the threshold is lowered so that at least ``min_excesses`` (or all but
  one) scores are excesses, the shape is only estimated from
  ``shape_min_excesses`` excesses on, and the tail is the *predictive* one:
  with ``k`` excesses the exponential scale is uncertain, and integrating over
  it (Jeffreys prior) gives a GPD of shape ``1/k`` (a Pareto II). So a
  calibration on 12 scores claims far less certainty than one on 500, and is
  usable from ``min_scores`` on.
* **Folded statistics start from their known shape.** A young GPD is fitted to
  the mean of a few excesses, so each new large score widens it: a slow drift,
  learned window by window as barely unusual, then never looks unusual at all
  (the demo's bearing temperature, rising 10 degC over 2 hours, one noise level
  per window, stayed at health 100). Scores folded at 0 whose healthy
  distribution is a ``|z|`` (``folded=True``: the robust z-scores of
  :class:`~predmaint.models.robust_deviation.RobustDeviation`) therefore use,
  until there are enough scores for the GPD, the half-normal at the scale their
  *median* implies (which a few large scores do not move), with Student's t
  tails on as many degrees of freedom as independent scores, at most ``max_dof`` (Bailey's
  normal approximation): the median fixes a scale, not how heavy the real tail
  is. A statistic whose median is about 0 (a quantised feature that rarely
  moves a step) is no half-normal and keeps the predictive GPD.
* **Dependent scores count for less.** A statistic over a rolling window (the
  mean of the last 6 values, the mean change over the last 16) gives nearly the
  same score on consecutive readings, so its excesses come in clusters and a
  tail fitted to them is far more certain than it has reason to be (iid noise
  crossed health 50 about once in 10,000 readings through a calm stretch of the
  rolling mean change). With ``dependence=w``, the uncertainty of the tail
  counts ``n / w`` scores and ``k / w`` excesses: the half-normal's degrees of
  freedom and the GPD's predictive shape ``1/k``.
* **Winsorised learning.** With ``clip_surprise``, a score beyond that surprise
  is learned as the score of that surprise, so a run of growing scores cannot
  stretch the tail it is judged by.
* **No spread, no scale.** Scores that are all equal (a detector that does not
  yet tell windows apart) leave the calibration not ready instead of turning
  the next tiny difference into p = 0.
* **Columns.** One calibration holds many score streams (one per feature of a
  sensor) as columns of one float32 array: a fit or a scoring is a few numpy
  operations for all of them, and the state pickles as one buffer.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from river import base
from scipy.special import erfc

__all__ = ["TailCalibration", "is_finite_number", "warm_up_problem"]

_SQRT2 = math.sqrt(2.0)
_NORMAL = NormalDist()
#: Codes of :attr:`TailCalibration.tail`.
NONE, HALF_NORMAL, GPD = 0, 1, 2
#: Below this median, folded scores are not taken for a half-normal (a |z| has median 0.67).
MIN_FOLDED_MEDIAN = 0.01


def is_finite_number(value) -> bool:
    """Whether ``value`` is a finite number (a feature value a detector can learn).

    >>> is_finite_number(1.0), is_finite_number(float("nan")), is_finite_number("x")
    (True, False, False)
    """
    try:
        return math.isfinite(value)
    except TypeError:
        return False


def warm_up_problem(detector: str, n_learned: int, grace: int, calibration_min: int) -> str | None:
    """Why a self-calibrated detector cannot score yet, while its ``grace`` and first calibration fill.

    >>> warm_up_problem("RobustDeviation", 3, 12, 12)
    'RobustDeviation has learned 3 windows; it is calibrated after 24 (grace 12 + calibration_min 12)'
    """
    needed = grace + calibration_min
    if n_learned >= needed:
        return None
    return (f"{detector} has learned {n_learned} windows; it is calibrated after {needed} "
            f"(grace {grace} + calibration_min {calibration_min})")


class TailCalibration(base.Base):
    """Peaks-over-threshold tail model of the last ``size`` learned scores of each column.

    A calibration of one score stream uses :meth:`learn_one`, :meth:`p_value`,
    :meth:`surprise` and :meth:`score_at` (column 0, created on first use);
    one of many streams adds columns with :meth:`add_columns` and uses
    :meth:`learn`, :meth:`p_values`, :meth:`surprises` and :meth:`scores_at`.

    Parameters
    ----------
    size
        Scores kept per column (ring buffer).
    tail_fraction
        Fraction of the kept scores above the threshold once enough are kept.
    min_scores
        Scores a column needs before it is used.
    min_excesses
        Excesses the tail is fitted to at least (the threshold is lowered
        while fewer scores are kept).
    shape_min_excesses
        Excesses needed to estimate the GPD shape; fewer: exponential tail.
    max_shape
        Upper bound of the fitted GPD shape.
    refresh
        Refit every ``refresh`` :meth:`learn` calls (every one while a column
        holds fewer than ``4 * min_scores`` scores).
    folded
        Scores are ``|z|``-like (0 = typical): before the GPD, use the
        half-normal tail at the scale the scores' median implies.
    max_dof
        Most degrees of freedom of that half-normal's Student t (scores /
        ``dependence`` below that; 10: ``|z| = 5`` has ``p = 5e-4`` instead of
        the Gaussian ``6e-7``).
    clip_surprise
        Once fitted, learn a score beyond this surprise as :meth:`score_at` of
        it; ``None``: no clipping.
    dependence
        Consecutive scores that share most of their data (a rolling window's
        length): the tail's uncertainty counts ``1 / dependence`` of them. The
        default of columns added without one (:meth:`add_columns`).

    Attributes
    ----------
    ready : numpy.ndarray of bool
        Per column: whether it can say anything (enough scores, with some spread).
    tail : numpy.ndarray of int
        Per column: 0 not fitted, 1 half-normal, 2 GPD.
    threshold, sigma, shape, zeta : numpy.ndarray of float
        The fitted GPD: ``p(s) = zeta * (1 + shape * (s - threshold) / sigma) ** (-1 / shape)``
        for ``s > threshold`` (the exponential limit for shape 0). For the
        half-normal, ``sigma`` is its scale and ``p(s) = P(|T| > s / sigma)``
        with ``T`` Student's t on ``dof`` degrees of freedom.
    clip_score : numpy.ndarray of float
        Scores above it are learned as it (inf when not clipping).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> cal = TailCalibration(size=2000)
    >>> for _ in range(2000):
    ...     cal.learn_one(abs(rng.gauss(0, 1)))
    >>> 0.001 < cal.p_value(3.0) < 0.01    # two-sided Gaussian: 0.0027
    True
    >>> cal.p_value(0.5), cal.surprise(0.5)
    (1.0, 0.0)
    >>> cal.p_value(8.0) < 1e-6
    True

    Twelve scores already give a usable, and more cautious, tail:

    >>> few = TailCalibration()
    >>> for _ in range(12):
    ...     few.learn_one(abs(rng.gauss(0, 1)))
    >>> bool(few.ready[0]), few.surprise(8.0) < cal.surprise(8.0)
    (True, True)

    Folded scores: a drift of growing scores does not widen the tail it is judged by.

    >>> young, folded = TailCalibration(), TailCalibration(folded=True)
    >>> for z in [abs(rng.gauss(0, 1)) for _ in range(24)] + [3.0, 4.0, 5.0, 6.0]:
    ...     young.learn_one(z)
    ...     folded.learn_one(z)
    >>> round(young.surprise(7.0), 1), round(folded.surprise(7.0), 1)
    (1.8, 4.5)

    Scores without spread carry no scale:

    >>> flat = TailCalibration()
    >>> for _ in range(50):
    ...     flat.learn_one(0.0)
    >>> bool(flat.ready[0]), flat.p_value(1.0)
    (False, 1.0)
    """

    def __init__(self, size: int = 1024, tail_fraction: float = 0.05, min_scores: int = 12,
                 min_excesses: int = 10, shape_min_excesses: int = 30, max_shape: float = 0.5,
                 refresh: int = 16, folded: bool = False, max_dof: int = 10, clip_surprise: float | None = None,
                 dependence: int = 1):
        if isinstance(size, bool) or not isinstance(size, int) or size < 4:
            raise ValueError(f"TailCalibration: size must be a whole number >= 4, got {size!r}")
        if not 0.0 < tail_fraction < 0.5:
            raise ValueError(f"TailCalibration: tail_fraction must be in (0, 0.5), got {tail_fraction!r}")
        if not 3 <= min_scores <= size:
            raise ValueError(f"TailCalibration: min_scores must be in [3, size={size}], got {min_scores!r}")
        if not 2 <= min_excesses or not 2 <= shape_min_excesses or not 1 <= max_dof:
            raise ValueError("TailCalibration: min_excesses and shape_min_excesses must be >= 2, max_dof >= 1")
        if not 0.0 <= max_shape < 1.0:
            raise ValueError(f"TailCalibration: max_shape must be in [0, 1), got {max_shape!r}")
        if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 1:
            raise ValueError(f"TailCalibration: refresh must be a whole number >= 1, got {refresh!r}")
        if isinstance(dependence, bool) or not isinstance(dependence, int) or dependence < 1:
            raise ValueError(f"TailCalibration: dependence must be a whole number >= 1, got {dependence!r}")
        self.size = size
        self.tail_fraction = tail_fraction
        self.min_scores = min_scores
        self.min_excesses = min_excesses
        self.shape_min_excesses = shape_min_excesses
        self.max_shape = max_shape
        self.refresh = refresh
        self.folded = folded
        self.max_dof = max_dof
        self.clip_surprise = clip_surprise
        self.dependence = dependence
        self.buffer = np.zeros((size, 0), dtype=np.float32)
        self.n = np.zeros(0, dtype=np.int32)
        self.ready = np.zeros(0, dtype=bool)
        self.tail = np.zeros(0, dtype=np.int8)
        self.dof = np.zeros(0)
        self.threshold = np.zeros(0)
        self.sigma = np.zeros(0)
        self.shape = np.zeros(0)
        self.zeta = np.zeros(0)
        self.clip_score = np.zeros(0)
        self._dependence = np.zeros(0)
        self._pos = np.zeros(0, dtype=np.int32)
        self._since = 0

    # -- columns ----------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return int(self.n.size)

    def add_columns(self, count: int, dependence: int | np.ndarray | None = None) -> None:
        """Append ``count`` empty (not ready) columns, of ``dependence`` (default: the parameter's) each."""
        dep = np.broadcast_to(np.asarray(self.dependence if dependence is None else dependence, dtype=float), (count,))
        self._dependence = np.concatenate([self._dependence, dep])
        self.buffer = np.concatenate([self.buffer, np.zeros((self.size, count), dtype=np.float32)], axis=1)
        for name, fill, dtype in (("n", 0, np.int32), ("_pos", 0, np.int32), ("ready", False, bool),
                                  ("tail", NONE, np.int8), ("dof", 1.0, float), ("threshold", math.inf, float),
                                  ("sigma", 1.0, float), ("shape", 0.0, float), ("zeta", 1.0, float),
                                  ("clip_score", math.inf, float)):
            setattr(self, name, np.concatenate([getattr(self, name), np.full(count, fill, dtype=dtype)]))

    # -- learning ---------------------------------------------------------------------------------
    def learn(self, scores: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Keep ``scores[j]`` in column ``j`` wherever ``mask`` and the score is finite; refit when due."""
        s = np.asarray(scores, dtype=np.float64)
        ok = np.isfinite(s) if mask is None else (mask & np.isfinite(s))
        cols = np.flatnonzero(ok)
        if cols.size == 0:
            return
        v = np.clip(np.minimum(s[cols], self.clip_score[cols]), -3e38, 3e38)
        pos = self._pos[cols]
        self.buffer[pos, cols] = v
        self._pos[cols] = (pos + 1) % self.size
        self.n[cols] = np.minimum(self.n[cols] + 1, self.size)
        self._since += 1
        n = self.n[cols]
        if self._since >= self.refresh or bool(((n >= self.min_scores) & (n < 4 * self.min_scores)).any()):
            self._fit()

    def _fit(self) -> None:
        self._since = 0
        for count in np.unique(self.n):
            cols = np.flatnonzero(self.n == count)
            if count < self.min_scores:
                self.ready[cols], self.threshold[cols], self.clip_score[cols] = False, math.inf, math.inf
                continue
            # A column holding fewer than size scores has never wrapped: its scores are the first rows.
            b = (self.buffer[:count, cols] if count < self.size else self.buffer[:, cols]).astype(np.float64)
            if self.folded and count * self.tail_fraction < self.min_excesses:
                # Half-normal where the median is that of a |z| (folded scores are in units of
                # a scale: typical ~0.67); a statistic that is mostly 0, up to float32 rounding
                # (a quantised feature that rarely moves one step), is not one. Half the RMS
                # floors the scale for statistics that are often 0.
                med = np.median(np.abs(b), axis=0)
                tau = np.maximum(med / 0.6745, 0.5 * np.sqrt(np.mean(b * b, axis=0)))
                hn = med >= MIN_FOLDED_MEDIAN
                if hn.any():
                    self._fit_half_normal(cols[hn], tau[hn], int(count))
                if not hn.all():
                    self._fit_gpd(cols[~hn], b[:, ~hn], int(count))
            else:
                self._fit_gpd(cols, b, int(count))
            flat = ~(b.max(axis=0) > b.min(axis=0))  # no spread: no scale to measure a difference with
            self.threshold[cols[flat]] = math.inf
            self.ready[cols] = np.isfinite(self.threshold[cols])
            self.clip_score[cols] = math.inf if self.clip_surprise is None else \
                self._score_at(self.clip_surprise, cols)

    def _fit_half_normal(self, cols: np.ndarray, tau: np.ndarray, count: int) -> None:
        """The half-normal of scale ``tau`` (its median is 0.6745 scales)."""
        dof = np.minimum(np.maximum(count / self._dependence[cols], 1.0), self.max_dof)
        self.tail[cols], self.dof[cols], self.sigma[cols] = HALF_NORMAL, dof, tau
        self.threshold[cols], self.shape[cols], self.zeta[cols] = 0.0, 0.0, 1.0

    def _fit_gpd(self, cols: np.ndarray, b: np.ndarray, count: int) -> None:
        k = max(math.ceil(self.tail_fraction * count), min(self.min_excesses, count - 1))
        srt = np.sort(b, axis=0)
        t = srt[count - k - 1]  # the largest score not in the tail
        exc = srt[count - k:] - t
        pos = exc > 0  # ties at the threshold are not excesses
        kk = pos.sum(axis=0)
        kd = np.maximum(kk, 1)
        m = (exc * pos).sum(axis=0) / kd
        var = (((exc - m) * pos) ** 2).sum(axis=0) / kd + 1e-300
        with np.errstate(over="ignore"):  # equal excesses: m^2/var is +inf, so the shape is 0 (exponential)
            moments = 0.5 * (1.0 - m * m / var)
        shape = np.where(kk >= self.shape_min_excesses, np.clip(moments, 0.0, self.max_shape), 0.0)
        # Fewer (independent) excesses than 1/shape: the predictive tail of an exponential
        # fitted to k excesses (shape 1/k, scale = their mean excess).
        k_independent = np.maximum(kk / self._dependence[cols], 1.0)
        predictive = shape < 1.0 / k_independent
        sigma = np.where(predictive, m, m * (1.0 - shape))
        shape = np.where(predictive, 1.0 / k_independent, shape)
        # Floor the scale by the scores' typical spread, so a near-flat history
        # does not turn a small excess into an astronomically small p.
        med = 0.5 * (srt[(count - 1) // 2] + srt[count // 2])
        spread = np.mean(np.abs(b - med), axis=0)
        sigma = np.maximum(np.maximum(sigma, 0.05 * spread), 1e-9 * np.maximum(np.abs(t), 1.0))
        self.tail[cols], self.dof[cols] = GPD, 0.0
        self.threshold[cols] = np.where(kk > 0, t, math.inf)
        self.sigma[cols], self.shape[cols], self.zeta[cols] = sigma, shape, kk / count

    # -- probabilities ----------------------------------------------------------------------------
    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Per column, the tail probability of ``scores[j]`` (1.0 where not ready, not in the tail or not finite)."""
        s = np.asarray(scores, dtype=np.float64)
        p = np.ones(s.size)
        with np.errstate(invalid="ignore"):
            live = self.ready & (s > self.threshold)
        hn = np.flatnonzero(live & (self.tail == HALF_NORMAL))
        if hn.size:
            t = s[hn] / self.sigma[hn]
            nu = self.dof[hn]
            z = np.sqrt(nu * np.log1p(t * t / nu)) * (8 * nu + 1) / (8 * nu + 3)
            p[hn] = np.minimum(1.0, erfc(z / _SQRT2))
        gp = np.flatnonzero(live & (self.tail == GPD))
        if gp.size:
            y = (s[gp] - self.threshold[gp]) / self.sigma[gp]
            xi = self.shape[gp]
            heavy = xi > 1e-9
            expo = np.where(heavy, np.log1p(np.where(heavy, xi, 1.0) * y) / np.where(heavy, xi, 1.0),
                            np.minimum(y, 700.0))
            p[gp] = self.zeta[gp] * np.exp(-expo)
        return p

    def surprises(self, scores: np.ndarray) -> np.ndarray:
        """Per column, ``-log10`` of :meth:`p_values` (0 = ordinary, 4 = one healthy score in ten thousand)."""
        return -np.log10(np.maximum(self.p_values(scores), 1e-300)) + 0.0

    def scores_at(self, surprise: float) -> np.ndarray:
        """Per column, the score whose surprise is ``surprise`` (inverse of :meth:`surprises`; inf where not ready)."""
        return self._score_at(surprise, np.arange(self.width))

    def _score_at(self, surprise: float, cols: np.ndarray) -> np.ndarray:
        out = np.full(cols.size, math.inf)
        p = min(10.0 ** -surprise, 1.0 - 1e-12)
        tail, ready = self.tail[cols], self.ready[cols]
        for nu in np.unique(self.dof[cols][tail == HALF_NORMAL]):
            i = np.flatnonzero((tail == HALF_NORMAL) & (self.dof[cols] == nu) & ready)
            z = -_NORMAL.inv_cdf(p / 2.0) * (8 * nu + 3) / (8 * nu + 1)
            out[i] = self.sigma[cols[i]] * math.sqrt(nu * math.expm1(z * z / nu))
        g = np.flatnonzero((tail == GPD) & ready)
        if g.size:
            c = cols[g]
            ratio = p / self.zeta[c]
            xi = np.maximum(self.shape[c], 1e-12)
            beyond = np.where(self.shape[c] > 1e-9, self.sigma[c] / xi * (ratio ** -xi - 1.0),
                              -self.sigma[c] * np.log(ratio))
            out[g] = self.threshold[c] + np.where(ratio >= 1.0, 0.0, beyond)
        return out

    # -- one score stream -------------------------------------------------------------------------
    def _one(self) -> None:
        if self.width == 0:
            self.add_columns(1)
        elif self.width > 1:
            raise ValueError(f"TailCalibration has {self.width} columns: use learn/surprises/scores_at, not the "
                             f"one-stream methods")

    def learn_one(self, score: float) -> None:
        """Keep ``score`` in column 0 (ignored if not finite; winsorised at ``clip_surprise``)."""
        self._one()
        self.learn(np.array([score], dtype=np.float64))

    def p_value(self, score: float) -> float:
        """Tail probability of ``score`` in column 0 (1.0 if not ready or not in the tail)."""
        self._one()
        return float(self.p_values(np.array([score], dtype=np.float64))[0])

    def surprise(self, score: float) -> float:
        """``-log10`` of :meth:`p_value`."""
        self._one()
        return float(self.surprises(np.array([score], dtype=np.float64))[0])

    def score_at(self, surprise: float) -> float:
        """The column-0 score whose surprise is ``surprise`` (inverse of :meth:`surprise`; inf if not ready).

        Examples
        --------
        >>> cal = TailCalibration()
        >>> for s in range(100):
        ...     cal.learn_one(float(s))
        >>> round(cal.surprise(cal.score_at(3.0)), 6)
        3.0
        """
        self._one()
        return float(self._score_at(surprise, np.array([0]))[0])
