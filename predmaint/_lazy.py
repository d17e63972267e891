"""Submodules of a package loaded on first attribute access (PEP 562).

Importing one connector must not start every client library, and the CLI
must not import every command's dependencies; a package lists its submodules
in ``__all__`` and gets its ``__getattr__`` from :func:`submodule_loader`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from types import ModuleType

__all__ = ["submodule_loader"]


def submodule_loader(package: str, names: Collection[str],
                     exports: Mapping[str, str] | None = None) -> Callable[[str], object]:
    """A module-level ``__getattr__`` that imports ``package.<name>`` for each of ``names``.

    ``exports`` maps the names of classes a user imports from the package itself
    (``from predmaint.models import RobustDeviation``, as River's packages allow) to
    the submodule that defines each; the submodule is imported on first use too.

    Examples
    --------
    >>> getattr_ = submodule_loader("predmaint", ["errors"], {"PredmaintError": "errors"})
    >>> getattr_("errors").__name__
    'predmaint.errors'
    >>> getattr_("PredmaintError").__name__
    'PredmaintError'
    >>> getattr_("nothing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'predmaint' has no attribute 'nothing'
    """

    exported = dict(exports or {})

    def __getattr__(name: str) -> object:
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        if name in exported:
            return getattr(importlib.import_module(f"{package}.{exported[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
