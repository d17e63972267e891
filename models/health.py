"""Health 0-100: a detector's raw score calibrated against the sensor's own baseline.

Raw scores are on different scales per detector (HalfSpaceTrees in [0, 1],
OneClassSVM margins, LOF near 1 when normal), so health is defined relative to
the scores the same model gave the same sensor during its baseline:

* ``d = (score - median) / (p99 - median)`` over the baseline scores;
* health is 100 while ``d <= 1`` (as normal as the baseline's 99th percentile),
  falls linearly to 50 at ``d = 3`` and to 0 at ``d = 5``.

So 100 means "indistinguishable from this sensor's healthy baseline", 50 "the
anomaly score is three times further from normal than anything routinely seen
in the baseline", 0 "five times or more". Used for detectors that do not
calibrate themselves (:class:`~predmaint.models.feature_deviation.FeatureDeviation`,
scikit-learn estimators, custom classes).

Detectors that calibrate themselves
(:class:`~predmaint.models.robust_deviation.RobustDeviation`,
:class:`~predmaint.models.calibrated.CalibratedDetector`) score a *surprise*
``s = -log10 p``, where ``p`` is the probability of a window at least this
unusual under the sensor's own healthy history (after the Bonferroni
correction for the number of tests, so ``p`` is a false-alarm probability per
window). :func:`health_from_surprise` maps it linearly:

==========  =========  ===============================================
surprise    p          health
==========  =========  ===============================================
<= 2        >= 1e-2    100: as ordinary as one window in a hundred
3.2         6.3e-4     70: the alert rules' ``clear_at`` and the default learning gate
4           1e-4       50: the ``warning`` threshold, one window in ten thousand
4.8         1.6e-5     30: ``alarm``
5.6         2.5e-6     10: ``critical``
>= 6        <= 1e-6    0
==========  =========  ===============================================

So an alert threshold is a probability level: the same health means the same
false-alarm rate on every sensor and for every such detector, whatever the
scale of its raw score. The rate is nominal: ``p = 1e-4`` per window is about ten
5-minute windows per sensor and year, but the tail models overestimate ``p``
for light-tailed statistics (an exponential tail on a Gaussian one), so fewer
happen in practice (``tests/test_default_detection.py``: none in 5,000 healthy
readings), and a rule's ``on_delay_windows`` divides the rate further.
"""

from __future__ import annotations

import numpy as np

FULL_HEALTH_D = 1.0
ZERO_HEALTH_D = 5.0
#: Surprise (-log10 p) up to which health is 100, and from which it is 0.
FULL_HEALTH_SURPRISE = 2.0
ZERO_HEALTH_SURPRISE = 6.0


def health_from_surprise(surprise: float) -> float:
    """Health 0-100 of a surprise ``-log10 p``: 100 up to 2, 0 from 6, linear between.

    Examples
    --------
    >>> [health_from_surprise(s) for s in (0.0, 2.0, 3.2, 4.0, 4.8, 6.0, 9.0)]
    [100.0, 100.0, 70.0, 50.0, 30.0, 0.0, 0.0]
    """
    frac = (surprise - FULL_HEALTH_SURPRISE) / (ZERO_HEALTH_SURPRISE - FULL_HEALTH_SURPRISE)
    return float(round(100.0 * min(1.0, max(0.0, 1.0 - frac)), 3))


def surprise_for_health(health: float) -> float:
    """The largest surprise whose health is still ``health`` (inverse of :func:`health_from_surprise`).

    Examples
    --------
    >>> [surprise_for_health(h) for h in (100.0, 70.0, 50.0, 0.0)]
    [2.0, 3.2, 4.0, 6.0]
    """
    h = min(100.0, max(0.0, float(health)))
    return round(FULL_HEALTH_SURPRISE + (1.0 - h / 100.0) * (ZERO_HEALTH_SURPRISE - FULL_HEALTH_SURPRISE), 9)


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
