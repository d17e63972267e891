"""docker-compose.yml, checked offline: no Docker engine runs here.

The file is parsed and cross-checked against the repository: services and
their key settings, the environment the pipeline reads, the files Grafana
mounts, the variables ``.env.example`` must define. When ``docker-compose``
(or the ``docker compose`` plugin) is installed, its own validator runs too.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from predmaint.pipelines.cli import CONFIG_ENV
from predmaint.settings import StorageSettings
from predmaint.settings.loading import ENV_OVERRIDES

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?+][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "- KEY=value" form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_the_stack_has_its_five_services(compose):
    assert {"kafka", "influxdb", "grafana", "pipeline", "simulator"} <= set(compose["services"])


def test_kafka_runs_in_kraft_mode_without_zookeeper(compose):
    kafka = compose["services"]["kafka"]
    env = environment(kafka)
    assert {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")} == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert re.fullmatch(rf"{node}@[\w.-]+:\d+", env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
    assert f"{controller}://" in env["KAFKA_LISTENERS"]
    assert f"{controller}:" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert not any("ZOOKEEPER" in k for k in env)
    # The pipeline's bootstrap must be a listener Kafka advertises.
    bootstrap = environment(compose["services"]["pipeline"])["PREDMAINT_KAFKA_BOOTSTRAP"]
    assert bootstrap in env["KAFKA_ADVERTISED_LISTENERS"]
    # Vibration waveforms need larger messages than the 1 MB default.
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= 1 << 20


def test_influxdb_2_is_initialised_from_variables(compose):
    influx = compose["services"]["influxdb"]
    assert re.fullmatch(r"influxdb:2(\.\d+)*", influx["image"])
    env = environment(influx)
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for key in ("USERNAME", "ORG", "BUCKET"):
        assert env[f"DOCKER_INFLUXDB_INIT_{key}"], key
    # Secrets come from the environment (.env), never literals in the file.
    for key in ("PASSWORD", "ADMIN_TOKEN"):
        assert INTERPOLATION.fullmatch(env[f"DOCKER_INFLUXDB_INIT_{key}"]), key
    pipeline = environment(compose["services"]["pipeline"])
    assert pipeline["PREDMAINT_INFLUX_ORG"] == env["DOCKER_INFLUXDB_INIT_ORG"]
    assert pipeline["PREDMAINT_INFLUX_BUCKET"] == env["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert pipeline["PREDMAINT_INFLUX_TOKEN"] == env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


def test_grafana_mounts_the_provisioning_and_the_dashboard_json(compose):
    grafana = compose["services"]["grafana"]
    mounts = {}
    for v in grafana["volumes"]:
        host, container = v.split(":")[:2]
        mounts[container] = (REPO / host).resolve()
    assert mounts["/etc/grafana/provisioning"] == REPO / "dashboards" / "provisioning"
    provider = yaml.safe_load((REPO / "dashboards/provisioning/dashboards/predmaint.yaml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert mounts[dashboards_path] == REPO / "dashboards" / "json"
    assert list((REPO / "dashboards" / "json").glob("predmaint-*.json")), "no dashboards to provision"
    # Variables in the provisioning files are expanded from Grafana's environment.
    env = environment(grafana)
    for path in (REPO / "dashboards" / "provisioning").rglob("*.yaml"):
        for name in re.findall(r"\$\{?(\w+)\}?", path.read_text()):
            assert name in env, f"{path.relative_to(REPO)} uses ${name}, which grafana's environment lacks"
    datasource = yaml.safe_load((REPO / "dashboards/provisioning/datasources/influxdb.yaml").read_text())
    influx = environment(compose["services"]["influxdb"])
    assert datasource["datasources"][0]["jsonData"]["dbName"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]


@pytest.mark.parametrize("name", ["pipeline", "simulator"])
def test_pipeline_images_are_built_here_and_run_predmaint_commands(compose, name):
    service = compose["services"][name]
    context = service["build"] if isinstance(service["build"], str) else service["build"]["context"]
    assert (REPO / context).resolve() == REPO and (REPO / "Dockerfile").is_file()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["predmaint"\]', dockerfile, re.M)
    # The command is a predmaint subcommand with options the CLI accepts.
    proc = subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", *service["command"], "--help"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["pipeline", "simulator"])
def test_pipeline_environment_is_understood_by_the_settings(compose, name):
    env = environment(compose["services"][name])
    storage = StorageSettings()
    secrets = {storage.token_env, storage.username_env, storage.password_env}
    predmaint = {k for k in env if k.startswith("PREDMAINT_")}
    unknown = predmaint - set(ENV_OVERRIDES) - secrets - {CONFIG_ENV}
    assert not unknown, f"{name}: settings do not read {sorted(unknown)}"
    kind = env["PREDMAINT_STORAGE_KIND"]
    assert dataclasses.replace(storage, kind=kind).kind == kind  # a kind StorageSettings accepts
    if kind != "sqlite":
        assert storage.token_env in env, "InfluxDB 2.x needs the token"


def test_every_host_path_mounted_exists(compose):
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for v in service.get("volumes", []):
            source = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if source in named:
                continue
            assert (REPO / source).exists(), f"{name}: mounts {source}, which is not in the repository"


def test_env_example_defines_every_variable_the_file_needs():
    example = (REPO / ".env.example").read_text()
    defined = {line.split("=", 1)[0].strip() for line in example.splitlines()
               if "=" in line and not line.lstrip().startswith("#")}
    needed = set(INTERPOLATION.findall(COMPOSE.read_text()))
    assert needed and needed <= defined, sorted(needed - defined)


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_validates_the_file():
    command = compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    needed = set(INTERPOLATION.findall(COMPOSE.read_text()))
    env = {**os.environ, **{name: "dummy-value-for-validation" for name in needed}}
    proc = subprocess.run([*command, "-f", str(COMPOSE), "config", "-q"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_kafka_keeps_its_topics_in_the_volume(compose):
    kafka = compose["services"]["kafka"]
    mounted = {v.split(":")[1] for v in kafka["volumes"] if v.split(":")[0] in set(compose.get("volumes") or {})}
    assert environment(kafka)["KAFKA_LOG_DIRS"] in mounted
    # KRaft formats the log dir with the cluster id: a fixed one lets a re-created container reuse the volume.
    assert environment(kafka)["CLUSTER_ID"]


def test_the_simulator_produces_a_live_fleet_until_stopped(compose):
    from predmaint.settings import load_settings

    service = compose["services"]["simulator"]
    assert "--realtime" in service["command"] and "--duration" not in service["command"]
    sim = load_settings().simulator
    # The models are past their baseline when live data starts, and the fault starts soon after.
    fault = sim.faults[0]
    assert 0 < fault.start_h - sim.realtime_backfill_h <= 0.5


def test_prometheus_scrapes_the_pipeline_and_grafana_reads_prometheus(compose):
    from predmaint.dashboards.model import PROMETHEUS_UID
    from predmaint.settings import load_settings

    port = load_settings().metrics.port
    assert port and f"{port}:{port}" in compose["services"]["pipeline"]["ports"]
    prometheus = compose["services"]["prometheus"]
    (config,) = [v.split(":")[0] for v in prometheus["volumes"] if v.endswith("prometheus.yml:ro")]
    scrape = yaml.safe_load((REPO / config).read_text())["scrape_configs"]
    assert [t for job in scrape for c in job["static_configs"] for t in c["targets"]] == [f"pipeline:{port}"]
    datasources = yaml.safe_load((REPO / "dashboards/provisioning/datasources/prometheus.yaml").read_text())
    (ds,) = datasources["datasources"]
    assert ds["uid"] == PROMETHEUS_UID and ds["type"] == "prometheus" and ds["url"].startswith("http://prometheus:")
    assert "prometheus" in compose["services"]["grafana"]["depends_on"]
