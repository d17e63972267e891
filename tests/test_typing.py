"""mypy, with the project's configuration (pyproject.toml), passes on the package.

mypy cannot follow the editable install's import hook, so it checks the
package staged as the wheel installs it (the same staging as the layers test).
"""

from __future__ import annotations

import subprocess
import sys

from tests.test_layers import PYPROJECT, stage_package


def test_mypy_passes_on_the_package(tmp_path):
    root = stage_package(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT), "--cache-dir",
                           str(tmp_path / ".mypy_cache"), "-p", "predmaint"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout
