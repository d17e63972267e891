"""Fixtures that start real servers on loopback: a Tansu broker and InfluxDB 1.x."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.local_services import EmbeddedBroker, LocalInfluxDB

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PREDMAINT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def broker():
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="session")
def influxdb():
    with LocalInfluxDB() as db:
        yield db


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real datasets not found at {SHARED_DATA}; set PREDMAINT_SHARED_DATA")
    return SHARED_DATA
