"""Features of a generic scalar process value (pressure, flow, voltage, load, any temperature).

=================  ==================================================================
key                meaning (unit: the sensor's registered unit)
=================  ==================================================================
``value_mean``     mean of the readings in the window: the level every model watches
``value_min``      smallest reading (windows of at least ``SPREAD_MIN_READINGS``)
``value_max``      largest reading (same)
``value_std``      population standard deviation (same): variance changes, flat lines
=================  ==================================================================

A window of a slow series (a 5-minute or hourly value) holds one reading, so
only its level is defined; the spread statistics need a few readings to mean
anything and appear only then, so a series keeps one feature set as long as
its cadence does.
"""

from __future__ import annotations


from predmaint.features._checks import as_signal

__all__ = ["SPREAD_MIN_READINGS", "process_features"]

#: Readings a window needs before its min, max and standard deviation are reported.
SPREAD_MIN_READINGS = 3


def process_features(values) -> dict[str, float]:
    """The level and spread of one window of a scalar process value.

    Parameters
    ----------
    values : array_like, shape (n,)
        The readings of the window, n >= 1, finite.

    Returns
    -------
    dict[str, float]
        ``value_mean`` always; ``value_min``, ``value_max``, ``value_std`` when
        ``n >= SPREAD_MIN_READINGS``.

    Examples
    --------
    >>> process_features([2.5])
    {'value_mean': 2.5}
    >>> process_features([1.0, 2.0, 3.0])
    {'value_mean': 2.0, 'value_min': 1.0, 'value_max': 3.0, 'value_std': 0.816496580927726}
    """
    x = as_signal(values, "values", min_samples=1)
    feats = {"value_mean": float(x.mean())}
    if x.size >= SPREAD_MIN_READINGS:
        feats.update(value_min=float(x.min()), value_max=float(x.max()), value_std=float(x.std()))
    return feats
