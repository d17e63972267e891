"""Running the dataflow and the simulator: what ``predmaint run`` and ``predmaint simulate`` do."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main

from predmaint.connectors import fleet_simulator, kafka_io
from predmaint.pipelines.dataflow import build_flow
from predmaint.settings import Settings

log = logging.getLogger(__name__)


def recovery_config(settings: Settings) -> RecoveryConfig | None:
    """Bytewax recovery for ``settings``, creating its partitions on first use."""
    r = settings.recovery
    if not r.enabled:
        return None
    d = Path(r.dir)
    if not d.exists() or not any(d.glob("part-*.sqlite3")):
        d.mkdir(parents=True, exist_ok=True)
        init_db_dir(d, r.partitions)
    return RecoveryConfig(d, backup_interval=timedelta(seconds=r.backup_interval_s))


def run_pipeline(settings: Settings, *, workers: int = 1, tail: bool = True,
                 process_id: int | None = None, addresses: list[str] | None = None) -> None:
    """Run the dataflow until the input ends (``tail=False``) or forever."""
    kafka_io.ensure_topics(settings.kafka)
    flow = build_flow(settings, tail=tail)
    cli_main(flow, workers_per_process=workers, process_id=process_id, addresses=addresses,
             epoch_interval=timedelta(seconds=settings.recovery.snapshot_interval_s),
             recovery_config=recovery_config(settings))


def simulate(settings: Settings) -> dict:
    """Produce the simulated fleet's telemetry (and a few invalid messages); return the ground truth."""
    kafka_io.ensure_topics(settings.kafka)
    sent = kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic,
                            fleet_simulator.fleet_messages(settings))
    bad = kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic,
                           fleet_simulator.invalid_messages(settings))
    truth = fleet_simulator.ground_truth(settings)
    truth["messages"] = sent
    truth["invalid_messages"] = bad
    path = Path(settings.simulator.ground_truth_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=2))
    log.info("simulate: produced %d messages and %d invalid ones; ground truth in %s", sent, bad, path)
    return truth
