"""Fixtures that start real servers on loopback (a Tansu broker, InfluxDB 1.x) and run the pipeline on them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The datasets sit beside the checkout (../shared/data) unless the environment says otherwise;
# the product itself never guesses this path (it takes --data or PREDMAINT_SHARED_DATA).
os.environ.setdefault("PREDMAINT_SHARED_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

from predmaint.connectors import kafka_io
from predmaint.connectors.fleet_simulator import fleet_messages, ground_truth, invalid_messages
from predmaint.connectors.local_services import EmbeddedBroker, LocalInfluxDB
from predmaint.settings import load_settings
from tests.pipeline_runs import run_pipeline, write_config


def shared_dataset(folder: str, *needed: str) -> Path:
    """``$PREDMAINT_SHARED_DATA/<folder>``; a missing dataset (or a part of it) fails the test naming the path."""
    d = Path(os.environ["PREDMAINT_SHARED_DATA"]) / folder
    missing = [str(d / n) for n in (needed or (".",)) if not (d / n).exists()]
    if missing:
        pytest.fail(f"shared dataset not found: {', '.join(missing)} "
                    f"(set PREDMAINT_SHARED_DATA to the folder holding {folder}/)")
    return d


@pytest.fixture(scope="session")
def nab_dir() -> Path:
    return shared_dataset("nab", "data", "labels", "results")


@pytest.fixture(scope="session")
def skab_dir() -> Path:
    return shared_dataset("skab", "valve1")


@pytest.fixture(scope="session")
def broker():
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="session")
def influxdb():
    with LocalInfluxDB() as db:
        yield db


@pytest.fixture(scope="session")
def pipeline_run(broker, influxdb, tmp_path_factory):
    """One run of the default fleet through ``predmaint run`` (database ``e2e_w1``, topics ``e2e.*``).

    Shared by the end-to-end and dashboard tests: returns (tmp dir, settings, ground truth).
    Tests that replay into the same database write identical points, which they assert.
    """
    tmp = tmp_path_factory.mktemp("e2e")
    config = write_config(tmp, "w1", broker, influxdb, "e2e_w1", "e2e")
    settings = load_settings(config)
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, fleet_messages(settings))
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, invalid_messages(settings))
    run_pipeline(config)
    return tmp, settings, ground_truth(settings)
