"""RobustDeviation: a calibrated, robust change detector for dicts of features (predmaint's default).

The score of a window is how improbable it is under the sensor's own healthy
history, as a surprise ``-log10 p`` (see :mod:`predmaint.models.health` for the
health it maps to). Why each choice:

* **Robust rolling baseline** (:class:`~predmaint.models.reference.RobustReference`).
  Each feature is compared with the median and a MAD-type scale of its last
  ``reference_size`` accepted values: outliers in the history barely move it,
  and it follows healthy drift instead of freezing the first two hours.
* **Several statistics per feature.** ``level``, the value's robust
  ``|z|``, catches spikes and level shifts; ``mean``, the ``|z|`` of the mean
  of the last ``mean_window`` values, catches small persistent shifts and
  drift that no single value shows; ``diff``, the ``|z|`` of the change since
  the previous value, catches jumps; ``scale``, the ``|log|`` ratio of the
  recent mean absolute change to the reference's, catches a variance increase
  or a flat-lined signal.
* **Per-statistic tail calibration**
  (:class:`~predmaint.models.tail_calibration.TailCalibration`). The
  statistics have different distributions per feature (a kurtosis is
  heavy-tailed, a temperature level is not), so each (feature, statistic) pair
  turns its raw value into a tail probability learned from its own healthy
  history. No per-feature threshold exists to tune.
* **Bonferroni.** The score is the largest surprise over all calibrated
  (feature, statistic) pairs minus ``log10`` of their number, i.e. ``p``
  multiplied by the number of tests: the probability that *any* of them is
  that extreme by chance. A 29-feature vibration window and a 1-feature
  process value then mean the same thing at the same score.
* **Health-gated learning.** A window is learned as healthy only if its
  surprise is at most ``learn_max_surprise`` (3.2: health 70, the alert
  rules' ``clear_at``), so a developing fault does not become the new normal.
  What an unhealthy window still teaches depends on the signal:
  ``unhealthy="freeze"`` (vibration) learns nothing from it, so a bearing
  defect that grows over days stays abnormal; ``"winsorise"`` (process values,
  temperatures, currents) lets it into the references clipped at ``clip``
  scales, so a lasting new operating point is accepted after about
  ``reference_size / 2`` windows while a spike never is; with
  ``calibrate_unhealthy`` the calibrations learn its statistics too, so a
  pattern that keeps recurring (an hourly spike) stops being surprising once
  it is common.

The recent windows of ``mean`` and ``scale`` always follow the signal
(healthy or not) and are River's ``utils.Rolling(stats.Mean)``.

Cost per feature: ``reference_size`` (+ ``reference_size`` for the change
reference when ``diff`` or ``scale`` is watched) + ``calibration_size`` per
statistic float32 values, i.e. 4 bytes each, plus about 150 bytes.
"""

from __future__ import annotations

import math

from river import utils
from river.base import AnomalyDetector
from river import stats as river_stats

from predmaint.models.reference import RobustReference
from predmaint.models.tail_calibration import TailCalibration

__all__ = ["RobustDeviation", "STATS"]

#: Statistics a feature can be watched with.
STATS = ("level", "mean", "diff", "scale")
#: A reference is winsorised only once it holds this many values (its scale is too uncertain before).
CLIP_MIN_VALUES = 32
#: Mean |difference| of a zero-median difference, per unit of its robust scale (Gaussian: sqrt(2/pi)).
_MEAN_ABS_PER_SCALE = 0.7979


def _rolling_mean_with(rolling: utils.Rolling, v: float) -> float:
    """The mean of ``rolling``'s window after ``v`` would enter it, without changing it."""
    window = rolling.window
    n = len(window)
    total = rolling.get() * n
    if n == rolling.window_size:
        total -= window[0][0][0]
    else:
        n += 1
    return (total + v) / n


class _Feature:
    """Per-feature state of :class:`RobustDeviation` (not part of the public API)."""

    __slots__ = ("ref", "dref", "recent", "dabs", "prev", "cal")

    def __init__(self, owner: RobustDeviation):
        self.ref = RobustReference(owner.reference_size, rel_floor=owner.rel_floor)
        self.dref = RobustReference(owner.reference_size) if owner._uses_diff else None
        self.recent = utils.Rolling(river_stats.Mean, window_size=owner.mean_window) if "mean" in owner.stats else None
        self.dabs = utils.Rolling(river_stats.Mean, window_size=owner.scale_window) if "scale" in owner.stats else None
        self.prev: float | None = None
        self.cal = {s: TailCalibration(owner.calibration_size, min_scores=owner.calibration_min)
                    for s in owner.stats}


class RobustDeviation(AnomalyDetector):
    """Surprise ``-log10 p`` of a window under each feature's robust, calibrated healthy history.

    Parameters
    ----------
    stats
        Statistics to watch, a subset of ``("level", "mean", "diff", "scale")``.
    reference_size
        Values in each feature's rolling reference.
    mean_window
        Values in the recent mean of the ``mean`` statistic.
    scale_window
        Changes in the recent mean absolute change of the ``scale`` statistic.
    grace
        Values a feature's reference holds before its statistics are calibrated.
    calibration_size
        Healthy statistic values kept per (feature, statistic).
    calibration_min
        Values a calibration needs before it is used.
    learn_max_surprise
        Learn a window as healthy only if its surprise is at most this
        (3.2 = health 70).
    unhealthy
        What an unhealthy window updates: ``"freeze"`` nothing,
        ``"winsorise"`` the references, clipped at ``clip`` scales.
    clip
        Winsorising bound, in reference scales.
    calibrate_unhealthy
        Also learn an unhealthy window's statistics into the calibrations.
    rel_floor
        Floor of each value reference's scale as a fraction of its median: a
        deadband of changes too small to matter (vibration amplitudes: 0.05).

    Attributes
    ----------
    features : dict
        Per-feature state, created when a feature is first learned.
    n_learned : int
        Windows given to :meth:`learn_one`.
    last_learned : bool
        Whether the last :meth:`learn_one` learned its window as healthy.

    Examples
    --------
    A process value around 60 with noise 0.5: ordinary values score 0, a
    jump of 6 (12 noise levels) is beyond one in a million.

    >>> import random
    >>> rng = random.Random(0)
    >>> model = RobustDeviation()
    >>> for _ in range(400):
    ...     x = {"temp": 60.0 + rng.gauss(0, 0.5)}
    ...     _ = model.score_one(x)
    ...     model.learn_one(x)
    >>> model.score_one({"temp": 60.2})
    0.0
    >>> model.score_one({"temp": 66.0}) > 6.0
    True
    >>> top = model.explain({"temp": 66.0})[0]
    >>> top["feature"], top["stat"], round(top["z"])
    ('temp', 'level', 12)

    Before ``grace + calibration_min`` windows nothing is calibrated and every
    score is 0; :meth:`calibration_problem` says why.

    >>> fresh = RobustDeviation()
    >>> fresh.score_one({"temp": 99.0}), fresh.calibration_problem()
    (0.0, 'RobustDeviation has learned 0 windows; it is calibrated after 24 (grace 12 + calibration_min 12)')
    """

    def __init__(self, stats: tuple = STATS, reference_size: int = 512, mean_window: int = 6,
                 scale_window: int = 16, grace: int = 12, calibration_size: int = 1024, calibration_min: int = 12,
                 learn_max_surprise: float = 3.2, unhealthy: str = "winsorise", clip: float = 3.0,
                 calibrate_unhealthy: bool = True, rel_floor: float = 1e-4):
        stats = (stats,) if isinstance(stats, str) else tuple(stats)
        bad = sorted(set(stats) - set(STATS))
        if bad or not stats:
            raise ValueError(f"stats: {bad or 'none'} given; choose one or more of {list(STATS)}")
        if unhealthy not in ("freeze", "winsorise"):
            raise ValueError(f"unhealthy must be 'freeze' or 'winsorise', got {unhealthy!r}")
        for name, value, low in (("reference_size", reference_size, 4), ("mean_window", mean_window, 1),
                                 ("scale_window", scale_window, 1), ("grace", grace, 1),
                                 ("calibration_size", calibration_size, 4), ("calibration_min", calibration_min, 3)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
        if calibration_min > calibration_size:
            raise ValueError(f"calibration_min ({calibration_min}) exceeds calibration_size ({calibration_size})")
        if not clip > 0 or not rel_floor >= 0 or not learn_max_surprise >= 0:
            raise ValueError("clip must be > 0, rel_floor >= 0 and learn_max_surprise >= 0")
        self.stats = stats
        self.reference_size = reference_size
        self.mean_window = mean_window
        self.scale_window = scale_window
        self.grace = grace
        self.calibration_size = calibration_size
        self.calibration_min = calibration_min
        self.learn_max_surprise = learn_max_surprise
        self.unhealthy = unhealthy
        self.clip = clip
        self.calibrate_unhealthy = calibrate_unhealthy
        self.rel_floor = rel_floor
        self.features: dict[str, _Feature] = {}
        self.n_learned = 0
        self.last_learned = False
        self._last: tuple | None = None  # (x, per-feature raw statistics, surprise) of the last score_one

    @property
    def _uses_diff(self) -> bool:
        return "diff" in self.stats or "scale" in self.stats

    # -- statistics -----------------------------------------------------------------------------
    def _raw(self, f: _Feature, v: float) -> list[tuple[str, float]]:
        """Each watched statistic of value ``v`` against the feature's references (before learning it)."""
        ref = f.ref
        if ref.n == 0:
            return []
        out = []
        for s in self.stats:
            if s == "level":
                out.append((s, abs(v - ref.median) / ref.scale))
            elif s == "mean":
                out.append((s, abs(_rolling_mean_with(f.recent, v) - ref.median) / ref.scale))
            elif f.prev is not None and f.dref is not None and f.dref.n:
                d = v - f.prev
                if s == "diff":
                    out.append((s, abs(d - f.dref.median) / f.dref.scale))
                else:  # scale: recent mean |change| against the reference's
                    recent = _rolling_mean_with(f.dabs, abs(d))
                    expected = _MEAN_ABS_PER_SCALE * f.dref.scale
                    out.append((s, abs(math.log((recent + 1e-12) / (expected + 1e-12)))))
        return out

    def _evaluate(self, x: dict) -> tuple[dict, float]:
        per = {}
        best = 0.0
        n_tests = 0
        for k, v in x.items():
            f = self.features.get(k)
            if f is None or not math.isfinite(v):
                continue
            raw = self._raw(f, v)
            per[k] = raw
            for s, r in raw:
                cal = f.cal[s]
                if cal.ready:
                    n_tests += 1
                    sur = cal.surprise(r)
                    if sur > best:
                        best = sur
        surprise = max(0.0, best - math.log10(n_tests)) if n_tests else 0.0
        return per, surprise

    # -- River API ------------------------------------------------------------------------------
    def score_one(self, x: dict) -> float:
        """The surprise ``-log10 p`` of ``x`` (0 until calibrated). Does not learn."""
        per, surprise = self._evaluate(x)
        self._last = (x, per, surprise)
        return surprise

    def learn_one(self, x: dict) -> None:
        """Learn ``x``: as healthy if its surprise is at most ``learn_max_surprise``, otherwise as ``unhealthy`` says.

        Reuses the statistics :meth:`score_one` just computed for the same dict.
        """
        if self._last is not None and self._last[0] is x:
            _, per, surprise = self._last
        else:
            per, surprise = self._evaluate(x)
        self._last = None
        healthy = surprise <= self.learn_max_surprise
        winsorise = self.unhealthy == "winsorise"
        for k, v in x.items():
            if not math.isfinite(v):
                continue
            v = float(v)
            f = self.features.get(k)
            if f is None:
                f = self.features[k] = _Feature(self)
            raw = per.get(k, ())
            d = None if f.prev is None else v - f.prev
            in_grace = f.ref.n < self.grace
            if healthy or in_grace:
                clip = self.clip if f.ref.n >= CLIP_MIN_VALUES else None
                f.ref.update(v, clip=clip)
                if d is not None and f.dref is not None:
                    f.dref.update(d, clip=clip)
                if not in_grace:
                    for s, r in raw:
                        f.cal[s].learn_one(r)
            else:
                if winsorise:
                    f.ref.update(v, clip=self.clip)
                    if d is not None and f.dref is not None:
                        f.dref.update(d, clip=self.clip)
                if self.calibrate_unhealthy:
                    for s, r in raw:
                        f.cal[s].learn_one(r)
            # The recent windows always follow the signal.
            if f.recent is not None:
                f.recent.update(v)
            if d is not None and f.dabs is not None:
                f.dabs.update(abs(d))
            f.prev = v
        self.n_learned += 1
        self.last_learned = healthy

    # -- what it can say about itself -----------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Whether any (feature, statistic) is calibrated, i.e. scores can be above 0."""
        return any(c.ready for f in self.features.values() for c in f.cal.values())

    def calibration_problem(self) -> str | None:
        """Why scores cannot be trusted yet, or ``None`` when calibrated."""
        if self.ready:
            return None
        needed = self.grace + self.calibration_min
        if self.n_learned < needed:
            return (f"RobustDeviation has learned {self.n_learned} windows; it is calibrated after {needed} "
                    f"(grace {self.grace} + calibration_min {self.calibration_min})")
        return (f"RobustDeviation: after {self.n_learned} windows no statistic of {sorted(self.features)} "
                f"varied (all its calibration values are equal), so nothing can be scored")

    def explain(self, x: dict, top: int = 3) -> list[dict]:
        """The ``top`` (feature, statistic) pairs with the largest surprise, largest first.

        Each row: ``feature``, ``stat``, ``value``, ``baseline_median``, ``z``
        (the value's signed deviation from the median in robust scales) and
        ``surprise`` (of that statistic alone, before the Bonferroni correction).
        """
        per, _ = self._evaluate(x)
        rows = []
        for k, raw in per.items():
            f = self.features[k]
            for s, r in raw:
                if f.cal[s].ready:
                    rows.append({"feature": k, "stat": s, "value": float(x[k]), "baseline_median": f.ref.median,
                                 "z": f.ref.z(float(x[k])), "surprise": f.cal[s].surprise(r)})
        rows.sort(key=lambda r: r["surprise"], reverse=True)
        return rows[:top]
