import math

import numpy as np
import pytest

from predmaint.features.temperature import temperature_features


def test_known_ramp():
    t = np.arange(0.0, 3600.0, 60.0)  # one reading a minute for an hour
    f = temperature_features(t, 35.0 + 0.25 * t / 60.0)
    assert set(f) == {"temp_level_c", "temp_rate_c_per_min"}
    assert f["temp_rate_c_per_min"] == pytest.approx(0.25, rel=1e-9)
    assert f["temp_level_c"] == pytest.approx(35.0 + 0.25 * 29.5, rel=1e-9)


def test_unix_times_irregular_unsorted_and_noisy():
    rng = np.random.default_rng(5)
    t = 1.7e9 + np.sort(rng.uniform(0, 1800, 200))
    v = 60.0 - 0.1 * (t - t[0]) / 60.0 + rng.normal(0, 0.05, t.size)
    order = rng.permutation(t.size)
    f = temperature_features(t[order], v[order])
    assert f["temp_rate_c_per_min"] == pytest.approx(-0.1, abs=0.003)


def test_flat_temperature_and_ambient():
    f = temperature_features([0, 10, 20], [40.0, 40.0, 40.0], ambient_c=22.5)
    assert f == {"temp_level_c": 40.0, "temp_rate_c_per_min": 0.0, "temp_rise_over_ambient_c": 17.5}


@pytest.mark.parametrize(
    "times, values, kwargs, match",
    [
        ([0, 1, 2], [1.0, 2.0], {}, "same length"),
        ([5, 5, 5], [1.0, 2.0, 3.0], {}, "two distinct times"),
        ([0], [1.0], {}, "at least 2"),
        ([0, 1], [1.0, math.nan], {}, "NaN"),
        ([0, 1], [1.0, 2.0], {"ambient_c": math.nan}, "ambient_c"),
        ([0, 1], [1.0, 2.0], {"ambient_c": "20"}, "ambient_c"),
    ],
)
def test_bad_input(times, values, kwargs, match):
    with pytest.raises(ValueError, match=match):
        temperature_features(times, values, **kwargs)
