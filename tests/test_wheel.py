"""The wheel installs one importable package, ``predmaint``, and works outside the repository.

Built from the repository and installed into a new virtualenv in a temporary
directory. The new environment reuses this one's third-party packages through
a ``.pth`` line (paths listed in a .pth are added, their own .pth files are not
run, so this environment's editable predmaint is not visible there), which
keeps the test from downloading bytewax, River and scikit-learn again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy: setuptools reuses an in-tree build/ folder, whose stale
    # files (a module deleted since) would otherwise end up in the wheel.
    src = tmp_path_factory.mktemp("src") / "predmaint"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", ".venv-bench", "build", "dist", "*.egg-info",
                                                              "__pycache__", ".predmaint", ".pytest_cache"))
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)], cwd=out)
    (path,) = out.glob("predmaint-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A new virtualenv outside the repository with the wheel installed; returns its bin directory."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "third_party.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=venv)
    return venv / "bin"


def test_the_wheel_holds_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"predmaint"}
    # Package data travels with it, read through importlib.resources.
    for data in ("predmaint/settings/default.yaml", "predmaint/py.typed",
                 "predmaint/dashboards/json/predmaint-fleet.json",
                 "predmaint/dashboards/provisioning/datasources/influxdb.yaml"):
        assert data in names


def test_only_predmaint_is_importable_outside_the_repository(installed, tmp_path):
    code = ("import importlib.util, predmaint, predmaint.models, predmaint.pipelines.cli;"
            "print(predmaint.__file__);"
            "print([m for m in ('models', 'features', 'connectors', 'pipelines', 'dashboards')"
            " if importlib.util.find_spec(m)])")
    out = run([str(installed / "python"), "-c", code], cwd=tmp_path).stdout.splitlines()
    assert out[0].startswith(str(installed.parent)), out  # the wheel's copy, not the checkout
    assert out[1] == "[]"
    proc = subprocess.run([str(installed / "python"), "-c", "import models"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "No module named 'models'" in proc.stderr


def test_predmaint_demo_runs_from_outside_the_repository(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDMAINT_")}
    proc = run([str(installed / "predmaint"), "demo", "--workdir", str(tmp_path / "demo")], cwd=tmp_path,
               timeout=900, env=env)
    assert "demo:" in proc.stdout and "pump-03" in proc.stdout, proc.stdout[-3000:]
    # The packaged defaults were read from the installed package; nothing was written into it.
    assert not list(installed.parent.rglob("predmaint/**/.predmaint"))
