"""Alert lifecycle for one sensor and one rule: raise after an on-delay, clear with hysteresis.

An alert is raised when health stays below ``raise_below`` for
``on_delay_windows`` consecutive windows, and cleared when health stays above
``clear_above`` (>= ``raise_below``: the hysteresis band) for
``off_delay_windows`` consecutive windows. At most one alert per sensor and
rule is open. Alert ids are a hash of asset, sensor, rule and the end of the
window that opened the alert, so replaying the same windows after a restart
yields the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pipelines.settings import AlertRuleSettings


def alert_id(asset: str, sensor: str, rule: str, opened_ns: int) -> str:
    """Deterministic alert id.

    Examples
    --------
    >>> alert_id("pump-01", "de-accel", "health_low", 0) == alert_id("pump-01", "de-accel", "health_low", 0)
    True
    >>> len(alert_id("pump-01", "de-accel", "health_low", 0))
    16
    """
    return hashlib.sha256(f"{asset}|{sensor}|{rule}|{opened_ns}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AlertEvent:
    alert_id: str
    seq: int
    state: str  # raised | cleared
    severity: str
    rule: str
    asset: str
    sensor: str
    time_ns: int
    health: float
    explanation: list[dict] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return f"{self.alert_id}:{self.seq}"


class AlertState:
    """Per sensor and rule; advance it with :meth:`update` once per closed window.

    Examples
    --------
    >>> rule = AlertRuleSettings(raise_below=40, clear_above=70, on_delay_windows=2, off_delay_windows=2)
    >>> s = AlertState(rule)
    >>> [e.state for h in (30, 30, 50, 80, 80) for e in s.update("p", "s", 0, h, [])]
    ['raised', 'cleared']
    """

    def __init__(self, rule: AlertRuleSettings):
        self.rule = rule
        self.below = 0
        self.above = 0
        self.open_id: str | None = None
        self.seq = 0

    def update(self, asset: str, sensor: str, time_ns: int, health: float,
               explanation: list[dict]) -> list[AlertEvent]:
        r = self.rule
        self.below = self.below + 1 if health < r.raise_below else 0
        self.above = self.above + 1 if health > r.clear_above else 0
        if self.open_id is None and self.below >= r.on_delay_windows:
            self.open_id = alert_id(asset, sensor, r.name, time_ns)
            self.seq = 0
            return [AlertEvent(self.open_id, 0, "raised", r.severity, r.name, asset, sensor, time_ns,
                               health, explanation)]
        if self.open_id is not None and self.above >= r.off_delay_windows:
            self.seq += 1
            event = AlertEvent(self.open_id, self.seq, "cleared", r.severity, r.name, asset, sensor,
                               time_ns, health, explanation)
            self.open_id = None
            return [event]
        return []
