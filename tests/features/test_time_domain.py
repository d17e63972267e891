import math

import numpy as np
import pytest

from predmaint.features.time_domain import time_domain_features

KEYS = {"accel_rms", "accel_peak", "accel_peak_to_peak", "crest_factor", "kurtosis", "skewness"}


def test_sine():
    t = np.arange(12800) / 12800.0
    f = time_domain_features(3.0 * np.sin(2 * np.pi * 50 * t) + 1.0)  # offset is sensor bias
    assert set(f) == KEYS
    assert f["accel_rms"] == pytest.approx(3.0 / math.sqrt(2), rel=1e-6)
    assert f["accel_peak"] == pytest.approx(3.0, rel=1e-6)
    assert f["accel_peak_to_peak"] == pytest.approx(6.0, rel=1e-6)
    assert f["crest_factor"] == pytest.approx(math.sqrt(2), rel=1e-6)
    assert f["kurtosis"] == pytest.approx(1.5, rel=1e-6)
    assert f["skewness"] == pytest.approx(0.0, abs=1e-9)


def test_gaussian_noise_has_pearson_kurtosis_three():
    x = np.random.default_rng(3).standard_normal(200_000)
    f = time_domain_features(x)
    assert f["kurtosis"] == pytest.approx(3.0, abs=0.05)
    assert f["skewness"] == pytest.approx(0.0, abs=0.02)
    assert f["accel_rms"] == pytest.approx(1.0, rel=0.01)


def test_impacts_raise_kurtosis_and_crest_factor():
    x = 0.1 * np.random.default_rng(4).standard_normal(4096)
    x[::512] += 5.0
    f = time_domain_features(x)
    assert f["kurtosis"] > 20
    assert f["crest_factor"] > 5
    assert f["skewness"] > 2  # one-sided impacts


def test_known_moments_of_a_small_signal():
    # Values 0, 0, 0, 4: mean 1, deviations -1, -1, -1, 3.
    f = time_domain_features([0.0, 0.0, 0.0, 4.0])
    assert f["accel_rms"] == pytest.approx(math.sqrt(3))  # m2 = 12 / 4
    assert f["accel_peak"] == pytest.approx(3.0)
    assert f["kurtosis"] == pytest.approx((3 + 81) / 4 / 9)  # m4 / m2^2
    assert f["skewness"] == pytest.approx((-3 + 27) / 4 / 3 ** 1.5)


def test_constant_signal_has_undefined_shape_statistics():
    f = time_domain_features(np.full(100, 0.1))
    assert f["accel_rms"] == 0.0
    assert f["accel_peak"] == 0.0
    assert f["accel_peak_to_peak"] == 0.0
    assert math.isnan(f["crest_factor"]) and math.isnan(f["kurtosis"]) and math.isnan(f["skewness"])


@pytest.mark.parametrize("x", [[1.0], [[1.0, 2.0]], [1.0, math.inf], []])
def test_bad_input(x):
    with pytest.raises(ValueError):
        time_domain_features(x)
