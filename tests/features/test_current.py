import math

import numpy as np
import pytest

from predmaint.features.current import current_features


def test_rms_readings_nema_unbalance():
    # NEMA MG-1 worked example style: 10, 10, 11 A -> mean 10.333, max dev 0.667.
    f = current_features(np.tile([10.0, 10.0, 11.0], (5, 1)))
    assert f["current_rms_a"] == pytest.approx(10.0)
    assert f["current_rms_b"] == pytest.approx(10.0)
    assert f["current_rms_c"] == pytest.approx(11.0)
    assert f["current_imbalance_pct"] == pytest.approx(0.6667 / 10.3333 * 100, rel=1e-3)


def test_deviation_below_the_mean_counts_too():
    # 10, 10, 7: mean 9, largest deviation is phase C, 2 A below -> 22.2 %.
    f = current_features([[10.0, 10.0, 7.0]])
    assert f["current_imbalance_pct"] == pytest.approx(200.0 / 9.0)


def test_balanced_phases():
    assert current_features([[12.0, 12.0, 12.0]])["current_imbalance_pct"] == pytest.approx(0.0)


def test_waveforms():
    t = np.arange(2000) / 2000.0  # 50 cycles of 50 Hz
    w = 2 * np.pi * 50 * t
    x = np.column_stack([
        10 * math.sqrt(2) * np.sin(w),
        10 * math.sqrt(2) * np.sin(w - 2 * np.pi / 3),
        9 * math.sqrt(2) * np.sin(w + 2 * np.pi / 3),
    ])
    f = current_features(x)
    rms = (f["current_rms_a"], f["current_rms_b"], f["current_rms_c"])
    assert rms == pytest.approx((10, 10, 9))
    assert f["current_imbalance_pct"] == pytest.approx((2 / 3) / (29 / 3) * 100)


def test_successive_rms_readings_combine_in_power():
    f = current_features([[3.0, 3.0, 3.0], [4.0, 4.0, 4.0]])
    assert f["current_rms_a"] == pytest.approx(math.sqrt(12.5))


def test_stopped_motor_has_undefined_unbalance():
    f = current_features(np.zeros((4, 3)))
    assert f["current_rms_a"] == 0.0 and math.isnan(f["current_imbalance_pct"])


@pytest.mark.parametrize(
    "x, match",
    [
        (np.ones((5, 2)), "shape"),
        (np.ones(3), "shape"),
        (np.ones((0, 3)), "shape"),
        ([[1.0, math.inf, 1.0]], "NaN or infinite"),
        ([["a", "b", "c"]], "numeric"),
    ],
)
def test_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        current_features(x)
