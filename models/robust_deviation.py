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
  drift that no single value shows (values enter that mean within twice
  ``clip`` scales of the reference, so one spike, which ``level`` reports,
  cannot hold it up for ``mean_window`` windows and meet an alert's on-delay
  alone, while a lasting shift of any size still moves it by 6 scales); ``diff``, the ``|z|`` of the change since
  the previous value, catches jumps; ``scale``, the ``|log|`` ratio of the
  recent mean absolute change to the reference's, catches a variance increase
  or a flat-lined signal (both sides plus a quarter of the reference's mean
  change: a perfectly still stretch scores ``|log 0.2| = 1.6``, news only
  against a history of steady movement, so a quantised signal that often sits
  still is not "flat-lined" when it does).
* **Per-statistic tail calibration**
  (:class:`~predmaint.models.tail_calibration.TailCalibration`). The
  statistics have different distributions per feature (a kurtosis is
  heavy-tailed, a temperature level is not), so each (feature, statistic) pair
  turns its raw value into a tail probability learned from its own healthy
  history. No per-feature threshold exists to tune.
  The calibrations of ``mean`` and ``scale`` count their values as
  ``mean_window`` and ``scale_window`` times less informative
  (``dependence``): consecutive rolling means are nearly the same number.
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
  defect that grows over days stays abnormal (and so does any lasting change:
  after a repair that changes the machine's signature the sensor needs a new
  model); ``"winsorise"`` (process values, temperatures, currents) lets it into
  the references clipped at ``clip`` scales, so one spike barely moves them;
  with ``calibrate_unhealthy`` the calibrations learn its statistics too
  (winsorised at ``calibration_clip``), so a pattern that keeps recurring (an
  hourly spike) or a lasting new operating point stops being surprising once
  it fills the calibration's tail: a lasting shift of 6 noise levels raised
  one alert and was normal again after about 20 readings
  (``tests/test_default_detection.py``).

The recent windows of ``mean`` and ``scale`` always follow the signal
(healthy or not). They are rolling means like River's
``utils.Rolling(stats.Mean)``, but over every feature at once: a sensor's
features are columns of a few numpy arrays (one per reference, calibration and
rolling window), so a window costs a handful of numpy operations whatever the
number of features, where per-feature Python objects cost about 50 us each.

State per feature: ``reference_size`` float32 values (twice when ``diff`` or
``scale`` is watched: the change reference) + ``calibration_size`` per
statistic (one calibration column per feature and statistic), plus the
rolling windows. The default vibration configuration (29 features, 192 + 2 x
256) pickles to about 92 KB, the scalar one (4 features, 2 x 512 + 4 x 1024)
to about 88 KB.
"""

from __future__ import annotations

import math

import numpy as np
from river.base import AnomalyDetector

from predmaint.models.reference import RobustReference
from predmaint.models.tail_calibration import TailCalibration, is_finite_number, warm_up_problem

__all__ = ["STATS", "RobustDeviation"]

#: Statistics a feature can be watched with.
STATS = ("level", "mean", "diff", "scale")
#: A reference is winsorised only once it holds this many values (its scale is too uncertain before).
CLIP_MIN_VALUES = 32
#: Values enter the ``mean`` statistic within this many ``clip`` bounds of the reference.
MEAN_CLIP_FACTOR = 2.0
#: Mean |difference| of a zero-median difference, per unit of its robust scale (Gaussian: sqrt(2/pi)).
_MEAN_ABS_PER_SCALE = 0.7979
#: Part of the reference's mean |change| added to both sides of the ``scale`` ratio.
_SCALE_SOFTENING = 0.25


class _RollingMeans:
    """Mean of the last ``window`` values of each column (not part of the public API)."""

    def __init__(self, window: int):
        self.window = window
        self.buffer = np.zeros((window, 0))
        self.count = np.zeros(0, dtype=np.int32)
        self.pos = np.zeros(0, dtype=np.int32)
        self.total = np.zeros(0)

    def add_columns(self, count: int) -> None:
        self.buffer = np.concatenate([self.buffer, np.zeros((self.window, count))], axis=1)
        self.count = np.concatenate([self.count, np.zeros(count, dtype=np.int32)])
        self.pos = np.concatenate([self.pos, np.zeros(count, dtype=np.int32)])
        self.total = np.concatenate([self.total, np.zeros(count)])

    def with_value(self, values: np.ndarray) -> np.ndarray:
        """Each column's mean after ``values`` would enter, without changing anything."""
        cols = np.arange(self.count.size)
        full = self.count == self.window
        oldest = np.where(full, self.buffer[self.pos, cols], 0.0)
        return (self.total - oldest + values) / np.where(full, self.window, self.count + 1)

    def update(self, values: np.ndarray, mask: np.ndarray) -> None:
        cols = np.flatnonzero(mask)
        if cols.size == 0:
            return
        pos = self.pos[cols]
        full = self.count[cols] == self.window
        self.total[cols] += values[cols] - np.where(full, self.buffer[pos, cols], 0.0)
        self.buffer[pos, cols] = values[cols]
        self.pos[cols] = (pos + 1) % self.window
        self.count[cols] = np.minimum(self.count[cols] + 1, self.window)
        if not self.pos.any():  # every column wrapped at once: re-add to drop rounding drift
            self.total = np.where(self.count == self.window, self.buffer.sum(axis=0), self.total)


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
    calibration_clip
        A statistic whose own surprise exceeds this enters its calibration
        winsorised to that surprise (3: p = 1e-3).

    Attributes
    ----------
    features : list of str
        Features seen, in column order (a feature gets a column when first learned).
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
                 calibrate_unhealthy: bool = True, rel_floor: float = 1e-4, calibration_clip: float = 3.0):
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
        if not clip > 0 or not rel_floor >= 0 or not learn_max_surprise >= 0 or not calibration_clip > 0:
            raise ValueError("clip and calibration_clip must be > 0, rel_floor and learn_max_surprise >= 0")
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
        self.calibration_clip = calibration_clip
        self.features: list[str] = []
        self._index: dict[str, int] = {}
        uses_diff = "diff" in stats or "scale" in stats
        self._ref = RobustReference(reference_size, rel_floor=rel_floor)
        self._dref = RobustReference(reference_size) if uses_diff else None
        self._recent = _RollingMeans(mean_window) if "mean" in stats else None
        self._dabs = _RollingMeans(scale_window) if "scale" in stats else None
        self._prev = np.zeros(0)
        # One calibration, one column per (feature, statistic): column feature * len(stats) + statistic.
        self._cal = TailCalibration(calibration_size, min_scores=calibration_min, folded=True,
                                    clip_surprise=calibration_clip)
        # A rolling statistic's consecutive values share most of their readings.
        dependence = {"level": 1, "diff": 1, "mean": mean_window, "scale": scale_window}
        self._dependence = np.array([dependence[s] for s in stats])
        self.n_learned = 0
        self.last_learned = False
        self._last: tuple | None = None  # (x, values, raw statistics, surprises, surprise) of the last score_one

    # -- columns --------------------------------------------------------------------------------
    def _values(self, x: dict) -> np.ndarray:
        """``x`` in column order; NaN for features it lacks or that are not finite."""
        v = np.full(len(self.features), np.nan)
        index = self._index
        for k, val in x.items():
            j = index.get(k)
            if j is not None:
                v[j] = val
        v[~np.isfinite(v)] = np.nan
        return v

    def _add_features(self, names: list[str]) -> None:
        for name in names:
            self._index[name] = len(self.features)
            self.features.append(name)
        count = len(names)
        for part in (self._ref, self._dref, self._recent, self._dabs):
            if part is not None:
                part.add_columns(count)
        self._cal.add_columns(count * len(self.stats), dependence=np.tile(self._dependence, count))
        self._prev = np.concatenate([self._prev, np.full(count, np.nan)])

    # -- statistics -----------------------------------------------------------------------------
    def _bounded(self, v: np.ndarray) -> np.ndarray:
        """``v`` as it enters the recent means: within ``MEAN_CLIP_FACTOR * clip`` scales of the reference."""
        return _winsorised(self._ref, v, self._ref.n > 0, MEAN_CLIP_FACTOR * self.clip)

    def _raw(self, v: np.ndarray) -> np.ndarray:
        """Each watched statistic of the values ``v`` against the references (before learning them), NaN where none.

        Shape ``(features, statistics)``; ``ravel()`` gives the calibration's column order.
        """
        ref = self._ref
        known = ref.n > 0
        out = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for s in self.stats:
                if s == "level":
                    r = np.abs(v - ref.median) / ref.scale
                elif s == "mean":
                    assert self._recent is not None
                    r = np.abs(self._recent.with_value(self._bounded(v)) - ref.median) / ref.scale
                else:
                    dref = self._dref
                    assert dref is not None
                    d = v - self._prev
                    if s == "diff":
                        r = np.abs(d - dref.median) / dref.scale
                    else:  # scale: recent mean |change| against the reference's
                        assert self._dabs is not None
                        recent = self._dabs.with_value(np.abs(d))
                        # Softened by a quarter of the reference's mean change (and one
                        # resolution step): a perfectly still stretch scores |log 0.2| = 1.6,
                        # so a signal that often sits still is not "flat-lined" when it does.
                        expected = _MEAN_ABS_PER_SCALE * dref.scale
                        floor = _SCALE_SOFTENING * expected + dref.step + 1e-12
                        r = np.abs(np.log((recent + floor) / (expected + floor)))
                    r = np.where(dref.n > 0, r, np.nan)
                out[s] = np.where(known, r, np.nan)
        return np.stack([out[s] for s in self.stats], axis=1)

    def _evaluate(self, x: dict) -> tuple:
        v = self._values(x)
        raw = self._raw(v).ravel()
        tested = self._cal.ready & np.isfinite(raw)
        surprises = np.where(tested, self._cal.surprises(np.where(tested, raw, 0.0)), np.nan)
        n_tests = int(tested.sum())
        surprise = max(0.0, float(np.nanmax(surprises)) - math.log10(n_tests)) if n_tests else 0.0
        return x, v, raw, surprises, surprise

    def _evaluated(self, x: dict) -> tuple:
        """:meth:`_evaluate` of ``x``, reusing what :meth:`score_one` just computed for the same dict."""
        if self._last is not None and self._last[0] is x:
            return self._last
        return self._evaluate(x)

    # -- River API ------------------------------------------------------------------------------
    def score_one(self, x: dict) -> float:
        """The surprise ``-log10 p`` of ``x`` (0 until calibrated). Does not learn."""
        self._last = self._evaluate(x)
        return self._last[4]

    def learn_one(self, x: dict) -> None:
        """Learn ``x``: as healthy if its surprise is at most ``learn_max_surprise``, otherwise as ``unhealthy`` says.

        Reuses the statistics :meth:`score_one` just computed for the same dict.
        """
        _, v, raw, _, surprise = self._evaluated(x)
        self._last = None
        new = [k for k, val in x.items() if k not in self._index and is_finite_number(val)]
        if new:
            width = len(self.features)
            self._add_features(new)
            v = np.concatenate([v, np.array([float(x[k]) for k in new])])
            raw = np.concatenate([raw, np.full(len(new) * len(self.stats), np.nan)])
            assert v.size == width + len(new)
        healthy = surprise <= self.learn_max_surprise
        present = np.isfinite(v)
        ref = self._ref
        bounded = self._bounded(v)  # against the reference the window was scored with
        in_grace = ref.n < self.grace
        full = present & (healthy | in_grace)  # learned as healthy
        kept = present & ~full & (self.unhealthy == "winsorise")  # learned winsorised
        clipped = kept | (full & (ref.n >= CLIP_MIN_VALUES))
        d = v - self._prev
        if full.any() or kept.any():
            ref.update(_winsorised(ref, v, clipped, self.clip), full | kept)
            if self._dref is not None:
                has_d = np.isfinite(d)
                self._dref.update(_winsorised(self._dref, d, clipped, self.clip), (full | kept) & has_d)
        calibrate = present & ~in_grace & (full | self.calibrate_unhealthy)
        self._cal.learn(raw, np.repeat(calibrate, len(self.stats)))
        # The recent windows always follow the signal.
        if self._recent is not None:
            self._recent.update(np.where(present, bounded, 0.0), present)
        if self._dabs is not None:
            has_d = np.isfinite(d)
            self._dabs.update(np.where(has_d, np.abs(d), 0.0), has_d)
        self._prev = np.where(present, v, self._prev)
        self.n_learned += 1
        self.last_learned = bool(healthy)

    # -- what it can say about itself -----------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Whether any (feature, statistic) is calibrated, i.e. scores can be above 0."""
        return bool(self._cal.ready.any())

    def calibration_problem(self) -> str | None:
        """Why scores cannot be trusted yet, or ``None`` when calibrated."""
        if self.ready:
            return None
        young = warm_up_problem("RobustDeviation", self.n_learned, self.grace, self.calibration_min)
        if young:
            return young
        return (f"RobustDeviation: after {self.n_learned} windows no statistic of {sorted(self.features)} "
                f"varied (all its calibration values are equal), so nothing can be scored")

    def explain(self, x: dict, top: int = 3) -> list[dict]:
        """The ``top`` (feature, statistic) pairs with the largest surprise, largest first.

        Each row: ``feature``, ``stat``, ``value``, ``baseline_mean`` (the
        reference's centre, its median: the key alert explanations carry for
        every detector, read by CMMS work orders and the fault diagnosis),
        ``z`` (the value's signed deviation from it in robust scales) and
        ``surprise`` (of that statistic alone, before the Bonferroni correction).
        """
        _, v, _, surprises, _ = self._evaluated(x)
        columns = np.flatnonzero(np.isfinite(surprises))
        ranked = columns[np.lexsort((columns, -surprises[columns]))][:top]  # largest first, ties in column order
        z = self._ref.z(np.where(np.isfinite(v), v, 0.0))
        rows = []
        for c in ranked:
            j, s = divmod(int(c), len(self.stats))
            rows.append({"feature": self.features[j], "stat": self.stats[s], "value": float(v[j]),
                         "baseline_mean": float(self._ref.median[j]), "z": float(z[j]),
                         "surprise": float(surprises[c])})
        return rows



def _winsorised(ref: RobustReference, values: np.ndarray, where: np.ndarray, clip: float) -> np.ndarray:
    """``values`` clipped to ``median +/- clip * scale`` of their column wherever ``where``."""
    half = clip * ref.scale
    return np.where(where, np.clip(values, ref.median - half, ref.median + half), values)
