"""A silent sensor raises ``sensor_offline`` and clears it when it returns; state carries over to new settings.

Known answers: the simulated fleet (10 s scalar readings, 5-minute windows from
00:00) with pump-01's ``bearing-temp`` removed between 00:30 and 01:00 of event
time. Its last window with data ends at 00:30, so the rule (3 windows of
silence) is raised at the window ending 00:45 and cleared at the first window
with data again, ending 01:05. Through the real dataflow (``runner.replay``).
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.errors import SettingsError
from predmaint.models.alerting import AlertEvent
from predmaint.models.sensor_model import Assessment
from predmaint.pipelines import points, steps, windows
from predmaint.pipelines.runner import replay
from predmaint.settings import AlertRuleSettings, ModelSettings, load_settings
from predmaint.telemetry import decode_reading

MIN_NS = 60_000_000_000


def _fleet(settings, asset="pump-01", sensor="bearing-temp", gap_min=(30, 60)):
    start_ms = int(settings.simulator.start_time.timestamp() * 1000)
    lo, hi = (start_ms + m * 60_000 for m in gap_min)
    readings = [decode_reading(m.value, m.key) for m in fleet_messages(settings)]
    return [r for r in readings if not (r.asset == asset and r.sensor == sensor and lo <= r.ts_ms < hi)], start_ms


def _settings(**window):
    s = load_settings()
    s = s.replace(simulator=dataclasses.replace(s.simulator, hours=1.5, faults=()))
    return s.replace(window=dataclasses.replace(s.window, **window)) if window else s


def _offline(run):
    return [a for a in run.alerts if a["rule"] == "sensor_offline"]


def test_a_silent_sensor_raises_sensor_offline_after_three_windows_and_clears_when_it_returns():
    settings = _settings()
    readings, _ = _fleet(settings)
    run = replay(settings, readings)
    got = [(a["state"], a["asset"], a["sensor"], a["time"], a["value"]) for a in _offline(run)]
    assert got == [("raised", "pump-01", "bearing-temp", "2026-01-01T00:45:00Z", 3.0),
                   ("cleared", "pump-01", "bearing-temp", "2026-01-01T01:05:00Z", 0.0)]
    # Raised while silent: no health to report (None, not a crash); cleared: it is back with one.
    assert _offline(run)[0]["health"] is None and isinstance(_offline(run)[1]["health"], float)
    stored = [p for p in run.points if p.measurement == "alerts" and p.tags["rule"] == "sensor_offline"]
    assert [(p.fields["state"], p.tags["sensor"], "health" in p.fields) for p in stored] == [
        ("raised", "bearing-temp", False), ("cleared", "bearing-temp", True)]


def test_a_sensor_with_its_own_window_length_still_closes_windows_and_is_seen_silent():
    # bearing-temp alone has 10-minute windows: without the asset's other sensors moving its
    # windower's event time on, its last window would stay open until the input ends.
    settings = _settings(kind_length_s={"temperature": 600.0})
    readings, _ = _fleet(settings)
    run = replay(settings, readings)
    got = [(a["state"], a["sensor"], a["time"]) for a in _offline(run)]
    # Last data window ends 00:30; windows ending 00:40, 00:50, 01:00 are silent (3: raised);
    # data again from 01:00, in the window ending 01:10.
    assert got == [("raised", "bearing-temp", "2026-01-01T01:00:00Z"), ("cleared", "bearing-temp", "2026-01-01T01:10:00Z")]
    temps = sorted(p.time_ns for p in run.health(settings.model.label) if p.tags["sensor"] == "bearing-temp"
                   and p.tags["asset"] == "pump-01")
    assert len(temps) == 9 - 3 and len(set(temps)) == len(temps)  # 90 min of 10-min windows, 3 without data
    assert not [d for d in run.dead_letters if d["reason"].startswith("late")]


def test_no_sensor_offline_alert_when_every_sensor_sends():
    settings = _settings()
    readings, _ = _fleet(settings, gap_min=(0, 0))
    assert _offline(replay(settings, readings)) == []


def test_an_alert_of_a_sensor_absent_from_the_window_has_no_health_and_raises_nothing():
    w = windows.WindowFeatures("pump-01", "motor-current", "current", 300 * 10**9, {"readings": 30.0})
    a = Assessment(raw_score=0.1, health=90.0, phase="monitoring", learned=True)
    event = AlertEvent("id", 1, "cleared", "alarm", "health_low_scalar", "pump-01", "bearing-temp", w.end_ns, 90.0)
    s = steps.ScoredAssetWindow("pump-01", w.end_ns, (steps.ScoredWindow(w, a, {"m": a}),), (event,))
    assert s.health_of("bearing-temp") is None and s.health_of("motor-current") == 90.0
    assert b'"health":null' in points.alert_message(load_settings(), event, s.health_of(event.sensor))[1]
    assert "health" not in points.alert_point({"asset": "pump-01"}, event, None).fields


def test_silence_rules_count_windows_above():
    with pytest.raises(SettingsError, match="silence"):
        AlertRuleSettings(name="off", metric="silence", direction="below", warning=3, clear_at=5)


# State carried over to the settings of a resumed run.

def _window(i: int, level: float = 61.0):
    w = windows.WindowFeatures("pump-01", "bearing-temp", "temperature", (i + 1) * 5 * MIN_NS,
                             {"temp_level_c": level, "readings": 30.0})
    return windows.AssetWindowFeatures("pump-01", w.end_ns, (w,), (), 300.0)


def _resumed(settings, windows=3):
    state = None
    for i in range(windows):
        state, _ = steps.assess(settings, None, state, _window(i))
    return pickle.loads(pickle.dumps(state))  # what a recovery snapshot gives back


def test_after_a_resume_rules_and_thresholds_come_from_the_current_settings():
    hot = AlertRuleSettings(name="hot", metric="temp_level_c", direction="above", alarm=80.0, clear_at=70.0,
                            on_delay_windows=1, off_delay_windows=1)
    gone = AlertRuleSettings(name="gone", metric="temp_level_c", direction="above", alarm=99.0, clear_at=90.0)
    before = load_settings().replace(alert_rules=(hot, gone))
    state = _resumed(before)
    assert state.version == steps.STATE_VERSION and state.alerts["hot"].rule.alarm == 80.0

    stricter = dataclasses.replace(hot, alarm=60.0, clear_at=50.0)
    added = AlertRuleSettings(name="warm", metric="temp_level_c", direction="above", warning=55.0, clear_at=50.0,
                              on_delay_windows=1)
    after = before.replace(alert_rules=(stricter, added))
    state, scored = steps.assess(after, None, state, _window(3))
    assert list(state.alerts) == ["hot", "warm"] and state.alerts["hot"].rule == stricter
    assert sorted((e.rule, e.state, e.severity) for e in scored.events) == [("hot", "raised", "alarm"),
                                                                           ("warm", "raised", "warning")]


def test_after_a_resume_a_renamed_champion_and_a_new_challenger_start_and_removed_models_go():
    before = load_settings()
    state = _resumed(before)
    old_labels = [m.label for m in (before.model, *before.challengers) if m.scope == "sensor"]
    assert list(state.models["bearing-temp"]) == old_labels
    kept = state.models["bearing-temp"][before.model.label]
    renamed = dataclasses.replace(before.model, name="champion-2")
    after = before.replace(model=renamed, challengers=(before.model,))
    state, scored = steps.assess(after, None, state, _window(3))  # raised KeyError before
    assert list(state.models["bearing-temp"]) == ["champion-2", before.model.label]
    assert state.models["bearing-temp"][before.model.label] is kept  # its learning carried over
    assert state.models["bearing-temp"]["champion-2"].windows_seen == 1  # a new model: starts learning now
    assert set(scored.sensors[0].by_model) == {"champion-2", before.model.label}


def test_a_model_whose_spec_changed_under_its_name_cannot_be_carried_over_and_the_error_says_what_changed():
    before = load_settings()
    state = _resumed(before)
    changed = ModelSettings(name=before.model.name, spec="FeatureDeviation", baseline_windows=24)
    with pytest.raises(SettingsError) as err:
        steps.assess(before.replace(model=changed), None, state, _window(3))
    msg = str(err.value)
    for part in ("step assess", "asset pump-01", "sensor bearing-temp", repr(before.model.label), "FeatureDeviation",
                 before.model.spec, "model.name", "recovery.dir"):
        assert part in msg, (part, msg)


def test_a_state_from_a_newer_predmaint_is_refused_naming_the_versions():
    state = _resumed(load_settings())
    state.version = steps.STATE_VERSION + 1
    with pytest.raises(SettingsError, match=f"version {steps.STATE_VERSION + 1}.*up to {steps.STATE_VERSION}"):
        steps.assess(load_settings(), None, state, _window(3))


def test_a_version_1_state_is_carried_over():
    settings = load_settings()
    state = _resumed(settings)
    for name in ("last_seen", "first_end", "version", "recent"):
        del state.__dict__[name]  # as pickled before these existed
    state, _ = steps.assess(settings, None, state, _window(3))
    assert state.version == steps.STATE_VERSION and state.last_seen == {"bearing-temp": _window(3).end_ns}


@pytest.mark.integration
def test_predmaint_run_resumed_with_a_changed_model_spec_stops_with_one_line_naming_it(broker, influxdb, tmp_path):
    import subprocess
    import sys

    import yaml

    from predmaint.connectors import kafka_io
    from tests.pipeline_runs import REPO, run_pipeline, write_config

    config = write_config(tmp_path, "resume", broker, influxdb, "resume_spec", "resume_spec")
    doc = yaml.safe_load(config.read_text())
    doc["simulator"].update(hours=0.5, faults=[])
    config.write_text(yaml.safe_dump(doc))
    settings = load_settings(config)
    kafka_io.ensure_topics(settings.kafka)
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, fleet_messages(settings))
    run_pipeline(config)  # state of every asset snapshotted in recovery.dir

    doc["model"].update(spec="FeatureDeviation", params={}, kind_params={})  # same name, another detector
    config.write_text(yaml.safe_dump(doc))
    more = dataclasses.replace(settings.simulator, start=settings.simulator.start_time.replace(hour=1).isoformat())
    kafka_io.produce(settings.kafka, settings.kafka.telemetry_topic, fleet_messages(settings.replace(simulator=more)))
    proc = subprocess.run([sys.executable, "-m", "predmaint.pipelines.cli", "--config", str(config), "run",
                           "--until-end"], cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("predmaint run:")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "panicked" not in proc.stderr, proc.stderr[-3000:]
    for part in ("step assess: asset ", " sensor ", repr(settings.model.label), "FeatureDeviation", "recovery.dir"):
        assert part in lines[0], (part, lines[0])


def _open_recovery(settings, barrier, errors) -> None:
    from predmaint.pipelines.runner import recovery_config

    barrier.wait()
    try:
        recovery_config(settings)
    except BaseException as exc:  # bytewax's PanicException is a BaseException
        errors.put(repr(exc))


def test_the_processes_of_a_cluster_starting_together_share_one_recovery_directory(tmp_path):
    """Four processes open an empty recovery directory (of 32 partitions) at the same moment (a cluster of ``-i/-a``
    processes started together): the partitions are created once and none of them fails."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    base = load_settings()
    settings = base.replace(recovery=dataclasses.replace(base.recovery, dir=str(tmp_path / "recovery"),
                                                         partitions=32))
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_open_recovery, args=(settings, barrier, errors)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [] and [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(list((tmp_path / "recovery").glob("part-*.sqlite3"))) == 32
