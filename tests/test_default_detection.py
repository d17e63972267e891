"""The default configuration's detection, on signals with known answers and on the demo fleet.

* Scalar streams (one reading per window, the packaged default model for a
  ``process`` sensor and its health rule ``health_low_scalar``): a level
  shift, a spike, a drift and a variance change each raise within a few
  readings of their onset and make exactly one alert episode; 5,000 readings of
  healthy noise raise none.
* State: a sensor's default models (champion and challenger) pickle to at
  most 100 KB, for a vibration window's ~29 features and for a 4-feature
  scalar sensor, after long enough for every buffer to be full.
* The demo fleet through the real dataflow in-process
  (:func:`predmaint.pipelines.runner.replay`) with ``MinMaxScaler |
  HalfSpaceTrees`` as the champion: with ``window_size: 24`` it alerts on
  pump-03's bearing fault and on no healthy asset (every asset used to go
  critical; then, before its features were kept inside its limits and its mass
  calibrated on a log scale, it missed the fault); with River's defaults (250
  windows of warm-up) its baseline is longer than the demo and the start-up
  says so. tests/test_end_to_end.py checks the default champion on the same fleet.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pickle

import numpy as np
import pytest

from predmaint.connectors.fleet_simulator import fleet_messages
from predmaint.models.alerting import AlertState
from predmaint.models.robust_deviation import RobustDeviation
from predmaint.pipelines.runner import replay
from predmaint.pipelines.steps import NOT_MODELLED, model_fields, new_model
from predmaint.settings import ModelSettings, load_settings
from predmaint.telemetry import decode_reading

SETTINGS = load_settings()
SCALAR_RULE = next(r for r in SETTINGS.alert_rules if r.name == "health_low_scalar")
ONSET = 600  # healthy readings before the change: the model is calibrated and past its young phase
SEEDS = (0, 1, 2)


def alert_states(values) -> list[tuple[int, str]]:
    """(reading index, event state) of the default scalar model and rule on a stream of readings."""
    model = new_model(SETTINGS.model, kind="process")
    rule = AlertState(SCALAR_RULE)
    events = []
    for i, v in enumerate(values):
        a = model.assess({"value_mean": float(v)})
        if a.phase == "monitoring":
            events += [(i, e.state) for e in rule.update("a", "s", i, a.health, [])]
    return events


def healthy(n: int, seed: int) -> np.ndarray:
    return 50.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


def changed(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 50.0 + rng.normal(0.0, 1.0, ONSET + 400)
    if kind == "level shift":  # +6 noise levels, lasting
        x[ONSET:] += 6.0
    elif kind == "spike":  # one reading, 12 noise levels
        x[ONSET] += 12.0
    elif kind == "drift":  # half a noise level per reading
        x[ONSET:] += 0.5 * np.arange(400)
    elif kind == "variance change":  # noise x 4, lasting
        x[ONSET:] = 50.0 + rng.normal(0.0, 4.0, 400)
    return x


@pytest.mark.parametrize("kind, within", [("level shift", 3), ("spike", 0), ("drift", 12), ("variance change", 25)])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_change_raises_within_a_few_readings_as_one_episode(kind, within, seed):
    events = alert_states(changed(kind, seed))
    raised = [i for i, state in events if state == "raised"]
    assert len(raised) == 1, events  # one alert for the whole episode
    assert ONSET <= raised[0] <= ONSET + within, events
    cleared = [i for i, state in events if state == "cleared"]
    if kind == "spike":  # over at once: cleared after off_delay_windows healthy readings (+ the mean's window)
        assert cleared and cleared[0] <= ONSET + SCALAR_RULE.off_delay_windows + 10, events
    if kind == "level shift":  # scalar kinds accept a lasting change as the new normal after a few dozen readings
        assert cleared and cleared[0] <= ONSET + SCALAR_RULE.off_delay_windows + 40, events


def test_healthy_noise_raises_nothing_in_5000_readings():
    assert alert_states(healthy(5000, seed=100)) == []


# ----------------------------------------------------------------------------
# State per sensor
# ----------------------------------------------------------------------------


def vibration_windows() -> list[dict]:
    """The window features steps.assess gives a vibration sensor's models, from the simulated fleet."""
    settings = SETTINGS.replace(simulator=dataclasses.replace(SETTINGS.simulator, hours=1.0, faults=()))
    readings = [decode_reading(m.value, m.key) for m in fleet_messages(settings)]
    points = replay(settings, readings).points
    windows = [p.fields for p in points if p.measurement == "features" and p.tags["sensor"] == "de-accel"]
    return [{k: v for k, v in w.items() if k not in NOT_MODELLED} for w in windows]


@pytest.fixture(scope="module")
def vibration_features() -> list[dict]:
    return vibration_windows()


def jittered(windows: list[dict], n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{k: v * (1.0 + 0.02 * rng.standard_normal()) for k, v in windows[i % len(windows)].items()}
            for i in range(n)]


def test_a_sensors_models_pickle_to_at_most_100_kb(vibration_features):
    assert len(vibration_features[0]) >= 25  # a real vibration window: envelope lines, bands, orders...
    scalar = [{"current_rms_a": 30.0 + r[0], "current_rms_b": 30.2 + r[1], "current_rms_c": 29.9 + r[2],
               "current_imbalance_pct": 0.5 + 0.1 * r[3]} for r in np.random.default_rng(1).normal(0, 0.1, (2000, 4))]
    for kind, windows in (("vibration", jittered(vibration_features, 2000)), ("current", scalar)):
        # What steps.assess keeps per sensor: the champion and every challenger.
        models = {m.label: new_model(m, where, kind=kind) for where, m in model_fields(SETTINGS, "sensor")}
        for x in windows:  # more windows than any buffer holds (reference 512, calibration 1024)
            for model in models.values():
                model.assess(x)
        size = len(pickle.dumps(models))
        assert size <= 100_000, (kind, size)
        champion = models[SETTINGS.model.label]
        assert len(pickle.dumps(champion)) <= 95_000
        restored = pickle.loads(pickle.dumps(champion))
        assert restored.assess(windows[0]).raw_score == champion.assess(windows[0]).raw_score


def test_the_vibration_default_is_frozen_on_faults_and_the_scalar_default_winsorises():
    vib = new_model(SETTINGS.model, kind="vibration").detector
    scalar = new_model(SETTINGS.model, kind="temperature").detector
    assert isinstance(vib, RobustDeviation) and isinstance(scalar, RobustDeviation)
    assert (vib.unhealthy, vib.calibrate_unhealthy, vib.stats) == ("freeze", False, ("level", "mean"))
    assert (scalar.unhealthy, scalar.calibrate_unhealthy) == ("winsorise", True)
    assert vib.learn_max_surprise == scalar.learn_max_surprise == pytest.approx(3.2)  # learn_min_health 70


# ----------------------------------------------------------------------------
# Champion swap by config: MinMaxScaler | HalfSpaceTrees on the demo fleet
# ----------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@functools.cache
def demo_with_champion(window_size: int | None, hours: float = SETTINGS.simulator.hours
                       ) -> tuple[list[dict], dict[str, float], list[str]]:
    """The demo replayed with ``MinMaxScaler | HalfSpaceTrees`` as the only model: alerts, worst health, warnings."""
    hst = {"seed": 42} if window_size is None else {"window_size": window_size, "seed": 42}
    champion = ModelSettings(name="half-space-trees", spec="MinMaxScaler | HalfSpaceTrees",
                             params={"HalfSpaceTrees": hst})
    settings = SETTINGS.replace(model=champion, challengers=(),
                                simulator=dataclasses.replace(SETTINGS.simulator, hours=hours))
    readings = [decode_reading(m.value, m.key) for m in fleet_messages(settings)]
    logger, handler = logging.getLogger("predmaint.models.sensor_model"), _Collect()
    logger.addHandler(handler)
    try:
        result = replay(settings, readings)
    finally:
        logger.removeHandler(handler)
    worst: dict[str, float] = {}
    for p in result.health():
        if p.fields["phase"] == "monitoring":
            worst[p.tags["asset"]] = min(worst.get(p.tags["asset"], 100.0), p.fields["health"])
    return result.alerts, worst, handler.messages


def test_half_space_trees_window_24_as_champion_alerts_on_no_healthy_asset():
    alerts, worst, messages = demo_with_champion(24)
    faulty = {f.asset for f in SETTINGS.simulator.faults}
    assert {a["asset"] for a in alerts} <= faulty
    assert all(worst[a.asset] > 50.0 for a in SETTINGS.fleet if a.asset not in faulty), worst
    # 24 windows of warm-up, then 12 scores to calibrate: the baseline is 36 windows, said once at start-up.
    assert len(messages) == 1, messages
    assert messages[0].startswith("model.baseline_windows: MinMaxScaler | HalfSpaceTrees needs 24 learned windows")
    assert "its baseline is 36 windows" in messages[0]


def test_half_space_trees_with_river_defaults_cannot_score_for_hours_and_says_so():
    alerts, worst, messages = demo_with_champion(None, hours=2.5)
    assert alerts == [] and worst == {}  # no window leaves the baseline
    assert messages == [
        "model.baseline_windows: MinMaxScaler | HalfSpaceTrees needs 250 learned windows before it scores "
        "(model.params.HalfSpaceTrees.window_size) and 12 to calibrate: its baseline is 262 windows, not the "
        "configured one; health stays 100 (phase baseline) until then"]


def test_half_space_trees_as_champion_alerts_on_the_faulty_pump():
    alerts, _, _ = demo_with_champion(24)
    assert {a["asset"] for a in alerts if a["state"] == "raised"} == {f.asset for f in SETTINGS.simulator.faults}
