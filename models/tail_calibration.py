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
* **No spread, no scale.** Scores that are all equal (a detector that does not
  yet tell windows apart) leave the calibration not :attr:`~TailCalibration.ready`
  instead of turning the next tiny difference into p = 0.
* **Small state.** Scores are float32 in a fixed-size ring buffer.
"""

from __future__ import annotations

import math

import numpy as np
from river import base

__all__ = ["TailCalibration"]


class TailCalibration(base.Base):
    """Peaks-over-threshold tail model of the last ``size`` learned scores.

    Parameters
    ----------
    size
        Scores kept (ring buffer).
    tail_fraction
        Fraction of the kept scores above the threshold once enough are kept.
    min_scores
        Scores needed before :meth:`p_value` returns anything below 1.
    min_excesses
        Excesses the tail is fitted to at least (the threshold is lowered
        while fewer scores are kept).
    shape_min_excesses
        Excesses needed to estimate the GPD shape; fewer: exponential tail.
    max_shape
        Upper bound of the fitted GPD shape.
    refresh
        Refit every ``refresh`` learned scores (every one while fewer than
        ``4 * min_scores`` are kept).

    Attributes
    ----------
    threshold, sigma, shape, zeta : float
        The fitted tail: ``p(s) = zeta * (1 + shape * (s - threshold) / sigma) ** (-1 / shape)``
        for ``s > threshold`` (the exponential limit for shape 0).

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
    >>> few.ready, few.surprise(8.0) < cal.surprise(8.0)
    (True, True)

    Scores without spread carry no scale:

    >>> flat = TailCalibration()
    >>> for _ in range(50):
    ...     flat.learn_one(0.0)
    >>> flat.ready, flat.p_value(1.0)
    (False, 1.0)
    """

    def __init__(self, size: int = 1024, tail_fraction: float = 0.05, min_scores: int = 12,
                 min_excesses: int = 10, shape_min_excesses: int = 30, max_shape: float = 0.5,
                 refresh: int = 16):
        if isinstance(size, bool) or not isinstance(size, int) or size < 4:
            raise ValueError(f"TailCalibration: size must be a whole number >= 4, got {size!r}")
        if not 0.0 < tail_fraction < 0.5:
            raise ValueError(f"TailCalibration: tail_fraction must be in (0, 0.5), got {tail_fraction!r}")
        if not 3 <= min_scores <= size:
            raise ValueError(f"TailCalibration: min_scores must be in [3, size={size}], got {min_scores!r}")
        if not 2 <= min_excesses or not 2 <= shape_min_excesses:
            raise ValueError("TailCalibration: min_excesses and shape_min_excesses must be >= 2")
        if not 0.0 <= max_shape < 1.0:
            raise ValueError(f"TailCalibration: max_shape must be in [0, 1), got {max_shape!r}")
        if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 1:
            raise ValueError(f"TailCalibration: refresh must be a whole number >= 1, got {refresh!r}")
        self.size = size
        self.tail_fraction = tail_fraction
        self.min_scores = min_scores
        self.min_excesses = min_excesses
        self.shape_min_excesses = shape_min_excesses
        self.max_shape = max_shape
        self.refresh = refresh
        self.buffer = np.zeros(size, dtype=np.float32)
        self.n = 0
        self.threshold = math.inf
        self.sigma = 1.0
        self.shape = 0.0
        self.zeta = 1.0
        self._pos = 0
        self._since = 0

    def learn_one(self, score: float) -> None:
        """Keep ``score`` (ignored if not finite) and refit when due."""
        if not math.isfinite(score):
            return
        self.buffer[self._pos] = min(max(score, -3e38), 3e38)
        self._pos = (self._pos + 1) % self.size
        if self.n < self.size:
            self.n += 1
        self._since += 1
        if self.n >= self.min_scores and (self._since >= self.refresh or self.n < 4 * self.min_scores
                                          or not math.isfinite(self.threshold)):
            self._fit()

    def _fit(self) -> None:
        self._since = 0
        b = (self.buffer[: self.n] if self.n < self.size else self.buffer).astype(np.float64)
        lo, hi = float(b.min()), float(b.max())
        if not hi > lo:  # no spread: no scale to measure a difference with
            self.threshold = math.inf
            return
        k = max(math.ceil(self.tail_fraction * self.n), min(self.min_excesses, self.n - 1))
        t = float(np.partition(b, self.n - k - 1)[self.n - k - 1])  # the largest score not in the tail
        exc = b[b > t] - t
        k = exc.size  # ties at the threshold are not excesses
        if k == 0:
            self.threshold = math.inf
            return
        m = float(exc.mean())
        shape = 0.0
        if k >= self.shape_min_excesses:
            v = float(exc.var()) + 1e-300
            shape = min(max(0.5 * (1.0 - m * m / v), 0.0), self.max_shape)
        if shape >= 1.0 / k:
            sigma = m * (1.0 - shape)
        else:  # the predictive tail of an exponential fitted to k excesses: shape 1/k, scale = mean excess
            shape, sigma = 1.0 / k, m
        # Floor the scale by the scores' typical spread, so a near-flat history
        # does not turn a small excess into an astronomically small p.
        spread = float(np.mean(np.abs(b - np.median(b))))
        sigma = max(sigma, 0.05 * spread, 1e-9 * max(abs(t), 1.0))
        self.threshold, self.sigma, self.shape, self.zeta = t, sigma, shape, k / self.n

    @property
    def ready(self) -> bool:
        """Whether :meth:`p_value` can say anything (enough scores, with some spread)."""
        return math.isfinite(self.threshold)

    def p_value(self, score: float) -> float:
        """Tail probability of ``score`` among healthy scores (1.0 if not ready or not in the tail)."""
        if not self.ready or not score > self.threshold:
            return 1.0
        y = (score - self.threshold) / self.sigma
        if self.shape > 1e-9:
            return self.zeta * math.exp(-math.log1p(self.shape * y) / self.shape)
        return self.zeta * math.exp(-min(y, 700.0))

    def surprise(self, score: float) -> float:
        """``-log10`` of :meth:`p_value` (0 = ordinary, 4 = one healthy score in ten thousand)."""
        p = self.p_value(score)
        return 0.0 if p >= 1.0 else -math.log10(max(p, 1e-300))
