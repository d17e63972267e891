"""Alert lifecycle per sensor stream and rule: raise, escalate, re-notify, clear.

A rule watches one metric of each window (the champion's ``health``, the
``iso_zone`` or any feature) against up to three severity thresholds
(warning, alarm, critical), in one direction (``below`` or ``above``):

* **on-delay**: a severity counts only after ``on_delay_windows`` consecutive
  windows at or beyond its threshold; the alert is raised at the highest such
  severity;
* **escalation**: while open, a higher severity that holds for the on-delay
  emits ``escalated`` (severities only go up while an alert is open);
* **hysteresis and off-delay**: the alert clears after ``off_delay_windows``
  consecutive windows on the healthy side of ``clear_at``;
* **re-notify**: an open alert emits ``renotified`` every ``renotify_s`` of event time;
* **flood limit**: at most ``flood_limit_per_hour`` notified events per asset and
  rule and hour of event time; more are recorded with ``notify=False``;
* **suppression**: events inside a maintenance window or a shelf are recorded
  with ``notify=False`` and the reason;
* **absorption**: a raise while an alert of one of the rule's ``absorbed_by`` rules
  is open on the same asset opens nothing: it is part of that episode (one work
  order, not two for one anomaly). A novel move of a process value while its
  health alert is open is the same anomaly seen a second way, and the alert a
  team acts on is already open (a novel move in the window that raises it
  leads its explanation). Only the raise is absorbed: an alert opened before
  the other one runs its own lifecycle;
* **routine**: with ``routine_days``, a raise within :data:`ROUTINE_TOLERANCE_NS`
  (30 min) of the time of day of this rule's raises on at least that many of
  the :data:`ROUTINE_LOOKBACK_DAYS` (3) days before is a routine, not news: a
  nightly batch, a shift start or a daily cleaning cycle moves a process value
  the same way every day, and a team told of it every morning stops reading
  the alerts. Its events are recorded with ``notify=False`` and the reason (it
  is still in the alerts measurement and on the dashboards), and it still counts
  as a raise for the days after; should it escalate, the escalation and the
  events after it are notified (worse than the routine is news). A daily spike in NAB's
  ``ec2_cpu_utilization_c6585a`` raised an alert on each of 14 days; of the
  default's raises after NAB's probation (2026-12-04, at 562abcc), 45 of the 249
  false detections were such repeats, against 2 of the 64 first detections of
  labelled anomalies. Only the time of day is
  looked at, not the size: a fault that shows only at the daily peak load is
  notified on its first two days, then recorded as routine.

The pipeline keeps one state per asset and rule and feeds it the worst value
over the asset's sensors, so at most one alert per asset and rule is open; the
event names the sensor that raised it. Alert ids hash asset, rule and the end of
the opening window, so replays give the same ids. All
timing is event time, so results do not depend on processing speed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

from predmaint.settings import AlertRuleSettings

SEVERITIES = ("warning", "alarm", "critical")
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS
#: A raise this close to the time of day of an earlier day's raise is at the same time of day.
ROUTINE_TOLERANCE_NS = _HOUR_NS // 2
#: Days before a raise whose raises are looked at for a routine.
ROUTINE_LOOKBACK_DAYS = 3
#: At most this many raise times are kept per asset and rule (3 days of them, bounded).
ROUTINE_MAX_KEPT = 64
#: ``suppressed_by`` of a routine alert's events starts with this.
ROUTINE_REASON = "routine:"


def routine_days_seen(raised_ns, time_ns: int) -> int:
    """On how many of the last :data:`ROUTINE_LOOKBACK_DAYS` days a raise came at ``time_ns``'s time of day.

    Examples
    --------
    >>> h = _HOUR_NS
    >>> routine_days_seen([3 * h, _DAY_NS + 3 * h + h // 4], 2 * _DAY_NS + 3 * h)  # 3:00, 3:15 the next day
    2
    >>> routine_days_seen([3 * h, _DAY_NS + 5 * h], 2 * _DAY_NS + 3 * h)  # 5:00 is another time of day
    1
    """
    return sum(any(abs(time_ns - day * _DAY_NS - t) <= ROUTINE_TOLERANCE_NS for t in raised_ns)
               for day in range(1, ROUTINE_LOOKBACK_DAYS + 1))


def alert_id(asset: str, rule: str, opened_ns: int) -> str:
    """Deterministic alert id: one open alert per asset and rule, so these three name it.

    Examples
    --------
    >>> alert_id("pump-01", "health_low", 0) == alert_id("pump-01", "health_low", 0)
    True
    >>> alert_id("pump-01", "health_low", 0) != alert_id("pump-01", "iso_severity", 0)
    True
    >>> len(alert_id("pump-01", "health_low", 0))
    16
    """
    return hashlib.sha256(f"{asset}|{rule}|{opened_ns}".encode()).hexdigest()[:16]


def breached_severities(rule: AlertRuleSettings, value: float) -> list[str]:
    """Severities whose threshold ``value`` is at or beyond, lowest first.

    Examples
    --------
    >>> rule = AlertRuleSettings(warning=50, alarm=30, critical=10, clear_at=70)
    >>> [breached_severities(rule, v) for v in (80, 50, 29, 5)]
    [[], ['warning'], ['warning', 'alarm'], ['warning', 'alarm', 'critical']]
    >>> up = AlertRuleSettings(metric="iso_zone", direction="above", alarm=3, clear_at=2.5)
    >>> [breached_severities(up, v) for v in (2.0, 3.0)]
    [[], ['alarm']]
    """
    out = []
    for sev in SEVERITIES:
        threshold = getattr(rule, sev)
        if threshold is None:
            continue
        if (value <= threshold) if rule.direction == "below" else (value >= threshold):
            out.append(sev)
    return out


def is_clear(rule: AlertRuleSettings, value: float) -> bool:
    return value > rule.clear_at if rule.direction == "below" else value < rule.clear_at


@dataclass(frozen=True)
class AlertEvent:
    alert_id: str
    seq: int
    state: str  # raised | escalated | renotified | cleared
    severity: str
    rule: str
    asset: str
    sensor: str
    time_ns: int
    value: float
    explanation: list[dict] = field(default_factory=list)
    notify: bool = True
    #: Why a notification was withheld: "maintenance: ...", "shelved: ...", "flood limit".
    suppressed_by: str = ""
    #: ``cleared`` only: the time (ns) of the first window of the healthy run that cleared it, the
    #: window whose value was back on the healthy side; the off-delay confirmed it until ``time_ns``.
    recovered_ns: int = 0

    @property
    def event_id(self) -> str:
        return f"{self.alert_id}:{self.seq}"


class AlertState:
    """One asset's state for one rule; advance with :meth:`update` once per closed window.

    Examples
    --------
    >>> rule = AlertRuleSettings(warning=50, alarm=30, clear_at=70, on_delay_windows=2, off_delay_windows=2)
    >>> s = AlertState(rule)
    >>> m = 300_000_000_000  # 5 minutes in ns
    >>> [(e.state, e.severity) for i, h in enumerate((45, 45, 20, 20, 80, 80))
    ...  for e in s.update("p", "s", i * m, h, [])]
    [('raised', 'warning'), ('escalated', 'alarm'), ('cleared', 'alarm')]

    The cleared event says when the value came back (the first of the two healthy windows):

    >>> s = AlertState(rule)
    >>> cleared = [e for i, h in enumerate((45, 45, 80, 80)) for e in s.update("p", "s", i * m, h, [])][-1]
    >>> cleared.state, cleared.time_ns // m, cleared.recovered_ns // m
    ('cleared', 3, 2)

    Absorbed by another rule's open alert, a breach opens nothing; once that alert
    has closed, a breach that still holds raises:

    >>> s = AlertState(rule)
    >>> [e.state for e in s.update("p", "s", 0, 45, [], absorbed=True)]
    []
    >>> [e.state for e in s.update("p", "s", m, 45, [])]
    ['raised']
    """

    # Recovery snapshots from before the attributes existed.
    clear_since_ns = 0
    raised_ns: tuple[int, ...] = ()
    open_routine = ""

    def __init__(self, rule: AlertRuleSettings):
        self.rule = rule
        self.consecutive = {sev: 0 for sev in SEVERITIES}
        self.clear_run = 0
        self.clear_since_ns = 0
        self.open_id: str | None = None
        self.open_severity = ""
        self.open_sensor = ""
        self.seq = 0
        self.last_notified_ns = 0
        self.notified_ns: list[int] = []
        #: Times of this rule's recent raises (``routine_days``), oldest first.
        self.raised_ns: tuple[int, ...] = ()
        #: Why the open alert is a routine ("" if it is not): its events are withheld until it escalates.
        self.open_routine = ""

    def _confirmed(self) -> str | None:
        confirmed = [s for s in SEVERITIES if self.consecutive[s] >= self.rule.on_delay_windows]
        return confirmed[-1] if confirmed else None

    def update(self, asset: str, sensor: str, time_ns: int, value: float, explanation: list[dict],
               suppressed_by: str = "", absorbed: bool = False) -> list[AlertEvent]:
        """Advance one window; ``absorbed``: an alert of one of the rule's ``absorbed_by`` rules is open."""
        r = self.rule
        breached = set(breached_severities(r, value))
        for sev in SEVERITIES:
            self.consecutive[sev] = self.consecutive[sev] + 1 if sev in breached else 0
        self.clear_run = self.clear_run + 1 if is_clear(r, value) else 0
        if self.clear_run == 1:
            self.clear_since_ns = time_ns
        confirmed = self._confirmed()

        state = None
        if self.open_id is None and confirmed:
            if absorbed:
                return []
            self.open_id = alert_id(asset, r.name, time_ns)
            self.seq, self.open_severity, self.open_sensor, state = 0, confirmed, sensor, "raised"
            self.open_routine = self._routine(time_ns)
        elif self.open_id is not None:
            if confirmed and SEVERITIES.index(confirmed) > SEVERITIES.index(self.open_severity):
                self.seq, self.open_severity, state = self.seq + 1, confirmed, "escalated"
                self.open_routine = ""  # a routine is routine at its severity: worse than that is news
            elif self.clear_run >= r.off_delay_windows:
                self.seq, state = self.seq + 1, "cleared"
            elif r.renotify_s > 0 and time_ns - self.last_notified_ns >= r.renotify_s * 1e9:
                self.seq, state = self.seq + 1, "renotified"
        if state is None:
            return []
        event = self._event(state, asset, self.open_sensor, time_ns, value, explanation,
                            suppressed_by or self.open_routine)
        if state == "cleared":
            event = dataclasses.replace(event, recovered_ns=self.clear_since_ns)
            self.open_id, self.open_severity, self.open_sensor, self.open_routine = None, "", "", ""
        return [event]

    def _routine(self, time_ns: int) -> str:
        """Record a raise at ``time_ns``; the reason it is a routine, or "" (``routine_days``)."""
        if not self.rule.routine_days:
            return ""
        days = routine_days_seen(self.raised_ns, time_ns)
        horizon = time_ns - ROUTINE_LOOKBACK_DAYS * _DAY_NS - ROUTINE_TOLERANCE_NS
        self.raised_ns = tuple(t for t in self.raised_ns if t >= horizon)[-(ROUTINE_MAX_KEPT - 1):] + (time_ns,)
        if days < self.rule.routine_days:
            return ""
        return (f"{ROUTINE_REASON} raised at this time of day (within {ROUTINE_TOLERANCE_NS // 60_000_000_000} min) on "
                f"{days} of the last {ROUTINE_LOOKBACK_DAYS} days")

    def _event(self, state, asset, sensor, time_ns, value, explanation, suppressed_by) -> AlertEvent:
        r = self.rule
        self.notified_ns = [t for t in self.notified_ns if t > time_ns - _HOUR_NS]
        if not suppressed_by and r.flood_limit_per_hour and len(self.notified_ns) >= r.flood_limit_per_hour:
            suppressed_by = f"flood limit: {r.flood_limit_per_hour} notifications per hour"
        notify = not suppressed_by
        if notify:
            self.notified_ns.append(time_ns)
        # Re-notification counts from the last event of the alert, notified or not,
        # so a shelf does not cause a burst of reminders when it expires.
        self.last_notified_ns = time_ns
        assert self.open_id is not None  # update() makes events only while an alert is open
        return AlertEvent(self.open_id, self.seq, state, self.open_severity, r.name, asset, sensor, time_ns,
                          value, explanation, notify, suppressed_by)
