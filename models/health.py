"""Health 0-100: a detector's raw score calibrated against the sensor's own baseline.

Raw scores are on different scales per detector (HalfSpaceTrees in [0, 1],
OneClassSVM margins, LOF near 1 when normal), so health is defined relative to
the scores the same model gave the same sensor during its baseline:

* ``d = (score - median) / (p99 - median)`` over the baseline scores;
* health is 100 while ``d <= 1`` (as normal as the baseline's 99th percentile),
  falls linearly to 50 at ``d = 3`` and to 0 at ``d = 5``.

So 100 means "indistinguishable from this sensor's healthy baseline", 50 "the
anomaly score is three times further from normal than anything routinely seen
in the baseline", 0 "five times or more".
"""

from __future__ import annotations

import numpy as np

FULL_HEALTH_D = 1.0
ZERO_HEALTH_D = 5.0


class HealthCalibration:
    """Baseline raw scores of one sensor's model, and the mapping to health.

    Examples
    --------
    >>> cal = HealthCalibration()
    >>> for s in range(101):  # median 50, 99th percentile 99
    ...     cal.add(float(s))
    >>> cal.health(60.0), cal.health(50.0 + 3 * 49.0), cal.health(400.0)
    (100.0, 50.0, 0.0)
    """

    # Recovery snapshots taken before the lazy refresh have no such attribute.
    _stale = False

    def __init__(self, max_scores: int = 256):
        self.max_scores = max_scores
        self.scores: list[float] = []
        self._median = 0.0
        self._spread = 1.0
        self._stale = False  # scores added since median and spread were computed

    def add(self, score: float) -> None:
        if len(self.scores) < self.max_scores:
            self.scores.append(float(score))
            self._stale = True

    def _refresh(self) -> None:
        arr = np.asarray(self.scores)
        self._median = float(np.median(arr))
        p99 = float(np.quantile(arr, 0.99))
        # Floor the spread so a baseline of identical scores does not make
        # every later wobble look infinitely abnormal.
        self._spread = max(p99 - self._median, 0.05 * abs(self._median), 1e-9)
        self._stale = False

    def distance(self, score: float) -> float:
        if self._stale:
            self._refresh()
        return (score - self._median) / self._spread

    def health(self, score: float) -> float:
        d = self.distance(score)
        frac = (d - FULL_HEALTH_D) / (ZERO_HEALTH_D - FULL_HEALTH_D)
        return float(round(100.0 * min(1.0, max(0.0, 1.0 - frac)), 3))


#: Highest health an ISO 10816-3 zone allows, whatever the model says: zone C is
#: "unsatisfactory for long-term operation", zone D "severe enough to cause damage".
ISO_ZONE_HEALTH_CAP = {1: 100.0, 2: 90.0, 3: 60.0, 4: 30.0}


def iso_capped(health: float, iso_zone: float | None) -> float:
    """Health limited by the ISO 10816-3 zone (1..4 = A..D); unchanged without a zone.

    Examples
    --------
    >>> [iso_capped(95.0, z) for z in (None, 1.0, 2.0, 3.0, 4.0)]
    [95.0, 95.0, 90.0, 60.0, 30.0]
    """
    if iso_zone is None:
        return health
    return min(health, ISO_ZONE_HEALTH_CAP[int(round(iso_zone))])
