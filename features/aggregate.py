"""Combine per-snapshot feature dicts into one value per event-time window.

:class:`FeatureAccumulator` is the state of a streaming window fold: ``add``
one feature dict per snapshot, ``merge`` partial windows, and read
``result()`` when the window closes.

How each key is combined:

* ``iso_zone`` and keys ending in ``_peak`` (``accel_peak``,
  ``accel_peak_to_peak``): the **maximum** -- the worst snapshot is what an
  alarm on a peak or a severity zone means;
* every other key: the **mean**;
* ``snapshots``: the number of snapshots added (an int). It is reserved: an
  input dict may not contain it.

NaN and infinite values are skipped per key, so one snapshot with an undefined
feature (say, kurtosis of a flat-lined sensor) does not poison the window; a
key with no finite value at all reads ``nan``. The state is three plain dicts
and an int, so it pickles small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

__all__ = ["FeatureAccumulator", "is_max_key"]

_COUNT_KEY = "snapshots"


def is_max_key(name: str) -> bool:
    """Whether a feature is combined by maximum rather than mean.

    Examples
    --------
    >>> is_max_key("accel_peak"), is_max_key("iso_zone"), is_max_key("accel_rms")
    (True, True, False)
    """
    return name == "iso_zone" or name.endswith("_peak")


class FeatureAccumulator:
    """Mergeable mean/max accumulator for feature dicts.

    Examples
    --------
    >>> acc = FeatureAccumulator()
    >>> acc.add({"accel_rms": 1.0, "accel_peak": 3.0, "iso_zone": 1.0})
    FeatureAccumulator(snapshots=1, keys=3)
    >>> _ = acc.add({"accel_rms": 2.0, "accel_peak": 5.0, "iso_zone": 3.0})
    >>> acc.result()
    {'accel_rms': 1.5, 'accel_peak': 5.0, 'iso_zone': 3.0, 'snapshots': 2}
    """

    __slots__ = ("_sums", "_maxes", "_counts", "_snapshots")

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._maxes: dict[str, float] = {}
        # Finite values seen per key; every key ever seen has an entry, which
        # also fixes the key order of result().
        self._counts: dict[str, int] = {}
        self._snapshots = 0

    def add(self, features: Mapping[str, float]) -> FeatureAccumulator:
        """Add one snapshot's features; returns ``self`` for use as a fold step.

        Raises ``ValueError`` for a non-numeric value or the reserved key
        ``snapshots``; the accumulator is unchanged when it raises.
        """
        if not isinstance(features, Mapping):
            raise ValueError(f"features must be a mapping, got {type(features).__name__}")
        if _COUNT_KEY in features:
            raise ValueError(f"'{_COUNT_KEY}' is reserved for the snapshot count")
        items: list[tuple[str, float]] = []
        for key, value in features.items():
            if not isinstance(key, str):
                raise ValueError(f"feature names must be str, got {key!r}")
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ValueError(f"feature {key!r} must be a number, got {value!r}")
            items.append((key, float(value)))
        for key, value in items:
            self._counts.setdefault(key, 0)
            if not math.isfinite(value):
                continue
            self._counts[key] += 1
            if is_max_key(key):
                self._maxes[key] = max(self._maxes.get(key, value), value)
            else:
                self._sums[key] = self._sums.get(key, 0.0) + value
        self._snapshots += 1
        return self

    def merge(self, other: FeatureAccumulator) -> FeatureAccumulator:
        """Fold ``other`` into this accumulator; returns ``self``. ``other`` is unchanged."""
        if not isinstance(other, FeatureAccumulator):
            raise ValueError(f"can only merge a FeatureAccumulator, got {type(other).__name__}")
        for key, count in other._counts.items():
            self._counts[key] = self._counts.get(key, 0) + count
        for key, value in other._sums.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        for key, value in other._maxes.items():
            self._maxes[key] = max(self._maxes.get(key, value), value)
        self._snapshots += other._snapshots
        return self

    def result(self) -> dict[str, float]:
        """Window features: mean or max per key, plus ``snapshots`` (int)."""
        out: dict[str, float] = {}
        for key, count in self._counts.items():
            if count == 0:
                out[key] = math.nan
            elif is_max_key(key):
                out[key] = self._maxes[key]
            else:
                out[key] = self._sums[key] / count
        out[_COUNT_KEY] = self._snapshots
        return out

    def __repr__(self) -> str:
        return f"FeatureAccumulator(snapshots={self._snapshots}, keys={len(self._counts)})"
