"""Per-window vibration features from one accelerometer channel.

:func:`vibration_features` turns one window of acceleration (m/s^2) into a flat
``dict[str, float]``. It computes one Hann-windowed FFT and takes every
frequency-domain feature from it (:mod:`predmaint.features.spectrum`,
:mod:`predmaint.features.envelope`); the time-domain statistics come from
:mod:`predmaint.features.time_domain`.

Feature keys
------------
Always present:

======================  =====  ==============================================================
key                     unit   meaning
======================  =====  ==============================================================
``accel_rms``           m/s^2  RMS about the mean (the mean is sensor offset)
``accel_peak``          m/s^2  largest absolute deviation from the mean
``accel_peak_to_peak``  m/s^2  ``max - min``
``crest_factor``        --     ``accel_peak / accel_rms``
``kurtosis``            --     Pearson kurtosis ``m4 / m2**2`` (Gaussian 3, sine 1.5)
``skewness``            --     third standardised moment
``velocity_rms_mm_s``   mm/s   velocity RMS over 10-1000 Hz (the ISO 10816 band), integrated
                               in the frequency domain: each acceleration bin divided by
                               2 pi f, bins outside the band zeroed
``dominant_freq_hz``    Hz     frequency of the largest acceleration line, DC excluded
======================  =====  ==============================================================

Present when configured:

==============================  =====  ======================================================
key                             unit   when / meaning
==============================  =====  ======================================================
``iso_zone``                    --     ``iso_group`` and ``iso_foundation`` given: ISO
                                       10816-3 zone of ``velocity_rms_mm_s``, A..D as 1..4
``amp_1x`` ``amp_2x``           mm/s   ``shaft_hz`` given: velocity peak amplitude at 1, 2,
``amp_3x``                             3 x shaft frequency (+/- 1 %, at least +/- 1 bin)
``band_<lo>_<hi>_hz_rms``       m/s^2  one per ``(lo, hi)`` in ``bands_hz``, edges truncated
                                       to int in the name: acceleration RMS in the band
``env_<line>``                  m/s^2  ``shaft_hz`` and ``bearing`` given: envelope-spectrum
                                       peak amplitude within +/- ``slip_tolerance`` of the
                                       line. ``<line>`` is ``bpfo``, ``bpfi``, ``bsf``,
                                       ``2bsf`` (twice ball spin, where ball faults usually
                                       show) or ``ftf``
``env_<line>_h2``               m/s^2  the same at twice the line frequency
``env_<line>_ratio``            --     ``env_<line>`` over the local envelope-spectrum floor
                                       (median of the 30 bins either side of the search
                                       window, the line's main lobe left out)
``env_2bsf_sb_ratio``           --     the weaker of the two FTF sidebands of the 2 x BSF line
                                       (at its peak +/- FTF) over the local floor: a ball defect
                                       carried through the load zone by the cage raises both
                                       (:func:`~predmaint.features.envelope.sideband_ratio`)
``env_band_lo_hz``              Hz     band that was demodulated: ``envelope_band_hz``
``env_band_hi_hz``                     snapped to bins, or the kurtogram-lite choice
==============================  =====  ======================================================

Reading the numbers
-------------------
* ``velocity_rms_mm_s`` is within 2 % for tones from about 5 bins above 10 Hz
  to 1 kHz (a tone's Hann main lobe spans +/- 2 bins; at 4,096 samples and
  12.8 kHz a bin is 3.125 Hz, so 15 Hz reads 2 % high).
* ``env_<line>_ratio`` on white noise is the largest bin of the search window
  over the floor median: median about 1.5-2, 95th percentile about 3 (300
  noise windows of 4,096 samples; similar at 20,480). At their defect line the
  seeded CWRU faults read about 22 (median of 4,096-sample windows), and the
  failing IMS bearing 11 and 27 on two full 1 s snapshots 3 and 2 days before
  the end of the run (median of their 4,096-sample windows: 4 and 12).
* ``env_2bsf_sb_ratio`` on white and coloured noise: median about 1.1, 95th
  percentile about 1.9, 99.9th 2.6-3.0 (1,000 windows of 4,096 samples at
  12 and 12.8 kHz, 200 of 20,480 at 20.48 kHz).
* A flat-lined (constant) signal gives 0 for the amplitudes and ``nan`` for
  the shape statistics and ``dominant_freq_hz``: undefined, not zero.

The envelope is the envelope spectrum (not squared envelope); see
:mod:`predmaint.features.envelope` for why. Without ``envelope_band_hz`` the band is
chosen per window among half-overlapping bands of width fs/4, fs/8 and fs/16
that are at least 3 x the highest fundamental defect frequency (BPFO, BPFI or
2 x BSF) wide and start at least that high.
"""

from __future__ import annotations

import math
from functools import lru_cache
from numbers import Real

import numpy as np

from predmaint.features._checks import as_signal, band_pair, positive
from predmaint.features.bearing import DefectMultipliers
from predmaint.features.envelope import envelope_line_features, envelope_spectrum, sideband_ratio
from predmaint.features.iso10816 import ZONE_CODES, iso_zone, zone_boundaries
from predmaint.features.spectrum import (
    _spectrum_of_centred,
    band_bins,
    band_rms,
    interpolated_peak,
    peak_near,
    rms_of_bins,
)
from predmaint.features.time_domain import _time_domain_of_centred

__all__ = ["ENVELOPE_LINES", "ISO_BAND_HZ", "strongest_defect_line", "vibration_features"]

#: Velocity band of ISO 10816-3, in Hz.
ISO_BAND_HZ = (10.0, 1000.0)
#: Envelope lines in the order their features are emitted.
ENVELOPE_LINES = ("bpfo", "bpfi", "bsf", "2bsf", "ftf")
# Shaft orders are read at a known speed, so the window is tighter than the
# bearing slip allowance; peak_near widens it to +/- 1 bin anyway.
_ORDER_TOLERANCE = 0.01
# Auto-selected envelope bands must be this many times the highest defect
# fundamental wide (and start at least that high), so the line and its second
# harmonic are inside the envelope spectrum and the band is clear of them.
_BAND_MARGIN = 3.0
_MIN_SAMPLES = 256


def vibration_features(
    acceleration,
    sample_rate_hz: float,
    *,
    shaft_hz: float | None = None,
    bearing: DefectMultipliers | None = None,
    iso_group: int | None = None,
    iso_foundation: str | None = None,
    bands_hz=(),
    envelope_band_hz: tuple[float, float] | None = None,
    slip_tolerance: float = 0.03,
) -> dict[str, float]:
    """Vibration features of one window of acceleration.

    Parameters
    ----------
    acceleration : array_like
        1-D acceleration in m/s^2, at least 256 samples, finite.
    sample_rate_hz : float
        Sample rate in Hz. It must exceed 2 kHz so the ISO band (to 1 kHz) is
        below Nyquist.
    shaft_hz : float, optional
        Shaft rotation frequency in Hz (rpm / 60). Enables ``amp_1x..3x`` and,
        with ``bearing``, the envelope features.
    bearing : DefectMultipliers, optional
        Defect multipliers of the monitored bearing. Requires ``shaft_hz``.
    iso_group : {1, 2}, optional
    iso_foundation : {'rigid', 'flexible'}, optional
        ISO 10816-3 machine class; give both or neither. Enables ``iso_zone``.
    bands_hz : sequence of (float, float), optional
        Acceleration RMS bands in Hz, ``0 <= lo < hi <= fs / 2``; ``None`` or
        empty for none.
    envelope_band_hz : (float, float), optional
        Resonance band to demodulate. ``None`` selects it per window
        (kurtogram-lite). Only used when the envelope features are computed.
    slip_tolerance : float
        Relative search window around each defect frequency, default 3 %.

    Returns
    -------
    dict[str, float]
        See the module docstring for every key, unit and meaning.

    Examples
    --------
    A 50 Hz sine with 10 mm/s peak velocity (RMS 7.07 mm/s):

    >>> fs, n = 12800.0, 4096
    >>> t = np.arange(n) / fs
    >>> w = 2 * np.pi * 50.0
    >>> a = 0.010 * w * np.cos(w * t)  # m/s^2, velocity amplitude 0.010 m/s
    >>> f = vibration_features(a, fs, shaft_hz=50.0, iso_group=2, iso_foundation="rigid")
    >>> round(f["velocity_rms_mm_s"], 1), round(f["amp_1x"], 1), f["iso_zone"]
    (7.1, 10.0, 4.0)
    """
    x = as_signal(acceleration, "acceleration", min_samples=_MIN_SAMPLES)
    fs = positive(sample_rate_hz, "sample_rate_hz")
    nyquist = 0.5 * fs
    if nyquist <= ISO_BAND_HZ[1]:
        raise ValueError(
            f"sample_rate_hz must exceed {2 * ISO_BAND_HZ[1]:.0f} Hz to cover the ISO "
            f"10-1000 Hz velocity band, got {fs:.6g}"
        )
    if isinstance(slip_tolerance, bool) or not (
        isinstance(slip_tolerance, Real) and 0.0 <= slip_tolerance < 0.5
    ):
        raise ValueError(f"slip_tolerance must be in [0, 0.5), got {slip_tolerance!r}")
    if shaft_hz is not None:
        shaft_hz = positive(shaft_hz, "shaft_hz")
    if bearing is not None:
        if not isinstance(bearing, DefectMultipliers):
            raise ValueError(
                f"bearing must be a DefectMultipliers, got {type(bearing).__name__}"
            )
        if shaft_hz is None:
            raise ValueError("bearing needs shaft_hz: defect frequencies scale with speed")
    if (iso_group is None) != (iso_foundation is None):
        raise ValueError("give both iso_group and iso_foundation, or neither")
    if iso_group is not None:
        zone_boundaries(iso_group, iso_foundation)  # fail on a bad class before any work
    bands = _check_bands(bands_hz, nyquist)

    mean = float(x.mean())
    centred = x - mean
    feats = _time_domain_of_centred(centred, mean)
    spec = _spectrum_of_centred(centred, fs)
    amp = spec.amplitude
    bin_hz = spec.bin_hz

    # Velocity = acceleration / (j 2 pi f): the phase does not matter for RMS,
    # so divide the amplitudes; bins outside 10-1000 Hz are left out (zeroed).
    k_lo, k_hi = band_bins(amp.size, bin_hz, *ISO_BAND_HZ)
    feats["velocity_rms_mm_s"] = rms_of_bins(
        amp[k_lo : k_hi + 1] * _mm_s_per_m_s2(k_lo, k_hi, bin_hz)
    )
    if iso_group is not None:
        feats["iso_zone"] = float(
            ZONE_CODES[iso_zone(feats["velocity_rms_mm_s"], iso_group, iso_foundation)]
        )

    k_dom = 1 + int(amp[1:].argmax())
    # A flat-lined sensor has no dominant line; bin 1 would be a made-up answer.
    feats["dominant_freq_hz"] = (
        interpolated_peak(amp, k_dom, bin_hz)[0] if amp[k_dom] > 0.0 else math.nan
    )

    if shaft_hz is not None:
        # Velocity amplitude = acceleration amplitude / (2 pi f) at the line's
        # interpolated frequency; 1x may sit below the ISO band, so no band limit.
        for order in (1, 2, 3):
            f_line, a_line = peak_near(amp, bin_hz, order * shaft_hz, _ORDER_TOLERANCE)
            feats[f"amp_{order}x"] = 1000.0 * a_line / (2.0 * math.pi * f_line)

    for lo, hi, key in bands:
        feats[key] = band_rms(amp, bin_hz, lo, hi)

    if bearing is not None:
        lines = {
            "bpfo": bearing.bpfo * shaft_hz,
            "bpfi": bearing.bpfi * shaft_hz,
            "bsf": bearing.bsf * shaft_hz,
            "2bsf": 2.0 * bearing.bsf * shaft_hz,
            "ftf": bearing.ftf * shaft_hz,
        }
        # The envelope must hold the highest fundamental (with slip) with room
        # to spare, and the band must sit above it.
        clearance = _BAND_MARGIN * max(lines["bpfo"], lines["bpfi"], lines["2bsf"]) * (
            1.0 + slip_tolerance
        )
        if envelope_band_hz is not None:
            _check_envelope_band_width(envelope_band_hz, lines)
        env = envelope_spectrum(
            spec,
            envelope_band_hz,
            min_lo_hz=clearance,
            min_width_hz=clearance,
            max_line_hz=2.0 * max(lines.values()) * (1.0 + slip_tolerance),
        )
        feats.update(envelope_line_features(env, lines, slip_tolerance))
        # A ball defect is struck at 2 x BSF and carried through the load zone
        # by the cage: its line comes with FTF sidebands.
        feats["env_2bsf_sb_ratio"] = sideband_ratio(env, lines["2bsf"], lines["ftf"], slip_tolerance)
    return feats


def _check_envelope_band_width(band_hz, lines: dict[str, float]) -> None:
    lo, hi = band_pair(band_hz, "envelope_band_hz")
    highest = max(lines["bpfo"], lines["bpfi"], lines["2bsf"])
    # The envelope spectrum of a band only reaches the band's width.
    if hi - lo <= highest:
        raise ValueError(
            f"envelope_band_hz ({lo:.6g}-{hi:.6g} Hz) is narrower than the highest defect "
            f"frequency ({highest:.6g} Hz), so its envelope cannot show that line; use a band "
            f"at least {_BAND_MARGIN:g} x that wide"
        )


@lru_cache(maxsize=16)
def _mm_s_per_m_s2(k_lo: int, k_hi: int, bin_hz: float) -> np.ndarray:
    # 1 / (2 pi f) per bin, m -> mm; cached because every window of a stream
    # has the same length and sample rate.
    gain = 1000.0 / (2.0 * np.pi * bin_hz * np.arange(k_lo, k_hi + 1))
    gain.flags.writeable = False
    return gain


def _check_bands(bands_hz, nyquist: float) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    seen: set[str] = set()
    if bands_hz is None:  # a config file's empty entry
        return out
    try:
        items = list(bands_hz)
    except TypeError:
        raise ValueError(
            f"bands_hz must be a sequence of (lo, hi) pairs, got {bands_hz!r}"
        ) from None
    for band in items:
        lo, hi = band_pair(band, "each band")
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi <= nyquist):
            raise ValueError(
                f"band must satisfy 0 <= lo < hi <= {nyquist:.6g} Hz (Nyquist), got {band!r}"
            )
        key = f"band_{int(lo)}_{int(hi)}_hz_rms"
        if key in seen:
            raise ValueError(f"bands_hz has two bands named {key}")
        seen.add(key)
        out.append((lo, hi, key))
    return out


def strongest_defect_line(features: dict) -> tuple[str, float] | None:
    """Name and ratio of the defect line with the largest ``env_<line>_ratio``.

    Parameters
    ----------
    features : dict
        Output of :func:`vibration_features` (or an aggregate of it).

    Returns
    -------
    (str, float) or None
        ``('bpfi', 12.3)`` style; ``None`` when no envelope ratio is present
        (or all are NaN). Ties go to the earlier line in :data:`ENVELOPE_LINES`.

    Examples
    --------
    >>> strongest_defect_line({"env_bpfo_ratio": 2.0, "env_bpfi_ratio": 9.5})
    ('bpfi', 9.5)
    >>> strongest_defect_line({"accel_rms": 1.0}) is None
    True
    """
    best: tuple[str, float] | None = None
    for name in ENVELOPE_LINES:
        value = features.get(f"env_{name}_ratio")
        if value is None or math.isnan(value):
            continue
        if best is None or value > best[1]:
            best = (name, float(value))
    return best
