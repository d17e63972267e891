"""Fixtures that start real servers on loopback (a Tansu broker, InfluxDB 1.x) and run the pipeline on them.

Also how the tests are shared out among pytest-xdist workers: the units of work and their order.
"""

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

#: The test files on the session's pipeline run (the ``pipeline_run`` fixture below). Under pytest-xdist
#: (``-n`` in pyproject's addopts) they are one unit of work, given to one worker, so that the run is
#: made once, not once per worker (the run and these tests: 127 s of the serial run below); it goes first.
PIPELINE_RUN_FILES = ("tests/test_dashboards.py", "tests/test_end_to_end.py", "tests/test_replay.py")
#: Test files that take tens of seconds, costliest first (durations of one serial run on a loaded 2-core
#: machine, 2026-12-02, commit cf14138). They are handed out first, so that the many short tests fill
#: the gaps at the end instead of one long file running alone. The order only schedules: a file missing
#: here, or listed out of order, still runs.
COSTLIEST_FIRST = (
    "tests/test_typing.py",  # mypy, 77 s
    "tests/test_wheel.py",  # wheel build, new virtualenv, predmaint demo, 61 s
    "tests/test_default_detection.py",  # the demo fleet replayed with HalfSpaceTrees, 61 s
    "tests/test_chaos.py",  # predmaint chaos --short, 53 s
    "tests/test_bench.py",  # a tiny bench, 49 s
    "tests/test_storage_outage.py",  # 49 s
    "tests/test_cli_checks.py",  # 48 s
    "tests/test_offline_and_resume.py",  # 43 s
    "tests/test_robust_deviation.py",  # River's estimator checks, 28 s
    "tests/test_evaluate.py",  # a slice of each corpus, 26 s
    "tests/test_live.py",  # 24 s
    "tests/test_kafka_tls.py",  # 18 s
    "tests/test_calibrated.py",  # 18 s
    "tests/test_hostile_input.py",  # 12 s
)
PIPELINE_RUN_UNIT = "pipeline_run"
_RANK = {name: i for i, name in enumerate((PIPELINE_RUN_UNIT, *COSTLIEST_FIRST))}


def work_unit(nodeid: str) -> str:
    """The xdist unit of work of a test: its file (module fixtures set up once), or the pipeline-run unit."""
    path = nodeid.split("::")[0]
    return PIPELINE_RUN_UNIT if path in PIPELINE_RUN_FILES else path


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Costliest units first, each unit's tests together and in their own order.

    Without xdist the order is the same, so a serial run sees what the workers see.
    """
    for item in items:
        if "pipeline_run" in getattr(item, "fixturenames", ()) and work_unit(item.nodeid) != PIPELINE_RUN_UNIT:
            raise pytest.UsageError(f"{item.nodeid} uses the pipeline_run fixture: add its file to "
                                    "PIPELINE_RUN_FILES in tests/conftest.py (one xdist worker makes that run)")
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(work_unit(item.nodeid), i)
    items.sort(key=lambda item: (_RANK.get(work_unit(item.nodeid), len(_RANK)),
                                 first_seen[work_unit(item.nodeid)]))  # stable: a unit keeps its order


@pytest.hookimpl(optionalhook=True)  # only with pytest-xdist (and its -n)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` (pyproject's addopts) with :func:`work_unit` as the scope.

    xdist 3.8's own ``loadgroup`` cannot group here: it renames a test by setting ``item._nodeid``,
    which pytest 9.2 no longer reads (measured: grouped tests ran on both workers, and each made the
    pipeline run).
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnitScheduling(config, log)


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
