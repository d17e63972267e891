"""TransitionNovelty: a process value moving between bands of its range in a way never seen before.

The champion's health answers "how improbable is this value under the
sensor's healthy history" (:mod:`predmaint.models.robust_deviation`). Some
anomalies of a process value are not improbable values but improbable
*sequences*: a load that jumps from its floor straight to its ceiling where it
always climbed through the middle, a daily cycle that skips its peak, a count
that bursts from a quiet band. This model watches the order of values, in the
manner of contextOSE (Smirnov, NAB 2016), with only what has already arrived.
Why each choice:

* **Coarse bands of the range so far, the past re-binned.** The value is
  placed in one of ``bins`` equal bands between the smallest and largest value
  seen so far (contextOSE uses 8 bands, 3 bits, of the whole file's range,
  which a stream does not know in advance). A new extreme widens the range and
  so moves the bands; every move learned before is then judged in the new
  bands, as if the range had been known when it was learned. Why: learned in
  the bands they had at the time, the first values' moves (a tiny range, so
  noise spans every band) fill the table with far moves that later mean
  nothing, and a real jump is then "seen". Measured 2026-12-03 on NAB's 47
  shared series, offline, the pairs alone with one report per 100 values:
  43.6 standard / 37.3 low-FP with the moves kept in the bands of their time,
  63.4 / 51.5 re-binned exactly (every past value kept), 63.4 / 51.4 on the
  grid below, and 66.5 / 58.9 in the bands of the whole file's range (look-ahead,
  which a stream cannot have).
* **A fine grid, so the state stays bounded.** Moves are kept as a
  ``fine x fine`` table of booleans over the range so far (``fine``: ``bins``
  times ``64 // bins``, 64 for 8 bands: 4 KB), each fine cell inside one band;
  a widened range maps each old cell's centre to its new cell, and a band
  move was seen if any fine move between the two bands was.
* **Transitions, not values.** Novel is a pair (band of the previous window,
  band of this one) never seen before. Longer contexts (three bands,
  measured 2026-12-03 on NAB beside the health rule, before the re-binning)
  found nothing the pairs did not; not measured since.
* **A warm-up.** In the first ``warmup`` values almost every pair is new:
  nothing is reported before.
* **No probability.** A novel pair is not a p-value, and it does not move the
  champion's health (whose scale keeps its meaning, p = 10**-4 at health 50).
  It is the metric ``novelty`` (1.0 on a novel window, else 0.0) of its own
  alert rule, ``novel_pattern``, whose off-delay makes a burst of novel pairs
  one episode. :class:`~predmaint.models.sensor_model.SensorModel` reports a
  novel pair only in a window the champion finds unusual (the default: health
  below 80, p < 10**-2.8): on healthy noise a novel pair is a rare hop between
  the tail bands or a new extreme. Measured 2026-12-03 on 10 x 5,000 readings
  each of Gaussian, Student-t (3 degrees of freedom) and AR(1) (phi 0.95) noise,
  alert episodes with a gate below health 100 / 90 / 80 / 70 and without:
  53 / 29 / 9 / 3 and 104; 78 / 63 / 51 / 40 and 102; 26 / 14 / 4 / 2 and 70.
  NAB's 47 series through the dataflow gave 58.40 standard / 40.88 low-FP
  with the gate at 100 and 56.16 / 40.68 at 80 (the default). Also tried:
  reporting a pair only where the bands' occupancy made it expected (noise
  quiet, NAB back to 46-49) and a novel pair confirmed by the next window
  (55.4 / 41.0 at 100, with more alerts on AR(1) noise than the gate at 80).

Examples
--------
A value swinging between its floor and its ceiling, then stopping halfway:

>>> m = TransitionNovelty(bins=4, warmup=6)
>>> scores = []
>>> for v in [0.0, 4.0] * 4:  # score before learning, as every model here
...     scores.append(m.score_one(v))
...     m.learn_one(v)
>>> scores
[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
>>> m.score_one(2.0)
1.0
>>> move = m.explain(2.0, "load")
>>> move["from_band"], move["to_band"], move["readings"]
([3.0, 4.0], [2.0, 3.0], 8)
>>> move["evidence"]
'load moved from 3..4 to 2..3, a move not seen in 8 readings'
>>> m.learn_one(2.0); m.score_one(0.0)  # the way down from the middle is new too
1.0
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TransitionNovelty"]


class TransitionNovelty:
    """Whether a value's move from the previous value's band to its own was never seen before.

    Parameters
    ----------
    bins
        Equal bands of the range seen so far (2 to 64).
    warmup
        Values learned before a novel move is reported (at least 1).

    Attributes
    ----------
    fine : int
        Cells of the grid the moves are kept on (a multiple of ``bins``, at most 64).
    n_learned : int
        Values learned.
    """

    def __init__(self, bins: int = 8, warmup: int = 100):
        for name, value, low, high in (("bins", bins, 2, 64), ("warmup", warmup, 1, None)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low \
                    or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f">= {low}"
                raise ValueError(f"{name} must be a whole number {bound}, got {value!r}")
        self.bins = bins
        self.warmup = warmup
        self.fine = bins * max(1, 64 // bins)
        self.lo = math.inf
        self.hi = -math.inf
        self.last_value = math.nan
        self.n_learned = 0
        self.seen = np.zeros((self.fine, self.fine), dtype=bool)

    def __setstate__(self, state: dict) -> None:
        # A watch pickled before the moves were re-binned (a bins x bins table in the bands of their
        # time, no previous value) cannot be converted: it starts afresh.
        if "last_value" not in state:
            state = TransitionNovelty(state["bins"], state["warmup"]).__dict__
        self.__dict__.update(state)

    def _range_with(self, value: float) -> tuple[float, float]:
        return min(self.lo, value), max(self.hi, value)

    def _cell(self, value: float, lo: float, hi: float) -> int:
        if not hi > lo:
            return 0
        # Halved, so that a range from -1e308 to 1e308 does not overflow to inf (inf / inf is NaN).
        return min(self.fine - 1, int((value / 2 - lo / 2) / (hi / 2 - lo / 2) * self.fine))

    def _band(self, value: float, lo: float, hi: float) -> int:
        return self._cell(value, lo, hi) * self.bins // self.fine

    def band(self, value: float) -> int:
        """The band of ``value`` in the range seen so far, widened to hold it."""
        return self._band(value, *self._range_with(value))

    def _seen_in(self, lo: float, hi: float) -> np.ndarray:
        """The moves learned, on the grid of the range ``lo..hi`` (which holds the range so far)."""
        if (lo, hi) == (self.lo, self.hi) or not self.seen.any():
            return self.seen
        # The old cells' centres as fractions of the new range (halved, as in _cell: no overflow).
        old_lo, old_half = self.lo / 2, self.hi / 2 - self.lo / 2  # 0 while every value so far was equal
        centres = old_lo + (np.arange(self.fine) + 0.5) / self.fine * old_half
        frac = (centres - lo / 2) / (hi / 2 - lo / 2)
        cell = np.clip((frac * self.fine).astype(np.int64), 0, self.fine - 1)
        rows, cols = np.nonzero(self.seen)
        out = np.zeros_like(self.seen)
        out[cell[rows], cell[cols]] = True
        return out

    def _move_seen(self, value: float) -> bool:
        lo, hi = self._range_with(value)
        k = self.fine // self.bins  # fine cells per band
        a, b = self._band(self.last_value, lo, hi) * k, self._band(value, lo, hi) * k
        return bool(self._seen_in(lo, hi)[a:a + k, b:b + k].any())

    def score_one(self, value: float) -> float:
        """1.0 if the move to ``value``'s band is new (after the warm-up), else 0.0; changes nothing."""
        if self.n_learned < self.warmup or not math.isfinite(self.last_value) or not math.isfinite(value):
            return 0.0
        return 0.0 if self._move_seen(value) else 1.0

    def learn_one(self, value: float) -> None:
        """Widen the range to hold ``value`` (re-binning the moves learned) and record the move to it."""
        if not math.isfinite(value):
            return
        lo, hi = self._range_with(value)
        self.seen = self._seen_in(lo, hi)
        self.lo, self.hi = lo, hi
        if math.isfinite(self.last_value):
            self.seen[self._cell(self.last_value, lo, hi), self._cell(value, lo, hi)] = True
        self.last_value = float(value)
        self.n_learned += 1

    def _edges(self, b: int, lo: float, hi: float) -> list[float]:
        width = (hi - lo) / self.bins
        return [float(lo + b * width), float(lo + (b + 1) * width)]

    def explain(self, value: float, feature: str) -> dict:
        """The move ``value`` of ``feature`` would make: the bands' value ranges, the values learned
        so far and the same in words (``evidence``, which alerts, work orders and the report show).
        Only for a value that has a previous one (``score_one`` can call its move novel)."""
        lo, hi = self._range_with(value)
        before = self._edges(self._band(self.last_value, lo, hi), lo, hi)
        after = self._edges(self._band(value, lo, hi), lo, hi)
        words = (f"{feature} moved from {before[0]:.3g}..{before[1]:.3g} to {after[0]:.3g}..{after[1]:.3g}, "
                 f"a move not seen in {self.n_learned} readings")
        return {"from_band": before, "to_band": after, "readings": self.n_learned, "evidence": words}
