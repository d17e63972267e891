import math

import numpy as np
import pytest

from predmaint.features.bearing import BearingGeometry
from predmaint.features.vibration import ENVELOPE_LINES, strongest_defect_line, vibration_features

FS, N = 12800.0, 4096
T = np.arange(N) / FS
BEARING = BearingGeometry(9, 0.3126, 1.537, 0.0).multipliers()

TIME_KEYS = {
    "accel_rms", "accel_peak", "accel_peak_to_peak", "crest_factor", "kurtosis", "skewness"
}
BASE_KEYS = TIME_KEYS | {"velocity_rms_mm_s", "dominant_freq_hz"}
ENV_KEYS = {f"env_{k}{s}" for k in ENVELOPE_LINES for s in ("", "_h2", "_ratio")} | {
    "env_2bsf_sb_ratio",
    "env_band_lo_hz",
    "env_band_hi_hz",
}


def accel_for_velocity(freq_hz, velocity_mm_s, t=T, phase=0.4):
    """Acceleration (m/s^2) whose velocity is a sine of the given peak (mm/s)."""
    w = 2 * np.pi * freq_hz
    return velocity_mm_s / 1000.0 * w * np.cos(w * t + phase)


@pytest.mark.parametrize("freq_hz", [25.0, 50.0, 123.4, 500.0, 950.0])
def test_velocity_rms_of_a_sine_within_2_percent(freq_hz):
    f = vibration_features(accel_for_velocity(freq_hz, 5.0), FS)
    assert f["velocity_rms_mm_s"] == pytest.approx(5.0 / math.sqrt(2), rel=0.02)


def test_velocity_rms_excludes_frequencies_outside_10_to_1000_hz():
    t = np.arange(12800) / FS  # 1 s: 1 Hz bins, so a 3 Hz tone is clear of the band
    in_band = accel_for_velocity(50.0, 5.0, t)
    out_of_band = (
        accel_for_velocity(3.0, 50.0, t)
        + accel_for_velocity(1500.0, 20.0, t)
        + accel_for_velocity(2500.0, 50.0, t)
    )
    both = vibration_features(in_band + out_of_band, FS)["velocity_rms_mm_s"]
    assert both == pytest.approx(5.0 / math.sqrt(2), rel=0.02)
    assert vibration_features(out_of_band, FS)["velocity_rms_mm_s"] < 0.01


def test_velocity_rms_of_two_tones_adds_in_power():
    a = accel_for_velocity(40.0, 3.0) + accel_for_velocity(300.0, 4.0)
    velocity = vibration_features(a, FS)["velocity_rms_mm_s"]
    assert velocity == pytest.approx(5.0 / math.sqrt(2), rel=0.02)


def test_shaft_order_amplitudes():
    shaft = 29.95
    a = (
        accel_for_velocity(shaft, 4.0)
        + accel_for_velocity(2 * shaft, 2.0, phase=1.0)
        + accel_for_velocity(3 * shaft, 1.0, phase=2.0)
    )
    f = vibration_features(a, FS, shaft_hz=shaft)
    assert f["amp_1x"] == pytest.approx(4.0, rel=0.02)
    assert f["amp_2x"] == pytest.approx(2.0, rel=0.02)
    assert f["amp_3x"] == pytest.approx(1.0, rel=0.02)


def test_dominant_frequency_excludes_dc():
    a = 100.0 + 0.5 * np.sin(2 * np.pi * 1234.5 * T) + 0.1 * np.sin(2 * np.pi * 200 * T)
    assert vibration_features(a, FS)["dominant_freq_hz"] == pytest.approx(1234.5, abs=0.3)


def test_bands_are_named_and_measured():
    a = 2.0 * np.sin(2 * np.pi * 500 * T) + 1.0 * np.sin(2 * np.pi * 2000.3 * T)
    f = vibration_features(a, FS, bands_hz=((10.0, 1000.0), (1000.5, 2500.0), (3000, 6400)))
    assert f["band_10_1000_hz_rms"] == pytest.approx(math.sqrt(2), rel=0.01)
    assert f["band_1000_2500_hz_rms"] == pytest.approx(1 / math.sqrt(2), rel=0.01)
    assert f["band_3000_6400_hz_rms"] < 1e-3


@pytest.mark.parametrize(
    "group, foundation, zone",
    [(1, "rigid", 2.0), (1, "flexible", 1.0), (2, "rigid", 3.0), (2, "flexible", 2.0)],
)
def test_iso_zone_code_from_velocity(group, foundation, zone):
    # 3.2 mm/s RMS sits in a different zone for each machine class.
    a = accel_for_velocity(50.0, 3.2 * math.sqrt(2))
    f = vibration_features(a, FS, iso_group=group, iso_foundation=foundation)
    assert f["velocity_rms_mm_s"] == pytest.approx(3.2, rel=0.01)
    assert f["iso_zone"] == zone


def test_key_sets_per_configuration():
    x = np.random.default_rng(0).standard_normal(N)
    assert set(vibration_features(x, FS)) == BASE_KEYS
    orders = {"amp_1x", "amp_2x", "amp_3x"}
    assert set(vibration_features(x, FS, shaft_hz=30.0)) == BASE_KEYS | orders
    iso = vibration_features(x, FS, iso_group=1, iso_foundation="rigid")
    assert set(iso) == BASE_KEYS | {"iso_zone"}
    full = vibration_features(
        x, FS, shaft_hz=30.0, bearing=BEARING, iso_group=2, iso_foundation="flexible",
        bands_hz=((10, 1000), (1000, 2500), (2500, 5000)),
    )
    assert set(full) == (
        BASE_KEYS
        | orders
        | {"iso_zone"}
        | {"band_10_1000_hz_rms", "band_1000_2500_hz_rms", "band_2500_5000_hz_rms"}
        | ENV_KEYS
    )
    assert all(isinstance(v, float) and math.isfinite(v) for v in full.values())


def test_flat_signal_does_not_raise():
    f = vibration_features(np.zeros(N), FS, shaft_hz=30.0, bearing=BEARING)
    assert f["accel_rms"] == 0.0 and f["velocity_rms_mm_s"] == 0.0
    assert math.isnan(f["kurtosis"]) and math.isnan(f["dominant_freq_hz"])
    assert f["env_bpfo"] == 0.0 and f["env_bpfo_ratio"] == 0.0


def test_strongest_defect_line():
    assert strongest_defect_line({"accel_rms": 1.0}) is None
    assert strongest_defect_line({"env_bpfo_ratio": math.nan}) is None
    f = {"env_bpfo_ratio": 2.0, "env_bpfi_ratio": 2.5, "env_bsf_ratio": 1.0,
         "env_2bsf_ratio": 7.0, "env_ftf_ratio": math.nan}
    assert strongest_defect_line(f) == ("2bsf", 7.0)
    assert strongest_defect_line({"env_bpfo_ratio": 3.0, "env_bpfi_ratio": 3.0}) == ("bpfo", 3.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(iso_group=1), "both iso_group and iso_foundation"),
        (dict(iso_foundation="rigid"), "both iso_group and iso_foundation"),
        (dict(iso_group=3, iso_foundation="rigid"), "group must be 1"),
        (dict(iso_group=1, iso_foundation="concrete"), "foundation"),
        (dict(bearing=BEARING), "bearing needs shaft_hz"),
        (dict(shaft_hz=30.0, bearing=BearingGeometry(9, 0.3126, 1.537)), "DefectMultipliers"),
        (dict(shaft_hz=-30.0), "shaft_hz"),
        (dict(slip_tolerance=0.6), "slip_tolerance"),
        (dict(bands_hz=((100, 50),)), "0 <= lo < hi"),
        (dict(bands_hz=((100, 7000),)), "Nyquist"),
        (dict(bands_hz=((100.2, 200), (100.7, 200))), "two bands named band_100_200_hz_rms"),
        (dict(bands_hz=(100, 200)), "pair"),
        (dict(shaft_hz=30.0, bearing=BEARING, envelope_band_hz=(3000, 3100)), "narrower than"),
        (dict(shaft_hz=30.0, bearing=BEARING, envelope_band_hz=(3000, 9000)), "Nyquist"),
    ],
)
def test_configuration_errors(kwargs, match):
    x = np.random.default_rng(0).standard_normal(N)
    with pytest.raises(ValueError, match=match):
        vibration_features(x, FS, **kwargs)


@pytest.mark.parametrize(
    "x, fs, match",
    [
        (np.ones(100), FS, "at least 256"),
        (np.ones((N, 2)), FS, "1-D"),
        (np.r_[np.ones(N - 1), np.nan], FS, "NaN"),
        (np.ones(N), 1500.0, "must exceed 2000 Hz"),
        (np.ones(N), -1.0, "sample_rate_hz"),
    ],
)
def test_input_errors(x, fs, match):
    with pytest.raises(ValueError, match=match):
        vibration_features(x, fs)


def test_low_sample_rate_cannot_place_an_envelope_band():
    x = np.random.default_rng(0).standard_normal(N)
    with pytest.raises(ValueError, match="no envelope band candidate"):
        # BPFI at 3600 rpm is 325 Hz: the band must be >= 1 kHz wide, above 1 kHz.
        vibration_features(x, 2400.0, shaft_hz=60.0, bearing=BEARING)
