"""Hann-windowed amplitude spectra and the measurements taken from them.

Every frequency-domain feature in this package goes through these helpers, so
windowing, scaling, peak picking and band RMS are done one way only.

Conventions
-----------
* Window: periodic Hann, ``w[t] = 0.5 - 0.5 cos(2 pi t / n)``. Its coherent
  gain is 0.5 and its equivalent noise bandwidth is exactly 1.5 bins.
* Amplitude: single-sided *peak* amplitude in the signal's unit,
  ``2 |X[k]| / sum(w)``, so a sine of amplitude ``a`` on a bin reads ``a``.
  The DC and Nyquist bins are not doubled.
* The mean is removed before windowing: an accelerometer offset is sensor bias,
  and its window leakage would otherwise sit in bin 1.
* Peak amplitude: the largest bin in the search window, corrected for the Hann
  scalloping loss (up to 1.42 dB between bins) by interpolating on the two
  neighbours, so a sine reads its amplitude wherever it falls. The correction
  assumes a tone: on a noise-only window it can raise the reading by up to
  18 %, the same way in every window.
* Band RMS: Parseval on the windowed spectrum, ``sqrt(sum(a**2) / (2 * 1.5))``
  over the bins whose centre lies in ``[lo, hi]``. A tone within about two bins
  of a band edge is partly counted, because the Hann main lobe is four bins wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from predmaint.features._checks import as_signal, positive

__all__ = [
    "HANN_ENBW_BINS",
    "Spectrum",
    "amplitude_spectrum",
    "band_bins",
    "band_rms",
    "hann_window",
    "interpolated_peak",
    "peak_near",
    "rfft_frequencies",
    "rms_of_bins",
    "search_bins",
]

#: Equivalent noise bandwidth of the periodic Hann window, in bins.
HANN_ENBW_BINS = 1.5


@lru_cache(maxsize=32)
def hann_window(n: int) -> np.ndarray:
    """Periodic (DFT-even) Hann window of length ``n``, read-only and cached.

    Examples
    --------
    >>> hann_window(4)
    array([0. , 0.5, 1. , 0.5])
    """
    if n < 1:
        raise ValueError(f"window length must be >= 1, got {n}")
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    # Cached and shared between calls: make accidental in-place edits fail loudly.
    w.flags.writeable = False
    return w


def rfft_frequencies(n: int, sample_rate_hz: float) -> np.ndarray:
    """Bin centre frequencies (Hz) of the real FFT of ``n`` samples.

    Examples
    --------
    >>> rfft_frequencies(8, 8.0)
    array([0., 1., 2., 3., 4.])
    """
    return np.arange(n // 2 + 1) * (positive(sample_rate_hz, "sample_rate_hz") / n)


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Single-sided spectrum of a Hann-windowed, mean-removed signal.

    Attributes
    ----------
    bins : numpy.ndarray
        Complex ``rfft`` of the windowed signal (kept for envelope analysis).
    amplitude : numpy.ndarray
        Peak amplitude per bin, in the signal's unit.
    sample_rate_hz : float
        Sample rate of the signal.
    n_samples : int
        Number of samples transformed.
    """

    bins: np.ndarray
    amplitude: np.ndarray
    sample_rate_hz: float
    n_samples: int

    @property
    def bin_hz(self) -> float:
        """Frequency resolution in Hz."""
        return self.sample_rate_hz / self.n_samples

    @property
    def frequencies_hz(self) -> np.ndarray:
        """Bin centre frequencies in Hz."""
        return np.arange(self.amplitude.size) * self.bin_hz


def amplitude_spectrum(x, sample_rate_hz: float) -> Spectrum:
    """Hann-windowed single-sided peak-amplitude spectrum of ``x``.

    Parameters
    ----------
    x : array_like
        1-D signal, at least 8 samples.
    sample_rate_hz : float
        Sample rate in Hz.

    Returns
    -------
    Spectrum

    Examples
    --------
    A 2.0-amplitude sine at 50 Hz (an exact bin) reads 2.0 at 50 Hz:

    >>> fs, n = 1000.0, 1000
    >>> t = np.arange(n) / fs
    >>> s = amplitude_spectrum(2.0 * np.sin(2 * np.pi * 50 * t) + 7.0, fs)
    >>> s.bin_hz, round(float(s.amplitude[50]), 6), round(float(s.amplitude[0]), 6)
    (1.0, 2.0, 0.0)
    """
    arr = as_signal(x, "x", min_samples=8)
    fs = positive(sample_rate_hz, "sample_rate_hz")
    return _spectrum_of_centred(arr - arr.mean(), fs)


def _spectrum_of_centred(d: np.ndarray, fs: float) -> Spectrum:
    # Split out so vibration_features, which has already validated and centred
    # the signal for the time-domain statistics, does neither twice.
    n = d.size
    bins = np.fft.rfft(d * hann_window(n))
    amplitude = np.abs(bins)
    amplitude *= 2.0 / (0.5 * n)  # sum of a periodic Hann window is n / 2
    amplitude[0] *= 0.5
    if n % 2 == 0:
        amplitude[-1] *= 0.5
    return Spectrum(bins=bins, amplitude=amplitude, sample_rate_hz=fs, n_samples=n)


def search_bins(
    n_bins: int, bin_hz: float, target_hz: float, rel_tolerance: float
) -> tuple[int, int]:
    """Inclusive bin range covering ``target_hz * (1 +/- rel_tolerance)``.

    The range is widened to at least one bin either side of the target, so a
    tolerance narrower than the resolution still finds a line between bins.
    Bin 0 (DC) is never included.

    Examples
    --------
    >>> search_bins(2049, 3.125, 107.3, 0.03)
    (33, 36)
    >>> search_bins(2049, 3.125, 11.9, 0.03)
    (3, 5)
    """
    if not (math.isfinite(target_hz) and target_hz > 0.0):
        raise ValueError(f"target frequency must be finite and > 0, got {target_hz!r}")
    if not (math.isfinite(rel_tolerance) and 0.0 <= rel_tolerance < 1.0):
        raise ValueError(f"tolerance must be in [0, 1), got {rel_tolerance!r}")
    centre = target_hz / bin_hz
    lo = min(math.floor(centre * (1.0 - rel_tolerance)), round(centre) - 1)
    hi = max(math.ceil(centre * (1.0 + rel_tolerance)), round(centre) + 1)
    lo = max(lo, 1)
    if hi > n_bins - 1:
        raise ValueError(
            f"{target_hz:.6g} Hz (+{rel_tolerance:.0%}) lies above the highest "
            f"frequency of the spectrum ({(n_bins - 1) * bin_hz:.6g} Hz)"
        )
    return lo, hi


def peak_near(
    amplitude: np.ndarray, bin_hz: float, target_hz: float, rel_tolerance: float
) -> tuple[float, float]:
    """Frequency and amplitude of the highest peak near ``target_hz``.

    Parameters
    ----------
    amplitude : numpy.ndarray
        Hann-windowed peak-amplitude spectrum (any unit), bin 0 at DC.
    bin_hz : float
        Bin width in Hz.
    target_hz : float
        Expected line frequency in Hz.
    rel_tolerance : float
        Search ``target_hz * (1 +/- rel_tolerance)``, at least +/- 1 bin.

    Returns
    -------
    (float, float)
        Interpolated frequency (Hz) and scalloping-corrected amplitude.

    Examples
    --------
    A 1.0-amplitude sine half-way between two bins reads 1.0, not 0.85:

    >>> fs, n = 1000.0, 1000
    >>> x = np.sin(2 * np.pi * 100.5 * np.arange(n) / fs)
    >>> f, a = peak_near(amplitude_spectrum(x, fs).amplitude, 1.0, 100.0, 0.03)
    >>> round(f, 2), round(a, 3)
    (100.5, 1.0)
    """
    lo, hi = search_bins(amplitude.size, bin_hz, target_hz, rel_tolerance)
    k = lo + int(amplitude[lo : hi + 1].argmax())
    return interpolated_peak(amplitude, k, bin_hz)


def interpolated_peak(amplitude: np.ndarray, k: int, bin_hz: float) -> tuple[float, float]:
    """Frequency and amplitude of the Hann-windowed tone whose largest bin is ``k``.

    Examples
    --------
    >>> interpolated_peak(np.array([0.0, 0.5, 1.0, 0.5, 0.0]), 2, 10.0)
    (20.0, 1.0)
    """
    # Two-point Hann interpolation (Grandke 1983): for a pure tone at k + d,
    # |X[k+1]| / |X[k]| = (1 + d) / (2 - d), so d = (2a - 1) / (1 + a).
    peak = float(amplitude[k])
    if peak <= 0.0:
        return k * bin_hz, 0.0
    left = float(amplitude[k - 1]) if k > 0 else 0.0
    right = float(amplitude[k + 1]) if k + 1 < amplitude.size else 0.0
    sign = 1.0 if right >= left else -1.0
    ratio = max(right, left) / peak
    # Noise or a neighbouring line can push the estimate outside the half-bin a
    # true local maximum allows; clip rather than extrapolate.
    d = min(max((2.0 * ratio - 1.0) / (1.0 + ratio), 0.0), 0.5)
    # Hann response at offset d, relative to on-bin: sinc(d) / (1 - d^2).
    gain = 1.0 if d == 0.0 else math.sin(math.pi * d) / (math.pi * d) / (1.0 - d * d)
    return (k + sign * d) * bin_hz, peak / gain


def band_rms(amplitude: np.ndarray, bin_hz: float, lo_hz: float, hi_hz: float) -> float:
    """RMS of the part of a Hann-windowed amplitude spectrum in ``[lo_hz, hi_hz]``.

    Parameters
    ----------
    amplitude : numpy.ndarray
        Peak-amplitude spectrum from :func:`amplitude_spectrum` (or derived
        from it bin by bin, e.g. a velocity spectrum).
    bin_hz : float
        Bin width in Hz.
    lo_hz, hi_hz : float
        Band edges in Hz, ``0 <= lo_hz < hi_hz``. DC (bin 0) is never counted.

    Returns
    -------
    float
        RMS in the unit of ``amplitude``.

    Examples
    --------
    A sine of amplitude 1 has RMS 1/sqrt(2) ~ 0.7071; a band that misses it reads ~0:

    >>> fs, n = 1000.0, 1000
    >>> x = np.sin(2 * np.pi * 60.3 * np.arange(n) / fs)
    >>> a = amplitude_spectrum(x, fs).amplitude
    >>> round(band_rms(a, 1.0, 40, 80), 4), round(band_rms(a, 1.0, 200, 300), 4)
    (0.7071, 0.0)
    """
    if not (math.isfinite(lo_hz) and math.isfinite(hi_hz) and 0.0 <= lo_hz < hi_hz):
        raise ValueError(f"band must satisfy 0 <= lo < hi, got ({lo_hz!r}, {hi_hz!r})")
    k_lo, k_hi = band_bins(amplitude.size, bin_hz, lo_hz, hi_hz)
    return rms_of_bins(amplitude[k_lo : k_hi + 1])


def band_bins(n_bins: int, bin_hz: float, lo_hz: float, hi_hz: float) -> tuple[int, int]:
    """Inclusive range of bins whose centre lies in ``[lo_hz, hi_hz]``, DC excluded.

    An empty band gives ``hi < lo``.

    Examples
    --------
    >>> band_bins(2049, 3.125, 10.0, 1000.0)
    (4, 320)
    """
    return max(math.ceil(lo_hz / bin_hz), 1), min(math.floor(hi_hz / bin_hz), n_bins - 1)


def rms_of_bins(amplitude: np.ndarray) -> float:
    """RMS represented by a run of Hann-windowed peak-amplitude bins.

    Examples
    --------
    >>> round(rms_of_bins(np.array([0.5, 1.0, 0.5])), 4)  # an on-bin unit sine
    0.7071
    """
    return math.sqrt(float(np.dot(amplitude, amplitude)) / (2.0 * HANN_ENBW_BINS))
