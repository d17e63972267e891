import math

import pytest

from predmaint.features.iso10816 import ZONE_BOUNDARIES_MM_S, ZONE_CODES, iso_zone, zone_boundaries

# ISO 10816-3 (GUIDE section 5), written out independently of the module's table.
EXPECTED = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}

BOUNDARY_CASES = [
    (group, foundation, boundary, below, above)
    for (group, foundation), bounds in EXPECTED.items()
    for boundary, below, above in zip(bounds, "ABC", "BCD")
]


def test_table_has_exactly_the_four_classes():
    assert ZONE_BOUNDARIES_MM_S == EXPECTED


@pytest.mark.parametrize("group, foundation, boundary, below, above", BOUNDARY_CASES)
def test_every_boundary_just_below_at_and_just_above(group, foundation, boundary, below, above):
    assert iso_zone(boundary - 0.01, group, foundation) == below
    # Reaching a boundary is not exceeding it.
    assert iso_zone(boundary, group, foundation) == below
    assert iso_zone(boundary + 0.01, group, foundation) == above


@pytest.mark.parametrize("group, foundation", list(EXPECTED))
def test_extremes(group, foundation):
    assert iso_zone(0.0, group, foundation) == "A"
    assert iso_zone(1000.0, group, foundation) == "D"


def test_same_velocity_lands_in_different_zones_per_class():
    # 4.0 mm/s: a swapped row or column would move at least one of these.
    assert iso_zone(4.0, 1, "rigid") == "B"
    assert iso_zone(4.0, 1, "flexible") == "B"
    assert iso_zone(4.0, 2, "rigid") == "C"
    assert iso_zone(4.0, 2, "flexible") == "B"
    assert iso_zone(3.0, 1, "flexible") == "A"
    assert iso_zone(3.0, 2, "rigid") == "C"


def test_zone_codes():
    assert ZONE_CODES == {"A": 1, "B": 2, "C": 3, "D": 4}


@pytest.mark.parametrize("group", [0, 3, -1, "1", None, True, 1.5])
def test_bad_group(group):
    with pytest.raises(ValueError, match="group must be 1"):
        iso_zone(1.0, group, "rigid")


@pytest.mark.parametrize("foundation", ["Rigid", "soft", "", None, 1])
def test_bad_foundation(foundation):
    with pytest.raises(ValueError, match="foundation must be 'rigid' or 'flexible'"):
        iso_zone(1.0, 1, foundation)


@pytest.mark.parametrize("velocity", [-0.1, math.nan, math.inf, "2.0", None])
def test_bad_velocity(velocity):
    with pytest.raises(ValueError, match="velocity_rms_mm_s"):
        iso_zone(velocity, 1, "rigid")


def test_zone_boundaries_accessor():
    assert zone_boundaries(1, "flexible") == (3.5, 7.1, 11.0)
