import math

from predmaint.features.bench import feature_cost_us


def test_feature_cost_is_measured():
    # Speed itself is reported by `make bench`, never asserted in tests.
    cost = feature_cost_us(repeats=5)
    assert math.isfinite(cost) and cost > 0
