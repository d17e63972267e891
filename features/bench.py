"""Cost of the per-window vibration feature set, for ``make bench``.

:func:`feature_cost_us` times :func:`predmaint.features.vibration.vibration_features` on
the configuration the pipeline runs: shaft speed, bearing multipliers, ISO
class and three bands, with the envelope band chosen automatically. The signal
is seeded noise plus a 30 Hz line and a train of 3 kHz impacts at BPFO, so the
work done matches a real window. The figure depends on the machine and on
what else runs on it: compare medians from the same host.
"""

from __future__ import annotations

import time
from typing import TypedDict

import numpy as np

from predmaint.features.bearing import BearingGeometry, DefectMultipliers
from predmaint.features.vibration import vibration_features

__all__ = ["feature_cost_us"]

# SKF 6205 (CWRU drive end) at 1797 rpm: a realistic bearing and speed.
_BEARING = BearingGeometry(9, 0.3126, 1.537, 0.0).multipliers()
_SHAFT_HZ = 1797.0 / 60.0
_BANDS_HZ = ((10.0, 1000.0), (1000.0, 3000.0), (3000.0, 5000.0))
_WARMUP_CALLS = 20


class _Options(TypedDict):
    """The keyword arguments passed to :func:`vibration_features`."""

    shaft_hz: float
    bearing: DefectMultipliers
    iso_group: int
    iso_foundation: str
    bands_hz: tuple[tuple[float, float], ...]


def _test_signal(n: int, fs: float) -> np.ndarray:
    rng = np.random.default_rng(20240601)
    t = np.arange(n) / fs
    x = 0.5 * rng.standard_normal(n) + 2.0 * np.sin(2 * np.pi * _SHAFT_HZ * t)
    period = 1.0 / (_BEARING.bpfo * _SHAFT_HZ)
    tau = np.mod(t, period)
    x += 3.0 * np.exp(-tau * 900.0) * np.sin(2 * np.pi * 3000.0 * tau)
    return x


def feature_cost_us(n: int = 4096, fs: float = 12800.0, repeats: int = 200) -> float:
    """Median wall time of one :func:`vibration_features` call, in microseconds.

    Parameters
    ----------
    n : int
        Window length in samples, >= 256.
    fs : float
        Sample rate in Hz, > 2 kHz.
    repeats : int
        Timed calls, >= 1 (after a short untimed warm-up that fills caches).

    Returns
    -------
    float
        Median microseconds per call.

    Examples
    --------
    >>> feature_cost_us(repeats=3) > 0
    True
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    x = _test_signal(int(n), float(fs))
    kwargs = _Options(
        shaft_hz=_SHAFT_HZ,
        bearing=_BEARING,
        iso_group=2,
        iso_foundation="rigid",
        bands_hz=_BANDS_HZ,
    )
    for _ in range(_WARMUP_CALLS):
        vibration_features(x, fs, **kwargs)
    times = np.empty(repeats)
    clock = time.perf_counter
    for i in range(repeats):
        start = clock()
        vibration_features(x, fs, **kwargs)
        times[i] = clock() - start
    return float(np.median(times) * 1e6)
