"""RobustReference: what "normal" is for one value, from its recent healthy history.

Why each choice:

* **Rolling, not frozen.** A machine's normal drifts (seasons, load, wear-in):
  a reference frozen after a 2-hour baseline turns that drift into false
  alarms, while one that averages everything since start-up never forgets a
  bad start. The reference holds the last ``size`` accepted values (a ring
  buffer), so it follows healthy drift at a known pace.
* **Robust centre and scale.** The median and ``max(1.4826 * MAD,
  1.2533 * mean |x - median|)`` (both equal the standard deviation for Gaussian
  data) barely move when a few outliers are accepted, where a mean and a
  standard deviation would be dragged by each of them. The second term keeps a
  scale for signals whose MAD is zero (more than half the values equal).
* **Winsorised updates.** :meth:`RobustReference.update` with ``clip`` limits a
  value to ``median +/- clip * scale`` before it enters, so a burst of outliers
  moves the reference by at most ``clip`` scales per value: a lasting new
  regime is accepted gradually, a spike never.
* **Floors on the scale.** ``rel_floor`` (a fraction of ``|median|``) is a
  deadband: changes smaller than that never count, whatever the noise (vibration
  amplitudes: a few per cent is not a fault); it also keeps quantised or flat
  signals from getting a zero scale.
* **Small state.** Values are kept as float32 (7 significant digits, plenty for
  a median) in a fixed-size array: 1 KB per 256 values, pickled as one buffer.
  River's ``stats.RollingQuantile`` would give the median but keeps each value
  twice as Python floats (about 9x the pickled size) and has no MAD.
"""

from __future__ import annotations

import math

import numpy as np
from river.stats.base import Univariate

__all__ = ["RobustReference"]


class RobustReference(Univariate):
    """Median and robust scale of the last ``size`` accepted values.

    Parameters
    ----------
    size
        Ring-buffer length (values).
    refresh
        Recompute median and scale every ``refresh`` updates (every update
        while fewer than ``size // 4`` values are held), so updates stay cheap.
    rel_floor
        Floor on the scale as a fraction of ``|median|``: a deadband.
    abs_floor
        Absolute floor on the scale.

    Attributes
    ----------
    n : int
        Values held (at most ``size``).
    median, scale : float
        The reference's centre and robust scale (0 and 1 before any value).

    Examples
    --------
    >>> ref = RobustReference(size=64)
    >>> for i in range(64):
    ...     ref.update(10.0 + (i % 5) - 2.0)
    >>> ref.get(), round(ref.scale, 3)
    (10.0, 1.492)
    >>> round(ref.z(16.0), 2)
    4.02
    >>> ref.update(1000.0, clip=3.0)   # winsorised: enters as 10 + 3 * 1.492
    >>> round(float(ref.buffer.max()), 2)
    14.48

    A deadband of 5 % of the level: a 1 % wobble is nothing.

    >>> flat = RobustReference(size=16, rel_floor=0.05)
    >>> for _ in range(16):
    ...     flat.update(2.0)
    >>> flat.scale, round(flat.z(2.02), 6)
    (0.1, 0.2)
    """

    def __init__(self, size: int = 512, refresh: int = 8, rel_floor: float = 1e-4, abs_floor: float = 1e-9):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"RobustReference: size must be a whole number >= 1, got {size!r}")
        if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 1:
            raise ValueError(f"RobustReference: refresh must be a whole number >= 1, got {refresh!r}")
        if not rel_floor >= 0 or not abs_floor > 0:
            raise ValueError(f"RobustReference: rel_floor must be >= 0 and abs_floor > 0, got "
                             f"{rel_floor!r}, {abs_floor!r}")
        self.size = size
        self.refresh = refresh
        self.rel_floor = rel_floor
        self.abs_floor = abs_floor
        self.buffer = np.zeros(size, dtype=np.float32)
        self.n = 0
        self.median = 0.0
        self.scale = 1.0
        self._pos = 0
        self._since = 0

    def _recompute(self) -> None:
        b = self.buffer[: self.n] if self.n < self.size else self.buffer
        med = float(np.median(b))
        dev = np.abs(b - np.float32(med))
        self.median = med
        self.scale = max(1.4826 * float(np.median(dev)), 1.2533 * float(dev.mean()),
                         self.rel_floor * abs(med), self.abs_floor)
        self._since = 0

    def update(self, x: float, clip: float | None = None) -> None:
        """Accept ``x`` (ignored if not finite); ``clip``: winsorise it to ``median +/- clip * scale`` first."""
        if not math.isfinite(x):
            return
        if clip is not None and self.n > 0:
            lo, hi = self.median - clip * self.scale, self.median + clip * self.scale
            x = min(max(x, lo), hi)
        self.buffer[self._pos] = x
        self._pos = (self._pos + 1) % self.size
        if self.n < self.size:
            self.n += 1
        self._since += 1
        if self._since >= self.refresh or self.n < max(self.size // 4, 1):
            self._recompute()

    def get(self) -> float:
        """The median (0 before any value)."""
        return self.median

    def z(self, x: float) -> float:
        """Signed deviation of ``x`` from the median, in robust scales (0 before any value)."""
        if self.n == 0:
            return 0.0
        return (x - self.median) / self.scale
