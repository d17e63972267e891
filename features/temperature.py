"""Temperature features over one window of readings.

==============================  ========  ===============================================
key                             unit      meaning
==============================  ========  ===============================================
``temp_level_c``                degC      mean of the readings
``temp_rate_c_per_min``         degC/min  least-squares slope of value against time, x 60
``temp_rise_over_ambient_c``    degC      ``temp_level_c - ambient_c`` (only with ambient)
==============================  ========  ===============================================

The slope is an ordinary least-squares fit, so irregular sampling and missing
readings need no resampling; times need not be sorted, but at least two must
differ.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from predmaint.features._checks import as_signal

__all__ = ["temperature_features"]


def temperature_features(times_s, values_c, *, ambient_c: float | None = None) -> dict[str, float]:
    """Level, rate of change and rise over ambient of a temperature window.

    Parameters
    ----------
    times_s : array_like
        Reading times in seconds (any origin, e.g. Unix time), 1-D.
    values_c : array_like
        Readings in degC, same length as ``times_s``, at least 2.
    ambient_c : float, optional
        Ambient temperature in degC.

    Returns
    -------
    dict[str, float]
        See the module docstring.

    Examples
    --------
    A 0.5 degC/min ramp sampled every 10 s, from 40 degC, with 20 degC ambient:

    >>> t = np.arange(0, 600, 10.0)
    >>> f = temperature_features(t, 40 + 0.5 * t / 60, ambient_c=20)
    >>> {k: round(v, 6) for k, v in f.items()}
    {'temp_level_c': 42.458333, 'temp_rate_c_per_min': 0.5, 'temp_rise_over_ambient_c': 22.458333}
    """
    t = as_signal(times_s, "times_s")
    v = as_signal(values_c, "values_c")
    if t.size != v.size:
        raise ValueError(
            f"times_s and values_c must have the same length, got {t.size} and {v.size}"
        )
    # Centre time first: Unix seconds squared lose the slope to rounding.
    tc = t - t.mean()
    sxx = float(np.dot(tc, tc))
    if sxx <= 0.0:
        raise ValueError("times_s must contain at least two distinct times to fit a rate")
    level = float(v.mean())
    out = {
        "temp_level_c": level,
        "temp_rate_c_per_min": float(np.dot(tc, v - level)) / sxx * 60.0,
    }
    if ambient_c is not None:
        if isinstance(ambient_c, bool) or not isinstance(ambient_c, Real) or not math.isfinite(
            ambient_c
        ):
            raise ValueError(f"ambient_c must be a finite number, got {ambient_c!r}")
        out["temp_rise_over_ambient_c"] = level - float(ambient_c)
    return out
