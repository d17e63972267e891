"""Input validation shared by the feature modules (private).

Every public feature function validates its inputs through these helpers so
that bad input always fails the same way: a ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np


def as_signal(x, name: str, *, min_samples: int = 2) -> np.ndarray:
    """Return ``x`` as a 1-D finite float64 array or raise ``ValueError``.

    Examples
    --------
    >>> as_signal([1, 2, 3], "x")
    array([1., 2., 3.])
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def positive(value, name: str) -> float:
    """Return ``value`` as a finite float > 0 or raise ``ValueError``.

    Examples
    --------
    >>> positive(2, "fs")
    2.0
    """
    # bool is a Real subclass; True as a sample rate is always a config mistake.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return value


def band_pair(band, what: str) -> tuple[float, float]:
    """``band`` as two floats ``(lo, hi)``, or a ValueError naming ``what``.

    Examples
    --------
    >>> band_pair([10, 1000], "band")
    (10.0, 1000.0)
    >>> band_pair(5, "envelope band")
    Traceback (most recent call last):
    ...
    ValueError: envelope band must be a (lo_hz, hi_hz) pair, got 5
    """
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (lo_hz, hi_hz) pair, got {band!r}") from None
    return lo, hi
