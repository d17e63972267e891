"""Submodules of a package loaded on first attribute access (PEP 562).

Importing one connector must not start every client library, and the CLI
must not import every command's dependencies; a package lists its submodules
in ``__all__`` and gets its ``__getattr__`` from :func:`submodule_loader`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from types import ModuleType

__all__ = ["submodule_loader"]


def submodule_loader(package: str, names: Collection[str]) -> Callable[[str], ModuleType]:
    """A module-level ``__getattr__`` that imports ``package.<name>`` for each of ``names``.

    Examples
    --------
    >>> getattr_ = submodule_loader("predmaint", ["errors"])
    >>> getattr_("errors").__name__
    'predmaint.errors'
    >>> getattr_("nothing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'predmaint' has no attribute 'nothing'
    """

    def __getattr__(name: str) -> ModuleType:
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
