"""FeatureDeviation: an online anomaly detector that scores the largest per-feature z-score."""

from __future__ import annotations

import math

from river.base import AnomalyDetector

from predmaint.models.baseline import FeatureBaseline


class FeatureDeviation(AnomalyDetector):
    """Score = how far the features are from their running baseline, in standard deviations.

    Explainable by construction (the score is made of named features'
    z-scores) and small: three numbers per feature, so thousands of sensors
    fit in memory.

    Parameters
    ----------
    min_relative_std
        See :class:`predmaint.models.baseline.FeatureBaseline`.
    aggregate
        ``"rms"``: root mean square of the z-scores. Its tail on healthy data is
        light (about chi with one degree of freedom per feature), so rare
        wobbles of single features among dozens do not look like faults, while
        a fault that moves a few features by tens of deviations still stands
        out. ``"max"``: the largest absolute z-score, more sensitive to a change
        in one feature and noisier.

    Examples
    --------
    >>> model = FeatureDeviation()
    >>> for x in (1.0, 1.2, 0.8, 1.1, 0.9):
    ...     model.learn_one({"rms": x, "kurtosis": 3.0})
    >>> model.score_one({"rms": 1.0, "kurtosis": 3.0}) < 1.0
    True
    >>> round(model.score_one({"rms": 2.0, "kurtosis": 3.0}), 2)
    4.47
    >>> round(FeatureDeviation(aggregate="max").score_one({"rms": 2.0}), 2)
    0.0
    """

    def __init__(self, min_relative_std: float = 0.02, aggregate: str = "rms"):
        if aggregate not in ("rms", "max"):
            raise ValueError(f"FeatureDeviation: aggregate must be 'rms' or 'max', got {aggregate!r}")
        self.min_relative_std = min_relative_std
        self.aggregate = aggregate
        self.baseline = FeatureBaseline(min_relative_std)

    def learn_one(self, x: dict) -> None:
        self.baseline.update(x)

    def score_one(self, x: dict) -> float:
        z = self.baseline.z(x)
        if not z:
            return 0.0
        if self.aggregate == "max":
            return max(abs(v) for v in z.values())
        return math.sqrt(sum(v * v for v in z.values()) / len(z))
