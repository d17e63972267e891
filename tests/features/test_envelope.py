"""Envelope analysis on synthetic bearing signals with known defect lines."""

import numpy as np
import pytest

from predmaint.features.bearing import BearingGeometry, defect_frequencies_hz
from predmaint.features.envelope import envelope_spectrum, line_ratio, select_envelope_band, sideband_ratio
from predmaint.features.spectrum import amplitude_spectrum, peak_near
from predmaint.features.vibration import strongest_defect_line, vibration_features

FS, N = 12800.0, 4096
SHAFT_HZ = 29.95
BEARING = BearingGeometry(9, 0.3126, 1.537, 0.0).multipliers()
LINES = defect_frequencies_hz(BEARING, SHAFT_HZ)


def bearing_signal(defect_hz, *, shaft_mod=0.0, resonance_hz=3000.0, seed=0, n=N, fs=FS):
    """Decaying 3 kHz ring-downs repeated at ``defect_hz`` (1 % timing jitter, as
    slip), optionally amplitude-modulated by the shaft (inner race through the
    load zone), plus a 1 m/s^2 shaft line and 0.3 m/s^2 white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    x = 0.3 * rng.standard_normal(n) + np.sin(2 * np.pi * SHAFT_HZ * t)
    period = 1.0 / defect_hz
    starts = np.arange(-period, t[-1], period)
    starts = starts + rng.normal(0.0, 0.01 * period, starts.size)
    for t0 in starts:
        tau = t - t0
        on = tau >= 0
        gain = 1.0 + shaft_mod * np.cos(2 * np.pi * SHAFT_HZ * t0)
        x[on] += gain * np.exp(-700.0 * tau[on]) * np.sin(2 * np.pi * resonance_hz * tau[on])
    return x


def envelope_of(x, feats):
    band = (feats["env_band_lo_hz"], feats["env_band_hi_hz"])
    return envelope_spectrum(amplitude_spectrum(x, FS), band)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outer_race_impulse_train_peaks_at_bpfo_within_one_bin(seed):
    x = bearing_signal(LINES["bpfo"], seed=seed)
    feats = vibration_features(x, FS, shaft_hz=SHAFT_HZ, bearing=BEARING)
    env = envelope_of(x, feats)
    k = 1 + int(np.argmax(env.amplitude[1:]))
    assert abs(k * env.bin_hz - LINES["bpfo"]) <= env.bin_hz
    name, ratio = strongest_defect_line(feats)
    assert name == "bpfo" and ratio > 8
    assert feats["env_bpfo_h2"] > 3 * feats["env_bpfi"]
    assert feats["env_band_lo_hz"] < 3000.0 < feats["env_band_hi_hz"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inner_race_modulated_impulses_read_as_bpfi(seed):
    x = bearing_signal(LINES["bpfi"], shaft_mod=0.8, seed=seed)
    feats = vibration_features(x, FS, shaft_hz=SHAFT_HZ, bearing=BEARING)
    env = envelope_of(x, feats)
    k = 1 + int(np.argmax(env.amplitude[1:]))
    assert abs(k * env.bin_hz - LINES["bpfi"]) <= env.bin_hz
    assert strongest_defect_line(feats)[0] == "bpfi"


def test_configured_band_on_the_resonance_works_and_one_beside_it_does_not():
    x = bearing_signal(LINES["bpfo"])
    config = dict(shaft_hz=SHAFT_HZ, bearing=BEARING)
    on = vibration_features(x, FS, envelope_band_hz=(2000, 4500), **config)
    off = vibration_features(x, FS, envelope_band_hz=(5200, 6400), **config)
    assert strongest_defect_line(on)[0] == "bpfo"
    assert on["env_bpfo_ratio"] > 3 * off["env_bpfo_ratio"]
    # The reported band is the configured one, snapped to bins.
    assert on["env_band_lo_hz"] == pytest.approx(2000, abs=FS / N)
    assert on["env_band_hi_hz"] == pytest.approx(4500, abs=FS / N)


def test_auto_band_finds_a_resonance_that_is_not_at_3khz():
    x = bearing_signal(LINES["bpfo"], resonance_hz=5000.0)
    lo, hi = select_envelope_band(amplitude_spectrum(x, FS), min_lo_hz=1000, min_width_hz=1000)
    assert lo < 5000.0 < hi


def test_healthy_signal_has_no_standout_line():
    rng = np.random.default_rng(11)
    t = np.arange(N) / FS
    x = 0.3 * rng.standard_normal(N) + np.sin(2 * np.pi * SHAFT_HZ * t)
    feats = vibration_features(x, FS, shaft_hz=SHAFT_HZ, bearing=BEARING)
    assert max(feats[f"env_{k}_ratio"] for k in ("bpfo", "bpfi", "bsf", "2bsf", "ftf")) < 4


def test_am_carrier_envelope_amplitude_is_the_modulation_depth():
    t = np.arange(N) / FS
    x = (1.0 + 0.4 * np.cos(2 * np.pi * 107.0 * t)) * np.sin(2 * np.pi * 3000.0 * t)
    env = envelope_spectrum(amplitude_spectrum(x, FS), (2000.0, 4000.0), max_line_hz=250.0)
    f, a = peak_near(env.amplitude, env.bin_hz, 107.0, 0.03)
    assert f == pytest.approx(107.0, abs=0.1)
    assert a == pytest.approx(0.4, rel=0.01)
    # The mean envelope (1.0) was removed: nothing leaks into the cage-line region.
    assert env.amplitude[1:6].max() < 0.01


def am_envelope(sidebands, seed=0):
    """A 3 kHz carrier whose envelope holds a 141 Hz line (0.3) and the given (frequency, amplitude) lines."""
    t = np.arange(N) / FS
    envelope = 1.0 + 0.3 * np.cos(2 * np.pi * 141.0 * t)
    for f, a in sidebands:
        envelope += a * np.cos(2 * np.pi * f * t)
    x = envelope * np.sin(2 * np.pi * 3000.0 * t) + 0.05 * np.random.default_rng(seed).standard_normal(N)
    return envelope_spectrum(amplitude_spectrum(x, FS), (2000.0, 4000.0), max_line_hz=400.0)


def test_sideband_ratio_reads_the_weaker_of_a_modulation_pair():
    pair = am_envelope([(129.0, 0.15), (153.0, 0.1)])  # 141 +/- 12 Hz, the upper one weaker
    lower, upper = line_ratio(pair, 129.0, 0.01)[2], line_ratio(pair, 153.0, 0.01)[2]
    assert upper < lower
    assert sideband_ratio(pair, 141.0, 12.0, 0.03) == pytest.approx(upper)
    assert upper > 10  # a clear pair, far above noise (about 1.1)
    # The carrier search allows slip: sidebands are looked for around where the line is found.
    assert sideband_ratio(pair, 139.0, 12.0, 0.03) == pytest.approx(upper)


def test_one_line_beside_a_carrier_is_not_a_sideband_pair():
    single = am_envelope([(129.0, 0.15)])
    assert line_ratio(single, 129.0, 0.01)[2] > 10
    assert sideband_ratio(single, 141.0, 12.0, 0.03) < 3
    # Sidebands at another spacing (a shaft line at 30 Hz) are not FTF sidebands.
    assert sideband_ratio(am_envelope([(111.0, 0.15), (171.0, 0.15)]), 141.0, 12.0, 0.03) < 3


def test_sideband_spacing_must_lie_below_the_carrier():
    env = am_envelope([])
    for spacing in (0.0, 141.0, float("nan")):
        with pytest.raises(ValueError, match="sideband spacing"):
            sideband_ratio(env, 141.0, spacing, 0.03)


def test_line_ratio_floor_excludes_the_line_and_uses_the_median():
    a = np.ones(200)
    a[100] = 8.0
    a[70] = 50.0  # a neighbouring line inside the floor neighbourhood
    from predmaint.features.envelope import EnvelopeSpectrum

    freq, amp, ratio = line_ratio(EnvelopeSpectrum(a, 1.0, 0.0, 1.0), 100.0, 0.03)
    assert (freq, amp, ratio) == (100.0, 8.0, 8.0)


def test_envelope_band_validation():
    s = amplitude_spectrum(bearing_signal(LINES["bpfo"]), FS)
    for band in [(0.0, 1000.0), (3000.0, 2000.0), (1000.0, 7000.0), ("a", "b"), (1.0,)]:
        with pytest.raises(ValueError, match="envelope band"):
            envelope_spectrum(s, band)
    with pytest.raises(ValueError, match="fewer than 2 bins"):
        envelope_spectrum(s, (3000.0, 3001.0))


def test_no_candidate_band_is_an_error():
    s = amplitude_spectrum(bearing_signal(LINES["bpfo"]), FS)
    with pytest.raises(ValueError, match="no envelope band candidate"):
        select_envelope_band(s, min_lo_hz=5000.0, min_width_hz=4000.0)
