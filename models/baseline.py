"""Per-feature baseline statistics: the reference every deviation is measured against."""

from __future__ import annotations

import math


class FeatureBaseline:
    """Running mean and variance per feature (Welford), in plain dicts.

    Parameters
    ----------
    min_relative_std
        Floor on the standard deviation, as a fraction of the mean's magnitude,
        so a feature that barely moved during the baseline does not turn a
        tiny change into a huge z-score.

    Examples
    --------
    >>> b = FeatureBaseline()
    >>> for x in (1.0, 2.0, 3.0):
    ...     b.update({"rms": x})
    >>> round(b.mean["rms"], 3), round(b.std("rms"), 3)
    (2.0, 1.0)
    >>> round(b.z({"rms": 5.0})["rms"], 3)
    3.0
    """

    def __init__(self, min_relative_std: float = 0.02):
        self.min_relative_std = min_relative_std
        self.n: dict[str, int] = {}
        self.mean: dict[str, float] = {}
        self.m2: dict[str, float] = {}

    def update(self, x: dict[str, float]) -> None:
        for k, v in x.items():
            n = self.n.get(k, 0) + 1
            mean = self.mean.get(k, 0.0)
            delta = v - mean
            mean += delta / n
            self.n[k] = n
            self.mean[k] = mean
            self.m2[k] = self.m2.get(k, 0.0) + delta * (v - mean)

    def std(self, k: str) -> float:
        n = self.n.get(k, 0)
        var = self.m2[k] / (n - 1) if n > 1 else 0.0
        return max(math.sqrt(max(var, 0.0)), self.min_relative_std * abs(self.mean.get(k, 0.0)), 1e-12)

    def z(self, x: dict[str, float]) -> dict[str, float]:
        """Deviation of each known feature from its baseline, in baseline standard deviations."""
        return {k: (v - self.mean[k]) / self.std(k) for k, v in x.items() if self.n.get(k, 0) > 1}

    def explain(self, x: dict[str, float], top: int = 3) -> list[dict]:
        """The ``top`` features furthest from the baseline, largest first."""
        z = self.z(x)
        ranked = sorted(z, key=lambda k: abs(z[k]), reverse=True)[:top]
        return [{"feature": k, "value": x[k], "baseline_mean": self.mean[k], "z": z[k]} for k in ranked]
