import math

import pytest

from predmaint.features.bearing import BearingGeometry, DefectMultipliers, defect_frequencies_hz

SKF_6205 = BearingGeometry(
    n_elements=9, ball_diameter=0.3126, pitch_diameter=1.537, contact_angle_deg=0.0
)
REXNORD_ZA2115 = BearingGeometry(16, 0.331, 2.815, 15.17)


def rel(a, b):
    return abs(a - b) / abs(b)


def test_6205_reproduces_cwru_published_multiples():
    m = SKF_6205.multipliers()
    assert rel(m.bpfi, 5.4152) < 0.005
    assert rel(m.bpfo, 3.5848) < 0.005
    assert rel(m.ftf, 0.39828) < 0.005
    # CWRU's "rolling element" 4.7135 is twice the ball spin frequency (SOURCE.md);
    # the GUIDE formula gives the spin frequency itself, ~2.357.
    assert rel(2 * m.bsf, 4.7135) < 0.005
    assert rel(m.bsf, 4.7135 / 2) < 0.005


def test_za2115_at_2000_rpm_matches_ims_published_frequencies():
    f = defect_frequencies_hz(REXNORD_ZA2115.multipliers(), 2000 / 60)
    assert set(f) == {"bpfo", "bpfi", "bsf", "ftf"}
    assert rel(f["bpfo"], 236.4) < 0.005
    assert rel(f["bpfi"], 296.9) < 0.005
    assert rel(f["bsf"], 139.9) < 0.005
    assert rel(f["ftf"], 14.8) < 0.005


def test_kinematic_identities():
    # Independent of the formulas' typing: BPFO + BPFI = N fr and BPFO = N FTF.
    for g in (SKF_6205, REXNORD_ZA2115):
        m = g.multipliers()
        assert math.isclose(m.bpfo + m.bpfi, g.n_elements)
        assert math.isclose(m.bpfo, g.n_elements * m.ftf)


def test_contact_angle_moves_lines_towards_n_over_2():
    flat = BearingGeometry(16, 0.331, 2.815, 0.0).multipliers()
    angled = REXNORD_ZA2115.multipliers()
    assert flat.bpfo < angled.bpfo < 8.0 < angled.bpfi < flat.bpfi


def test_frequencies_scale_with_shaft_speed():
    m = SKF_6205.multipliers()
    f1 = defect_frequencies_hz(m, 10.0)
    f3 = defect_frequencies_hz(m, 30.0)
    for k in f1:
        assert math.isclose(f3[k], 3 * f1[k])


def test_multipliers_can_come_straight_from_a_vendor_table():
    m = DefectMultipliers(bpfo=3.5848, bpfi=5.4152, bsf=2.3568, ftf=0.39828)
    assert defect_frequencies_hz(m, 2.0) == pytest.approx(
        {"bpfo": 7.1696, "bpfi": 10.8304, "bsf": 4.7136, "ftf": 0.79656}
    )


def test_dataclasses_are_frozen():
    with pytest.raises(AttributeError):
        SKF_6205.n_elements = 10
    with pytest.raises(AttributeError):
        SKF_6205.multipliers().bpfo = 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_elements=0), "n_elements"),
        (dict(n_elements=9.5), "n_elements"),
        (dict(n_elements=True), "n_elements"),
        (dict(ball_diameter=0.0), "ball_diameter"),
        (dict(pitch_diameter=-1.0), "pitch_diameter"),
        (dict(ball_diameter=2.0), "smaller than pitch_diameter"),
        (dict(contact_angle_deg=90.0), "contact_angle_deg"),
        (dict(contact_angle_deg=-1.0), "contact_angle_deg"),
        (dict(contact_angle_deg="steep"), "contact_angle_deg"),
    ],
)
def test_bad_geometry_is_rejected(kwargs, match):
    args = dict(n_elements=9, ball_diameter=0.3126, pitch_diameter=1.537, contact_angle_deg=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        BearingGeometry(**args)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "3.5", None])
def test_bad_multipliers_are_rejected(bad):
    with pytest.raises(ValueError, match="bpfi"):
        DefectMultipliers(bpfo=3.5, bpfi=bad, bsf=2.3, ftf=0.4)


@pytest.mark.parametrize("shaft_hz", [0.0, -30.0, math.nan])
def test_bad_shaft_speed_is_rejected(shaft_hz):
    with pytest.raises(ValueError, match="shaft_hz"):
        defect_frequencies_hz(SKF_6205.multipliers(), shaft_hz)


def test_geometry_instead_of_multipliers_is_rejected():
    with pytest.raises(ValueError, match="DefectMultipliers"):
        defect_frequencies_hz(SKF_6205, 30.0)
