"""Feature extraction for predmaint: pure functions from numpy arrays to flat dicts.

One concept per module: :mod:`~features.bearing` (defect frequencies),
:mod:`~features.iso10816` (severity zones), :mod:`~features.spectrum` (the one
windowed FFT and what is read from it), :mod:`~features.time_domain`,
:mod:`~features.envelope`, :mod:`~features.vibration` (the per-window
composition), :mod:`~features.temperature`, :mod:`~features.current`,
:mod:`~features.aggregate` (window folding) and :mod:`~features.bench`.
"""
