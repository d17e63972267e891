"""CalibratedDetector: any River anomaly detector, warmed up as it needs and scored as a probability level.

River's detectors score on scales of their own (``HalfSpaceTrees`` in
[0, 1], ``OneClassSVM`` margins, ``LocalOutlierFactor`` near 1 when normal),
and some score nothing useful for a while: ``HalfSpaceTrees`` returns 0 until it
has learned ``window_size`` samples (250 by default). Health calibrated on a
dozen such scores is meaningless: with 12 baseline scores all 0, every later
score looked infinitely abnormal, and a `MinMaxScaler | HalfSpaceTrees`
champion put every asset of the demo in critical. Why each choice:

* **Warm-up the detector needs.** The first ``warmup`` samples are only
  learned, never scored; ``warmup=None`` means at least :func:`required_warmup`
  (``window_size`` for ``HalfSpaceTrees``, searched through pipelines) and
  ``min_warmup``.
* **The same probability scale as RobustDeviation.** Then ``calibration_min``
  raw scores (each scored before it is learned) fill a
  :class:`~predmaint.models.tail_calibration.TailCalibration`, and from then on
  the score is the surprise ``-log10 p`` of the raw score among the detector's
  own recent healthy scores. So alert thresholds and health mean the same for
  every detector (:mod:`predmaint.models.health`).
* **Health-gated learning.** After calibration a sample is learned (by the
  detector and by the calibration) only if its surprise is at most
  ``learn_max_surprise``, so a developing fault is not learned as normal.
* **Says when it cannot score.** :meth:`CalibratedDetector.calibration_problem`
  explains a detector still warming up or whose scores are all equal.

Raw scores must grow with abnormality, as River's detectors' do.
"""

from __future__ import annotations

import math

from river import anomaly, compose, preprocessing
from river.base import AnomalyDetector

from predmaint.models.tail_calibration import TailCalibration

__all__ = ["CalibratedDetector", "required_warmup"]


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
        Raw scores collected before the score means anything.
    calibration_size
        Healthy raw scores kept by the calibration.
    learn_max_surprise
        After calibration, learn a sample only if its surprise is at most this
        (3.2 = health 70).

    Attributes
    ----------
    warmup_needed : int
        The warm-up in effect.
    calibration : TailCalibration
        The tail model of the detector's healthy raw scores.
    n_learned : int
        Samples given to :meth:`learn_one`.
    last_raw : float
        The wrapped detector's raw score of the last sample scored (NaN during warm-up).
    last_learned : bool
        Whether the last :meth:`learn_one` passed the sample to the detector.

    Examples
    --------
    >>> import random
    >>> from river import anomaly, preprocessing
    >>> rng = random.Random(0)
    >>> model = CalibratedDetector(preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=1))
    >>> model.warmup_needed
    250
    >>> for _ in range(600):
    ...     x = {"t": rng.gauss(0, 1), "u": rng.gauss(0, 1)}
    ...     _ = model.score_one(x)
    ...     model.learn_one(x)
    >>> model.score_one({"t": 0.1, "u": -0.2})
    0.0
    >>> round(model.score_one({"t": 8.0, "u": 8.0}), 1)   # HalfSpaceTrees' raw score saturates near 1
    2.3

    A detector that has not learned enough yet scores 0, and says so:

    >>> fresh = CalibratedDetector(anomaly.HalfSpaceTrees())
    >>> fresh.score_one({"t": 9.0}), fresh.calibration_problem()
    (0.0, 'HalfSpaceTrees needs 250 learned samples before it scores (window_size) and 12 more to calibrate; it has learned 0')
    """

    def __init__(self, detector: AnomalyDetector, warmup: int | None = None, min_warmup: int = 12,
                 calibration_min: int = 12, calibration_size: int = 1024, learn_max_surprise: float = 3.2):
        if not (hasattr(detector, "score_one") and hasattr(detector, "learn_one")):
            raise TypeError(f"{type(detector).__name__} has no score_one/learn_one: not a River anomaly detector")
        if warmup is not None and (isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0):
            raise ValueError(f"warmup must be None or a whole number >= 0, got {warmup!r}")
        if isinstance(min_warmup, bool) or not isinstance(min_warmup, int) or min_warmup < 0:
            raise ValueError(f"min_warmup must be a whole number >= 0, got {min_warmup!r}")
        self.detector = detector
        self.warmup = warmup
        self.min_warmup = min_warmup
        self.calibration_min = calibration_min
        self.calibration_size = calibration_size
        self.learn_max_surprise = learn_max_surprise
        self.warmup_needed = warmup if warmup is not None else max(required_warmup(detector), min_warmup)
        try:
            self.calibration = TailCalibration(size=calibration_size, min_scores=calibration_min)
        except ValueError as exc:
            raise ValueError(str(exc).replace("TailCalibration: min_scores", "calibration_min")
                             .replace("size", "calibration_size", 1)) from None
        self.calibration.add_columns(1)  # one score stream: column 0
        self.n_learned = 0
        self.last_raw = math.nan
        self.last_learned = False
        self._last: tuple | None = None  # (x, raw, surprise) of the last score_one

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
        return not self.warming_up and bool(self.calibration.ready[0])

    def score_one(self, x: dict) -> float:
        """The surprise of ``x`` (0 while warming up or calibrating). Does not learn."""
        if self.warming_up:
            self._last = (x, math.nan, 0.0)
        else:
            raw = float(self.detector.score_one(x))
            self._last = (x, raw, self.calibration.surprise(raw))
        self.last_raw = self._last[1]
        return self._last[2]

    def learn_one(self, x: dict) -> None:
        """Learn ``x``: always while warming up and calibrating, then only if its surprise is low enough."""
        if self._last is None or self._last[0] is not x:
            self.score_one(x)
        assert self._last is not None
        _, raw, surprise = self._last
        self._last = None
        if self.warming_up:
            learn = True
        elif not self.calibration.ready[0] or surprise <= self.learn_max_surprise:
            self.calibration.learn_one(raw)
            learn = True
        else:
            learn = False
        if learn:
            self.detector.learn_one(x)
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
        n = int(self.calibration.n[0])
        if n < self.calibration_min:
            return f"{name} is calibrating: {n} of {self.calibration_min} scores"
        return (f"all {n} scores of {name} since its warm-up are equal ({float(self.calibration.buffer[0, 0]):g}): "
                f"it does not tell samples apart, so nothing can be scored")
