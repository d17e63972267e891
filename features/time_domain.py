"""Time-domain statistics of a vibration waveform.

========================  ======  =====================================================
key                       unit    meaning
========================  ======  =====================================================
``accel_rms``             input   RMS about the mean (the mean is sensor offset)
``accel_peak``            input   largest absolute deviation from the mean
``accel_peak_to_peak``    input   ``max - min``
``crest_factor``          --      ``accel_peak / accel_rms``; sine 1.414, impacts > 3
``kurtosis``              --      Pearson kurtosis ``m4 / m2**2``; Gaussian 3, sine 1.5
``skewness``              --      ``m3 / m2**1.5``; 0 for a symmetric signal
========================  ======  =====================================================

Moments are population (biased) moments about the mean. For a constant signal
the shape statistics (crest factor, kurtosis, skewness) are undefined and are
returned as ``nan``; the amplitude statistics are 0.
"""

from __future__ import annotations

import math

import numpy as np

from predmaint.features._checks import as_signal

__all__ = ["time_domain_features"]


def time_domain_features(x) -> dict[str, float]:
    """Amplitude and shape statistics of a waveform.

    Parameters
    ----------
    x : array_like
        1-D signal, at least 2 samples, finite.

    Returns
    -------
    dict[str, float]
        Keys ``accel_rms``, ``accel_peak``, ``accel_peak_to_peak``,
        ``crest_factor``, ``kurtosis``, ``skewness`` (see module docstring).

    Examples
    --------
    >>> t = np.arange(1000) / 1000
    >>> f = time_domain_features(np.sin(2 * np.pi * 10 * t))
    >>> round(f["accel_rms"], 4), round(f["crest_factor"], 4), round(f["kurtosis"], 3)
    (0.7071, 1.4142, 1.5)
    """
    arr = as_signal(x, "x")
    mean = float(arr.mean())
    return _time_domain_of_centred(arr - mean, mean)


def _time_domain_of_centred(d: np.ndarray, mean: float) -> dict[str, float]:
    # Takes the mean-removed signal so vibration_features can share it with the
    # spectrum instead of centring twice.
    d2 = d * d
    m2 = float(d2.sum()) / d.size
    d_max = float(d.max())
    d_min = float(d.min())
    peak = max(d_max, -d_min)
    rms = math.sqrt(m2)
    # Relative threshold: a constant signal's deviations are pure rounding. Compared as RMS, not
    # squared: Python's float ** raises OverflowError on a huge mean (1e300) where numpy gives inf.
    if rms <= 1e-12 * max(abs(mean), 1e-300):
        crest = kurt = skew = math.nan
        rms = peak = 0.0
    else:
        crest = peak / rms
        kurt = float(np.dot(d2, d2)) / d.size / (m2 * m2)
        skew = float(np.dot(d2, d)) / d.size / (m2 * rms)
    return {
        "accel_rms": rms,
        "accel_peak": peak,
        "accel_peak_to_peak": d_max - d_min,
        "crest_factor": crest,
        "kurtosis": kurt,
        "skewness": skew,
    }
