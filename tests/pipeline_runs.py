"""Running the real pipeline from tests: a config per run, ``predmaint run`` as users run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from predmaint.settings import default_config_text

REPO = Path(__file__).resolve().parents[1]


def write_config(tmp: Path, name: str, broker, influxdb, database: str, topic_prefix: str,
                 notify_targets=()) -> Path:
    """The default config pointed at the test broker, InfluxDB database and topics."""
    doc = yaml.safe_load(default_config_text())
    doc["notify"] = {"outbox_path": str(tmp / f"outbox-{name}.sqlite"), "targets": list(notify_targets)}
    doc["kafka"].update(bootstrap=broker.bootstrap, telemetry_topic=f"{topic_prefix}.telemetry",
                        dead_letter_topic=f"{topic_prefix}.deadletter", alerts_topic=f"{topic_prefix}.alerts")
    doc["storage"].update(kind="influx-v1", url=influxdb.url, database=database)
    doc["recovery"].update(dir=str(tmp / f"recovery-{name}"))
    doc["simulator"]["ground_truth_path"] = str(tmp / "truth.json")
    # Test runs overlap (and other checkouts run theirs): no shared metrics port, no status lines in
    # the stderr that tests read. tests/test_live.py turns both on.
    doc["metrics"] = {"port": 0, "status_interval_s": 0}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_pipeline(config: Path, workers: int = 1) -> None:
    proc = subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), "run",
                           "--until-end", "-w", str(workers)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"predmaint run failed:\n{proc.stdout}\n{proc.stderr}"
