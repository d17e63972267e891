"""Settings: defaults load, errors name file and field, secrets never print."""

import pickle

import pytest
import yaml

from predmaint.settings import Secret, SettingsError, default_config_text, load_settings


def write(tmp_path, mutate):
    doc = yaml.safe_load(default_config_text())
    mutate(doc)
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_defaults_describe_a_fleet_with_a_fault():
    s = load_settings()
    assert len(s.fleet) >= 5
    assert s.simulator.faults and s.asset(s.simulator.faults[0].asset) is not None
    assert s.sensor("pump-01", "de-accel").sample_rate_hz >= 10_000


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["kafka"].update(partitons=3), "kafka: unknown field(s) ['partitons']"),
    (lambda d: d["window"].update(length_s="five"), "window.length_s: expected float"),
    (lambda d: d["storage"].update(kind="mongo"), "storage.kind: 'mongo' is not one of"),
    (lambda d: d["alert_rules"][0].update(clear_at=10), "clear_at 10.0 must be on the healthy side"),
    (lambda d: d["alert_rules"][0].update(alarm=60), "must get worse from warning to critical"),
    (lambda d: d["alert_rules"][1].update(direction="sideways"), "alert_rules[1]: direction: 'sideways'"),
    (lambda d: d["simulator"]["faults"][0].update(asset="nope"), "asset 'nope' is not in the fleet"),
    (lambda d: d["fleet"][0]["lines"][0]["assets"].append(dict(d["fleet"][0]["lines"][0]["assets"][0])),
     "appears twice"),
    (lambda d: d["fleet"][0]["lines"][0]["assets"][0].update(rpm="fast"), "assets[0](pump-01).rpm"),
    (lambda d: d["challengers"][0].update(scope="assets"), "challengers[0].scope: 'assets' is not one of"),
    (lambda d: d["asset_model"].update(kinds=["proces"]), "asset_model: kinds: ['proces'] given"),
    (lambda d: d["model"].update(rebaseline_after_gap_s={"vibration": 0}), "rebaseline_after_gap_s: 'vibration': 0"),
    (lambda d: d["model"].update(rebaseline_healthy_after_gap_s={"vibraton": 3600}),
     "rebaseline_healthy_after_gap_s: 'vibraton': 3600 (a kind of"),
    (lambda d: d["model"].update(restart_check_windows=0), "restart_check_windows: 0 (windows: an integer >= 1)"),
    (lambda d: d["alert_rules"][1].update(name=d["alert_rules"][0]["name"]),
     "rule names must differ; given more than once: ['health_low']"),
    (lambda d: d["alert_rules"][2].update(absorbed_by=["health_low_scaler"]),
     "novel_pattern.absorbed_by: ['health_low_scaler'] name no alert rule"),
    (lambda d: d["alert_rules"][2].update(absorbed_by=["novel_pattern"]),
     "alert_rules[2]: absorbed_by: rule 'novel_pattern' cannot be absorbed by itself"),
    (lambda d: d["alert_rules"][2].update(absorbed_by="health_low_scalar"), "absorbed_by: expected a list"),
])
def test_errors_name_the_file_and_field(tmp_path, mutate, message):
    path = write(tmp_path, mutate)
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_environment_overrides(tmp_path):
    s = load_settings(environ={"PREDMAINT_KAFKA_BOOTSTRAP": "kafka:9092", "PREDMAINT_STORAGE_KIND": "influx-v2"})
    assert s.kafka.bootstrap == "kafka:9092" and s.storage.kind == "influx-v2"


def test_secrets_are_hidden_and_not_pickled(monkeypatch):
    monkeypatch.setenv("PREDMAINT_INFLUX_TOKEN", "sup3r-s3cret")
    s = load_settings()
    token = s.storage.token
    assert token.get() == "sup3r-s3cret"
    assert "sup3r" not in repr(token) and "sup3r" not in str(s) and "sup3r" not in repr(s.storage)
    assert b"sup3r" not in pickle.dumps(token)
    assert isinstance(pickle.loads(pickle.dumps(token)), Secret)


def test_vibration_sensor_that_cannot_be_analysed_fails_at_start_up(tmp_path):
    from predmaint.pipelines.steps import check_registry

    def slow_sampling(d):
        d["fleet"][0]["lines"][0]["assets"][0]["sensors"][0]["sample_rate_hz"] = 600
    settings = load_settings(write(tmp_path, slow_sampling))
    with pytest.raises(SettingsError, match="asset pump-01 sensor de-accel"):
        check_registry(settings)
    check_registry(load_settings())


def test_a_bad_challenger_spec_fails_at_start_up_naming_its_field(tmp_path):
    from predmaint.pipelines.steps import check_registry

    def bad_challenger(d):
        d["challengers"][0]["params"] = {"FeatureDeviation": {"aggregate": "median"}}
    with pytest.raises(SettingsError, match=r"challengers\[0\]"):
        check_registry(load_settings(write(tmp_path, bad_challenger)))
