"""Build a detector from its config spec, so swapping models is a config change.

A spec is a pipeline of step names joined by ``|``, for example
``"StandardScaler | OneClassSVM"`` or ``"MinMaxScaler | HalfSpaceTrees"``.
Each name is looked up in predmaint's own models, then in River's
``preprocessing``, ``anomaly`` and ``feature_extraction`` modules, then in
scikit-learn's outlier-detection and preprocessing modules; a dotted path
(``"mypkg.mymodule.MyDetector"``) names any class. Parameters are given per
step, under the name as written or, for a dotted path, its last part::

    spec: "MinMaxScaler | HalfSpaceTrees"
    params: {HalfSpaceTrees: {n_trees: 5, height: 6, seed: 42}}

Three families of detectors:

* **River / online** (a last step with ``learn_one`` and ``score_one``): learns
  every window it is given; several steps make a River ``compose.Pipeline``.
  predmaint's own are ``RobustDeviation`` (the default: it calibrates its
  score as a probability level itself) and ``FeatureDeviation``. Any other River
  anomaly detector is returned as it is here and wrapped in a
  :class:`~predmaint.models.calibrated.CalibratedDetector` by
  :class:`~predmaint.models.sensor_model.SensorModel`, so its health is on the
  same probability scale.
* **scikit-learn, fitted on the baseline** (a last step with ``fit`` and
  ``score_samples`` or ``decision_function``, e.g.
  ``"sklearn.ensemble.IsolationForest"`` or
  ``"StandardScaler | sklearn.ensemble.IsolationForest"``): all steps are
  scikit-learn ones (a bare name before the estimator is looked up in
  ``sklearn.preprocessing`` and ``sklearn.decomposition`` first, so
  ``StandardScaler`` here is scikit-learn's and is fitted together with the
  estimator), wrapped in :class:`predmaint.models.sklearn_adapter.BaselineFitted`. It is
  fitted once, on the first half of the sensor's baseline windows, so the
  second half, which calibrates health (:class:`predmaint.models.sensor_model.SensorModel`),
  is scored out of sample. This needs ``baseline_windows``.
* **A saved model**, ``"joblib:/path/model.joblib"`` (the whole spec): a fitted
  scikit-learn estimator is used as it is; an unfitted one is fitted on the
  baseline like a named one; a pickled River detector is used as it is.
  Loading a joblib file runs code from it: name only files you trust.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from river import anomaly, compose, feature_extraction, preprocessing

from predmaint.errors import ModelSpecError
from predmaint.models.feature_deviation import FeatureDeviation
from predmaint.models.pca_deviation import PCADeviation
from predmaint.models.robust_deviation import RobustDeviation
from predmaint.models.sklearn_adapter import BaselineFitted, is_sklearn_outlier_estimator

_OWN = {"FeatureDeviation": FeatureDeviation, "PCADeviation": PCADeviation, "RobustDeviation": RobustDeviation}
_RIVER_MODULES = (preprocessing, anomaly, feature_extraction)
# Imported only when a name is not found in River: scikit-learn is slow to import.
_SKLEARN_ESTIMATOR_MODULES = ("sklearn.ensemble", "sklearn.neighbors", "sklearn.svm", "sklearn.covariance")
_SKLEARN_TRANSFORMER_MODULES = ("sklearn.preprocessing", "sklearn.decomposition")
JOBLIB_PREFIX = "joblib:"


def _lookup(name: str, modules) -> object | None:
    for module in modules:
        if isinstance(module, str):
            module = importlib.import_module(module)
        if hasattr(module, name):
            return getattr(module, name)
    return None


def _resolve(name: str, field: str, sklearn_first: bool = False):
    """The class a step name stands for."""
    if "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelSpecError(f"{field}: cannot import {name!r}: {exc}") from None
    else:
        own_and_river = _OWN.get(name) or _lookup(name, _RIVER_MODULES)
        if sklearn_first:
            obj = _lookup(name, _SKLEARN_TRANSFORMER_MODULES + _SKLEARN_ESTIMATOR_MODULES) or own_and_river
        else:
            obj = own_and_river or _lookup(name, _SKLEARN_ESTIMATOR_MODULES + _SKLEARN_TRANSFORMER_MODULES)
        if obj is None:
            raise ModelSpecError(f"{field}: unknown model step {name!r}; use a River preprocessing/anomaly "
                                 f"class name, one of {sorted(_OWN)}, or a dotted path")
    if not callable(obj):
        raise ModelSpecError(f"{field}: {name!r} is not a class")
    return obj


def _step_params(params: dict, name: str, params_field: str) -> dict:
    """Pop the arguments of step ``name`` (given under its name or its last dotted part)."""
    keys = [name] + ([name.rpartition(".")[2]] if "." in name else [])
    given = [k for k in keys if k in params]
    if len(given) > 1:
        raise ModelSpecError(f"{params_field}: arguments of {name!r} given twice, as {given}")
    kwargs = params.pop(given[0]) if given else {}
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise ModelSpecError(f"{params_field}.{given[0]}: expected a mapping of arguments")
    return kwargs


def _instantiate(cls, kwargs: dict, name: str, params_field: str):
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelSpecError(f"{params_field}.{name}: {exc}") from None


def _fit_after(baseline_windows: int | None, field: str, what: str) -> int:
    """How many baseline windows a scikit-learn estimator is fitted on: the first half."""
    baseline_field = f"{field.rpartition('.')[0] or 'model'}.baseline_windows"
    if baseline_windows is None:
        raise ModelSpecError(f"{field}: {what} is fitted on the sensor's baseline; build_detector needs "
                             f"baseline_windows")
    if isinstance(baseline_windows, bool) or not isinstance(baseline_windows, int) or baseline_windows < 4:
        raise ModelSpecError(f"{baseline_field}: {what} needs at least 4 baseline windows (fitted on the first "
                             f"half, calibrated on the second), got {baseline_windows!r}")
    return baseline_windows // 2


def _load_joblib(spec: str, field: str, baseline_windows: int | None):
    path = Path(spec[len(JOBLIB_PREFIX):].strip()).expanduser()
    try:
        import joblib

        obj = joblib.load(path)
    except FileNotFoundError:
        raise ModelSpecError(f"{field}: joblib file {str(path)!r} not found") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise ModelSpecError(f"{field}: cannot load joblib file {str(path)!r}: {type(exc).__name__}: {exc}") \
            from None
    if hasattr(obj, "learn_one") and hasattr(obj, "score_one"):
        return obj
    if not (hasattr(obj, "score_samples") or hasattr(obj, "decision_function")):
        raise ModelSpecError(f"{field}: {type(obj).__name__} in {str(path)!r} has neither score_one/learn_one "
                             f"nor score_samples/decision_function")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(obj, "fit"):
        return BaselineFitted(obj, fit_after=None)  # scoring only: nothing to fit
    try:
        check_is_fitted(obj)
        return BaselineFitted(obj, fit_after=None)
    except NotFittedError:
        return BaselineFitted(obj, fit_after=_fit_after(baseline_windows, field, f"unfitted {type(obj).__name__}"))
    except TypeError as exc:  # not a scikit-learn estimator at all
        raise ModelSpecError(f"{field}: {type(obj).__name__} in {str(path)!r}: {exc}") from None


def build_detector(spec: str, params: dict | None = None, field: str = "model.spec", *,
                   baseline_windows: int | None = None, params_field: str | None = None):
    """Instantiate the detector ``spec`` describes.

    Parameters
    ----------
    spec : str
        Step names joined by ``|``, or ``"joblib:PATH"`` (see the module docstring).
    params : dict, optional
        Keyword arguments per step name.
    field : str
        Dotted config path of ``spec``, used in error messages; its parent
        prefixes ``params`` and ``baseline_windows`` in them.
    baseline_windows : int, optional
        The sensor's baseline length in windows. Needed only by scikit-learn
        estimators, which are fitted on the first half of it.
    params_field : str, optional
        Dotted config path of ``params`` in error messages (default: the
        parent of ``field`` + ``.params``; per-kind parameters name
        ``model.kind_params.<kind>``).

    Returns
    -------
    object
        A detector with ``learn_one`` and ``score_one`` (higher = more anomalous).

    Raises
    ------
    ModelSpecError
        The spec cannot be built; the message names the field.

    Examples
    --------
    >>> model = build_detector("StandardScaler | OneClassSVM", {"OneClassSVM": {"nu": 0.1}})
    >>> list(model.steps), model["OneClassSVM"].nu
    (['StandardScaler', 'OneClassSVM'], 0.1)
    >>> build_detector("NoSuchModel")
    Traceback (most recent call last):
    ...
    predmaint.errors.ModelSpecError: model.spec: unknown model step 'NoSuchModel'; use a River preprocessing/anomaly class name, one of ['FeatureDeviation', 'PCADeviation', 'RobustDeviation'], or a dotted path

    A scikit-learn pipeline, fitted on the first 12 of 24 baseline windows:

    >>> det = build_detector("StandardScaler | sklearn.ensemble.IsolationForest",
    ...                      {"IsolationForest": {"n_estimators": 50, "random_state": 0}}, baseline_windows=24)
    >>> type(det).__name__, det.fit_after, [type(s).__module__ for _, s in det.estimator.steps]
    ('BaselineFitted', 12, ['sklearn.preprocessing._data', 'sklearn.ensemble._iforest'])
    >>> build_detector("sklearn.ensemble.IsolationForest")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    predmaint.errors.ModelSpecError: model.spec: IsolationForest is fitted on the sensor's baseline; ...
    """
    params = dict(params or {})
    params_field = params_field or f"{field.rpartition('.')[0] or 'model'}.params"
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"{field}: empty spec {spec!r}")
    if spec.strip().startswith(JOBLIB_PREFIX):
        detector = _load_joblib(spec.strip(), field, baseline_windows)
        if params:
            raise ModelSpecError(f"{params_field}: {sorted(params)}: a joblib model takes no parameters")
        return detector
    names = [s.strip() for s in spec.split("|")]
    if any(not n for n in names):
        raise ModelSpecError(f"{field}: empty step in spec {spec!r}")
    if any(n.startswith(JOBLIB_PREFIX) for n in names):
        raise ModelSpecError(f"{field}: a joblib: model must be the whole spec, got {spec!r}")

    classes = [_resolve(n, field) for n in names]
    if is_sklearn_outlier_estimator(classes[-1]):
        return _build_sklearn(names, classes, params, field, params_field, baseline_windows)

    steps = [_instantiate(cls, _step_params(params, name, params_field), name, params_field)
             for name, cls in zip(names, classes)]
    if params:
        raise ModelSpecError(f"{params_field}: {sorted(params)} name no step of {spec!r}")
    last = steps[-1]
    if not (hasattr(last, "score_one") and hasattr(last, "learn_one")):
        raise ModelSpecError(f"{field}: last step {names[-1]!r} has no score_one/learn_one")
    for name, step in zip(names[:-1], steps[:-1]):
        if not (hasattr(step, "learn_one") and hasattr(step, "transform_one")):
            raise ModelSpecError(f"{field}: step {name!r} is not a River transformer (learn_one/transform_one) "
                                 f"and cannot feed the River detector {names[-1]!r}")
    return steps[0] if len(steps) == 1 else compose.Pipeline(*steps)


def _build_sklearn(names, classes, params, field, params_field, baseline_windows):
    """A scikit-learn estimator (or pipeline) wrapped to be fitted on the baseline."""
    steps = []
    for i, (name, cls) in enumerate(zip(names, classes)):
        if i < len(names) - 1 and "." not in name:
            # Same bare name in River and scikit-learn (StandardScaler...): in a
            # scikit-learn pipeline the step must be scikit-learn's.
            cls = _resolve(name, field, sklearn_first=True)
        if i < len(names) - 1 and not (hasattr(cls, "fit") and hasattr(cls, "transform")):
            raise ModelSpecError(f"{field}: step {name!r} is not a scikit-learn transformer (fit/transform); "
                                 f"a spec ending in the scikit-learn estimator {names[-1]!r} needs "
                                 f"scikit-learn steps, fitted together on the baseline")
        steps.append(_instantiate(cls, _step_params(params, name, params_field), name, params_field))
    if params:
        raise ModelSpecError(f"{params_field}: {sorted(params)} name no step of {' | '.join(names)!r}")
    fit_after = _fit_after(baseline_windows, field, type(steps[-1]).__name__)
    if len(steps) > 1:
        from sklearn.pipeline import make_pipeline

        steps = [make_pipeline(*steps)]
    try:
        return BaselineFitted(steps[0], fit_after=fit_after)
    except TypeError as exc:  # e.g. LocalOutlierFactor scores new windows only with novelty: true
        raise ModelSpecError(f"{field}: {names[-1]!r}: {exc}") from None
