"""Build a detector from its config spec, so swapping models is a config change.

A spec is a pipeline of step names joined by ``|``, for example
``"StandardScaler | OneClassSVM"`` or ``"MinMaxScaler | HalfSpaceTrees"``.
Each name is looked up in predmaint's own models, then in River's
``preprocessing``, ``anomaly`` and ``feature_extraction`` modules; a dotted
path (``"mypkg.mymodule.MyDetector"``) names any class with ``learn_one`` and
``score_one``. Parameters are given per step name::

    spec: "MinMaxScaler | HalfSpaceTrees"
    params: {HalfSpaceTrees: {n_trees: 5, height: 6, seed: 42}}
"""

from __future__ import annotations

import importlib

from river import anomaly, compose, feature_extraction, preprocessing

from models.feature_deviation import FeatureDeviation


class ModelSpecError(ValueError):
    """A model spec that cannot be built; the message names the field."""


_OWN = {"FeatureDeviation": FeatureDeviation}
_RIVER_MODULES = (preprocessing, anomaly, feature_extraction)


def _resolve(name: str, field: str):
    if name in _OWN:
        return _OWN[name]
    for module in _RIVER_MODULES:
        if hasattr(module, name):
            return getattr(module, name)
    if "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ModelSpecError(f"{field}: cannot import {name!r}: {exc}") from None
    raise ModelSpecError(f"{field}: unknown model step {name!r}; use a River preprocessing/anomaly "
                         f"class name, one of {sorted(_OWN)}, or a dotted path")


def build_detector(spec: str, params: dict | None = None, field: str = "model.spec"):
    """Instantiate the detector ``spec`` describes.

    Examples
    --------
    >>> model = build_detector("StandardScaler | OneClassSVM", {"OneClassSVM": {"nu": 0.1}})
    >>> list(model.steps), model["OneClassSVM"].nu
    (['StandardScaler', 'OneClassSVM'], 0.1)
    >>> build_detector("NoSuchModel")
    Traceback (most recent call last):
    ...
    models.spec.ModelSpecError: model.spec: unknown model step 'NoSuchModel'; use a River preprocessing/anomaly class name, one of ['FeatureDeviation'], or a dotted path
    """
    params = dict(params or {})
    names = [s.strip() for s in spec.split("|")]
    if not spec.strip() or any(not n for n in names):
        raise ModelSpecError(f"{field}: empty step in spec {spec!r}")
    steps = []
    for name in names:
        cls = _resolve(name, field)
        kwargs = params.pop(name, {}) or {}
        if not isinstance(kwargs, dict):
            raise ModelSpecError(f"{field.rsplit('.', 1)[0]}.params.{name}: expected a mapping of arguments")
        try:
            steps.append(cls(**kwargs))
        except TypeError as exc:
            raise ModelSpecError(f"{field.rsplit('.', 1)[0]}.params.{name}: {exc}") from None
    if params:
        raise ModelSpecError(f"{field.rsplit('.', 1)[0]}.params: {sorted(params)} name no step of {spec!r}")
    last = steps[-1]
    if not (hasattr(last, "score_one") and hasattr(last, "learn_one")):
        raise ModelSpecError(f"{field}: last step {names[-1]!r} has no score_one/learn_one")
    return steps[0] if len(steps) == 1 else compose.Pipeline(*steps)
