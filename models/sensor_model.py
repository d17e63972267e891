"""One sensor's model state: baseline period, score-then-learn, health, explanation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from predmaint.models.baseline import FeatureBaseline
from predmaint.models.health import HealthCalibration
from predmaint.models.spec import build_detector


@dataclass(frozen=True)
class Assessment:
    """The model's verdict on one window."""

    raw_score: float
    health: float
    phase: str  # "baseline" while learning what normal is, then "monitoring"
    learned: bool
    explanation: list[dict] = field(default_factory=list)


class SensorModel:
    """Scores each window, then learns from it while the sensor looks healthy.

    During the first ``baseline_windows`` windows every window is learned and
    reported with health 100 and phase ``"baseline"``; the raw scores of the
    second half of that period calibrate health (the first half's scores come
    from a model that has seen too little to be judged on). Afterwards a window
    is learned only if its health is at least ``learn_min_health``, so a
    slowly growing fault is not absorbed into "normal".

    Examples
    --------
    >>> m = SensorModel("FeatureDeviation", {}, baseline_windows=10, learn_min_health=80.0)
    >>> for i in range(10):
    ...     _ = m.assess({"rms": 1.0 + 0.01 * (i % 3)})
    >>> m.assess({"rms": 1.01}).health
    100.0
    >>> a = m.assess({"rms": 3.0})
    >>> a.health, a.learned, a.explanation[0]["feature"]
    (0.0, False, 'rms')
    """

    def __init__(self, spec: str, params: dict, baseline_windows: int, learn_min_health: float,
                 field: str = "model.spec"):
        self.spec = spec
        self.params = params
        self.baseline_windows = baseline_windows
        self.learn_min_health = learn_min_health
        self.detector = build_detector(spec, params, field=field, baseline_windows=baseline_windows)
        self.calibration = HealthCalibration()
        # A FeatureDeviation detector already keeps exactly the statistics the
        # explanations need: share them instead of holding a second copy.
        shared = getattr(self.detector, "baseline", None)
        self.baseline = shared if isinstance(shared, FeatureBaseline) else FeatureBaseline()
        self.windows_seen = 0

    @property
    def in_baseline(self) -> bool:
        return self.windows_seen < self.baseline_windows

    def assess(self, features: dict[str, float]) -> Assessment:
        x = {k: float(v) for k, v in features.items() if math.isfinite(v)}
        raw = float(self.detector.score_one(x))
        if self.in_baseline:
            if self.windows_seen >= self.baseline_windows // 2:
                self.calibration.add(raw)
            health, phase, learn = 100.0, "baseline", True
        else:
            health = self.calibration.health(raw)
            phase = "monitoring"
            learn = health >= self.learn_min_health
        explanation = [] if phase == "baseline" else self.baseline.explain(x)
        if learn:
            self.detector.learn_one(x)
            # Derived, not stored: recovery snapshots from before the sharing hold their own copy.
            if self.baseline is not getattr(self.detector, "baseline", None):
                self.baseline.update(x)
        self.windows_seen += 1
        return Assessment(raw, health, phase, learn, explanation)
