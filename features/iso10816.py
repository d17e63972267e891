"""ISO 10816-3 vibration severity zones.

ISO 10816-3 grades broadband velocity RMS, measured on the bearing housings of
industrial machines (15 kW to 50 MW) over 10-1000 Hz, into four zones:

====  ====  ==============================================================
zone  code  meaning
====  ====  ==============================================================
A     1     newly commissioned machines
B     2     acceptable for unrestricted long-term operation
C     3     unsatisfactory for long-term operation; plan remedial action
D     4     severe enough to cause damage
====  ====  ==============================================================

Zone boundaries in mm/s RMS (:data:`ZONE_BOUNDARIES_MM_S`):

==========================  ==========  ======  ======  ======
machine group               foundation  A/B     B/C     C/D
==========================  ==========  ======  ======  ======
1: large, 300 kW - 50 MW    rigid       2.3     4.5     7.1
1: large, 300 kW - 50 MW    flexible    3.5     7.1     11.0
2: medium, 15 kW - 300 kW   rigid       1.4     2.8     4.5
2: medium, 15 kW - 300 kW   flexible    2.3     4.5     7.1
==========================  ==========  ======  ======  ======

These are the Part 3 values. Many web pages print the ISO 10816-1 class I-IV
table under a 10816-3 heading; those numbers do not belong here.

A value equal to a boundary stays in the better zone: a machine moves to the
next zone only when it *exceeds* the boundary, as an alarm limit does.
"""

from __future__ import annotations

import math
from numbers import Real

__all__ = ["ZONE_BOUNDARIES_MM_S", "ZONE_CODES", "iso_zone"]

#: (group, foundation) -> (A/B, B/C, C/D) boundaries in mm/s RMS.
ZONE_BOUNDARIES_MM_S: dict[tuple[int, str], tuple[float, float, float]] = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}

#: Zone letter -> numeric code, for storage and plotting.
ZONE_CODES: dict[str, int] = {"A": 1, "B": 2, "C": 3, "D": 4}

_GROUPS = (1, 2)
_FOUNDATIONS = ("rigid", "flexible")


def zone_boundaries(group: int, foundation: str) -> tuple[float, float, float]:
    """Return the (A/B, B/C, C/D) boundaries in mm/s for a machine class.

    Raises ``ValueError`` for an unknown group or foundation.

    Examples
    --------
    >>> zone_boundaries(2, "rigid")
    (1.4, 2.8, 4.5)
    >>> zone_boundaries(3, "rigid")
    Traceback (most recent call last):
    ...
    ValueError: ISO 10816-3 group must be 1 (300 kW-50 MW) or 2 (15-300 kW), got 3
    """
    # bool passes `in (1, 2)` because True == 1; a flag is never a group.
    if isinstance(group, bool) or group not in _GROUPS:
        raise ValueError(
            f"ISO 10816-3 group must be 1 (300 kW-50 MW) or 2 (15-300 kW), got {group!r}"
        )
    if not isinstance(foundation, str) or foundation not in _FOUNDATIONS:
        raise ValueError(
            f"ISO 10816-3 foundation must be 'rigid' or 'flexible', got {foundation!r}"
        )
    return ZONE_BOUNDARIES_MM_S[(int(group), foundation)]


def iso_zone(velocity_rms_mm_s: float, group: int, foundation: str) -> str:
    """Classify a 10-1000 Hz velocity RMS into ISO 10816-3 zone 'A'..'D'.

    Parameters
    ----------
    velocity_rms_mm_s : float
        Velocity RMS in mm/s over 10-1000 Hz, >= 0.
    group : int
        1 (large machines, 300 kW-50 MW) or 2 (medium, 15-300 kW).
    foundation : str
        ``'rigid'`` or ``'flexible'``.

    Returns
    -------
    str
        ``'A'``, ``'B'``, ``'C'`` or ``'D'``. Use :data:`ZONE_CODES` for a number.

    Examples
    --------
    >>> iso_zone(2.0, 1, "rigid"), iso_zone(2.3, 1, "rigid"), iso_zone(2.31, 1, "rigid")
    ('A', 'A', 'B')
    >>> iso_zone(12.0, 1, "flexible")
    'D'
    """
    ab, bc, cd = zone_boundaries(group, foundation)
    if isinstance(velocity_rms_mm_s, bool) or not isinstance(velocity_rms_mm_s, Real):
        raise ValueError(f"velocity_rms_mm_s must be a number, got {velocity_rms_mm_s!r}")
    v = float(velocity_rms_mm_s)
    if not math.isfinite(v) or v < 0.0:
        raise ValueError(f"velocity_rms_mm_s must be finite and >= 0, got {v!r}")
    if v <= ab:
        return "A"
    if v <= bc:
        return "B"
    if v <= cd:
        return "C"
    return "D"
