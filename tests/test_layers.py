"""The layers of the README hold: import-linter's contracts in pyproject.toml pass, and fail on a backwards import.

import-linter finds modules on disk under the root package, but our
subpackages live in the repository's top-level folders (pyproject's
package-dir mapping), so the package is staged as it is installed: each
mapped folder copied to its dotted place in a temporary tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"


def stage_package(dest: Path) -> Path:
    """Copy every folder of the package-dir mapping to where the wheel installs it."""
    mapping = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items()):  # parents before children
        target = dest.joinpath(*package.split("."))
        shutil.copytree(REPO / folder, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.yaml"))
    return dest


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache", str(PYPROJECT)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    return stage_package(tmp_path_factory.mktemp("layers"))


def test_contracts_are_kept(staged):
    proc = lint_imports(staged)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize("module, backwards", [
    ("features/spectrum.py", "predmaint.pipelines.cli"),       # a pure layer reaching for the CLI
    ("settings/schema.py", "predmaint.connectors.storage"),    # the base importing I/O
    ("pipelines/steps.py", "predmaint.connectors.storage"),    # a pure step importing a connector
    ("models/health.py", "bytewax.dataflow"),                  # a model importing the stream runtime
])
def test_a_backwards_import_breaks_a_contract(tmp_path, module, backwards):
    root = stage_package(tmp_path)
    path = root / "predmaint" / module
    path.write_text(path.read_text() + f"\nimport {backwards}  # deliberately backwards\n")
    proc = lint_imports(root)
    assert proc.returncode != 0, proc.stdout
    importer = "predmaint." + module.removesuffix(".py").replace("/", ".")
    # import-linter names an external package by its top level (``bytewax``).
    imported = backwards if backwards.startswith("predmaint.") else backwards.split(".")[0]
    assert f"{importer} -> {imported}" in proc.stdout, proc.stdout
