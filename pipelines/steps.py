"""The flow's assessment step and the state it keeps per asset.

``assess`` (a step of :mod:`predmaint.pipelines.dataflow`): every model
scores a closed window of the asset's sensors, then learns; the alert rules
advance once. Decoding is :mod:`predmaint.pipelines.intake`, windowing
:mod:`predmaint.pipelines.windows`, the points written
:mod:`predmaint.pipelines.points`. No I/O.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from predmaint.features.diagnosis import diagnose
from predmaint.features.iso10816 import zone_boundaries
from predmaint.features.vibration import vibration_features
from predmaint.models.alerting import AlertEvent, AlertState
from predmaint.models.health import health_from_surprise, iso_capped, surprise_for_health
from predmaint.models.sensor_model import Assessment, SensorModel
from predmaint.pipelines.intake import vibration_parameters
from predmaint.pipelines.windows import AssetWindowFeatures, WindowFeatures
from predmaint.settings import ASSET_SENSOR, ModelSettings, Settings


@dataclass(frozen=True)
class ScoredWindow:
    """One sensor's window (or the asset's joined window) with every model's assessment."""

    window: WindowFeatures
    #: The champion's; ``None`` where no model drives this window's alerts (a sensor whose asset's
    #: joined window has a champion, ``asset_model.model``, or a joined window without one).
    assessment: Assessment | None
    by_model: dict[str, Assessment]
    #: The label of the model ``assessment`` is from (the ``champion`` field of its health point).
    champion: str | None = None


@dataclass(frozen=True)
class ScoredAssetWindow:
    asset: str
    end_ns: int
    sensors: tuple[ScoredWindow, ...]
    events: tuple[AlertEvent, ...]
    #: Champion health of sensors of this asset whose windows have another length (latest known).
    other_health: dict[str, float] = field(default_factory=dict)

    def health_of(self, sensor: str) -> float | None:
        """The champion health of ``sensor`` at this window (latest known for sensors of other lengths).

        ``None`` when the sensor has no window here and none recently (it fell silent).
        """
        own = next((s.assessment.health for s in self.sensors
                    if s.window.sensor == sensor and s.assessment is not None), None)
        return own if own is not None else self.other_health.get(sensor)


def check_registry(settings: Settings) -> None:
    """Fail at start-up, not at the first window, if a model or a vibration sensor is misconfigured."""
    from predmaint.models.spec import ModelSpecError
    from predmaint.settings import SettingsError

    for where, m in model_fields(settings):
        try:
            new_model(m, where)
        except ModelSpecError as exc:
            raise SettingsError(f"{settings.source}: {exc}") from None

    probe = np.random.default_rng(0).standard_normal(4096)
    checked: set[str] = set()
    for asset in settings.fleet:
        for sensor in asset.sensors:
            if sensor.kind != "vibration" or sensor.reports != "samples":
                continue
            params = vibration_parameters(asset)
            # A fleet has few distinct machine designs: probe each configuration once.
            signature = repr((sensor.sample_rate_hz, sorted(params.items())))
            if signature in checked:
                continue
            try:
                vibration_features(probe, sensor.sample_rate_hz, **params)
            except ValueError as exc:
                raise SettingsError(f"{settings.source}: fleet: asset {asset.asset} sensor {sensor.sensor}: "
                                    f"{exc}") from None
            checked.add(signature)


#: Window bookkeeping fields that describe the window, not the machine.
NOT_MODELLED = ("snapshots", "readings", "env_band_lo_hz", "env_band_hi_hz", "iso_zone")


@dataclass(frozen=True)
class RuleValue:
    """A rule's latest value for one sensor, remembered for the asset's windows of other lengths."""

    value: float
    explanation: list
    health: float
    end_ns: int
    length_s: float


@dataclass
class AssetState:
    """Everything the ``assess`` step remembers per asset: each sensor's models, each rule's alert state.

    ``recent`` holds, per rule and sensor, the latest value from windows of
    each length, so that a rule sees the asset's worst sensor even when its
    sensors close windows of different lengths at different times.
    """

    models: dict[str, dict[str, SensorModel]]  # sensor -> model label -> model (champion first)
    alerts: dict[str, AlertState]
    recent: dict[str, dict[str, RuleValue]] = field(default_factory=dict)  # rule -> sensor -> value
    #: Sensor -> end (ns) of the last window in which it sent anything (``silence`` rules).
    last_seen: dict[str, int] = field(default_factory=dict)
    #: Window length (s) -> end (ns) of the first window of that length this state saw: the
    #: silence of a sensor that never sent counts from there.
    first_end: dict[float, int] = field(default_factory=dict)
    #: Window length (s) -> model label -> the model of scope ``asset`` of the asset's joined windows.
    joint: dict[float, dict[str, SensorModel]] = field(default_factory=dict)
    #: What the snapshot holds, for :func:`carry_over` (:data:`STATE_VERSION`; 1 = before versions).
    version: int = 1


#: The version of :class:`AssetState` this code writes: 1 pickled the alert rules with their
#: counters and had no silence bookkeeping; 2 takes rules, thresholds and model labels from the
#: current settings at every window (:func:`carry_over`) and keeps ``last_seen``; 3 adds ``joint``
#: (models of scope ``asset``).
STATE_VERSION = 3

#: The alert metric counting the windows of event time since a sensor last sent a reading.
SILENCE = "silence"
#: The alert metric of the champion's novelty watch (``model.novelty``): 1.0 on a never-seen move.
NOVELTY = "novelty"


#: The level a sensor's champion keeps from its baseline, per kind (``SensorModel``'s ``level_feature``).
BASELINE_LEVEL_FEATURES = {"vibration": "velocity_rms_mm_s"}
#: The window feature a change-from-baseline rule watches (``iso_change`` in the default rules).
ISO_ALERT_FEATURE = "iso_alert_ratio"
#: ISO 10816-3's ALERT, from its section on setting alarms: the baseline plus 25 % of zone B's upper limit.
ISO_ALERT_SHARE_OF_ZONE_B = 0.25


def new_model(m: ModelSettings, where: str = "model", baseline_windows: int | None = None,
              kind: str | None = None, sensor: str = "") -> SensorModel:
    """A fresh sensor model as ``m`` configures it for a sensor of ``kind`` (``where`` names it in errors).

    ``kind`` selects ``m.kind_params[kind]`` over ``m.params``. ``kind=None``
    (start-up checks, evaluations) uses ``m.params`` alone and also builds every
    ``kind_params`` entry once, so a bad one fails at start-up naming
    ``<where>.kind_params.<kind>``. ``sensor`` names the sensor in the model's warnings.
    """
    bw = m.baseline_windows if baseline_windows is None else baseline_windows

    def build(k: str | None) -> SensorModel:
        overrides = bool(k and m.kind_params.get(k))
        return SensorModel(m.spec, m.params_for(k), bw, m.learn_min_health, field=f"{where}.spec", sensor=sensor,
                           params_field=f"{where}.kind_params.{k}" if overrides else None,
                           novelty=m.novelty.get(k) if k else None,
                           level_feature=BASELINE_LEVEL_FEATURES.get(k, "") if k else "",
                           daily_profile=m.daily_profile.get(k) if k else None)

    model = build(kind)
    if kind is None:
        for k in m.kind_params:
            build(k)
    return model


def model_fields(settings: Settings, scope: str | None = None) -> list[tuple[str, ModelSettings]]:
    """The champions and the challengers (of ``scope`` only, if given), each with the config field that defines it.

    Champions first: ``model`` (scope ``sensor``), then ``asset_model.model`` (scope ``asset``).
    """
    fields = [("model", settings.model)]
    if settings.asset_model.model is not None:
        fields.append(("asset_model.model", settings.asset_model.model))
    fields += [(f"challengers[{i}]", m) for i, m in enumerate(settings.challengers)]
    return [(where, m) for where, m in fields if scope is None or m.scope == scope]


def _new_models(settings: Settings, kind: str | None = None, sensor: str = "",
                scope: str = "sensor") -> dict[str, SensorModel]:
    return {m.label: new_model(m, where, kind=None if scope == "asset" else kind, sensor=sensor)
            for where, m in model_fields(settings, scope)}


def joined_sensors(settings: Settings, asset: str, length_s: float) -> frozenset[str]:
    """The sensors of ``asset``'s joined window of ``length_s``: those of ``asset_model.kinds`` and that
    length, if there are ``asset_model.min_sensors`` of them, else none (no joined window)."""
    found = settings.asset(asset)
    if found is None:
        return frozenset()
    am = settings.asset_model
    ids = frozenset(s.sensor for s in found.sensors
                    if s.kind in am.kinds and settings.window_length_s(asset, s.sensor) == length_s)
    return ids if len(ids) >= am.min_sensors else frozenset()


def _joined_lengths(settings: Settings, asset: str) -> list[float]:
    """The window lengths at which ``asset`` has a joined window."""
    found = settings.asset(asset)
    lengths = {settings.window_length_s(asset, s.sensor) for s in found.sensors} if found is not None else set()
    return sorted(length for length in lengths if joined_sensors(settings, asset, length))


def joint_sensor(settings: Settings, asset: str, length_s: float) -> str:
    """The sensor id of ``asset``'s joined window of ``length_s``: ``asset``, or ``asset@<length>s`` when the
    asset has joined windows of several lengths.
    """
    return ASSET_SENSOR if len(_joined_lengths(settings, asset)) <= 1 else f"{ASSET_SENSOR}@{length_s:g}s"


def sensor_window_length_s(settings: Settings, asset: str, sensor: str) -> float:
    """The window length of a sensor of ``asset``, or of one of its joined windows (:func:`joint_sensor`)."""
    if sensor == ASSET_SENSOR:
        lengths = _joined_lengths(settings, asset)
        return lengths[0] if lengths else settings.window.length_s
    if sensor.startswith(f"{ASSET_SENSOR}@") and sensor.endswith("s"):
        try:
            return float(sensor[len(ASSET_SENSOR) + 1:-1])
        except ValueError:
            pass
    return settings.window_length_s(asset, sensor)


def joined_features(windows) -> dict[str, float]:
    """The features of an asset's sensor windows in one dict, keyed ``<sensor>.<feature>`` (scope ``asset``).

    Examples
    --------
    >>> w = [WindowFeatures("p", "flow", "process", 0, {"value_mean": 3.0, "readings": 10})]
    >>> joined_features(w)
    {'flow.value_mean': 3.0}
    """
    return {f"{w.sensor}.{k}": v for w in windows for k, v in w.features.items() if k not in NOT_MODELLED}


def carry_over(settings: Settings, state: AssetState, asset: str) -> AssetState:
    """Bring a state (fresh, or resumed from a snapshot) in line with the current settings.

    What was learned carries over (each sensor's models, each rule's counters
    and open alert); what is configured comes from ``settings``: a rule's
    thresholds and delays, added rules (start with empty counters) and deleted
    rules (their state, an open alert included, is dropped), added challengers
    (start learning) and removed ones (dropped). A model label whose spec or
    parameters changed cannot be carried over (the learned state belongs to
    the old detector): :class:`~predmaint.errors.SettingsError` names the
    asset, the sensor, the label and both specs. So does a state written by a
    newer predmaint.
    """
    from predmaint.settings import SettingsError

    version = getattr(state, "version", 1)
    if version > STATE_VERSION:
        raise SettingsError(f"step assess: asset {asset}: the recovered state is version {version}, this predmaint "
                            f"reads up to {STATE_VERSION}; run the predmaint that wrote it, or start afresh "
                            f"(delete recovery.dir)")
    for name in ("recent", "last_seen", "first_end", "joint"):
        if not hasattr(state, name):  # a snapshot from before the attribute existed
            setattr(state, name, {})
    state.version = STATE_VERSION
    rules = settings.alert_rules_by_name
    if list(state.alerts) != list(rules) or any(s.rule != rules[n] for n, s in state.alerts.items()):
        alerts = {}
        for name, rule in rules.items():
            alerts[name] = state.alerts.get(name) or AlertState(rule)
            alerts[name].rule = rule  # thresholds and delays as configured now; counters kept
        state.alerts = alerts
        state.recent = {n: v for n, v in state.recent.items() if n in rules}
    fields = {m.label: (where, m) for where, m in model_fields(settings, "sensor")}
    for sensor, models in list(state.models.items()):
        found = settings.sensor(asset, sensor)
        kind = found.kind if found is not None else None
        _check_learned(models, fields, kind, asset, sensor)
        if list(models) != list(fields):  # champion first, then the challengers, as configured
            state.models[sensor] = {label: models[label] if label in models else new_model(m, where, kind=kind,
                                                                                           sensor=f"{asset}/{sensor}")
                                    for label, (where, m) in fields.items()}
    joint_fields = {m.label: (where, m) for where, m in model_fields(settings, "asset")}
    for length_s, models in list(state.joint.items()):
        sensor = joint_sensor(settings, asset, length_s)
        _check_learned(models, joint_fields, None, asset, sensor)
        if list(models) != list(joint_fields):
            state.joint[length_s] = {label: models[label] if label in models
                                     else new_model(m, where, sensor=f"{asset}/{sensor}")
                                     for label, (where, m) in joint_fields.items()}
    return state


def _check_learned(models: dict[str, SensorModel], fields: dict, kind: str | None, asset: str, sensor: str) -> None:
    """Refuse to carry a learned model over to a label whose spec or parameters changed (see :func:`carry_over`)."""
    from predmaint.settings import SettingsError

    for label, model in models.items():
        if label not in fields:
            continue
        where, m = fields[label]
        if (model.spec, model.params) != (m.spec, m.params_for(kind)):
            raise SettingsError(
                f"step assess: asset {asset} sensor {sensor}: model {label!r} ({where}) was learned as "
                f"{model.spec} {model.params}, the settings now say {m.spec} {m.params_for(kind)}; the learned "
                f"state cannot be carried over: give the changed model a new name ({where}.name), or start "
                f"afresh (delete recovery.dir)")


def silence_values(settings: Settings, state: AssetState, aw: AssetWindowFeatures, rule) -> list[tuple]:
    """``(windows of silence, sensor)`` of each of the asset's sensors of this window's length that ``rule`` watches.

    0 for a sensor with data (or a dead letter) in this window; otherwise the
    number of windows since the end of its last one (since the state's first
    window of this length if it never sent).
    """
    found = settings.asset(aw.asset)
    if found is None:
        return []
    length_ns = aw.length_s * 1e9
    out = []
    for s in found.sensors:
        if not rule.applies_to(aw.asset, s.kind) or settings.window_length_s(aw.asset, s.sensor) != aw.length_s:
            continue
        last = state.last_seen.get(s.sensor, state.first_end[aw.length_s] - length_ns)
        out.append((float(max(0, round((aw.end_ns - last) / length_ns))), s.sensor))
    return out


def rebaselined(settings: Settings, models: dict[str, SensorModel], w: WindowFeatures,
                last_end_ns: int | None, length_s: float) -> dict[str, SensorModel]:
    """``models`` with a fresh model for each whose ``rebaseline_after_gap_s`` the sensor's silence exceeded.

    The silence is the time between the end of the sensor's previous window
    and the start of this one. A model that found the sensor healthy in its
    last window before a silence longer than ``rebaseline_healthy_after_gap_s``
    (but not ``rebaseline_after_gap_s``) is kept and put on probation for the
    next ``restart_check_windows`` windows (:func:`restart_checked`).
    """
    if last_end_ns is None:
        return models
    silent_s = (w.end_ns - last_end_ns) / 1e9 - length_s
    fresh = {}
    for where, m in model_fields(settings):
        model = models.get(m.label)
        if model is None:
            continue
        if silent_s > m.rebaseline_after_gap_s.get(w.kind, math.inf):
            fresh[m.label] = new_model(m, where, kind=w.kind, sensor=f"{w.asset}/{w.sensor}")
        elif silent_s > m.rebaseline_healthy_after_gap_s.get(w.kind, math.inf) and \
                model.last_health >= model.learn_min_health:
            model.restart_check_left = m.restart_check_windows
    return {**models, **fresh} if fresh else models


def restart_checked(settings: Settings, models: dict[str, SensorModel], w: WindowFeatures,
                    assessments: dict[str, Assessment]) -> tuple[dict[str, SensorModel], dict[str, Assessment]]:
    """After a stop, a model that finds a sensor unhealthy that it found healthy before starts afresh.

    A bearing does not wear while it stands still: a sensor that was healthy
    when the machine stopped and looks different within the first windows of
    the restart changed with the stop (reassembly, a new operating point, the
    DAQ), so its restart is a new normal. One that looks as before keeps its
    model and everything it knew, including a slow change it was following.
    The window that shows the change is assessed by the fresh model (phase
    ``baseline``), so the stop raises no alert.
    """
    fresh = {}
    for where, m in model_fields(settings):
        model = models.get(m.label)
        if model is None or model.restart_check_left <= 0:
            continue
        model.restart_check_left -= 1
        # The model's own health, not the ISO-capped one: a zone the machine restarts in is the
        # iso_severity rule's to report, not a sign that the stop changed it.
        if assessments[m.label].phase == "monitoring" and model.last_health < model.learn_min_health:
            fresh[m.label] = new_model(m, where, kind=w.kind, sensor=f"{w.asset}/{w.sensor}")
    if not fresh:
        return models, assessments
    return {**models, **fresh}, {**assessments,
                                 **{label: assess_window(f, w.features, w.end_ns) for label, f in fresh.items()}}


def assess_window(model: SensorModel, features: dict[str, float], end_ns: int | None = None) -> Assessment:
    """Score (then learn) one window (ending at ``end_ns``); in monitoring, health is capped by the ISO zone."""
    a = model.assess({k: v for k, v in features.items() if k not in NOT_MODELLED}, end_ns)
    if a.phase == "monitoring":
        a = dataclasses.replace(a, health=iso_capped(a.health, features.get("iso_zone")))
    return a


def rule_value(rule, w: WindowFeatures, champion: Assessment | None) -> float | None:
    """The value ``rule`` watches in this window, or None if the rule does not apply here."""
    if not rule.applies_to(w.asset, w.kind):
        return None
    if rule.metric in ("health", NOVELTY):
        if champion is None or champion.phase != "monitoring":
            return None
        verdict = champion.health if rule.metric == "health" else champion.novelty
        return verdict if math.isfinite(verdict) else None
    value = w.features.get(rule.metric)
    return value if value is not None and math.isfinite(value) else None


def score_sensor(models: dict[str, SensorModel], w: WindowFeatures, champion: str | None) -> ScoredWindow:
    """Every model scores (then learns) one sensor's window (or the asset's joined window)."""
    assessments = {name: assess_window(model, w.features, w.end_ns) for name, model in models.items()}
    return ScoredWindow(w, assessments.get(champion) if champion else None, assessments, champion)


def score_joint(settings: Settings, state: AssetState, aw: AssetWindowFeatures) -> ScoredWindow | None:
    """The models of scope ``asset`` score (then learn) the asset's joined window; ``None`` if there are none.

    Only an asset with ``asset_model.min_sensors`` sensors of ``asset_model.kinds`` and this
    window length has one (:func:`joined_sensors`): with one sensor there is no relation between
    sensors to model, only a copy of the sensor's own model.
    """
    if not aw.windows or not model_fields(settings, "asset"):
        return None
    joined = joined_sensors(settings, aw.asset, aw.length_s)
    present = [w for w in aw.windows if w.sensor in joined]
    if not present:
        return None
    sensor = joint_sensor(settings, aw.asset, aw.length_s)
    models = state.joint.get(aw.length_s)
    if models is None:
        models = state.joint[aw.length_s] = _new_models(settings, sensor=f"{aw.asset}/{sensor}", scope="asset")
    w = WindowFeatures(aw.asset, sensor, ASSET_SENSOR, aw.end_ns, joined_features(present))
    champion = settings.asset_model.model
    return score_sensor(models, w, champion.label if champion is not None else None)


def with_iso_alert_ratio(settings: Settings, s: ScoredWindow) -> ScoredWindow:
    """``s`` with the feature ``iso_alert_ratio``: how far its velocity has risen above its baseline's,
    in units of ISO 10816-3's ALERT margin (25 % of zone B's upper limit for the asset's class).

    1.0 is the ALERT the standard recommends setting from a machine's own baseline. The champion's
    health cannot stand in for it: its reference rolls, so a level that rises slowly enough (2 %
    a day) is learned as it goes and, after weeks, twice the baseline can look normal. This
    ratio is measured from the champion's baseline, which nothing learns away (a re-baseline
    after a long stop, a new normal, sets a new one). Only for vibration sensors of an asset with
    ``iso_group`` and ``iso_foundation``, once the champion monitors.

    Examples
    --------
    A group 2 machine on a rigid foundation (zone B ends at 2.8 mm/s): the ALERT margin is 0.7 mm/s.

    >>> margin = ISO_ALERT_SHARE_OF_ZONE_B * zone_boundaries(2, "rigid")[1]
    >>> round(margin, 3), round((2.1 - 1.4) / margin, 3)
    (0.7, 1.0)
    """
    a = s.assessment
    if a is None or s.window.kind != "vibration" or not math.isfinite(a.baseline_level):
        return s
    found = settings.asset(s.window.asset)
    velocity = s.window.features.get("velocity_rms_mm_s")
    if found is None or found.iso_group is None or found.iso_foundation is None or velocity is None:
        return s
    margin = ISO_ALERT_SHARE_OF_ZONE_B * zone_boundaries(found.iso_group, found.iso_foundation)[1]
    features = {**s.window.features, ISO_ALERT_FEATURE: (velocity - a.baseline_level) / margin}
    return dataclasses.replace(s, window=dataclasses.replace(s.window, features=features))


def explained(s: ScoredWindow) -> list:
    """The champion's explanation of a window, led by the fault its spectrum points to (vibration)."""
    explanation = list(s.assessment.explanation) if s.assessment is not None else []
    if s.window.kind == "vibration":
        fault = diagnose(s.window.features, explanation)
        if fault is not None:
            explanation.insert(0, fault)
    return explanation


def watched_sensors(settings: Settings, asset: str, rule) -> int:
    """How many champion healths of ``asset`` ``rule`` watches (the number of tests its worst value is one of).

    Its sensors of the kinds it watches, where ``asset_model.model`` is the champion of the
    asset's joined windows the joined windows (kind ``asset``) instead of their sensors.
    """
    found = settings.asset(asset)
    if found is None:
        return 1
    joined: frozenset[str] = frozenset()
    lengths: list[float] = []
    if settings.asset_model.model is not None:
        lengths = _joined_lengths(settings, asset)
        joined = frozenset().union(*(joined_sensors(settings, asset, length) for length in lengths))
    return sum(rule.applies_to(asset, s.kind) for s in found.sensors if s.sensor not in joined) + \
        (len(lengths) if rule.applies_to(asset, ASSET_SENSOR) else 0)


def asset_health(worst: float, sensors: int) -> float:
    """The asset's health from its worst sensor's: that sensor's ``p`` times the number of sensors watched.

    Bonferroni across sensors, as :class:`~predmaint.models.robust_deviation.RobustDeviation`
    does across features: an asset of 24 sensors has 24 chances per window of
    one sensor reaching ``p = 1e-4`` by chance, so a rule on the worst health
    would raise 24 times as often on a healthy asset as on a one-sensor asset.

    Examples
    --------
    >>> asset_health(50.0, 1), asset_health(50.0, 10), asset_health(100.0, 10), asset_health(0.0, 100)
    (50.0, 75.0, 100.0, 50.0)
    """
    if sensors <= 1:
        return worst
    return health_from_surprise(surprise_for_health(worst) - math.log10(sensors))


def assess(settings: Settings, suppressions, state: AssetState | None, aw: AssetWindowFeatures):
    """Step ``assess``: score every sensor of the asset, then advance each alert rule once.

    A rule sees the worst of its metric over the asset's sensors (lowest for
    ``below``, highest for ``above``), so one alert per asset and rule is open.
    """
    if state is None:
        state = AssetState({}, {}, version=STATE_VERSION)  # carry_over adds the rules' states
    state = carry_over(settings, state, aw.asset)
    state.first_end.setdefault(aw.length_s, aw.end_ns)
    seen_before = {w.sensor: state.last_seen.get(w.sensor) for w in aw.windows}
    for sensor in {w.sensor for w in aw.windows} | {d.sensor for d in aw.dead if d.sensor}:
        state.last_seen[sensor] = aw.end_ns
    scored = []
    # A sensor of the asset's joined window is judged by the joined window's champion, if there is one.
    judged_jointly = joined_sensors(settings, aw.asset, aw.length_s) if settings.asset_model.model else frozenset()
    for w in aw.windows:
        models = state.models.get(w.sensor)
        if models is None:  # built only for a sensor's first window (setdefault would build every time)
            models = state.models[w.sensor] = _new_models(settings, w.kind, f"{w.asset}/{w.sensor}", "sensor")
        else:
            models = state.models[w.sensor] = rebaselined(settings, models, w, seen_before[w.sensor], aw.length_s)
        one = score_sensor(models, w, None if w.sensor in judged_jointly else settings.model.label)
        checked, by_model = restart_checked(settings, models, w, one.by_model)
        if checked is not models:
            state.models[w.sensor] = checked
            one = ScoredWindow(w, by_model.get(one.champion) if one.champion else None, by_model, one.champion)
        scored.append(with_iso_alert_ratio(settings, one))
    joint = score_joint(settings, state, aw)
    if joint is not None:
        scored.append(joint)
    # Once per window, whatever the number of rules that look at it.
    explanations = {s.window.sensor: explained(s) for s in scored}
    events: list[AlertEvent] = []
    other_health: dict[str, float] = {}
    for rule_state in state.alerts.values():  # in settings.alert_rules_by_name's order (carry_over)
        rule = rule_state.rule
        recent = state.recent.setdefault(rule.name, {})
        candidates = []
        if rule.metric == SILENCE:
            for v, sensor in silence_values(settings, state, aw, rule):
                explanation = [{"feature": SILENCE, "value": v, "window_s": aw.length_s}]
                candidates.append((v, sensor, explanation, math.nan))
                recent[sensor] = RuleValue(v, explanation, math.nan, aw.end_ns, aw.length_s)
        elif not aw.windows:
            continue  # a window whose sensors are all silent: only silence rules advance on it
        for s in scored if rule.metric != SILENCE else ():
            v = rule_value(rule, s.window, s.assessment)
            if v is None:
                recent.pop(s.window.sensor, None)
                continue
            explanation = explanations[s.window.sensor]
            health = s.assessment.health if s.assessment is not None else math.nan
            candidates.append((v, s.window.sensor, explanation, health))
            recent[s.window.sensor] = RuleValue(v, explanation, health, aw.end_ns, aw.length_s)
        for sensor, r in list(recent.items()):
            if r.length_s == aw.length_s:
                continue  # a sensor of this length that is absent from this window has no value now
            if r.end_ns + 2 * r.length_s * 1e9 < aw.end_ns:
                del recent[sensor]  # too old to stand for the sensor's present state
                continue
            candidates.append((r.value, sensor, r.explanation, r.health))
            if math.isfinite(r.health):  # a silence value has no health
                other_health[sensor] = r.health
        if not candidates:
            continue
        pick = min if rule.direction == "below" else max
        value, sensor, explanation, _ = pick(candidates, key=lambda c: c[0])
        if rule.metric == "health":
            value = asset_health(value, watched_sensors(settings, aw.asset, rule))
        suppressed_by = suppressions.reason(aw.asset, rule.name, aw.end_ns) if suppressions else ""
        absorbed = any(state.alerts[n].open_id is not None for n in rule.absorbed_by if n in state.alerts)
        events.extend(rule_state.update(aw.asset, sensor, aw.end_ns, value, explanation, suppressed_by, absorbed))
    return state, ScoredAssetWindow(aw.asset, aw.end_ns, tuple(scored), tuple(events), other_health)


