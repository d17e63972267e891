"""One sensor's model state: baseline period, score-then-learn, health, explanation.

Two kinds of detectors give health two ways (:mod:`predmaint.models.health`):

* **Self-calibrated** (:class:`~predmaint.models.robust_deviation.RobustDeviation`,
  :class:`~predmaint.models.calibrated.CalibratedDetector`): the detector
  scores a surprise ``-log10 p`` against its own rolling healthy history, health
  is :func:`~predmaint.models.health.health_from_surprise` of it, and the
  detector gates its own learning at the surprise of ``learn_min_health``.
* **Baseline-calibrated** (``FeatureDeviation``, scikit-learn estimators,
  custom classes): health compares the raw score with the same model's scores
  on the second half of the baseline
  (:class:`~predmaint.models.health.HealthCalibration`), and a window is learned
  only if its health is at least ``learn_min_health``.

Any other River anomaly detector (``HalfSpaceTrees``, ``OneClassSVM``,
``LocalOutlierFactor``, a pipeline ending in one) is wrapped in a
``CalibratedDetector`` here, warmed up for the first half of the baseline (or
as long as it needs: ``window_size`` for ``HalfSpaceTrees``) and calibrated on
the second, so a champion swap by config gives health on the same scale.

When monitoring starts, a model that cannot tell windows apart yet (all its
baseline scores equal, or its calibration not ready) is reported once with a
logged warning naming the model's config field and the sensor.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from dataclasses import dataclass, field

from river.base import AnomalyDetector

from predmaint.errors import ModelSpecError
from predmaint.models.baseline import FeatureBaseline
from predmaint.models.calibrated import CalibratedDetector
from predmaint.models.daily_profile import DailyProfile
from predmaint.models.feature_deviation import FeatureDeviation
from predmaint.models.health import HealthCalibration, health_from_surprise, surprise_for_health
from predmaint.models.sklearn_adapter import BaselineFitted
from predmaint.models.spec import build_detector
from predmaint.models.transition_novelty import TransitionNovelty
from predmaint.settings import DAILY_PROFILE_DEFAULTS, NOVELTY_DEFAULTS

__all__ = ["DEFAULT_LEARN_MIN_HEALTH", "Assessment", "SensorModel", "is_self_calibrated", "needs_calibration"]

log = logging.getLogger(__name__)

#: The learning gate when ``learn_min_health`` is not given, by whether the detector is self-calibrated:
#: p = 10**-3.2 (health 70, the rules' clear_at) for those, "as normal as the baseline" (d <= 1) for the others.
DEFAULT_LEARN_MIN_HEALTH = {True: 70.0, False: 100.0}


#: Fewest baseline windows a wrapped River detector is calibrated on (half fill its reference, half its tail).
MIN_CALIBRATION = 4

def _say_lengthened(baseline_field: str, spec: str, params_field: str, detector: CalibratedDetector) -> None:
    """Warn that a model's baseline was lengthened to what its detector needs (said by the start-up check)."""
    log.warning("%s: %s needs %d learned windows before it scores (%s.%s.window_size) and %d to calibrate: "
                "its baseline is %d windows, not the configured one; health stays 100 (phase baseline) "
                "until then", baseline_field, spec, detector.warmup_needed, params_field,
                type(_last_step(detector.detector)).__name__, detector.calibration_min, detector.samples_needed)


def _last_step(detector):
    steps = getattr(detector, "steps", None)
    return list(steps.values())[-1] if isinstance(steps, dict) and steps else detector


@dataclass(frozen=True)
class Assessment:
    """The model's verdict on one window."""

    raw_score: float
    health: float
    phase: str  # "baseline" while learning what normal is, then "monitoring"
    learned: bool
    explanation: list[dict] = field(default_factory=list)
    #: 1.0 if the watched feature moved between bands in a way never seen (``SensorModel``'s
    #: ``novelty``), 0.0 if not, NaN if nothing is watched.
    novelty: float = math.nan
    #: The median of ``SensorModel``'s ``level_feature`` over its baseline windows (NaN while in the
    #: baseline or when no level is kept): the sensor's commissioning level, never moved by learning.
    baseline_level: float = math.nan


def is_self_calibrated(detector) -> bool:
    """Whether ``detector`` scores a surprise ``-log10 p`` of its own and gates its own learning.

    Examples
    --------
    >>> from river import anomaly
    >>> from predmaint.models.robust_deviation import RobustDeviation
    >>> is_self_calibrated(RobustDeviation()), is_self_calibrated(anomaly.HalfSpaceTrees())
    (True, False)
    """
    return callable(getattr(detector, "calibration_problem", None)) and hasattr(detector, "learn_max_surprise")


def needs_calibration(detector) -> bool:
    """Whether ``detector`` is a River anomaly detector (or a pipeline ending in one) to wrap in a CalibratedDetector.

    predmaint's ``FeatureDeviation`` and scikit-learn estimators keep the
    baseline calibration; self-calibrated detectors are used as they are.

    Examples
    --------
    >>> from river import anomaly, preprocessing
    >>> needs_calibration(preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees())
    True
    >>> needs_calibration(FeatureDeviation()), needs_calibration(CalibratedDetector(anomaly.OneClassSVM()))
    (False, False)
    """
    if is_self_calibrated(detector):
        return False
    steps = getattr(detector, "steps", None)
    last = list(steps.values())[-1] if isinstance(steps, dict) and steps else detector
    return isinstance(last, AnomalyDetector) and not isinstance(last, (FeatureDeviation, BaselineFitted)) \
        and not is_self_calibrated(last)


class SensorModel:
    """Scores each window, then learns from it while the sensor looks healthy.

    During the first ``baseline_windows`` windows every window is reported
    with health 100 and phase ``"baseline"``. A baseline-calibrated detector
    learns all of them, and the raw scores of the second half calibrate health
    (the first half's scores come from a model that has seen too little to be
    judged on); afterwards a window is learned only if its health is at least
    ``learn_min_health``, so a slowly growing fault is not absorbed into
    "normal". A self-calibrated detector learns as it decides, with its gate
    set to the surprise of ``learn_min_health``.

    Parameters
    ----------
    spec, params
        The detector (:func:`~predmaint.models.spec.build_detector`).
    baseline_windows
        Windows before health is reported.
    learn_min_health
        The learning gate, as a health level; ``None``: 70 for self-calibrated
        detectors, 100 for baseline-calibrated ones (:data:`DEFAULT_LEARN_MIN_HEALTH`).
    field
        Config field of ``spec`` (errors and warnings name it).
    sensor
        The sensor this model watches (warnings name it).
    params_field
        Config field of ``params``; default: ``field``'s parent + ``.params``.
    novelty
        ``{"feature": name, "bins": b, "warmup_windows": w, "below_health": h}``: also watch that
        feature with a :class:`~predmaint.models.transition_novelty.TransitionNovelty` (it learns
        every window, healthy or not). A novel move in a window whose health is below ``h`` (the
        default 80: the detector finds the value unusual, p < 10**-2.8) is :attr:`Assessment.novelty`
        1.0 and leads the window's explanation; a novel move of a value the detector finds
        ordinary is learned but not reported (on healthy noise a novel move is a rare hop
        between tail bands or a new extreme). ``None``: not watched (``novelty`` stays NaN).
    level_feature
        Keep the median of this feature over the baseline windows, reported as
        :attr:`Assessment.baseline_level` once monitoring: a level that no learning moves,
        for rules on the change from commissioning (the pipeline's ``iso_alert_ratio`` of
        ``velocity_rms_mm_s``). ``""``: none.
    daily_profile
        ``{"feature": name, "days": d, "min_days": m, "repeats_at": r, "stops_at": s}``: also judge
        that feature against the same time of day on the last days
        (:class:`~predmaint.models.daily_profile.DailyProfile`, which needs each window's end:
        :meth:`assess`'s ``end_ns``). While the days repeat, the window's surprise is that of the
        more surprising of the detector's verdict and the profile's, with ``p`` doubled (Bonferroni
        over the two), so health keeps its meaning; when the profile's is the larger, its item leads
        the explanation. Only for a self-calibrated detector, whose score is a surprise on the
        profile's scale; a baseline-calibrated one (``FeatureDeviation``, scikit-learn) keeps its
        own health. ``None``: not judged so.

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

    The default detector, on a temperature that jumps after its baseline:

    >>> import random
    >>> rng = random.Random(3)
    >>> m = SensorModel("RobustDeviation", {}, baseline_windows=24, learn_min_health=70.0)
    >>> for _ in range(100):
    ...     _ = m.assess({"temp_level_c": 50.0 + rng.gauss(0, 0.2)})
    >>> m.assess({"temp_level_c": 50.1}).health
    100.0
    >>> a = m.assess({"temp_level_c": 58.0})
    >>> a.health, a.learned, a.explanation[0]["feature"], a.explanation[0]["stat"]
    (0.0, False, 'temp_level_c', 'level')
    """

    # Recovery snapshots from before self-calibrated detectors (or before last_health) have none of these.
    calibrated = False
    #: Health of the last window assessed (100 in the baseline): was the sensor healthy when it went silent?
    last_health = 100.0
    #: Windows left in which a restart after a stop is checked (``pipelines.steps.restart_checked``).
    restart_check_left = 0
    sensor = ""
    field = "model.spec"
    #: The novelty watch (``novelty`` argument); recovery snapshots from before it have none.
    novelty: TransitionNovelty | None = None
    novelty_feature = ""
    novelty_below_health = NOVELTY_DEFAULTS["below_health"]
    #: The level kept from the baseline (``level_feature`` argument); snapshots from before it keep none.
    level_feature = ""
    baseline_level = math.nan
    _baseline_levels: tuple = ()
    #: The daily profile (``daily_profile`` argument); recovery snapshots from before it have none.
    daily: DailyProfile | None = None
    daily_feature = ""

    def __init__(self, spec: str, params: dict, baseline_windows: int, learn_min_health: float | None,
                 field: str = "model.spec", sensor: str = "", params_field: str | None = None,
                 novelty: dict | None = None, level_feature: str = "", daily_profile: dict | None = None):
        self.spec = spec
        self.params = params
        self.baseline_windows = baseline_windows
        self.field = field
        self.sensor = sensor
        params_field = params_field or f"{field.rpartition('.')[0] or 'model'}.params"
        detector = build_detector(spec, params, field=field, baseline_windows=baseline_windows,
                                  params_field=params_field)
        if needs_calibration(detector):
            half = baseline_windows // 2
            if baseline_windows - half < MIN_CALIBRATION:
                raise ModelSpecError(f"{field.rpartition('.')[0] or 'model'}.baseline_windows: {spec!r} is "
                                     f"warmed up on the first half of the baseline and calibrated on the "
                                     f"second, which needs at least {MIN_CALIBRATION} windows; got "
                                     f"baseline_windows {baseline_windows}")
            detector = CalibratedDetector(detector, min_warmup=half, calibration_min=baseline_windows - half)
            # The baseline is as long as the detector needs: HalfSpaceTrees scores nothing before
            # window_size learned windows, and monitoring must not start before it can score.
            if detector.samples_needed > baseline_windows:
                self.baseline_windows = baseline_windows = detector.samples_needed
                if not sensor:  # the start-up check (steps.check_registry) builds each model once without one
                    _say_lengthened(f"{field.rpartition('.')[0] or 'model'}.baseline_windows", spec, params_field,
                                    detector)
        self.calibrated = is_self_calibrated(detector)
        self.learn_min_health = DEFAULT_LEARN_MIN_HEALTH[self.calibrated] if learn_min_health is None \
            else float(learn_min_health)
        if self.calibrated:
            for step, kwargs in (params or {}).items():
                if isinstance(kwargs, dict) and "learn_max_surprise" in kwargs:
                    model_field = field.rpartition(".")[0] or "model"
                    raise ModelSpecError(f"{params_field}.{step}.learn_max_surprise: the learning gate is "
                                         f"{model_field}.learn_min_health (a health level); set that instead")
            detector.learn_max_surprise = surprise_for_health(self.learn_min_health)
        self.detector = detector
        self.calibration = HealthCalibration()
        # A FeatureDeviation detector already keeps exactly the statistics the
        # explanations need: share them instead of holding a second copy. A
        # detector that explains itself needs none (this one stays empty).
        shared = getattr(self.detector, "baseline", None)
        self.baseline = shared if isinstance(shared, FeatureBaseline) else FeatureBaseline()
        self.windows_seen = 0
        self.level_feature = level_feature
        self.baseline_level = math.nan
        self._baseline_levels = ()
        if novelty is not None:
            self.novelty_feature = str(novelty["feature"])
            watch = {**NOVELTY_DEFAULTS, **novelty}
            self.novelty = TransitionNovelty(bins=watch["bins"], warmup=watch["warmup_windows"])
            self.novelty_below_health = float(watch["below_health"])
        if daily_profile is not None and self.calibrated:
            self.daily_feature = str(daily_profile["feature"])
            profile = {**DAILY_PROFILE_DEFAULTS, **daily_profile}
            self.daily = DailyProfile(days=profile["days"], min_days=profile["min_days"],
                                      repeats_at=profile["repeats_at"], stops_at=profile["stops_at"],
                                      learn_max_surprise=surprise_for_health(self.learn_min_health))

    @property
    def in_baseline(self) -> bool:
        return self.windows_seen < self.baseline_windows

    def assess(self, features: dict[str, float], end_ns: int | None = None) -> Assessment:
        """Score, then learn, one window's features; ``end_ns``: the window's end (the daily profile's clock)."""
        x = {k: float(v) for k, v in features.items() if math.isfinite(v)}
        in_baseline = self.in_baseline
        a = self._assess(x)
        if self.daily is not None and end_ns is not None and self.daily_feature in x:
            # The window's time of day is that of its last instant (a window ending on the hour lies before it).
            a = self._judge_daily((end_ns - 1) / 1e9, x[self.daily_feature], in_baseline, a)
        if self.level_feature:
            a = self._keep_level(x, in_baseline, a)
        if self.novelty is None or self.novelty_feature not in x:
            return a
        value = x[self.novelty_feature]
        novel = self.novelty.score_one(value) if a.health < self.novelty_below_health else 0.0  # before it learns
        row = {"feature": self.novelty_feature, "stat": "novelty", "value": value,
               **self.novelty.explain(value, self.novelty_feature)} if novel else None
        self.novelty.learn_one(value)
        return dataclasses.replace(a, novelty=novel, explanation=[row, *a.explanation] if row else a.explanation)

    def _judge_daily(self, ts_s: float, value: float, in_baseline: bool, a: Assessment) -> Assessment:
        """Combine the detector's verdict with the daily profile's (Bonferroni over the two), then learn."""
        daily = self.daily
        assert daily is not None
        if a.phase == "monitoring" and daily.scoring:
            own = float(a.raw_score)  # a self-calibrated detector's score is its surprise
            departure = daily.score_one(ts_s, value)
            surprise = max(0.0, max(own, departure) - math.log10(2))
            explanation = [daily.explain(ts_s, value, self.daily_feature, departure), *a.explanation] \
                if departure > own else a.explanation
            a = dataclasses.replace(a, raw_score=surprise, health=health_from_surprise(surprise),
                                    explanation=explanation)
        daily.learn_one(ts_s, value, healthy=in_baseline or a.health >= self.learn_min_health)
        return a

    def _keep_level(self, x: dict[str, float], in_baseline: bool, a: Assessment) -> Assessment:
        """Collect ``level_feature`` over the baseline; once monitoring, report the baseline's median.

        Not the detector's reference: that one rolls and follows slow change, so a level that
        doubles over weeks can become its normal. This one is fixed when the baseline ends, like
        the baseline an ISO 10816-3 ALERT is set from (``pipelines.steps``'s ``iso_alert_ratio``).
        """
        if in_baseline:
            if self.level_feature in x:
                self._baseline_levels = (*self._baseline_levels, x[self.level_feature])
            return a
        if self._baseline_levels:
            self.baseline_level = statistics.median(self._baseline_levels)
            self._baseline_levels = ()
        return dataclasses.replace(a, baseline_level=self.baseline_level) if math.isfinite(self.baseline_level) else a

    def _assess(self, x: dict[str, float]) -> Assessment:
        if self.windows_seen == self.baseline_windows:
            self._report_calibration()
        if self.calibrated:
            return self._assess_calibrated(x)
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
        self.last_health = health
        return Assessment(raw, health, phase, learn, explanation)

    def _assess_calibrated(self, x: dict[str, float]) -> Assessment:
        surprise = float(self.detector.score_one(x))
        explanation: list[dict] = []
        if self.in_baseline:
            health, phase = 100.0, "baseline"
        else:
            health, phase = health_from_surprise(surprise), "monitoring"
            explain = getattr(self.detector, "explain", None)
            explanation = explain(x) if explain is not None else self.baseline.explain(x)
        self.detector.learn_one(x)
        learned = bool(self.detector.last_learned)
        if learned and not hasattr(self.detector, "explain"):
            self.baseline.update(x)
        self.windows_seen += 1
        self.last_health = health
        return Assessment(surprise, health, phase, learned, explanation)

    def _report_calibration(self) -> None:
        """Warn (once: monitoring starts once) when this model cannot tell windows apart."""
        model_field = self.field.rpartition(".")[0] or "model"
        where = f"{model_field} ({self.spec}) on sensor {self.sensor or '?'}"
        if self.calibrated:
            problem = self.detector.calibration_problem()
            if problem:
                log.warning("%s: monitoring starts, but %s; its health stays 100 until it is calibrated",
                            where, problem)
            return
        scores = self.calibration.scores
        if scores and min(scores) == max(scores):
            log.warning("%s: all %d baseline scores equal %g: the detector does not tell windows apart, so its "
                        "health cannot either", where, len(scores), scores[0])
