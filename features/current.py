"""Three-phase motor current features.

=========================================  ====  ==================================================
key                                        unit  meaning
=========================================  ====  ==================================================
``current_rms_a``, ``_b``, ``_c``          A     RMS current of phase A, B, C over the window
``current_imbalance_pct``                  %     NEMA MG-1 unbalance: largest deviation of a
                                                 phase RMS from the mean of the three, divided
                                                 by that mean, x 100
=========================================  ====  ==================================================

The input may be either per-phase RMS readings (e.g. one per second from a
power meter) or sampled waveforms. Both reduce the same way: the RMS of a
column, ``sqrt(mean(x**2))``, is the RMS of a waveform and also the correct
combination of successive RMS readings (it averages power, not amplitude).
No mean is removed: a motor current has none, and an offset is real current.

With all three phases at 0 A (motor stopped) the unbalance is undefined and is
returned as ``nan``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["current_features"]


def current_features(phase_currents) -> dict[str, float]:
    """Per-phase RMS and NEMA current unbalance.

    Parameters
    ----------
    phase_currents : array_like, shape (n, 3)
        Columns are phases A, B, C in amperes: RMS readings or waveform
        samples, n >= 1, finite.

    Returns
    -------
    dict[str, float]
        See the module docstring.

    Examples
    --------
    Phases at 10, 10 and 11 A: mean 10.333, largest deviation 0.667 -> 6.45 %:

    >>> f = current_features([[10.0, 10.0, 11.0], [10.0, 10.0, 11.0]])
    >>> round(f["current_rms_c"], 3), round(f["current_imbalance_pct"], 2)
    (11.0, 6.45)
    """
    try:
        x = np.asarray(phase_currents, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"phase_currents must be a numeric array: {exc}") from None
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] < 1:
        raise ValueError(
            f"phase_currents must have shape (n, 3) with n >= 1 (columns A, B, C), got {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("phase_currents contains NaN or infinite values")
    rms = np.sqrt(np.einsum("ij,ij->j", x, x) / x.shape[0])
    mean = float(rms.mean())
    imbalance = float(np.abs(rms - mean).max()) / mean * 100.0 if mean > 0.0 else math.nan
    return {
        "current_rms_a": float(rms[0]),
        "current_rms_b": float(rms[1]),
        "current_rms_c": float(rms[2]),
        "current_imbalance_pct": imbalance,
    }
