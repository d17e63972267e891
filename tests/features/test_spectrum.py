import math

import numpy as np
import pytest

from predmaint.features.spectrum import (
    amplitude_spectrum,
    band_bins,
    band_rms,
    hann_window,
    peak_near,
    rfft_frequencies,
    search_bins,
)

FS, N = 12800.0, 4096


def tone(freq, amp=1.0, n=N, fs=FS, phase=0.3):
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / fs + phase)


def test_frequency_axis():
    s = amplitude_spectrum(tone(100.0), FS)
    assert s.bin_hz == FS / N
    assert s.amplitude.size == N // 2 + 1
    np.testing.assert_allclose(s.frequencies_hz, rfft_frequencies(N, FS))
    assert s.frequencies_hz[-1] == FS / 2


@pytest.mark.parametrize("freq", [50.0, 51.5625, 123.4, 1000.0, 3001.7])
@pytest.mark.parametrize("amp", [0.2, 7.0])
def test_peak_amplitude_and_frequency_of_a_tone_anywhere_between_bins(freq, amp):
    s = amplitude_spectrum(tone(freq, amp), FS)
    f, a = peak_near(s.amplitude, s.bin_hz, freq, 0.03)
    assert a == pytest.approx(amp, rel=0.005)
    assert f == pytest.approx(freq, abs=0.05 * s.bin_hz)


def test_uncorrected_bin_shows_the_scalloping_the_interpolation_removes():
    # Half-way between bins the largest Hann bin reads 0.849 of the amplitude.
    freq = 50.5 * FS / N
    s = amplitude_spectrum(tone(freq), FS)
    assert s.amplitude[50] == pytest.approx(0.8488, abs=0.002)
    assert peak_near(s.amplitude, s.bin_hz, freq, 0.0)[1] == pytest.approx(1.0, rel=0.002)


def test_dc_offset_is_removed():
    s = amplitude_spectrum(tone(200.0) + 50.0, FS)
    assert s.amplitude[0] < 1e-9
    assert s.amplitude[1] < 1e-9


def test_peak_search_stays_inside_its_window():
    s = amplitude_spectrum(tone(300.0, 5.0) + tone(100.0, 0.5), FS)
    f, a = peak_near(s.amplitude, s.bin_hz, 100.0, 0.03)
    assert a == pytest.approx(0.5, rel=0.01)
    assert f == pytest.approx(100.0, abs=0.1)


def test_search_window_is_at_least_one_bin_each_side():
    assert search_bins(2049, 3.125, 12.5, 0.0) == (3, 5)
    assert search_bins(2049, 3.125, 1000.0, 0.03) == (310, 330)
    assert search_bins(2049, 3.125, 2.0, 0.03)[0] == 1  # never DC


def test_search_above_nyquist_is_an_error():
    with pytest.raises(ValueError, match="above the highest frequency"):
        search_bins(2049, 3.125, 6400.0, 0.03)


def test_band_rms_of_tones_and_noise():
    x = tone(500.0, 2.0) + tone(2000.0, 1.0)
    s = amplitude_spectrum(x, FS)
    a, df = s.amplitude, s.bin_hz
    assert band_rms(a, df, 400, 600) == pytest.approx(2.0 / math.sqrt(2), rel=0.002)
    assert band_rms(a, df, 1500, 2500) == pytest.approx(1.0 / math.sqrt(2), rel=0.002)
    assert band_rms(s.amplitude, s.bin_hz, 0, FS / 2) == pytest.approx(np.std(x), rel=0.005)
    assert band_rms(s.amplitude, s.bin_hz, 800, 1200) < 1e-3


def test_band_rms_of_white_noise_splits_by_bandwidth():
    x = np.random.default_rng(7).standard_normal(65536)
    s = amplitude_spectrum(x, FS)
    total = band_rms(s.amplitude, s.bin_hz, 0, FS / 2)
    quarter = band_rms(s.amplitude, s.bin_hz, 1600, 3200)
    assert total == pytest.approx(np.std(x), rel=0.01)
    assert quarter == pytest.approx(np.std(x) / 2, rel=0.03)


def test_band_bins():
    assert band_bins(2049, 3.125, 10.0, 1000.0) == (4, 320)
    assert band_bins(2049, 3.125, 0.0, 1e9) == (1, 2048)


def test_hann_window_is_periodic_cached_and_read_only():
    w = hann_window(8)
    assert w is hann_window(8)
    assert w.sum() == pytest.approx(4.0)
    assert w[0] == 0.0 and w[4] == 1.0
    with pytest.raises(ValueError):
        w[0] = 1.0


@pytest.mark.parametrize(
    "x, fs, match",
    [
        (np.ones((8, 2)), FS, "1-D"),
        (np.ones(4), FS, "at least 8"),
        (np.r_[np.ones(9), np.nan], FS, "NaN"),
        (np.ones(16), 0.0, "sample_rate_hz"),
        (["a"] * 16, FS, "numeric"),
    ],
)
def test_bad_input(x, fs, match):
    with pytest.raises(ValueError, match=match):
        amplitude_spectrum(x, fs)


def test_bad_band():
    a = amplitude_spectrum(tone(100.0), FS).amplitude
    with pytest.raises(ValueError, match="0 <= lo < hi"):
        band_rms(a, FS / N, 500.0, 400.0)
