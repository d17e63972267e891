"""RobustReference: what "normal" is for each of a set of values, from their recent healthy history.

Why each choice:

* **Rolling, not frozen.** A machine's normal drifts (seasons, load, wear-in):
  a reference frozen after a 2-hour baseline turns that drift into false
  alarms, while one that averages everything since start-up never forgets a
  bad start. The reference holds the last ``size`` accepted values of each
  column (a ring buffer), so it follows healthy drift at a known pace.
* **Robust centre and scale.** The median and ``max(1.4826 * MAD,
  1.2533 * mean |x - median|)`` (both equal the standard deviation for Gaussian
  data) barely move when a few outliers are accepted, where a mean and a
  standard deviation would be dragged by each of them. The second term keeps a
  scale for signals whose MAD is zero (more than half the values equal).
* **Winsorised updates.** With ``clip``, :meth:`RobustReference.update` limits
  a value to ``median +/- clip * scale`` before it enters, so a burst of
  outliers moves the reference by at most ``clip`` scales per value: a lasting
  new regime is accepted gradually, a spike never.
* **Floors on the scale.** ``rel_floor`` (a fraction of ``|median|``) is a
  deadband: changes smaller than that never count, whatever the noise (vibration
  amplitudes: a few per cent is not a fault); it also keeps flat signals from
  getting a zero scale. The smallest non-zero deviation held is a floor too: a
  quantised signal (a pressure in steps of 0.01 bar that mostly sits still)
  has a MAD of 0, and without it one step would be a deviation of dozens of
  scales.
* **Columns, not objects.** One reference holds every feature of a sensor as a
  column of one float32 array (7 significant digits, plenty for a median), so
  an update is a handful of numpy operations whatever the number of features,
  and a sensor's state pickles as a few buffers: 1 KB per 256 values and
  feature. River's ``stats.RollingQuantile`` would give a median per feature,
  but as Python objects holding every value twice, and no MAD.
"""

from __future__ import annotations

import numpy as np
from river import base

__all__ = ["RobustReference"]


class RobustReference(base.Base):
    """Median and robust scale of the last ``size`` accepted values of each column.

    Columns are added with :meth:`add_columns` (a feature seen for the first
    time); each :meth:`update` offers one value per column, and ``mask`` says
    which columns take theirs (a feature missing from a window takes none).

    Parameters
    ----------
    size
        Ring-buffer length (values per column).
    refresh
        Recompute medians and scales every ``refresh`` updates (every update
        while a column holds fewer than ``size // 4`` values).
    rel_floor
        Floor on the scale as a fraction of ``|median|``: a deadband.
    abs_floor
        Absolute floor on the scale.

    Attributes
    ----------
    width : int
        Number of columns.
    n : numpy.ndarray of int
        Values held per column (at most ``size``).
    median, scale : numpy.ndarray of float
        Per column: the centre and robust scale (0 and 1 before any value).
    step : numpy.ndarray of float
        Per column: the smallest non-zero deviation from the median held (the
        signal's resolution when it is quantised; 0 when all values are equal).

    Examples
    --------
    >>> import numpy as np
    >>> ref = RobustReference(size=64)
    >>> ref.add_columns(2)
    >>> for i in range(64):
    ...     ref.update(np.array([10.0 + (i % 5) - 2.0, 1.0]))
    >>> ref.median.tolist(), ref.scale.round(3).tolist()
    ([10.0, 1.0], [1.492, 0.0])
    >>> ref.z(np.array([16.0, 1.0])).round(2).tolist()
    [4.02, 0.0]
    >>> ref.update(np.array([1000.0, 1.0]), clip=3.0)   # winsorised: enters as 10 + 3 * 1.492
    >>> float(ref.buffer[:, 0].max()).__round__(2)
    14.48

    A deadband of 5 % of the level: a 1 % wobble is nothing.

    >>> flat = RobustReference(size=16, rel_floor=0.05)
    >>> flat.add_columns(1)
    >>> for _ in range(16):
    ...     flat.update(np.array([2.0]))
    >>> float(flat.scale[0]), float(flat.z(np.array([2.02]))[0].round(6))
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
        self.buffer = np.zeros((size, 0), dtype=np.float32)
        self.n = np.zeros(0, dtype=np.int32)
        self.median = np.zeros(0)
        self.scale = np.ones(0)
        self.step = np.zeros(0)
        self._pos = np.zeros(0, dtype=np.int32)
        self._since = 0

    @property
    def width(self) -> int:
        return int(self.n.size)

    def add_columns(self, count: int) -> None:
        """Append ``count`` empty columns."""
        self.buffer = np.concatenate([self.buffer, np.zeros((self.size, count), dtype=np.float32)], axis=1)
        self.n = np.concatenate([self.n, np.zeros(count, dtype=np.int32)])
        self._pos = np.concatenate([self._pos, np.zeros(count, dtype=np.int32)])
        self.median = np.concatenate([self.median, np.zeros(count)])
        self.scale = np.concatenate([self.scale, np.ones(count)])
        self.step = np.concatenate([self.step, np.zeros(count)])

    def update(self, values: np.ndarray, mask: np.ndarray | None = None, clip: float | None = None,
               clip_min_values: int = 1) -> None:
        """Accept ``values[j]`` into column ``j`` wherever ``mask`` (default: every column).

        ``clip``: first winsorise each value to ``median +/- clip * scale`` of
        its column, in columns holding at least ``clip_min_values`` values.
        """
        cols = np.arange(self.width) if mask is None else np.flatnonzero(mask)
        if cols.size == 0:
            return
        v = np.asarray(values, dtype=np.float64)[cols]
        if clip is not None:
            med, half = self.median[cols], clip * self.scale[cols]
            v = np.where(self.n[cols] >= clip_min_values, np.clip(v, med - half, med + half), v)
        pos = self._pos[cols]
        self.buffer[pos, cols] = v
        self._pos[cols] = (pos + 1) % self.size
        self.n[cols] = np.minimum(self.n[cols] + 1, self.size)
        self._since += 1
        if self._since >= self.refresh or int(self.n[cols].min()) < max(self.size // 4, 1):
            self._recompute()

    def _recompute(self) -> None:
        self._since = 0
        for count in np.unique(self.n):
            if count == 0:
                continue
            cols = np.flatnonzero(self.n == count)
            # A column that holds fewer than size values has never wrapped: its values are the first rows.
            b = self.buffer[:count, cols] if count < self.size else self.buffer[:, cols]
            med = np.median(b, axis=0).astype(np.float64)
            dev = np.abs(b - med.astype(np.float32))
            scale = np.maximum(1.4826 * np.median(dev, axis=0), 1.2533 * dev.mean(axis=0, dtype=np.float64))
            # The resolution: a quantised signal's smallest step is one scale at least.
            step = np.where(dev > 0, dev, np.inf).min(axis=0)
            step = np.where(np.isfinite(step), step, 0.0)
            scale = np.maximum(scale, step)
            self.step[cols] = step
            self.median[cols] = med
            self.scale[cols] = np.maximum(np.maximum(scale, self.rel_floor * np.abs(med)), self.abs_floor)

    def z(self, values: np.ndarray) -> np.ndarray:
        """Signed deviation of each column's value from its median, in robust scales (0 where empty)."""
        return np.where(self.n > 0, (np.asarray(values, dtype=np.float64) - self.median) / self.scale, 0.0)
