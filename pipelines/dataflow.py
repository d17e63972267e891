"""The predmaint dataflow: wiring only.

::

    telemetry (Kafka) -> decode -> dedupe (per asset) -> snapshot_features -> event-time window per asset and window length
      -> window_features -> assess (model, health, alert rules) -> InfluxDB / alerts topic
    every error stream (Kafka errors, invalid messages, late data) -> dead-letter topic + InfluxDB

Kafka message keys are asset ids, so an asset's readings stay in one
partition and in order; partitions are the unit of parallelism.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeGuard, cast

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.connectors.kafka import operators as kop
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.operators import KeyedStream
from bytewax.operators import windowing as win
from bytewax.outputs import Sink

from predmaint.connectors.kafka_io import dead_letter_value, telemetry_source
from predmaint.connectors.kafka_sink import DeliveredKafkaSink
from predmaint.connectors.metrics import PipelineMetrics
from predmaint.connectors.shelves import Suppressions
from predmaint.connectors.storage_sink import StorageSink
from predmaint.domain import DeadLetter
from predmaint.pipelines import intake, points, steps, windows
from predmaint.settings import Settings

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _frozen_now() -> datetime:
    # bytewax's EventClock adds elapsed *system* time to the watermark. After a
    # restart that follows downtime longer than the allowed lateness, the backlog
    # would then be judged late and dropped, and replays would close windows at
    # speed-dependent moments. Holding "system time" still makes the watermark
    # purely event-driven (newest event time minus the allowed lateness).
    return EPOCH


def _no_wakeup(close_time: datetime) -> None:
    # With a frozen clock, only new events or the end of input close windows;
    # waking on the default schedule would spin on historical data (bytewax #578).
    return None


def _snapshot_time(item: intake.Snapshot) -> datetime:
    return item.event_time


def _is_reading(x: intake.Reading | DeadLetter) -> TypeGuard[intake.Reading]:
    # A named TypeGuard (not a partial of a generic one) so that bytewax's branch types its true side.
    return isinstance(x, intake.Reading)


def _reading_ok(kv: tuple[str, intake.Reading | DeadLetter]) -> TypeGuard[tuple[str, intake.Reading]]:
    return isinstance(kv[1], intake.Reading)


def _snapshot_ok(kv: tuple[str, intake.Snapshot | DeadLetter]) -> TypeGuard[tuple[str, intake.Snapshot]]:
    return isinstance(kv[1], intake.Snapshot)


def _late_of_length(settings: Settings, length_s: float, item) -> bool:
    return windows.has_window_length(settings, length_s, item[1])


def _kafka_error(err) -> DeadLetter:
    msg = err.msg
    return DeadLetter(f"kafka: {err.err.str()}", "telemetry_in", topic=msg.topic, partition=msg.partition,
                      offset=msg.offset, original=msg.value)


def _late(item) -> DeadLetter:
    window_id, snap = item
    return DeadLetter(f"late: event time {snap.event_time.isoformat()} arrived after window {window_id} "
                      f"closed", "window", snap.asset, snap.sensor,
                      time_ns=snap.ts_ms * 1_000_000)


def _dead_letter_message(d: DeadLetter) -> KafkaSinkMessage:
    value = dead_letter_value(d.reason, d.step, asset=d.asset, sensor=d.sensor, topic=d.topic,
                              partition=d.partition, offset=d.offset, original=d.original)
    return KafkaSinkMessage(key=(d.asset or "").encode() or None, value=value)


def _alert_message(settings: Settings, item) -> KafkaSinkMessage:
    key, value = points.alert_message(settings, *item)
    return KafkaSinkMessage(key=key, value=value)


@dataclass(frozen=True)
class FlowIO:
    """Where the flow reads telemetry and writes its results; ``None`` means the configured default.

    The defaults are the Kafka telemetry topic (input), the configured storage
    (points), and the alerts and dead-letter topics. ``predmaint evaluate``
    replaces them with bytewax's testing source and sinks, so that it measures
    exactly the flow ``predmaint run`` runs.

    Attributes
    ----------
    telemetry : bytewax Source, optional
        Items shaped like ``KafkaSourceMessage`` (``key``, ``value``, ``topic``,
        ``partition``, ``offset``, ``timestamp``).
    points : bytewax Sink, optional
        Receives ``(key, Point)`` pairs: features, health, alerts and dead letters.
    alerts, dead_letters : bytewax Sink, optional
        Receive ``KafkaSinkMessage`` items, as published on the alerts and dead-letter topics.
    """

    telemetry: Source | None = None
    points: Sink | None = None
    alerts: Sink | None = None
    dead_letters: Sink | None = None


def window_step_id(settings: Settings, length_s: float) -> str:
    """The windowing step of one window length (the default length keeps the historical id "window")."""
    return "window" if length_s == settings.window.length_s else f"window_{length_s:g}s"


def _count_reading(metrics: PipelineMetrics, _step: str, r: intake.Reading) -> None:
    src = r.source
    metrics.reading(r.kind, src.partition if src else None, r.ts_ms, src.offset if src else None)


def _count_windows(metrics: PipelineMetrics, _step: str, kv: tuple[str, windows.AssetWindowFeatures]) -> None:
    for w in kv[1].windows:
        metrics.window(w.kind)


@operator
def _kafka_input(step_id: str, flow: Dataflow, telemetry: Source) -> kop.KafkaOpOut:
    """``kop.input`` over the ``telemetry`` source: oks and errors split; the input step keeps ``kop.input``'s id.

    The source's offsets are stored in recovery under that id
    (``<flow>.telemetry_in.kafka_input``), so a recovery directory written
    before resumes unchanged.
    """
    split = op.branch("split_err", op.input("kafka_input", flow, telemetry),
                      lambda m: isinstance(m, KafkaSourceMessage))
    return kop.KafkaOpOut(split.trues, split.falses)


def build_flow(settings: Settings, *, tail: bool = True, io: FlowIO = FlowIO(),
               metrics: PipelineMetrics | None = None) -> Dataflow:
    """The dataflow for ``settings``; ``tail=False`` stops at the end of the topic (demo, tests, bench).

    ``metrics`` (``predmaint run``) is counted by ``inspect`` steps beside the
    pure ones: valid readings, closed windows, alert events, dead letters.
    """
    steps.check_registry(settings)
    k = settings.kafka
    flow = Dataflow("predmaint")
    if io.telemetry is None:
        kin = _kafka_input("telemetry_in", flow, telemetry_source(k, tail=tail))
        messages, kafka_errors = kin.oks, op.map("kafka_errors", kin.errs, _kafka_error)
    else:
        messages, kafka_errors = op.input("telemetry_in", flow, io.telemetry), None

    decoded = op.map("decode", messages, functools.partial(intake.decode, settings))
    valid = op.branch("valid", decoded, _is_reading)
    if metrics is not None:
        op.inspect("count_readings", valid.trues, functools.partial(_count_reading, metrics))
    # Keyed by asset: all of an asset's sensors share one window state and one
    # worker, so the asset's alert rules see its windows in a deterministic order.
    keyed = op.key_on("key_asset", valid.trues, lambda r: r.asset)
    deduped = op.stateful_map("dedupe", keyed, functools.partial(intake.dedupe, settings))
    unique = op.branch("unique", deduped, _reading_ok)
    snaps = op.map_value("snapshot_features", unique.trues, functools.partial(intake.snapshot_features, settings))
    snapped = op.branch("snapshot_ok", snaps, _snapshot_ok)

    # One tumbling windower per window length in the fleet (a vibration
    # window holds several snapshots, a 1 Hz process value a few readings);
    # the sensors of an asset that share a length close together. Each
    # windower sees all of the asset's snapshots and folds in only those of
    # its length: the others move its event time on, so a silent sensor's
    # windows still close, on time, and its silence rules can see it.
    wait = timedelta(seconds=settings.window.allowed_lateness_s)
    features_by_length, late_by_length = [], []
    for length_s in settings.window_lengths():
        step = window_step_id(settings, length_s)
        clock = win.EventClock(_snapshot_time, wait_for_system_duration=wait,
                               now_getter=_frozen_now, to_system_utc=_no_wakeup)
        windower = win.TumblingWindower(length=timedelta(seconds=length_s), align_to=EPOCH)
        folded = win.fold_window(step, snapped.trues, clock, windower, windows.window_new,
                                 functools.partial(windows.window_add_for, settings, length_s), windows.window_merge)
        features_by_length.append(op.map_value(f"{step}_features", folded.down,
                                               functools.partial(windows.window_features, settings, length_s)))
        # Late only where it belongs: a snapshot of another length is judged by its own windower.
        late = op.filter_value(f"{step}_late_sensors", folded.late,
                               functools.partial(_late_of_length, settings, length_s))
        late_by_length.append(op.map(f"{step}_late", late, lambda kv: _late(kv[1])))
    features = op.merge("windows_closed", *features_by_length)
    if metrics is not None:
        op.inspect("count_windows", features, functools.partial(_count_windows, metrics))
    features_bad = op.flat_map("window_features_failed", features, lambda kv: kv[1].dead)
    suppressions = Suppressions(settings.suppression)
    scored = op.stateful_map("assess", features, functools.partial(steps.assess, settings, suppressions))

    window_points = op.flat_map("to_points", scored, lambda kv: points.to_points(settings, kv[1]))
    events = op.flat_map("alert_events", scored, lambda kv: [(e, kv[1].health_of(e.sensor)) for e in kv[1].events])
    op.output("alerts_out", op.map("alert_messages", events, functools.partial(_alert_message, settings)),
              io.alerts or DeliveredKafkaSink(k, k.alerts_topic))

    # bytewax's branch narrows only its true side (TypeGuard); the false sides
    # hold only what the predicates reject, i.e. dead letters.
    rejected = cast("Stream[DeadLetter]", valid.falses)
    snapshot_failed = cast("KeyedStream[DeadLetter]", snapped.falses)
    duplicates = cast("KeyedStream[DeadLetter]", unique.falses)
    errors = [rejected, op.map("duplicates", duplicates, lambda kv: kv[1]),
              op.map("snapshot_failed", snapshot_failed, lambda kv: kv[1]), features_bad,
              *late_by_length]
    if kafka_errors is not None:
        errors.insert(1, kafka_errors)
    dead = op.merge("dead_letters", *errors)
    if metrics is not None:
        m = metrics
        op.inspect("count_alert_events", events, lambda _step, item: m.alert_event(item[0].state))
        op.inspect("count_dead_letters", dead, lambda _step, d: m.dead_letter(d.step, d.partition, d.offset))
    op.output("dead_letters_out", op.map("dead_letter_messages", dead, _dead_letter_message),
              io.dead_letters or DeliveredKafkaSink(k, k.dead_letter_topic))
    dead_points = op.map("dead_letter_points", dead, points.dead_letter_point)
    keyed_points = op.key_on("key_points", op.merge("all_points", window_points, dead_points),
                             lambda p: p.tags.get("asset") or p.measurement)
    op.output("storage_out", keyed_points, io.points or StorageSink(settings.storage))
    return flow
