"""FeatureDeviation: an online anomaly detector that scores the largest per-feature z-score."""

from __future__ import annotations

from river.base import AnomalyDetector

from models.baseline import FeatureBaseline


class FeatureDeviation(AnomalyDetector):
    """Score = the largest absolute z-score of any feature against its running baseline.

    Explainable by construction (the score *is* a named feature's deviation) and
    small: three numbers per feature, so thousands of sensors fit in memory.

    Parameters
    ----------
    min_relative_std
        See :class:`models.baseline.FeatureBaseline`.

    Examples
    --------
    >>> model = FeatureDeviation()
    >>> for x in (1.0, 1.2, 0.8, 1.1, 0.9):
    ...     model.learn_one({"rms": x, "kurtosis": 3.0})
    >>> model.score_one({"rms": 1.0, "kurtosis": 3.0}) < 1.0
    True
    >>> round(model.score_one({"rms": 2.0, "kurtosis": 3.0}), 2)
    6.32
    """

    def __init__(self, min_relative_std: float = 0.02):
        self.min_relative_std = min_relative_std
        self.baseline = FeatureBaseline(min_relative_std)

    def learn_one(self, x: dict) -> None:
        self.baseline.update(x)

    def score_one(self, x: dict) -> float:
        z = self.baseline.z(x)
        return max((abs(v) for v in z.values()), default=0.0)
