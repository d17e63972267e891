"""TransitionNovelty, the champion's novelty watch and the ``novel_pattern`` rule of the default configuration.

Known answers on constructed signals (a swing that stops halfway, a new extreme,
the warm-up, NaN), every branch of the settings check and of the rule metric,
the gate that keeps novel moves of ordinary values out, and two NAB series
(real data) whose labelled anomaly only the novelty rule finds.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from predmaint.connectors.datasets.nab import load_nab
from predmaint.errors import SettingsError
from predmaint.models.alerting import AlertState
from predmaint.models.sensor_model import Assessment, SensorModel
from predmaint.models.transition_novelty import TransitionNovelty
from predmaint.pipelines.steps import NOVELTY, new_model, rule_value
from predmaint.pipelines.windows import WindowFeatures
from predmaint.settings import AlertRuleSettings, ModelSettings, load_settings

SETTINGS = load_settings()
RULES = {r.name: r for r in SETTINGS.alert_rules}


def scores(model: TransitionNovelty, values) -> list[float]:
    out = []
    for v in values:
        out.append(model.score_one(v))  # scored before it learns
        model.learn_one(v)
    return out


# ----------------------------------------------------------------------------
# TransitionNovelty on known answers
# ----------------------------------------------------------------------------


def test_a_swing_that_stops_halfway_is_novel_and_a_learned_move_is_not():
    m = TransitionNovelty(bins=4, warmup=4)
    assert scores(m, [0.0, 4.0] * 10) == [0.0] * 20
    assert scores(m, [2.0]) == [1.0]         # top band -> a middle band: never seen
    assert scores(m, [4.0, 2.0]) == [1.0, 0.0]  # middle -> top new; top -> middle now learned


def sawtooth(periods: int = 10, seed: int = 0) -> np.ndarray:
    """A value ramping from 0 to 9.8 in 50 steps, then falling back to 0, with a little noise."""
    return np.tile(np.arange(50) / 5.0, periods) + np.random.default_rng(seed).normal(0.0, 0.05, 50 * periods)


def test_a_ramp_that_falls_back_from_halfway_is_novel_and_one_from_the_top_is_not():
    m = TransitionNovelty(bins=8, warmup=100)
    scores(m, sawtooth())
    scores(m, np.arange(26) / 5.0)  # up to halfway
    assert m.score_one(5.2) == 0.0  # the ramp's next step
    assert m.score_one(0.0) == 1.0  # falling from halfway: never seen
    scores(m, np.arange(26, 50) / 5.0)  # on up to the top
    assert m.score_one(0.0) == 0.0  # falling from the top: every period does


def test_nothing_is_novel_in_the_warm_up():
    m = TransitionNovelty(bins=8, warmup=50)
    assert scores(m, [0.0] * 20 + [10.0, 0.0, 5.0, 10.0]) == [0.0] * 24
    assert m.n_learned == 24


def test_a_flat_signal_sits_in_one_band_until_it_moves():
    m = TransitionNovelty(bins=8, warmup=5)
    assert scores(m, [3.0] * 30) == [0.0] * 30
    assert m.band(3.0) == 0
    assert scores(m, [4.0])[0] == 1.0


def test_nan_is_neither_scored_nor_learned():
    m = TransitionNovelty(bins=4, warmup=1)
    scores(m, [0.0, 1.0])
    assert m.score_one(math.nan) == 0.0
    m.learn_one(math.nan)
    assert m.n_learned == 2 and (m.lo, m.hi) == (0.0, 1.0)


def test_the_largest_finite_values_neither_crash_it_nor_lose_the_bands():
    m = TransitionNovelty(bins=8, warmup=1)
    values = [1.0, 2.0, 1.7e308, -1.7e308, 3.0, 5e-324, 1.7e308]
    out = scores(m, values)  # a range of 3.4e308 overflows a float: it must not become NaN
    assert out[1:5] == [1.0, 1.0, 1.0, 1.0] and out[5] == 0.0  # 3 -> 5e-324: the middle band again
    assert (m.band(-1.7e308), m.band(0.0), m.band(1.7e308)) == (0, 4, 7)


@pytest.mark.parametrize("kwargs, field", [({"bins": 1}, "bins"), ({"bins": 65}, "bins"), ({"bins": True}, "bins"),
                                           ({"bins": 2.5}, "bins"), ({"warmup": 0}, "warmup")])
def test_bad_arguments_name_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TransitionNovelty(**kwargs)


def test_the_state_is_a_few_kilobytes_whatever_the_run():
    short, long = TransitionNovelty(), TransitionNovelty()
    scores(short, np.random.default_rng(0).normal(0.0, 1.0, 200))
    scores(long, np.random.default_rng(0).normal(0.0, 1.0, 20_000))
    assert long.fine == 64 and abs(len(pickle.dumps(long)) - len(pickle.dumps(short))) < 16
    assert len(pickle.dumps(long)) < 5_000


def test_moves_learned_while_the_range_was_tiny_are_judged_in_the_bands_of_the_range_now():
    """Noise of 0.1 at first spans every band of its tiny range; in the range 0..10 it is all band 0."""
    m = TransitionNovelty(bins=8, warmup=10)
    assert scores(m, [0.0, 0.1] * 10) == [0.0] * 20  # band 0 <-> band 7 of the range 0..0.1, in the warm-up
    ramp = list(np.linspace(0.0, 10.0, 81)) + list(np.linspace(10.0, 0.0, 81))  # up and down through every band
    scores(m, ramp)
    assert m.score_one(10.0) == 1.0 and m.band(10.0) == 7  # from the floor straight to the ceiling: never seen
    assert m.explain(10.0, "v")["from_band"] == [0.0, 1.25]
    m.learn_one(10.0)
    assert m.score_one(0.0) == 1.0 and m.score_one(9.0) == 0.0  # straight down is new; 10 -> 9 was on the ramp


def test_a_widened_range_judges_each_learned_move_in_the_new_bands():
    m = TransitionNovelty(bins=4, warmup=1)
    scores(m, [0.0, 3.0, 0.0, 1.0, 0.0])  # the range 0..3: 3 is band 3, 1 is band 1
    m.learn_one(8.0)                      # the range 0..8, bands of 2: 3 is band 1 now, 1 is band 0
    # 3 -> 0 was band 3 -> 0 when it came; in the bands of now it was 1 -> 0, so 8 -> 0 is new.
    assert m.score_one(0.0) == 1.0
    m.learn_one(0.0)
    assert m.score_one(3.0) == 0.0 and m.score_one(7.0) == 0.0  # 0 -> 3 and 0 -> 8, re-binned
    assert m.score_one(5.0) == 1.0                              # band 0 -> 2: never


def test_a_watch_pickled_before_the_re_binning_starts_afresh():
    m = TransitionNovelty(bins=8, warmup=5)
    scores(m, [1.0, 2.0] * 10)
    old = {"bins": 8, "warmup": 5, "lo": 1.0, "hi": 2.0, "last_band": 7, "n_learned": 20,
           "seen": np.ones((8, 8), dtype=bool)}  # the state of the first version (2026-12-03)
    restored = TransitionNovelty.__new__(TransitionNovelty)
    restored.__setstate__(old)
    assert restored.n_learned == 0 and restored.seen.shape == (64, 64) and not restored.seen.any()
    assert pickle.loads(pickle.dumps(m)).__dict__.keys() == m.__dict__.keys()


# ----------------------------------------------------------------------------
# The watch inside SensorModel
# ----------------------------------------------------------------------------

WATCH = {"feature": "value_mean", "bins": 8, "warmup_windows": 100, "below_health": 100}


def swing(n: int, seed: int = 0) -> np.ndarray:
    """A value alternating between two levels, with a little noise."""
    rng = np.random.default_rng(seed)
    return np.where(np.arange(n) % 2 == 0, 10.0, 20.0) + rng.normal(0.0, 0.3, n)


def test_without_a_watch_novelty_is_nan():
    m = SensorModel("RobustDeviation", {}, baseline_windows=24, learn_min_health=70.0)
    assert math.isnan(m.assess({"value_mean": 1.0}).novelty)


def test_a_novel_move_of_an_unusual_value_is_reported_first_in_the_explanation():
    m = SensorModel("RobustDeviation", {}, baseline_windows=24, learn_min_health=70.0, novelty=WATCH)
    assert all(m.assess({"value_mean": float(v)}).novelty == 0.0 for v in sawtooth())
    for v in np.arange(26) / 5.0:
        m.assess({"value_mean": float(v)})
    a = m.assess({"value_mean": 0.0})  # falls back from halfway: a drop the ramp never made
    assert a.health < 100.0 and a.novelty == 1.0
    row = a.explanation[0]
    assert (row["feature"], row["stat"], row["value"], row["readings"]) == ("value_mean", "novelty", 0.0, 526)
    assert row["to_band"][0] <= 0.0 <= row["to_band"][1] and row["from_band"][0] <= 5.0 <= row["from_band"][1]
    assert row["evidence"].startswith("value_mean moved from ") and row["evidence"].endswith("not seen in 526 readings")


def test_a_novel_move_of_an_ordinary_value_is_learned_not_reported():
    """The gate: at health 100 (the detector finds the value ordinary) a novel move is not reported."""
    m = SensorModel("RobustDeviation", {}, baseline_windows=24, learn_min_health=70.0, novelty=WATCH)
    for v in swing(400):
        m.assess({"value_mean": float(v)})
    assert m.novelty.score_one(15.0) == 1.0  # halfway between the levels it always jumped across
    a = m.assess({"value_mean": 15.0})  # ... which is the levels' median: an ordinary level
    assert a.health == 100.0 and a.novelty == 0.0
    assert m.novelty.n_learned == 401 and m.novelty.last_value == 15.0


def test_a_recovered_model_from_before_the_watch_assesses_without_it():
    m = SensorModel("RobustDeviation", {}, baseline_windows=24, learn_min_health=70.0)
    state = m.__dict__.copy()
    old = SensorModel.__new__(SensorModel)
    old.__dict__.update({k: v for k, v in state.items() if not k.startswith("novelty")})
    assert math.isnan(old.assess({"value_mean": 1.0}).novelty)


# ----------------------------------------------------------------------------
# Settings: every branch of the check
# ----------------------------------------------------------------------------


def test_the_default_watches_process_values_only():
    assert set(SETTINGS.model.novelty) == {"process"}
    assert new_model(SETTINGS.model, kind="process").novelty is not None
    for kind in ("vibration", "temperature", "current"):
        assert new_model(SETTINGS.model, kind=kind).novelty is None
    assert RULES["novel_pattern"].metric == NOVELTY and RULES["novel_pattern"].kinds == ("process",)


@pytest.mark.parametrize("novelty, message", [
    ({"pump": WATCH}, "'pump' is not one of"),
    ({"process": "value_mean"}, "novelty.process: expected"),
    ({"process": {"bins": 8}}, "novelty.process: expected"),
    ({"process": {**WATCH, "band": 3}}, r"unknown keys \['band'\]"),
    ({"process": {**WATCH, "bins": 1}}, "novelty.process.bins"),
    ({"process": {**WATCH, "bins": 65}}, "novelty.process.bins"),
    ({"process": {**WATCH, "warmup_windows": 0}}, "novelty.process.warmup_windows"),
    ({"process": {**WATCH, "warmup_windows": True}}, "novelty.process.warmup_windows"),
    ({"process": {**WATCH, "below_health": 0}}, "novelty.process.below_health"),
    ({"process": {**WATCH, "below_health": 101}}, "novelty.process.below_health"),
    ({"process": {**WATCH, "below_health": "high"}}, "novelty.process.below_health"),
])
def test_a_bad_watch_fails_naming_the_key(novelty, message):
    with pytest.raises(SettingsError, match=message):
        ModelSettings(novelty=novelty)


def test_a_watch_with_only_a_feature_takes_the_defaults():
    m = new_model(ModelSettings(novelty={"process": {"feature": "value_mean"}}), kind="process")
    assert (m.novelty.bins, m.novelty.warmup, m.novelty_below_health) == (8, 100, 80.0)


# ----------------------------------------------------------------------------
# The rule metric: every branch
# ----------------------------------------------------------------------------

RULE = AlertRuleSettings(name="n", metric=NOVELTY, direction="above", warning=1, clear_at=0.5, kinds=("process",))
WINDOW = WindowFeatures("a", "s", "process", 0, {"value_mean": 1.0})


@pytest.mark.parametrize("champion, expected", [
    (None, None),                                                          # judged jointly: no verdict
    (Assessment(0.0, 100.0, "baseline", True, [], 0.0), None),             # still in its baseline
    (Assessment(0.0, 100.0, "monitoring", True, []), None),                # no watch: NaN
    (Assessment(5.0, 30.0, "monitoring", False, [], 1.0), 1.0),
    (Assessment(0.0, 100.0, "monitoring", True, [], 0.0), 0.0),
])
def test_the_novelty_metric_is_the_champions_verdict_in_monitoring(champion, expected):
    assert rule_value(RULE, WINDOW, champion) == expected


def test_the_rule_does_not_apply_to_other_kinds():
    w = WindowFeatures("a", "s", "temperature", 0, {"temp_level_c": 1.0})
    assert rule_value(RULE, w, Assessment(5.0, 30.0, "monitoring", False, [], 1.0)) is None


# ----------------------------------------------------------------------------
# The default on healthy noise and on real data
# ----------------------------------------------------------------------------


def episodes(values, below_health: float) -> int:
    """``novel_pattern`` alerts raised over ``values`` by the default process model with that gate."""
    watch = {**SETTINGS.model.novelty["process"], "below_health": below_health}
    d = SETTINGS.model  # built directly: the settings allow no gate above 100 (101 reports at any health)
    m = SensorModel(d.spec, d.params_for("process"), d.baseline_windows, d.learn_min_health, novelty=watch)
    rule = AlertState(RULES["novel_pattern"])
    raised = 0
    for i, v in enumerate(values):
        a = m.assess({"value_mean": float(v)})
        if a.phase == "monitoring":
            raised += sum(e.state == "raised" for e in rule.update("a", "s", i, a.novelty, []))
    return raised


def test_on_healthy_noise_the_gate_keeps_novel_pattern_alerts_rare():
    """Measured 2026-12-03 (10 x 5,000 Gaussian readings): 9 with the default gate (health below 80), 104 without."""
    gate = SETTINGS.model.novelty["process"]["below_health"]
    streams = [50.0 + np.random.default_rng(seed).normal(0.0, 1.0, 5_000) for seed in range(4)]
    gated = sum(episodes(x, gate) for x in streams)
    ungated = sum(episodes(x, 101.0) for x in streams)  # every window's health is below 101
    assert gated < ungated / 4
    assert gated <= 20_000 / 2_000  # at most one per two thousand healthy readings


@pytest.mark.parametrize("series, window", [("realTraffic/TravelTime_387.csv", 2), ("realTraffic/speed_t4013.csv", 1)])
def test_on_nab_the_novelty_rule_finds_an_anomaly_the_health_rule_misses(nab_dir, series, window):
    rec = load_nab(nab_dir, series=series)[0]
    ts = np.asarray(rec.labels.timestamps, dtype="datetime64[ms]")
    start, end = (np.datetime64(t, "ms").astype("int64") for t in rec.labels.windows[window])
    model = new_model(SETTINGS.model, kind="process")
    states = {name: AlertState(RULES[name]) for name in ("health_low_scalar", "novel_pattern")}
    raised = {name: [] for name in states}
    for r in rec.stream():
        a = model.assess({"value_mean": float(r.samples.mean())})
        if a.phase != "monitoring":
            continue
        for name, st in states.items():
            value = a.health if name == "health_low_scalar" else a.novelty
            raised[name] += [r.ts_ms for e in st.update("a", "s", r.ts_ms * 1_000_000, value, [])
                             if e.state == "raised"]
    inside = {name: [t for t in times if start <= t <= end] for name, times in raised.items()}
    assert inside["novel_pattern"] and not inside["health_low_scalar"], (inside, ts.size)
