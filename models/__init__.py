"""Detectors, health, alert lifecycle and benchmark scoring, one concept per module.

Detection (the default, see the README's "Models, health, alerts"):
:mod:`~predmaint.models.reference` (``RobustReference``: rolling median and robust
scale), :mod:`~predmaint.models.tail_calibration` (``TailCalibration``: a score's
tail probability, peaks over threshold), :mod:`~predmaint.models.robust_deviation`
(``RobustDeviation``: the default River anomaly detector built from both),
:mod:`~predmaint.models.pca_deviation` (``PCADeviation``: an asset's sensors together, PCA T² and Q),
:mod:`~predmaint.models.calibrated` (``CalibratedDetector``: any River detector on
the same probability scale), :mod:`~predmaint.models.feature_deviation` (the
previous default), :mod:`~predmaint.models.sklearn_adapter` (scikit-learn
estimators fitted on the baseline) and :mod:`~predmaint.models.spec` (a detector
from its config spec).

Per sensor: :mod:`~predmaint.models.sensor_model` (baseline, score then learn,
health, explanation), :mod:`~predmaint.models.transition_novelty` (``TransitionNovelty``: a
process value's move between bands never seen before, the ``novelty`` alert metric),
:mod:`~predmaint.models.daily_profile` (``DailyProfile``: a process value against the same time
of day on its last days),
:mod:`~predmaint.models.health` (what health means),
:mod:`~predmaint.models.baseline` (running mean baselines for explanations) and
:mod:`~predmaint.models.alerting` (raise, escalate, clear).

Scoring against public benchmarks: :mod:`~predmaint.models.nab_scoring`,
:mod:`~predmaint.models.nab_corpus`, :mod:`~predmaint.models.skab_scoring`.
"""

from predmaint._lazy import submodule_loader

#: Classes a user builds or configures, importable from the package itself (River's style).
EXPORTS = {
    "AlertEvent": "alerting",
    "CalibratedDetector": "calibrated",
    "DailyProfile": "daily_profile",
    "FeatureDeviation": "feature_deviation",
    "PCADeviation": "pca_deviation",
    "RobustDeviation": "robust_deviation",
    "RobustReference": "reference",
    "SensorModel": "sensor_model",
    "TailCalibration": "tail_calibration",
    "TransitionNovelty": "transition_novelty",
}

__all__ = [
    *EXPORTS,
    "alerting",
    "baseline",
    "calibrated",
    "daily_profile",
    "feature_deviation",
    "health",
    "nab_corpus",
    "nab_scoring",
    "pca_deviation",
    "reference",
    "robust_deviation",
    "sensor_model",
    "skab_scoring",
    "sklearn_adapter",
    "spec",
    "tail_calibration",
    "transition_novelty",
]

__getattr__ = submodule_loader(__name__, [n for n in __all__ if n not in EXPORTS], EXPORTS)
