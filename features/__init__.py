"""Feature extraction for predmaint: pure functions from numpy arrays to flat dicts.

One concept per module: :mod:`~predmaint.features.bearing` (defect frequencies),
:mod:`~predmaint.features.iso10816` (severity zones), :mod:`~predmaint.features.spectrum` (the one
windowed FFT and what is read from it), :mod:`~predmaint.features.time_domain`,
:mod:`~predmaint.features.envelope`, :mod:`~predmaint.features.vibration` (the per-window
composition), :mod:`~predmaint.features.temperature`, :mod:`~predmaint.features.current`,
:mod:`~predmaint.features.process` (any scalar process value), :mod:`~predmaint.features.diagnosis`
(the fault a vibration window points to),
:mod:`~predmaint.features.aggregate` (window folding) and :mod:`~predmaint.features.bench`.
"""

from predmaint.features.bearing import BearingGeometry, DefectMultipliers, bearing_multipliers, defect_frequencies_hz
from predmaint.features.current import current_features
from predmaint.features.diagnosis import diagnose, named_fault
from predmaint.features.iso10816 import iso_zone
from predmaint.features.process import process_features
from predmaint.features.temperature import temperature_features
from predmaint.features.vibration import vibration_features

__all__ = [
    "BearingGeometry",
    "DefectMultipliers",
    "bearing_multipliers",
    "current_features",
    "defect_frequencies_hz",
    "diagnose",
    "iso_zone",
    "named_fault",
    "process_features",
    "temperature_features",
    "vibration_features",
]
