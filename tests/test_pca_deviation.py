"""PCADeviation (an asset's sensors together) on signals with known answers, River's checks, and the flow's asset scope."""

import pickle
import random

import numpy as np
import pytest

from predmaint.models.pca_deviation import PCADeviation
from predmaint.pipelines import steps, windows
from predmaint.settings import AlertRuleSettings, AssetModelSettings, ModelSettings, SettingsError, load_settings
from predmaint.settings.loading import parse_fleet
from tests.test_robust_deviation import river_checks


def _pump(rng, load, flow_offset=0.0, current_offset=0.0):
    """Flow and pressure follow the load together; the current is independent noise."""
    return {"flow.value_mean": 100 + 10 * load + rng.gauss(0, 0.3) + flow_offset,
            "pressure.value_mean": 5 + 0.5 * load + rng.gauss(0, 0.015),
            "current.value_mean": 20 + rng.gauss(0, 0.1) + current_offset,
            "flow.value_std": rng.uniform(0, 1)}  # not a level feature: ignored


def _trained(n=300, seed=2, **params):
    rng = random.Random(seed)
    model = PCADeviation(**params)
    for _ in range(n):
        x = _pump(rng, rng.uniform(-1, 1))
        model.score_one(x)
        model.learn_one(x)
    return model, rng


def test_river_estimator_checks():
    names = []
    for name, check in river_checks(PCADeviation(), skip={
            # Inputs are fixed by the first window (a covariance needs joint rows); see the module docstring.
            "check_emerging_features": "inputs fixed at the first window",
            "check_disappearing_features": "missing inputs are imputed; checked below",
            "check_shuffle_features_no_impact": "synthetic stream keys lack a sensor prefix"}):
        check(PCADeviation())
        names.append(name)
    assert {"check_learn_one", "check_pickling", "check_clone_is_independent", "check_bounded_memory_growth",
            "check_repr_roundtrips_clone", "check_get_params_matches_signature"} <= set(names)


def test_a_broken_relation_is_found_by_q_a_common_move_by_t2_and_healthy_windows_stay_quiet():
    model, rng = _trained()
    healthy = [model.score_one(_pump(rng, rng.uniform(-1, 1))) for _ in range(500)]
    # p = 1e-4 is health 50: 500 healthy windows should almost never reach it.
    assert sum(s >= 4.0 for s in healthy) <= 1
    broken = _pump(rng, 0.5, flow_offset=-8.0)  # each value in range, the pair no longer agrees
    assert model.score_one(broken) > 6.0 and model.explain(broken)[0]["stat"] == "Q"
    current = _pump(rng, 0.0, current_offset=1.5)  # 15 noise levels on the independent channel
    assert model.score_one(current) > 6.0
    assert model.explain(current)[0]["feature"] == "current.value_mean"


def test_an_unhealthy_window_is_not_learned_so_a_lasting_fault_stays_abnormal():
    model, rng = _trained()
    scores = []
    for _ in range(100):
        x = _pump(rng, rng.uniform(-1, 1), flow_offset=-6.0)
        scores.append(model.score_one(x))
        model.learn_one(x)
        assert not model.last_learned
    assert min(scores) > 4.0


def test_a_missing_sensor_contributes_nothing_and_the_state_pickles():
    model, rng = _trained()
    x = _pump(rng, 0.2)
    del x["current.value_mean"]
    assert model.score_one(x) < 3.0
    clone = pickle.loads(pickle.dumps(model))
    y = _pump(rng, 0.5, flow_offset=-8.0)
    assert clone.score_one(y) == pytest.approx(model.score_one(y))


def test_nothing_is_scored_before_grace_and_calibration():
    rng = random.Random(0)
    model = PCADeviation(grace=12, calibration_min=12)
    for i in range(23):
        x = _pump(rng, rng.uniform(-1, 1))
        assert model.score_one(x) == 0.0
        model.learn_one(x)
    assert "calibrated after 24" in model.calibration_problem()
    model.learn_one(_pump(rng, 0.0))
    assert model.calibration_problem() is None
    blind = PCADeviation(grace=2, calibration_min=3, calibration_size=4)
    for _ in range(5):
        blind.learn_one({"a.other": 1.0})  # no level feature
    assert "no window had any of the level features" in blind.calibration_problem()


@pytest.mark.parametrize("kwargs, match", [({"variance_kept": 1.0}, "variance_kept"), ({"grace": 1}, "grace"),
                                           ({"features": ()}, "features"), ({"grace": 300}, "exceed")])
def test_bad_arguments_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PCADeviation(**kwargs)


# ----------------------------------------------------------------------------
# Scope "asset" in the flow's assess step
# ----------------------------------------------------------------------------

SETTINGS = load_settings()
END = 1_767_225_600_000_000_000


def _rig(champion=True, kinds=("process", "process", "process")):
    """A rig of flow, pressure and current; the joined window's champion asset-pca, or only a challenger."""
    fleet = parse_fleet([{"site": "s", "lines": [{"line": "l", "assets": [{
        "asset": "rig", "sensors": [{"sensor": n, "kind": k, "unit": "1"}
                                    for n, k in zip(("flow", "pressure", "current"), kinds)]}]}]}], "test")
    pca = ModelSettings(name="asset-pca", spec="PCADeviation", scope="asset", baseline_windows=24)
    s = SETTINGS.replace(fleet=fleet)
    if champion:
        return s.replace(asset_model=AssetModelSettings(model=pca), challengers=())
    return s.replace(asset_model=AssetModelSettings(), challengers=(pca,))


def _assess(settings, n=200, fault_from=None, seed=3):
    rng = random.Random(seed)
    state, out = None, []
    for i in range(n):
        x = _pump(rng, rng.uniform(-1, 1), flow_offset=-8.0 if fault_from is not None and i >= fault_from else 0.0)
        end = END + i * 10_000_000_000
        ws = tuple(windows.WindowFeatures("rig", k.split(".")[0], "process", end, {"value_mean": v})
                   for k, v in sorted(x.items()) if k.endswith("value_mean"))
        state, scored = steps.assess(settings, None, state, windows.AssetWindowFeatures("rig", end, ws, (), 10.0))
        out.append(scored)
    return state, out


def test_the_joined_windows_champion_alerts_and_its_sensors_keep_their_models_as_challengers():
    settings = _rig()
    state, out = _assess(settings, fault_from=150)
    joint = [s for s in out[-1].sensors if s.window.sensor == "asset"]
    assert len(joint) == 1 and joint[0].window.kind == "asset" and set(joint[0].by_model) == {"asset-pca"}
    assert joint[0].champion == "asset-pca"
    sensors = [s for s in out[-1].sensors if s.window.sensor != "asset"]
    assert all(s.assessment is None and s.champion is None and settings.model.label in s.by_model for s in sensors)
    raised = [e for s in out for e in s.events if e.state == "raised"]
    assert [(e.rule, e.sensor) for e in raised] == [("health_low_scalar", "asset")]
    assert out.index(next(s for s in out if s.events)) >= 150
    assert out[-1].health_of("asset") < 50 and out[-1].health_of("flow") is None
    rule = next(r for r in settings.alert_rules if r.name == "health_low_scalar")
    assert steps.watched_sensors(settings, "rig", rule) == 1


def test_sensors_of_other_kinds_keep_the_sensor_champion():
    settings = _rig(kinds=("process", "process", "current"))
    _, out = _assess(settings, n=30)
    by_sensor = {s.window.sensor: s for s in out[-1].sensors}
    assert by_sensor["current"].champion == settings.model.label and by_sensor["flow"].champion is None
    assert set(steps.joined_sensors(settings, "rig", 10.0)) == {"flow", "pressure"}
    rule = next(r for r in settings.alert_rules if r.name == "health_low_scalar")
    assert steps.watched_sensors(settings, "rig", rule) == 2  # current, and the joined window


def test_an_asset_scope_challenger_is_scored_beside_the_sensor_champion_and_never_alerts():
    settings = _rig(champion=False)
    _, out = _assess(settings, fault_from=150)
    last = out[-1]
    assert [s.window.sensor for s in last.sensors] == ["current", "flow", "pressure", "asset"]
    assert last.sensors[-1].assessment is None and last.sensors[-1].by_model["asset-pca"].health < 50
    assert all(s.champion == settings.model.label for s in last.sensors[:-1])
    assert all(e.sensor != "asset" for s in out for e in s.events)


def test_the_champion_scores_sensors_and_the_joined_windows_champion_is_of_scope_asset():
    pca = ModelSettings(name="asset-pca", spec="PCADeviation", scope="asset")
    with pytest.raises(SettingsError, match="asset_model.model"):
        SETTINGS.replace(model=pca)
    with pytest.raises(SettingsError, match="scope asset"):
        AssetModelSettings(model=ModelSettings(spec="PCADeviation"))
    with pytest.raises(SettingsError, match="min_sensors"):
        AssetModelSettings(min_sensors=1)


def test_carry_over_adds_and_drops_asset_scope_models():
    with_pca, _ = _assess(_rig(champion=False), n=30)
    assert set(with_pca.joint[10.0]) == {"asset-pca"}
    without = _rig(champion=False).replace(challengers=())
    steps.carry_over(without, with_pca, "rig")
    assert with_pca.joint[10.0] == {}
    again = steps.carry_over(_rig(), with_pca, "rig")
    assert set(again.joint[10.0]) == {"asset-pca"} and again.joint[10.0]["asset-pca"].windows_seen == 0


def test_the_asset_sensor_id_is_reserved_and_rules_name_it_as_a_kind():
    with pytest.raises(SettingsError, match="reserved"):
        parse_fleet([{"site": "s", "lines": [{"line": "l", "assets": [{
            "asset": "rig", "sensors": [{"sensor": "asset", "kind": "process", "unit": "1"}]}]}]}], "test")
    assert AlertRuleSettings(kinds=("asset",), warning=50).applies_to("rig", "asset")
    two = parse_fleet([{"site": "s", "lines": [{"line": "l", "assets": [{
        "asset": "rig", "sensors": [{"sensor": n, "kind": "process", "unit": "1", "window_s": w}
                                    for n, w in (("p1", 0), ("p2", 0), ("q1", 60), ("q2", 60))]
                                   + [{"sensor": "t", "kind": "temperature", "unit": "degC"}]}]}]}], "test")
    s = SETTINGS.replace(fleet=two)
    assert [steps.joint_sensor(s, "rig", length) for length in (10.0, 60.0)] == ["asset@10s", "asset@60s"]
    assert steps.sensor_window_length_s(s, "rig", "asset@60s") == 60.0
    assert steps.sensor_window_length_s(s, "rig", "t") == 300.0
    one = SETTINGS.replace(fleet=parse_fleet([{"site": "s", "lines": [{"line": "l", "assets": [{
        "asset": "rig", "sensors": [{"sensor": n, "kind": "process", "unit": "1"} for n in ("p1", "p2")]}]}]}],
        "test"))
    assert steps.joint_sensor(one, "rig", 10.0) == "asset" and steps.sensor_window_length_s(one, "rig", "asset") == 10.0


def test_a_model_pickled_at_any_window_scores_to_the_last_digit_as_the_one_that_never_stopped():
    from predmaint.models.sensor_model import SensorModel

    rng = random.Random(5)
    xs = [_pump(rng, rng.uniform(-1, 1), flow_offset=-3.0 * (i % 13 == 0)) for i in range(120)]

    def scores(pickle_at):
        model = SensorModel("PCADeviation", {}, baseline_windows=24, learn_min_health=None)
        out = []
        for i, x in enumerate(xs):
            if i == pickle_at:  # what a recovery snapshot and a resume do
                model = pickle.loads(pickle.dumps(model))
            out.append(model.assess(x).raw_score)
        return out

    uninterrupted = scores(-1)
    # Exact equality: a resumed flow must write the same health as one that never stopped.
    assert [k for k in range(0, 120, 3) if scores(k) != uninterrupted] == []


def test_a_one_sensor_asset_has_no_joined_window():
    fleet = parse_fleet([{"site": "s", "lines": [{"line": "l", "assets": [{
        "asset": "solo", "sensors": [{"sensor": "flow", "kind": "process", "unit": "1"}]}]}]}], "test")
    settings = _rig(champion=False).replace(fleet=fleet)
    w = windows.WindowFeatures("solo", "flow", "process", END, {"value_mean": 1.0})
    state, scored = steps.assess(settings, None, None, windows.AssetWindowFeatures("solo", END, (w,), (), 10.0))
    assert [s.window.sensor for s in scored.sensors] == ["flow"] and state.joint == {}


def test_a_short_reference_is_shrunk_so_a_broken_relation_shows_and_healthy_windows_stay_quiet():
    # Eight sensors driven by two common factors (a pump's flow, pressure, current... move
    # together), 40 windows learned: the sample covariance of so few windows underestimates its
    # smallest eigenvalues, healthy T² runs high, and its calibration then hides a fault. Ledoit–Wolf
    # shrinkage (the module docstring) keeps them honest: measured 57 % of broken-relation windows
    # above surprise 2 (39 % with the sample covariance), healthy windows' worst 1.36 (1.32).
    found, worst_healthy = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        mixing = rng.normal(size=(8, 2))

        def window(broken=0.0):
            v = mixing @ rng.normal(size=2) + 0.3 * rng.normal(size=8)
            v[3] += broken  # one sensor leaves the relation by ~7 noise levels
            return {f"s{j}.value_mean": float(v[j]) for j in range(8)}

        model = PCADeviation()
        for i in range(40):
            x = window()
            s = model.score_one(x)
            model.learn_one(x)
            if i >= 24:
                worst_healthy.append(s)
        found += [model.score_one(window(broken=2.0)) >= 2.0 for _ in range(20)]
    assert np.mean(found) > 0.5
    assert np.mean(sorted(worst_healthy)[-20:]) < 2.0
