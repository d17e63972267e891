"""Maintenance windows and shelves: when alert notifications are withheld.

Windows from the config are fixed; shelves added by ``predmaint shelve`` live in
a small YAML file that the pipeline re-reads when it changes. Both are ranges
of event time, so a replay of the same data with the same file decides the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from pipelines.settings import SettingsError, SuppressionSettings, SuppressionWindow


def parse_instant(text: str, where: str) -> int:
    """ISO 8601 with a time zone -> epoch nanoseconds."""
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise SettingsError(f"{where}: {text!r} needs a time zone (e.g. a trailing Z)")
    return int(t.timestamp() * 1e9)


@dataclass(frozen=True)
class _Range:
    start_ns: int
    end_ns: int
    asset: str
    rule: str
    label: str

    def covers(self, asset: str, rule: str, time_ns: int) -> bool:
        return (self.start_ns <= time_ns < self.end_ns and (not self.asset or self.asset == asset)
                and (not self.rule or self.rule == rule))


def _ranges(windows, kind: str, where: str) -> list[_Range]:
    out = []
    for i, w in enumerate(windows):
        start = parse_instant(w.start, f"{where}[{i}].start")
        end = parse_instant(w.end, f"{where}[{i}].end")
        if end <= start:
            raise SettingsError(f"{where}[{i}]: end {w.end} is not after start {w.start}")
        out.append(_Range(start, end, w.asset, w.rule, f"{kind}: {w.reason}" if w.reason else kind))
    return out


class Suppressions:
    """Answers "is a notification of ``rule`` on ``asset`` at ``time_ns`` withheld, and why?"

    Examples
    --------
    >>> s = Suppressions(SuppressionSettings(maintenance_windows=(SuppressionWindow(
    ...     "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z", asset="fan-02", reason="regrease"),),
    ...     shelves_path=""))
    >>> s.reason("fan-02", "health_low", parse_instant("2026-01-01T01:00:00Z", "t"))
    'maintenance: regrease'
    >>> s.reason("fan-01", "health_low", parse_instant("2026-01-01T01:00:00Z", "t"))
    ''
    """

    def __init__(self, settings: SuppressionSettings):
        self.settings = settings
        self.fixed = (_ranges(settings.maintenance_windows, "maintenance", "suppression.maintenance_windows")
                      + _ranges(settings.shelves, "shelved", "suppression.shelves"))
        self.path = Path(settings.shelves_path) if settings.shelves_path else None
        self._mtime: float | None = None
        self._shelved: list[_Range] = []

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._mtime, self._shelved = None, []
            return
        if mtime != self._mtime:
            self._shelved = _ranges(read_shelves(self.path), "shelved", str(self.path))
            self._mtime = mtime

    def reason(self, asset: str, rule: str, time_ns: int) -> str:
        self._reload()
        for r in (*self.fixed, *self._shelved):
            if r.covers(asset, rule, time_ns):
                return r.label
        return ""

    def __getstate__(self):
        # Rebuilt from settings on resume; the file is re-read.
        return {"settings": self.settings}

    def __setstate__(self, state):
        self.__init__(state["settings"])


def read_shelves(path: Path) -> list[SuppressionWindow]:
    doc = yaml.safe_load(path.read_text()) or []
    if not isinstance(doc, list):
        raise SettingsError(f"{path}: expected a list of shelves")
    return [SuppressionWindow(**{k: str(v) for k, v in d.items()}) for d in doc]


def add_shelf(path: Path, *, asset: str, rule: str, until: str, reason: str, start: str | None = None) -> SuppressionWindow:
    """Append a shelf (from now, or ``start``, until ``until``) to the shelves file."""
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    shelf = SuppressionWindow(start or now, until, asset, rule, reason)
    _ranges([shelf], "shelved", "shelve")  # validate before writing
    shelves = read_shelves(path) if path.exists() else []
    shelves.append(shelf)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump([{k: v for k, v in vars(s).items() if v} for s in shelves]))
    tmp.replace(path)  # atomic: the pipeline never reads a half-written file
    return shelf
