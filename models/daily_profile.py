"""DailyProfile: a process value against the same time of day on the previous days.

Many plant values follow the day: a shift pattern, a cooling load, a batch
that runs each morning. The champion judges a value against the sensor's
recent history as a whole (:mod:`predmaint.models.robust_deviation`), so a
daily peak that does not come, or a night value at its day level, is an
ordinary value at the wrong time, and nothing there is improbable. This
model asks instead "is this what the last days had at this time of day?".
Why each choice:

* **Time of day, not a period found in the data.** A plant's cycle is the
  clock's: shifts and schedules repeat every 24 h. The day is cut into
  quarter-hour slots (``slot_s``), whatever the sensor's window length (a
  process value's 10-second windows would make 8,640 slots a day: 138 KB); a
  day's slot holds the mean of its windows, and the value expected in a slot is the
  median of that slot on the last ``days`` days (3), once ``min_days`` of them
  hold it, so one odd day (a stop, an earlier anomaly) does not make the next
  day's expectation. A period estimated from the
  autocorrelation of the last values was tried on NAB (2026-12-02) and added
  false detections on the tweet counts; the clock needs no estimate.
* **Only where the days repeat.** On a series without a daily pattern the
  residual is as noisy as the value itself, and judging it too would only add
  a test that can fire by chance. So the residual is scored only while the
  profile explains at least ``repeats_at`` (0.7) of the value's spread: the
  mean absolute residual is at most 0.3 of the mean absolute deviation from
  the mean, both averaged over about a day of healthy windows (exponentially,
  by event time, so the cadence does not matter) and judged once residuals
  have been seen for half a day. It stops when
  the share falls under ``stops_at`` (0.6), so the switch does not chatter.
  Measured 2026-12-08 on NAB's 47 shared series (median share per file): the
  artificial daily waves repeat (0.91-1.00); traffic, tweets, AWS metrics, ad
  exchange and the New York taxi counts (weekly and holiday changes: 0.34)
  mostly do not (README: "A process value against its time of day").
* **A residual is judged by its own calibrated history**
  (:class:`~predmaint.models.robust_deviation.RobustDeviation` on the residual,
  ``level`` and ``mean``), so its surprise ``-log10 p`` means what the
  champion's means. :class:`~predmaint.models.sensor_model.SensorModel`
  combines the two by Bonferroni (``p`` of the more surprising of the two,
  times 2), so a window is no more likely to reach health 50 by chance than
  before.
* **Learned from every window** (the profile: a lasting new daily pattern is
  the expectation after two days; the detector: a healthy window fully, an
  unhealthy one winsorised, as the scalar champion does), while the spread
  statistics of the gate learn only healthy windows, so an anomaly does not
  switch off the check that sees it.

State: ``days + 1`` x slots float32 values (1.5 KB for quarter-hour slots) and
the residual's detector (192 + 2 x 256 values): 7.1 KB pickled, which keeps a
4-feature process sensor's models under 100 KB (98.6 KB measured with it;
5-minute slots made it 101.6 KB). Measured 2026-12-08 on NAB's 47 shared
series through the dataflow, beside the default of the time (57.61 standard /
44.56 low-FP): with 5-minute slots 58.56 / 45.39, with quarter-hour slots
59.21 / 45.87 (``art_daily_nojump``'s missing peak and a ``TravelTime_451``
window found, 6 more detections); SKAB, IMS and CWRU unchanged (their runs are
shorter than four days, or their sensors are not process values).

Examples
--------
A value that is 10 from 08:00 to 20:00 and 0 at night, with a little noise.
Its fourth day is the first with an expectation (three days before it); after
half of it, the profile is known to explain the value. On the fifth day it
stays at its night level in the morning:

>>> import random
>>> rng = random.Random(1)
>>> day_value = lambda t: (10.0 if 8 <= (t % 86400) / 3600 < 20 else 0.0) + rng.gauss(0, 0.1)
>>> profile = DailyProfile()
>>> for t in range(0, 4 * 86400 + 8 * 3600, 300):  # four days and the fifth night
...     x = day_value(t)
...     _ = profile.score_one(t, x)
...     profile.learn_one(t, x, healthy=True)
>>> morning = 4 * 86400 + 9 * 3600  # 09:00 on the fifth day
>>> profile.repeats, round(profile.expected(morning), 1), round(profile.explained_share(morning), 2)
(True, 10.0, 0.99)
>>> profile.score_one(morning, 10.1)  # as the last days had it
0.0
>>> profile.score_one(morning, 0.05) > 6  # still at its night level
True
>>> profile.explain(morning, 0.05, "load")["evidence"]
'load 0.05 at 09:00 UTC, where the last 3 days had 9.99 (median)'
"""

from __future__ import annotations

import math

import numpy as np

from predmaint.models.robust_deviation import RobustDeviation

__all__ = ["DAY_S", "DailyProfile"]

#: Seconds in a day: the period of every daily profile.
DAY_S = 86400


class DailyProfile:
    """The value expected at this time of day, and how surprising a departure from it is.

    Parameters
    ----------
    slot_s
        Width of a time-of-day slot, in seconds (a day of 5-minute slots has 288).
    days
        Days kept per slot; the expectation is their median.
    min_days
        Days a slot needs before it has an expectation.
    repeats_at, stops_at
        The share of the value's spread the profile must explain for the
        residual to be scored, and under which it stops being scored.
    reference_size, calibration_size
        The residual detector's rolling reference and tail calibration, in windows.
    learn_max_surprise
        The residual detector's learning gate (``SensorModel`` sets it from ``learn_min_health``).

    Attributes
    ----------
    repeats : bool
        Whether the days repeat enough for the residual to be scored.
    """

    def __init__(self, slot_s: float = 900.0, days: int = 3, min_days: int = 3, repeats_at: float = 0.7,
                 stops_at: float = 0.6, reference_size: int = 192, calibration_size: int = 256,
                 learn_max_surprise: float = 3.2):
        if not slot_s > 0 or slot_s > DAY_S:
            raise ValueError(f"slot_s must be in (0, {DAY_S}] seconds, got {slot_s!r}")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= min_days <= days:
            raise ValueError(f"days and min_days must be whole numbers with 1 <= min_days <= days, "
                             f"got {days!r} and {min_days!r}")
        if not 0.0 < stops_at <= repeats_at < 1.0:
            raise ValueError(f"need 0 < stops_at <= repeats_at < 1, got {stops_at!r} and {repeats_at!r}")
        self.slot_s = float(slot_s)
        self.days = days
        self.min_days = min_days
        self.repeats_at = repeats_at
        self.stops_at = stops_at
        self.reference_size = reference_size
        self.calibration_size = calibration_size
        self.learn_max_surprise = learn_max_surprise
        self.slots = max(1, round(DAY_S / self.slot_s))
        # Today's row and the last ``days`` days' rows.
        self._values = np.full((days + 1, self.slots), np.nan, dtype=np.float32)
        self._day_of_row = np.full(days + 1, -1, dtype=np.int64)
        self.detector = RobustDeviation(stats=("level", "mean"), reference_size=reference_size,
                                        calibration_size=calibration_size, learn_max_surprise=learn_max_surprise)
        # The slot being filled today: its day and slot, and the sum and count of its windows.
        self._filling = (-1, -1)
        self._sum = 0.0
        self._count = 0
        # The gate: mean |value - mean| and mean |residual| of healthy windows, over about a day of event time.
        self._gate_ts = math.nan
        self._mean = math.nan
        self._spread = 0.0
        self._miss = math.nan
        self._first_residual_ts = math.nan
        self.repeats = False
        self._last: tuple | None = None  # (ts_s, value, {"residual": r}) of the last score_one

    # -- the profile ----------------------------------------------------------------------------
    def _day_and_slot(self, ts_s: float) -> tuple[int, int]:
        return int(ts_s // DAY_S), int((ts_s % DAY_S) // self.slot_s) % self.slots

    def _past(self, ts_s: float) -> np.ndarray:
        day, slot = self._day_and_slot(ts_s)
        rows = (self._day_of_row < day) & (self._day_of_row >= day - self.days)
        past = self._values[rows, slot]
        return past[np.isfinite(past)]

    def expected(self, ts_s: float) -> float:
        """The median of this time of day on the last ``days`` days, NaN with fewer than ``min_days``."""
        return self._median(self._past(ts_s))

    def _median(self, past: np.ndarray) -> float:
        return float(np.median(past)) if past.size >= self.min_days else math.nan

    def residual(self, ts_s: float, value: float) -> float:
        """``value`` minus :meth:`expected` (NaN when nothing is expected yet)."""
        return value - self.expected(ts_s)

    def explained_share(self, ts_s: float) -> float:
        """The share of the value's spread the profile explains (NaN before half a day of residuals)."""
        if not ts_s - self._first_residual_ts >= DAY_S / 2 or not self._spread > 0:
            return math.nan
        return 1.0 - self._miss / self._spread

    # -- River-style API ------------------------------------------------------------------------
    def _residual_x(self, ts_s: float, value: float) -> dict:
        if self._last is not None and self._last[:2] == (ts_s, value):
            return self._last[2]
        r = self.residual(ts_s, value)
        x = {"residual": r} if math.isfinite(r) else {}
        self._last = (ts_s, value, x)
        return x

    def score_one(self, ts_s: float, value: float) -> float:
        """The surprise of ``value``'s departure from this time of day; 0 while the days do not repeat."""
        x = self._residual_x(ts_s, value)
        if not x or not self.repeats:
            return 0.0
        return float(self.detector.score_one(x))

    def learn_one(self, ts_s: float, value: float, healthy: bool) -> None:
        """Learn ``value`` at ``ts_s``; ``healthy``: whether the window was healthy (the gate learns only those)."""
        x = self._residual_x(ts_s, value)
        self._last = None
        if x:
            self.detector.learn_one(x)
        day, slot = self._day_and_slot(ts_s)
        row = day % (self.days + 1)
        if self._day_of_row[row] != day:
            self._values[row] = np.nan
            self._day_of_row[row] = day
        if self._filling != (day, slot):
            self._filling, self._sum, self._count = (day, slot), 0.0, 0
        self._sum += value
        self._count += 1
        self._values[row, slot] = self._sum / self._count
        if not healthy:
            return
        # Exponential averages over about a day of event time, whatever the cadence.
        a = 1.0 if math.isnan(self._gate_ts) else -math.expm1(-max(0.0, ts_s - self._gate_ts) / DAY_S)
        self._gate_ts = ts_s
        if math.isnan(self._mean):
            self._mean = value
        else:
            self._spread += a * (abs(value - self._mean) - self._spread)
            self._mean += a * (value - self._mean)
        if x:
            miss = abs(x["residual"])
            self._miss = miss if math.isnan(self._miss) else self._miss + a * (miss - self._miss)
            if math.isnan(self._first_residual_ts):
                self._first_residual_ts = ts_s
        share = self.explained_share(ts_s)
        if math.isfinite(share):
            self.repeats = share >= (self.stops_at if self.repeats else self.repeats_at)

    @property
    def scoring(self) -> bool:
        """Whether :meth:`score_one` can be above 0: the days repeat and the residual is calibrated."""
        return self.repeats and self.detector.ready

    def explain(self, ts_s: float, value: float, feature: str, surprise: float | None = None) -> dict:
        """An explanation item for ``value`` at ``ts_s``, in the shape of the champion's items.

        ``surprise``: what :meth:`score_one` just gave for the same window (scored again if not given).
        """
        past = self._past(ts_s)
        expected = self._median(past)
        x = self._residual_x(ts_s, value)
        if surprise is None:
            surprise = float(self.detector.score_one(x)) if x else 0.0
        z = self.detector.explain(x, top=1)[0]["z"] if x and self.detector.ready else math.nan
        clock = f"{int(ts_s % DAY_S // 3600):02d}:{int(ts_s % 3600 // 60):02d}"
        return {"feature": feature, "stat": "time_of_day", "value": value, "baseline_mean": expected, "z": z,
                "surprise": surprise,
                "evidence": f"{feature} {value:.3g} at {clock} UTC, where the last {past.size} days "
                            f"had {expected:.3g} (median)"}
