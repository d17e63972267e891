"""CalibratedDetector: any River anomaly detector, warmed up as it needs and scored as a probability level.

River's detectors score on scales of their own (``HalfSpaceTrees`` in
[0, 1], ``OneClassSVM`` margins, ``LocalOutlierFactor`` near 1 when normal),
and some score nothing useful for a while: ``HalfSpaceTrees`` returns 0 until it
has learned ``window_size`` samples (250 by default). Why each choice:

* **Warm-up the detector needs.** The first ``warmup`` samples are only
  learned, never scored; ``warmup=None`` means at least :func:`required_warmup`
  (``window_size`` for ``HalfSpaceTrees``, searched through pipelines) and
  ``min_warmup``. :attr:`CalibratedDetector.samples_needed` is warm-up plus
  calibration: :class:`~predmaint.models.sensor_model.SensorModel` makes its
  baseline at least that long.
* **Features inside the limits a detector assumes.** ``HalfSpaceTrees`` splits
  each feature at random inside fixed ``limits`` ([0, 1] by default, the
  output range of ``MinMaxScaler`` on what it has seen). A value beyond them
  lands in the same cell as the most extreme healthy values, so a fault far
  outside the range looked no more unusual than the healthy extremes (measured
  on the demo: the faulty pump's windows scored 0.97-0.99, its healthy ones
  0.94-0.99). Such a detector gets its features squashed
  (:class:`BoundedInputs`): its limits' range maps to their middle half and
  anything beyond tends to the edges, so a fault falls into cells no healthy
  window has filled.
* **HalfSpaceTrees' mass, on a log scale.** Its score is ``1 - mass``, the
  normalised mass of healthy samples along the sample's path: an isolated
  sample scores near 1, and the score saturates there. The calibration is
  given ``-log10(1 - score)`` (the mass's order of magnitude) instead, so a
  mass 10 times smaller is one step further, not a few thousandths.
  ``LocalOutlierFactor``'s density ratio (1 when normal) is given as ``log10``.
* **The same probability scale as RobustDeviation**, from the scores the
  detector gives healthy samples (each scored before it is learned), for the
  score itself and for the mean of the last six (a lasting rise that no
  single score shows), Bonferroni-corrected for the two, and only above the
  healthy scores: a low score means "more normal than usual". So alert
  thresholds and health mean the same for every detector
  (:mod:`predmaint.models.health`). How depends on whether the score has a
  tail of its own:

  - *bounded* (HalfSpaceTrees' mass): the score is the one feature of a
    :class:`~predmaint.models.robust_deviation.RobustDeviation` (statistics
    ``level`` and ``mean``; ``grace`` and ``calibration_min`` split
    ``calibration_min``), whose tail starts from the half-normal at the
    scores' robust scale, so a dozen scores already tell a fault. A
    peaks-over-threshold tail fitted to a dozen bounded scores could not: on
    the demo the faulty pump's scores stayed within a tail that heavy;
  - *unbounded* (LOF ratios, OneClassSVM margins): a
    :class:`~predmaint.models.tail_calibration.TailCalibration` (a
    generalised Pareto tail) of each, which learns how heavy their tail is.
    Under the half-normal start, LOF's heavy-tailed scores of healthy
    Gaussian samples refused 16 of 126 of them (surprise above the gate).
* **Bounded cost.** River's ``LocalOutlierFactor`` keeps the last 1,000
  samples it learns (its ``LazySearch`` engine's window) and compares each new
  one with all of them: measured here with 23 features, a score took 9.5 ms
  with 100 kept, 36 ms with 250 and 174 ms with 1,000, so one IMS bearing
  (982 windows) took 336 s. A detector that keeps samples learns at most
  ``max_kept`` (256 by default: ~36 ms a score); after that the calibration
  still learns, the detector only scores.
* **Health-gated learning.** After calibration a sample is learned (by the
  detector and by the calibration) only if its surprise is at most
  ``learn_max_surprise``, so a developing fault is not learned as normal.
* **Says when it cannot score.** :meth:`CalibratedDetector.calibration_problem`
  explains a detector still warming up or whose scores are all equal.

Raw scores must grow with abnormality, as River's detectors' do.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from river import anomaly, base, compose, preprocessing
from river.base import AnomalyDetector

from predmaint.models.robust_deviation import RobustDeviation
from predmaint.models.tail_calibration import TailCalibration

__all__ = ["BoundedInputs", "CalibratedDetector", "required_warmup"]

#: Scores in the ``mean`` statistic of the calibration (RobustDeviation's default).
MEAN_WINDOW = 6
#: Samples a detector that keeps every sample (LocalOutlierFactor) learns at most, unless told otherwise.
MAX_KEPT = 256
#: The calibration's one feature.
_SCORE = "score"


def _parts(detector) -> list:
    steps = getattr(detector, "steps", None)
    return list(steps.values()) if isinstance(steps, dict) else [detector]


def required_warmup(detector) -> int:
    """Samples a River detector must learn before its scores mean anything.

    ``HalfSpaceTrees`` scores 0 until ``window_size`` samples are learned;
    pipelines are searched step by step; other detectors need none.

    Examples
    --------
    >>> from river import anomaly, preprocessing
    >>> required_warmup(preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees())
    250
    >>> required_warmup(anomaly.OneClassSVM())
    0
    """
    return max([int(getattr(p, "window_size", 0) or 0) for p in _parts(detector)] + [0])


def _name(detector) -> str:
    return " | ".join(type(p).__name__ for p in _parts(detector))


class BoundedInputs(base.Transformer):
    """Squash each feature into the ``limits`` a detector assumes: their range maps to its middle half.

    ``v = centre + half * tanh(0.5 * (u - centre) / half)`` per feature, with
    ``(lo, hi)`` from ``limits`` (``(0, 1)`` for features it does not name),
    ``centre = (lo + hi) / 2``, ``half = (hi - lo) / 2``: ``lo`` and ``hi``
    map to 27 % and 73 % of the range, every value stays inside it, and values
    far outside reach its edges, where no healthy sample is.

    Examples
    --------
    >>> t = BoundedInputs()
    >>> {k: round(v, 3) for k, v in t.transform_one({"a": 0.0, "b": 1.0, "c": 0.5, "d": 40.0}).items()}
    {'a': 0.269, 'b': 0.731, 'c': 0.5, 'd': 1.0}
    """

    def __init__(self, limits: dict | None = None):
        self.limits = limits

    def transform_one(self, x: dict) -> dict:
        limits = self.limits or {}
        out = {}
        for k, u in x.items():
            lo, hi = limits.get(k, (0.0, 1.0))
            centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
            out[k] = centre + half * math.tanh(0.5 * (u - centre) / half) if half > 0 else u
        return out


def _bounded(detector):
    """``detector`` with :class:`BoundedInputs` before its last step if that step assumes feature limits."""
    parts = _parts(detector)
    last = parts[-1]
    if not isinstance(last, anomaly.HalfSpaceTrees):
        return detector
    limits = {k: tuple(v) for k, v in dict(last.limits).items()}
    return compose.Pipeline(*parts[:-1], BoundedInputs(limits), last)


def _score_transform(detector) -> str:
    """How raw scores are calibrated: ``"mass"`` (HalfSpaceTrees), ``"ratio"`` (LocalOutlierFactor) or ``"raw"``."""
    last = _parts(detector)[-1]
    if isinstance(last, anomaly.HalfSpaceTrees):
        return "mass"
    if isinstance(last, anomaly.LocalOutlierFactor):
        return "ratio"
    return "raw"


class CalibratedDetector(AnomalyDetector):
    """A River anomaly detector (or pipeline) whose score is the surprise ``-log10 p`` of its raw score.

    Parameters
    ----------
    detector
        A River anomaly detector or a pipeline ending in one.
    warmup
        Samples learned before calibration starts; ``None``: the larger of
        :func:`required_warmup` and ``min_warmup``.
    min_warmup
        Floor of the automatic warm-up.
    calibration_min
        Raw scores collected before the score means anything (at least 4: half
        fill the calibration's reference, half its tail).
    calibration_size
        Healthy raw scores kept by the calibration.
    learn_max_surprise
        After calibration, learn a sample only if its surprise is at most this
        (3.2 = health 70).
    max_kept
        Most samples the detector itself learns; ``None``: :data:`MAX_KEPT` for a
        detector that keeps every sample (``LocalOutlierFactor``), unbounded for
        the others.

    Attributes
    ----------
    warmup_needed : int
        The warm-up in effect.
    samples_needed : int
        Samples learned before the score means anything: warm-up and calibration.
    calibration : RobustDeviation or TailCalibration
        The calibration of the detector's healthy raw scores: a RobustDeviation
        over one feature, ``score``, for a bounded score; for the others a
        TailCalibration of two columns (the score, the mean of the last six).
    n_learned : int
        Samples given to :meth:`learn_one`.
    last_raw : float
        The wrapped detector's raw score of the last sample scored (NaN during warm-up).
    last_learned : bool
        Whether the last :meth:`learn_one` learned the sample as healthy (the
        detector too, unless it has learned ``max_kept`` samples).
    kept : int
        Samples the detector itself has learned.

    Examples
    --------
    >>> import random
    >>> from river import anomaly, preprocessing
    >>> rng = random.Random(0)
    >>> model = CalibratedDetector(preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=1))
    >>> model.warmup_needed, model.samples_needed
    (250, 262)
    >>> for _ in range(600):
    ...     x = {"t": rng.gauss(0, 1), "u": rng.gauss(0, 1)}
    ...     _ = model.score_one(x)
    ...     model.learn_one(x)
    >>> model.score_one({"t": 0.1, "u": -0.2})
    0.0
    >>> model.score_one({"t": 8.0, "u": 8.0}) > 4.0   # p < 1e-4: health below 50
    True

    A detector that has not learned enough yet scores 0, and says so:

    >>> fresh = CalibratedDetector(anomaly.HalfSpaceTrees())
    >>> fresh.score_one({"t": 9.0}), fresh.calibration_problem()
    (0.0, 'HalfSpaceTrees needs 250 learned samples before it scores (window_size) and 12 more to calibrate; it has learned 0')
    """

    def __init__(self, detector: AnomalyDetector, warmup: int | None = None, min_warmup: int = 12,
                 calibration_min: int = 12, calibration_size: int = 1024, learn_max_surprise: float = 3.2,
                 max_kept: int | None = None):
        if not (hasattr(detector, "score_one") and hasattr(detector, "learn_one")):
            raise TypeError(f"{type(detector).__name__} has no score_one/learn_one: not a River anomaly detector")
        if warmup is not None and (isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0):
            raise ValueError(f"warmup must be None or a whole number >= 0, got {warmup!r}")
        if isinstance(min_warmup, bool) or not isinstance(min_warmup, int) or min_warmup < 0:
            raise ValueError(f"min_warmup must be a whole number >= 0, got {min_warmup!r}")
        if isinstance(calibration_min, bool) or not isinstance(calibration_min, int) or calibration_min < 4:
            raise ValueError(f"calibration_min must be a whole number >= 4, got {calibration_min!r}")
        if isinstance(calibration_size, bool) or not isinstance(calibration_size, int) \
                or calibration_size < calibration_min:
            raise ValueError(f"calibration_size must be a whole number >= calibration_min ({calibration_min}), "
                             f"got {calibration_size!r}")
        if max_kept is not None and (isinstance(max_kept, bool) or not isinstance(max_kept, int) or max_kept < 1):
            raise ValueError(f"max_kept must be None or a whole number >= 1, got {max_kept!r}")
        self.detector = detector
        self.max_kept = max_kept
        self.warmup = warmup
        self.min_warmup = min_warmup
        self.calibration_min = calibration_min
        self.calibration_size = calibration_size
        self.learn_max_surprise = learn_max_surprise
        self.warmup_needed = warmup if warmup is not None else max(required_warmup(detector), min_warmup)
        self.samples_needed = self.warmup_needed + calibration_min
        self._model = _bounded(detector)
        self._transform = _score_transform(detector)
        self.kept_max = max_kept if max_kept is not None else \
            MAX_KEPT if isinstance(_parts(detector)[-1], anomaly.LocalOutlierFactor) else None
        self.kept = 0
        self.calibration: RobustDeviation | TailCalibration
        if self._transform == "mass":
            grace = calibration_min // 2
            # Only healthy scores enter the reference ("freeze"): a developing fault does not become normal.
            self.calibration = RobustDeviation(stats=("level", "mean"), mean_window=MEAN_WINDOW, grace=grace,
                                               calibration_min=calibration_min - grace,
                                               reference_size=min(calibration_size, 512),
                                               calibration_size=calibration_size, unhealthy="freeze",
                                               calibrate_unhealthy=False, learn_max_surprise=learn_max_surprise)
        else:
            tail = TailCalibration(size=calibration_size, min_scores=calibration_min)
            # Column 0: the score; column 1: the mean of the last MEAN_WINDOW scores (they overlap).
            tail.add_columns(1)
            tail.add_columns(1, dependence=MEAN_WINDOW)
            self.calibration = tail
        self._recent: deque = deque(maxlen=MEAN_WINDOW)
        self._range = (math.inf, -math.inf)  # of the scores calibrated on: no spread, no scale
        self.n_learned = 0
        self.last_raw = math.nan
        self.last_learned = False
        self._last: tuple | None = None  # (x, raw, calibrated value, surprise) of the last score_one

    @classmethod
    def _unit_test_params(cls):
        yield {"detector": preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)}
        yield {"detector": compose.Pipeline(preprocessing.StandardScaler(), anomaly.OneClassSVM())}
        yield {"detector": anomaly.LocalOutlierFactor(n_neighbors=10)}

    @property
    def warming_up(self) -> bool:
        return self.n_learned < self.warmup_needed

    @property
    def ready(self) -> bool:
        """Whether the score means anything (warm-up done and calibration fitted)."""
        ready = self.calibration.ready if isinstance(self.calibration, RobustDeviation) else \
            bool(self.calibration.ready[0])
        return not self.warming_up and ready and self._range[0] < self._range[1]

    def _calibrated(self, raw: float) -> float:
        """What the calibration sees of a raw score: its order of magnitude where it is a mass or a ratio."""
        if self._transform == "mass":  # 1 - mass: a mass 10 times smaller is one step further
            return -math.log10(min(max(1.0 - raw, 1e-12), 1.0))
        if self._transform == "ratio":  # a local density ratio, 1 when normal
            return math.log10(max(raw, 1e-12))
        return raw

    def _surprise(self, value: float) -> float:
        """The calibration's surprise of ``value`` (or of the recent mean with it), above the healthy scores only."""
        if not math.isfinite(value) or not self.ready:
            return 0.0
        recent = (sum(self._recent) + value) / (len(self._recent) + 1)
        if isinstance(self.calibration, TailCalibration):  # upper tails of both: one-sided already
            s = self.calibration.surprises(np.array([value, recent]))
            tested = self.calibration.ready
            return max(0.0, float(s[tested].max()) - math.log10(int(tested.sum())))
        x = {_SCORE: value}
        surprise = float(self.calibration.score_one(x))
        if surprise <= 0.0:
            return 0.0
        centre = self.calibration.explain(x, top=1)[0]["baseline_mean"]
        return surprise if value > centre or recent > centre else 0.0

    def score_one(self, x: dict) -> float:
        """The surprise of ``x`` (0 while warming up or calibrating). Does not learn."""
        if self.warming_up:
            self._last = (x, math.nan, math.nan, 0.0)
        else:
            raw = float(self._model.score_one(x))
            value = self._calibrated(raw)
            self._last = (x, raw, value, self._surprise(value))
        self.last_raw = self._last[1]
        return self._last[3]

    def learn_one(self, x: dict) -> None:
        """Learn ``x``: always while warming up and calibrating, then only if its surprise is low enough."""
        if self._last is None or self._last[0] is not x:
            self.score_one(x)
        assert self._last is not None
        _, raw, value, surprise = self._last
        self._last = None
        learn = self.warming_up or not self.ready or surprise <= self.learn_max_surprise
        if not self.warming_up and math.isfinite(value):
            if learn:
                self._range = (min(self._range[0], raw), max(self._range[1], raw))  # equal raws: equal values
            if isinstance(self.calibration, TailCalibration):
                if learn:
                    recent = (sum(self._recent) + value) / (len(self._recent) + 1)
                    self.calibration.learn(np.array([value, recent]))
            else:
                c = {_SCORE: value}
                # The calibration learns what the detector learns: its own two-sided gate must not refuse
                # a score the one-sided one accepted (a score well below the usual is healthy).
                self.calibration.learn_max_surprise = math.inf if learn else self.learn_max_surprise
                self.calibration.score_one(c)
                self.calibration.learn_one(c)
            # The recent mean follows the scores, learned or not: a lasting rise stays visible.
            self._recent.append(value)
        if learn and (self.kept_max is None or self.kept < self.kept_max):
            self._model.learn_one(x)
            self.kept += 1
        self.n_learned += 1
        self.last_learned = learn

    def calibration_problem(self) -> str | None:
        """Why scores cannot be trusted yet, or ``None`` when calibrated."""
        if self.ready:
            return None
        name = _name(self.detector)
        if self.warming_up:
            why = "window_size" if self.warmup_needed == required_warmup(self.detector) > self.min_warmup else \
                "warm-up"
            return (f"{name} needs {self.warmup_needed} learned samples before it scores ({why}) and "
                    f"{self.calibration_min} more to calibrate; it has learned {self.n_learned}")
        n = self.n_learned - self.warmup_needed
        if n < self.calibration_min or self._range[0] > self._range[1]:
            return f"{name} is calibrating: {n} of {self.calibration_min} scores"
        lo, hi = self._range
        if lo == hi:
            return (f"all {n} scores of {name} since its warm-up are equal ({lo + 0.0:g}): "
                    f"it does not tell samples apart, so nothing can be scored")
        problem = getattr(self.calibration, "calibration_problem", None)
        return f"{name}: {problem() if problem else 'its calibration is not fitted'}"
