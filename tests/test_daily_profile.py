"""DailyProfile, the champion's judgement of a process value against the same time of day, and its settings.

Known answers on constructed days (a square wave whose peak does not come, noise
with no daily pattern, a missing day, a new pattern, windows shorter than a slot),
the gate that decides whether the days repeat (and that an anomaly does not turn it
off), the Bonferroni combination with the detector's verdict, the state budget of a
process sensor, every branch of the settings check, and a NAB series (real data)
whose labelled anomaly only the daily profile finds.
"""

from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pytest

from predmaint.connectors.datasets.nab import load_nab
from predmaint.errors import SettingsError
from predmaint.models.alerting import AlertState
from predmaint.models.daily_profile import DAY_S, DailyProfile
from predmaint.models.health import health_from_surprise
from predmaint.models.sensor_model import SensorModel
from predmaint.pipelines.steps import model_fields, new_model
from predmaint.settings import DAILY_PROFILE_DEFAULTS, ModelSettings, load_settings

SETTINGS = load_settings(None)
RULES = SETTINGS.alert_rules_by_name
PROFILE = SETTINGS.model.daily_profile["process"]
STEP_S = 300


def square_day(t: float, rng: np.random.Generator, high: float = 10.0) -> float:
    """``high`` from 08:00 to 20:00, 0 at night, noise 0.1."""
    return (high if 8 * 3600 <= t % DAY_S < 20 * 3600 else 0.0) + float(rng.normal(0.0, 0.1))


def feed(profile: DailyProfile, times, values, healthy: bool = True) -> list[float]:
    scores = []
    for t, v in zip(times, values):
        scores.append(profile.score_one(t, v))
        profile.learn_one(t, v, healthy=healthy)
    return scores


def days_of(profile: DailyProfile, start_day: float, days: float, rng, high: float = 10.0) -> list[float]:
    times = np.arange(start_day * DAY_S, (start_day + days) * DAY_S, STEP_S)
    return feed(profile, times, [square_day(t, rng, high) for t in times])


# ----------------------------------------------------------------------------
# The profile: known answers
# ----------------------------------------------------------------------------


def test_a_square_day_repeats_and_a_missing_peak_is_a_surprise():
    rng = np.random.default_rng(0)
    p = DailyProfile()
    scores = days_of(p, 0, 5, rng)
    assert not any(scores[: 3 * DAY_S // STEP_S])  # nothing is expected before three days are known
    assert p.repeats and p.scoring and p.explained_share(5 * DAY_S) > 0.95
    morning = 5 * DAY_S + 9 * 3600
    assert p.expected(morning) == pytest.approx(10.0, abs=0.2)
    assert p.score_one(morning, 10.05) < 2.0  # as usual: not surprising
    assert p.score_one(morning, 0.0) > 6.0  # the peak did not come
    item = p.explain(morning, 0.0, "load")
    assert (item["feature"], item["stat"], item["value"]) == ("load", "time_of_day", 0.0)
    assert item["baseline_mean"] == pytest.approx(10.0, abs=0.2) and item["z"] < -5
    assert re.fullmatch(r"load 0 at 09:00 UTC, where the last 3 days had (9\.9\d|10\.\d) \(median\)", item["evidence"])


def test_noise_without_a_daily_pattern_never_repeats():
    rng = np.random.default_rng(1)
    p = DailyProfile()
    times = np.arange(0, 10 * DAY_S, STEP_S)
    scores = feed(p, times, 50.0 + rng.normal(0.0, 1.0, times.size))
    assert not p.repeats and not any(scores)
    assert p.explained_share(10 * DAY_S) < 0.0  # the median of three past values misses by more than the spread


def test_a_slot_needs_min_days_of_the_last_days():
    rng = np.random.default_rng(2)
    p = DailyProfile()
    days_of(p, 0, 2, rng)
    days_of(p, 3, 1, rng)  # day 2 missing: day 4 has only days 1 and 3 among its last three
    assert math.isnan(p.expected(4 * DAY_S + 9 * 3600)) and math.isnan(p.residual(4 * DAY_S + 9 * 3600, 1.0))
    assert p.score_one(4 * DAY_S + 9 * 3600, 0.0) == 0.0
    loose = DailyProfile(min_days=2)
    days_of(loose, 0, 2, np.random.default_rng(2))
    days_of(loose, 3, 1, np.random.default_rng(3))
    assert loose.expected(4 * DAY_S + 9 * 3600) == pytest.approx(10.0, abs=0.3)


def test_a_new_daily_pattern_is_expected_after_two_days():
    rng = np.random.default_rng(3)
    p = DailyProfile()
    days_of(p, 0, 5, rng)
    days_of(p, 5, 1, rng, high=20.0)
    assert p.expected(6 * DAY_S + 9 * 3600) == pytest.approx(10.0, abs=0.2)  # one new day: still the old median
    days_of(p, 6, 1, rng, high=20.0)
    assert p.expected(7 * DAY_S + 9 * 3600) == pytest.approx(20.0, abs=0.2)


def test_an_unhealthy_day_does_not_turn_the_gate_off():
    rng = np.random.default_rng(4)
    p = DailyProfile()
    days_of(p, 0, 5, rng)
    share = p.explained_share(5 * DAY_S)
    times = np.arange(5 * DAY_S, 6 * DAY_S, STEP_S)
    feed(p, times, 5.0 + rng.normal(0.0, 0.1, times.size), healthy=False)  # a flat day, judged unhealthy
    assert p.repeats and p.explained_share(6 * DAY_S) == share
    fresh = DailyProfile()
    days_of(fresh, 0, 5, np.random.default_rng(4))
    feed(fresh, times, 5.0 + rng.normal(0.0, 0.1, times.size), healthy=True)  # the same day learned as healthy
    assert fresh.explained_share(6 * DAY_S) < share


def test_windows_shorter_than_a_slot_are_averaged_into_it():
    p = DailyProfile(slot_s=900.0)
    for day in range(3):
        for k, v in enumerate((1.0, 2.0, 6.0)):  # three 5-minute windows of 09:00-09:15
            p.learn_one(day * DAY_S + 9 * 3600 + 300 * (k + 1) - 1, v, healthy=True)
    assert p.expected(3 * DAY_S + 9 * 3600 + 60) == pytest.approx(3.0)
    assert math.isnan(p.expected(3 * DAY_S + 9 * 3600 + 900))  # the next slot was never seen


@pytest.mark.parametrize("kwargs, message", [
    ({"slot_s": 0}, "slot_s"), ({"slot_s": DAY_S + 1}, "slot_s"),
    ({"days": 2, "min_days": 3}, "min_days"), ({"min_days": 0}, "min_days"), ({"days": True}, "days"),
    ({"repeats_at": 1.0}, "repeats_at"), ({"stops_at": 0.8, "repeats_at": 0.7}, "stops_at"), ({"stops_at": 0}, "stops_at"),
])
def test_a_bad_profile_argument_fails_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DailyProfile(**kwargs)


def test_the_profile_pickles_and_resumes_the_same():
    rng = np.random.default_rng(5)
    p = DailyProfile()
    days_of(p, 0, 5, rng)
    restored = pickle.loads(pickle.dumps(p))
    morning = 5 * DAY_S + 9 * 3600
    assert restored.score_one(morning, 0.0) == p.score_one(morning, 0.0) > 6.0


# ----------------------------------------------------------------------------
# The champion with its daily profile
# ----------------------------------------------------------------------------


def process_model(daily: bool = True) -> SensorModel:
    m = SETTINGS.model
    return SensorModel(m.spec, m.params_for("process"), m.baseline_windows, m.learn_min_health,
                       daily_profile=PROFILE if daily else None)


def assess_days(model: SensorModel, values, start_s: float = 0.0):
    return [model.assess({"value_mean": float(v)}, int((start_s + (i + 1) * STEP_S) * 1e9))
            for i, v in enumerate(values)]


def test_the_default_judges_a_missing_peak_by_the_time_of_day_and_stays_quiet_on_usual_days():
    rng = np.random.default_rng(6)
    times = np.arange(0, 8 * DAY_S, STEP_S)
    values = [square_day(t, rng) for t in times]
    monday = 7 * DAY_S
    values = [0.0 + float(rng.normal(0, 0.1)) if monday + 8 * 3600 <= t < monday + 11 * 3600 else v
              for t, v in zip(times, values)]
    with_profile = assess_days(process_model(), values)
    without = assess_days(process_model(daily=False), values)
    usual = [i for i, t in enumerate(times) if 4 * DAY_S <= t < monday]
    # The detector alone finds the jumps at 08:00 and 20:00 improbable (the alert rule's routines keep
    # them from being notified); on usual days the profile adds no window at p <= 1e-4 of its own.
    assert {i for i in usual if with_profile[i].health <= 50.0} <= {i for i in usual if without[i].health <= 50.0}
    peak = [i for i, t in enumerate(times) if monday + 8 * 3600 <= t < monday + 11 * 3600]
    assert min(without[i].health for i in peak) > 50.0  # the detector alone: night levels are ordinary
    first = with_profile[peak[0]]
    assert first.health <= 50.0 and first.explanation[0]["stat"] == "time_of_day"


def test_while_the_days_do_not_repeat_health_is_the_detectors_own():
    values = 50.0 + np.random.default_rng(7).normal(0.0, 1.0, 6 * DAY_S // STEP_S)
    with_profile = assess_days(process_model(), values)
    without = assess_days(process_model(daily=False), values)
    assert [a.health for a in with_profile] == [a.health for a in without]


def test_while_they_repeat_p_is_doubled_for_the_two_verdicts():
    rng = np.random.default_rng(8)
    values = [square_day(t, rng) for t in np.arange(0, 6 * DAY_S, STEP_S)]
    model, alone = process_model(), process_model(daily=False)
    assess_days(model, values)
    assess_days(alone, values)
    assert model.daily.scoring
    end_ns = int((6 * DAY_S + 14 * 3600) * 1e9)  # 14:00, day level: the profile finds nothing
    jump = {"value_mean": 14.0}
    a, b = model.assess(jump, end_ns), alone.assess(jump, end_ns)
    assert b.health < 100.0 and b.explanation[0]["stat"] != "time_of_day"
    assert a.health == pytest.approx(health_from_surprise(b.raw_score - math.log10(2)), abs=1e-6)


def test_without_a_window_end_or_the_feature_the_profile_is_not_consulted():
    model = process_model()
    model.assess({"value_mean": 1.0})
    model.assess({"value_std": 1.0}, 300_000_000_000)
    assert np.isnan(model.daily._values).all()


def test_a_baseline_calibrated_champion_keeps_its_own_health():
    """FeatureDeviation's health is not a probability: there is no surprise to combine with the profile's."""
    m = SensorModel("FeatureDeviation", {}, baseline_windows=24, learn_min_health=100.0, daily_profile=PROFILE)
    assert m.daily is None
    assert SensorModel("RobustDeviation", {}, 24, 70.0, daily_profile=PROFILE).daily is not None
    wrapped = SensorModel("MinMaxScaler | HalfSpaceTrees", {"HalfSpaceTrees": {"window_size": 24, "seed": 1}}, 24, None,
                          daily_profile=PROFILE)
    assert wrapped.daily is not None  # a wrapped River detector scores a calibrated surprise


def test_a_recovered_model_from_before_the_profile_assesses_without_it():
    m = process_model()
    old = SensorModel.__new__(SensorModel)
    old.__dict__.update({k: v for k, v in m.__dict__.items() if not k.startswith("daily")})
    assert old.assess({"value_mean": 1.0}, 300_000_000_000).health == 100.0


def test_a_process_sensors_default_models_stay_under_100_kb_with_the_profile_full():
    """Four features (a process value with several readings a window), 5 days of 1-minute windows."""
    models = {m.label: new_model(m, where, kind="process") for where, m in model_fields(SETTINGS, "sensor")}
    rng = np.random.default_rng(9)
    for t in range(0, 5 * DAY_S, 60):
        level = 50.0 + 10.0 * math.sin(2 * math.pi * t / DAY_S)
        r = rng.normal(0.0, 0.1, 4)
        x = {"value_mean": level + r[0], "value_min": level - 1 + r[1], "value_max": level + 1 + r[2],
             "value_std": 0.5 + 0.05 * r[3]}
        for model in models.values():
            model.assess(x, int((t + 60) * 1e9))
    assert models[SETTINGS.model.label].daily.scoring
    assert len(pickle.dumps(models)) <= 100_000


# ----------------------------------------------------------------------------
# Settings: every branch of the check
# ----------------------------------------------------------------------------


def test_the_default_profiles_process_values_only():
    assert set(SETTINGS.model.daily_profile) == {"process"}
    assert new_model(SETTINGS.model, kind="process").daily is not None
    for kind in ("vibration", "temperature", "current"):
        assert new_model(SETTINGS.model, kind=kind).daily is None
    assert all(not m.daily_profile for _, m in model_fields(SETTINGS) if m is not SETTINGS.model)


@pytest.mark.parametrize("daily, message", [
    ({"pump": PROFILE}, "'pump' is not one of"),
    ({"process": "value_mean"}, "daily_profile.process: expected"),
    ({"process": {"days": 3}}, "daily_profile.process: expected"),
    ({"process": {**PROFILE, "period": 7}}, r"unknown keys \['period'\]"),
    ({"process": {**PROFILE, "days": 0}}, "daily_profile.process.days"),
    ({"process": {**PROFILE, "days": 15}}, "daily_profile.process.days"),
    ({"process": {**PROFILE, "min_days": True}}, "daily_profile.process.min_days"),
    ({"process": {**PROFILE, "days": 2}}, "daily_profile.process.min_days: 3 exceeds days"),
    ({"process": {**PROFILE, "repeats_at": 1.0}}, "daily_profile.process.repeats_at"),
    ({"process": {**PROFILE, "stops_at": "low"}}, "daily_profile.process.stops_at"),
    ({"process": {**PROFILE, "stops_at": 0.8}}, "daily_profile.process.stops_at: 0.8 exceeds repeats_at"),
])
def test_a_bad_profile_setting_fails_naming_the_key(daily, message):
    with pytest.raises(SettingsError, match=message):
        ModelSettings(daily_profile=daily)


def test_a_profile_with_only_a_feature_takes_the_defaults():
    m = new_model(ModelSettings(daily_profile={"process": {"feature": "value_mean"}}), kind="process")
    assert (m.daily.days, m.daily.min_days, m.daily.repeats_at, m.daily.stops_at) == \
        tuple(DAILY_PROFILE_DEFAULTS[k] for k in ("days", "min_days", "repeats_at", "stops_at"))


# ----------------------------------------------------------------------------
# Real data
# ----------------------------------------------------------------------------


def test_on_nab_the_daily_profile_finds_a_missing_daily_peak(nab_dir):
    """``art_daily_nojump``: on its labelled day the morning jump does not come."""
    rec = load_nab(nab_dir, series="artificialWithAnomaly/art_daily_nojump.csv")[0]
    start, end = (np.datetime64(t, "ms").astype("int64") for t in rec.labels.windows[0])
    raised = {}
    for daily in (True, False):
        model, rule = process_model(daily), AlertState(RULES["health_low_scalar"])
        raised[daily] = []
        for r in rec.stream():
            end_ns = (r.ts_ms // (STEP_S * 1000) + 1) * STEP_S * 1_000_000_000
            a = model.assess({"value_mean": float(r.samples.mean())}, end_ns)
            if a.phase == "monitoring":
                raised[daily] += [(r.ts_ms, a.explanation[0]["stat"])
                                  for e in rule.update("a", "s", r.ts_ms * 1_000_000, a.health, [])
                                  if e.state == "raised"]
    inside = {daily: [x for x in times if start <= x[0] <= end] for daily, times in raised.items()}
    assert inside[True] and inside[True][0][1] == "time_of_day" and not inside[False], inside


def test_through_the_dataflow_the_missing_peak_is_alerted_by_its_time_of_day(nab_dir):
    """The same series through the real flow (10-second process windows, each window's end as its clock)."""
    from predmaint.pipelines.evaluate import replay_recording

    rec = load_nab(nab_dir, series="artificialWithAnomaly/art_daily_nojump.csv")[0]
    start, end = (np.datetime64(t, "ms").astype("int64") for t in rec.labels.windows[0])
    alerts = replay_recording(SETTINGS.replace(challengers=()), rec).alerts
    inside = [a for a in alerts if a["state"] == "raised" and a["rule"] == "health_low_scalar"
              and start <= np.datetime64(a["time"].rstrip("Z"), "ms").astype("int64") <= end]
    assert inside and inside[0]["explanation"][0]["stat"] == "time_of_day", inside
    assert "where the last 3 days had" in inside[0]["explanation"][0]["evidence"]
