"""Every docstring example in the installed package runs (numpydoc examples are doctests).

The package maps the repository's folders onto ``predmaint.*`` (see
pyproject.toml), so the modules are collected by import name, not by path.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

#: Packages whose folders are not under predmaint/ (package-dir mapping) are listed explicitly.
PACKAGES = ("predmaint", "predmaint.settings", "predmaint.features", "predmaint.models",
            "predmaint.connectors", "predmaint.connectors.datasets", "predmaint.pipelines", "predmaint.dashboards")


def _modules() -> list[str]:
    names: set[str] = set()
    for package in PACKAGES:
        names.add(package)
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__, package + "."):
            names.add(info.name)
    return sorted(names)


MODULES = _modules()


def test_every_package_is_walked():
    # A new subpackage that is not in PACKAGES would silently skip its doctests.
    subpackages = {m for m in MODULES if pkgutil.resolve_name(m).__spec__.submodule_search_locations}
    assert subpackages == set(PACKAGES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True,
                             verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (output above)"
