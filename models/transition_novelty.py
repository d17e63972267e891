"""TransitionNovelty: a process value moving between bands of its range in a way never seen before.

The champion's health answers "how improbable is this value under the
sensor's healthy history" (:mod:`predmaint.models.robust_deviation`). Some
anomalies of a process value are not improbable values but improbable
*sequences*: a load that jumps from its floor straight to its ceiling where it
always climbed through the middle, a daily cycle that skips its peak, a count
that bursts from a quiet band. This model watches the order of values, in the
manner of contextOSE (Smirnov, NAB 2016), with only what has already arrived.
Why each choice:

* **Coarse bands of the range so far.** The value is placed in one of
  ``bins`` equal bands between the smallest and largest value seen so far
  (contextOSE uses 8 bands, 3 bits, of the whole file's range, which a stream
  does not know in advance). A new extreme widens the range, so the bands
  move; a move is judged by the band the previous value had when it came.
  Known weakness: in the first values the range is tiny and many far moves
  are learned (a jump to a new extreme is often one of them); the champion's
  ``level`` statistic, not this, is what reports a new extreme.
* **Transitions, not values.** Novel is a pair (band of the previous window,
  band of this one) never seen before; there are ``bins**2`` pairs, so the
  state is a ``bins x bins`` table of booleans (64 bytes for 8 bands) whatever
  the run's length. Longer contexts (three bands, measured 2026-12-03 on NAB)
  found nothing the pairs did not.
* **A warm-up.** In the first ``warmup`` values almost every pair is new:
  nothing is reported before.
* **No probability.** A novel pair is not a p-value, and it does not move the
  champion's health (whose scale keeps its meaning, p = 10**-4 at health 50).
  It is the metric ``novelty`` (1.0 on a novel window, else 0.0) of its own
  alert rule, ``novel_pattern``, whose off-delay makes a burst of novel pairs
  one episode. :class:`~predmaint.models.sensor_model.SensorModel` reports a
  novel pair only in a window the champion finds at least unusual (health
  below 100, p < 0.01): on healthy noise most novel pairs are new extremes
  of a few noise levels (measured 2026-12-03 on 10 x 5,000 readings of
  Gaussian noise: 12 alert episodes with that gate, 37 without; of AR(1)
  noise, 2 and 23), while it costs NAB 3 points (51.7 against 54.9 through the dataflow).

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
        self.lo = math.inf
        self.hi = -math.inf
        self.last_band = -1
        self.n_learned = 0
        self.seen = np.zeros((bins, bins), dtype=bool)

    def _range_with(self, value: float) -> tuple[float, float]:
        return min(self.lo, value), max(self.hi, value)

    def band(self, value: float) -> int:
        """The band of ``value`` in the range seen so far, widened to hold it."""
        lo, hi = self._range_with(value)
        if not hi > lo:
            return 0
        return min(self.bins - 1, int((value - lo) / (hi - lo) * self.bins))

    def score_one(self, value: float) -> float:
        """1.0 if the move to ``value``'s band is new (after the warm-up), else 0.0; changes nothing."""
        if self.n_learned < self.warmup or self.last_band < 0 or not math.isfinite(value):
            return 0.0
        return 0.0 if self.seen[self.last_band, self.band(value)] else 1.0

    def learn_one(self, value: float) -> None:
        """Widen the range to hold ``value`` and record the move to its band."""
        if not math.isfinite(value):
            return
        b = self.band(value)
        self.lo, self.hi = self._range_with(value)
        if self.last_band >= 0:
            self.seen[self.last_band, b] = True
        self.last_band = b
        self.n_learned += 1

    def _edges(self, b: int, lo: float, hi: float) -> list[float]:
        width = (hi - lo) / self.bins
        return [float(lo + b * width), float(lo + (b + 1) * width)]

    def explain(self, value: float, feature: str) -> dict:
        """The move ``value`` of ``feature`` would make: the bands' value ranges, the values learned
        so far and the same in words (``evidence``, which alerts, work orders and the report show).
        Only for a value that has a previous one (``score_one`` can call its move novel)."""
        lo, hi = self._range_with(value)
        before, after = self._edges(self.last_band, lo, hi), self._edges(self.band(value), lo, hi)
        words = (f"{feature} moved from {before[0]:.3g}..{before[1]:.3g} to {after[0]:.3g}..{after[1]:.3g}, "
                 f"a move not seen in {self.n_learned} readings")
        return {"from_band": before, "to_band": after, "readings": self.n_learned, "evidence": words}
