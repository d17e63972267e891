"""Feature extraction for predmaint: pure functions from numpy arrays to flat dicts.

One concept per module: :mod:`~predmaint.features.bearing` (defect frequencies),
:mod:`~predmaint.features.iso10816` (severity zones), :mod:`~predmaint.features.spectrum` (the one
windowed FFT and what is read from it), :mod:`~predmaint.features.time_domain`,
:mod:`~predmaint.features.envelope`, :mod:`~predmaint.features.vibration` (the per-window
composition), :mod:`~predmaint.features.temperature`, :mod:`~predmaint.features.current`,
:mod:`~predmaint.features.aggregate` (window folding) and :mod:`~predmaint.features.bench`.
"""
