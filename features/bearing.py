"""Rolling-element bearing defect frequencies.

A localised defect on a bearing race or rolling element produces impacts at a
rate fixed by the bearing geometry and shaft speed. With shaft frequency
``fr`` (Hz), ``N`` rolling elements, ball diameter ``Bd``, pitch diameter
``Pd`` and contact angle ``a``, and ``r = Bd / Pd * cos(a)``:

=====  ==========================  ===================================
name   meaning                     formula
=====  ==========================  ===================================
bpfo   ball pass, outer race       ``N / 2 * fr * (1 - r)``
bpfi   ball pass, inner race       ``N / 2 * fr * (1 + r)``
bsf    ball spin                   ``Pd / (2 * Bd) * fr * (1 - r**2)``
ftf    fundamental train (cage)    ``fr / 2 * (1 - r)``
=====  ==========================  ===================================

A ball defect strikes both races once per spin revolution, so ball faults often
show at ``2 * bsf`` rather than ``bsf``. Some vendor tables (CWRU's among them)
list that ``2 * bsf`` figure as the "rolling element" frequency; compare like
with like. Real bearings slip, so measured lines sit within a few percent of
these kinematic values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from numbers import Integral
from typing import Protocol

from predmaint.features._checks import positive

__all__ = ["BearingGeometry", "BearingSpec", "DefectMultipliers", "bearing_multipliers", "defect_frequencies_hz"]


@dataclass(frozen=True)
class DefectMultipliers:
    """Defect frequencies as multiples of shaft frequency.

    Build it from a :class:`BearingGeometry`, or directly from a vendor table
    when the geometry is not known.

    Parameters
    ----------
    bpfo, bpfi, bsf, ftf : float
        Ball pass outer race, ball pass inner race, ball spin and cage
        frequencies, each divided by the shaft frequency. ``bsf`` is the
        spin frequency itself, not twice it.

    Examples
    --------
    >>> DefectMultipliers(bpfo=3.5848, bpfi=5.4152, bsf=2.3568, ftf=0.39828).bpfi
    5.4152
    >>> DefectMultipliers(bpfo=0, bpfi=5.4, bsf=2.4, ftf=0.4)
    Traceback (most recent call last):
    ...
    ValueError: bpfo must be finite and > 0, got 0.0
    """

    bpfo: float
    bpfi: float
    bsf: float
    ftf: float

    def __post_init__(self) -> None:
        for name in ("bpfo", "bpfi", "bsf", "ftf"):
            object.__setattr__(self, name, positive(getattr(self, name), name))


@dataclass(frozen=True)
class BearingGeometry:
    """Geometry of a rolling-element bearing.

    Parameters
    ----------
    n_elements : int
        Number of rolling elements per row.
    ball_diameter, pitch_diameter : float
        Rolling-element and pitch diameters, in any one length unit (only
        their ratio matters).
    contact_angle_deg : float
        Contact angle in degrees, 0 for a deep-groove ball bearing.

    Examples
    --------
    SKF 6205 (CWRU drive end); CWRU's "rolling element" 4.7135 is ``2 * bsf``:

    >>> m = BearingGeometry(9, 0.3126, 1.537, 0.0).multipliers()
    >>> round(m.bpfi, 3), round(m.bpfo, 3), round(2 * m.bsf, 3), round(m.ftf, 4)
    (5.415, 3.585, 4.713, 0.3983)
    """

    n_elements: int
    ball_diameter: float
    pitch_diameter: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        n = self.n_elements
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ValueError(f"n_elements must be a positive integer, got {n!r}")
        object.__setattr__(self, "n_elements", int(n))
        bd = positive(self.ball_diameter, "ball_diameter")
        pd = positive(self.pitch_diameter, "pitch_diameter")
        if bd >= pd:
            raise ValueError(
                f"ball_diameter ({bd}) must be smaller than pitch_diameter ({pd})"
            )
        object.__setattr__(self, "ball_diameter", bd)
        object.__setattr__(self, "pitch_diameter", pd)
        angle = self.contact_angle_deg
        if isinstance(angle, bool):
            raise ValueError(f"contact_angle_deg must be a number, got {angle!r}")
        try:
            angle = float(angle)
        except (TypeError, ValueError):
            raise ValueError(
                f"contact_angle_deg must be a number, got {self.contact_angle_deg!r}"
            ) from None
        if not 0.0 <= angle < 90.0:
            raise ValueError(f"contact_angle_deg must be in [0, 90), got {angle!r}")
        object.__setattr__(self, "contact_angle_deg", angle)

    def multipliers(self) -> DefectMultipliers:
        """Return the defect frequencies as multiples of shaft frequency.

        Examples
        --------
        >>> m = BearingGeometry(16, 0.331, 2.815, 15.17).multipliers()
        >>> round(m.bpfo * 2000 / 60, 1)
        236.4
        """
        r = self.ball_diameter / self.pitch_diameter * math.cos(
            math.radians(self.contact_angle_deg)
        )
        half_n = self.n_elements / 2.0
        return DefectMultipliers(
            bpfo=half_n * (1.0 - r),
            bpfi=half_n * (1.0 + r),
            bsf=self.pitch_diameter / (2.0 * self.ball_diameter) * (1.0 - r * r),
            ftf=0.5 * (1.0 - r),
        )


def defect_frequencies_hz(multipliers: DefectMultipliers, shaft_hz: float) -> dict[str, float]:
    """Defect frequencies in Hz at a given shaft frequency.

    Parameters
    ----------
    multipliers : DefectMultipliers
        Defect frequencies as multiples of shaft frequency.
    shaft_hz : float
        Shaft rotation frequency in Hz (rpm / 60), > 0.

    Returns
    -------
    dict[str, float]
        Keys ``bpfo``, ``bpfi``, ``bsf``, ``ftf`` in Hz.

    Examples
    --------
    >>> m = BearingGeometry(9, 0.3126, 1.537).multipliers()
    >>> {k: round(v, 1) for k, v in defect_frequencies_hz(m, 1796 / 60).items()}
    {'bpfo': 107.3, 'bpfi': 162.1, 'bsf': 70.5, 'ftf': 11.9}
    """
    if not isinstance(multipliers, DefectMultipliers):
        raise ValueError(
            f"multipliers must be a DefectMultipliers, got {type(multipliers).__name__}"
        )
    fr = positive(shaft_hz, "shaft_hz")
    return {
        "bpfo": multipliers.bpfo * fr,
        "bpfi": multipliers.bpfi * fr,
        "bsf": multipliers.bsf * fr,
        "ftf": multipliers.ftf * fr,
    }



class BearingSpec(Protocol):
    """A bearing as a registry describes it (e.g. ``predmaint.settings.BearingSettings``): hashable, frozen."""

    n_elements: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float
    bpfo: float
    bpfi: float
    bsf: float
    ftf: float


@functools.lru_cache(maxsize=1024)
def bearing_multipliers(spec: BearingSpec) -> DefectMultipliers:
    """Defect multipliers of a registry entry: given directly (``bpfo > 0``) or from its geometry.

    Asked for on every vibration reading, so the result is cached per (frozen,
    hashable) spec.

    Examples
    --------
    >>> from predmaint.settings import BearingSettings
    >>> bearing_multipliers(BearingSettings(bpfo=3.5848, bpfi=5.4152, bsf=2.3568, ftf=0.39828)).bpfo
    3.5848
    >>> round(bearing_multipliers(BearingSettings(9, 7.94, 39.04)).bpfi, 3)
    5.415
    """
    if spec.bpfo > 0:
        return DefectMultipliers(spec.bpfo, spec.bpfi, spec.bsf, spec.ftf)
    return BearingGeometry(spec.n_elements, spec.ball_diameter_mm, spec.pitch_diameter_mm,
                           spec.contact_angle_deg).multipliers()
