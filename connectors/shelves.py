"""Maintenance windows and shelves: when alert notifications are withheld.

Windows from the config are fixed; shelves added by ``predmaint shelve`` live in
a small YAML file that the pipeline re-reads when it changes. Both are ranges
of event time, so a replay of the same data with the same file decides the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from predmaint.settings import SettingsError, SuppressionSettings, SuppressionWindow


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


def _ranges(windows: Iterable[SuppressionWindow], kind: str) -> list[_Range]:
    # Windows were validated when built (SuppressionWindow checks its times).
    return [_Range(*w.range_ns, w.asset, w.rule, f"{kind}: {w.reason}" if w.reason else kind) for w in windows]


class Suppressions:
    """Answers "is a notification of ``rule`` on ``asset`` at ``time_ns`` withheld, and why?"

    Examples
    --------
    >>> s = Suppressions(SuppressionSettings(maintenance_windows=(SuppressionWindow(
    ...     "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z", asset="fan-02", reason="regrease"),),
    ...     shelves_path=""))
    >>> from predmaint.settings import parse_utc
    >>> t = int(parse_utc("2026-01-01T01:00:00Z", "t").timestamp() * 1e9)
    >>> s.reason("fan-02", "health_low", t)
    'maintenance: regrease'
    >>> s.reason("fan-01", "health_low", t)
    ''
    """

    def __init__(self, settings: SuppressionSettings, recheck_s: float = 1.0):
        self.settings = settings
        # The shelves file is looked at (a stat) at most once per recheck_s of wall time: reason()
        # is asked for every rule of every window, and a shelf a second late withholds the same.
        self.recheck_s = recheck_s
        self.fixed = _ranges(settings.maintenance_windows, "maintenance") + _ranges(settings.shelves, "shelved")
        self.path = Path(settings.shelves_path) if settings.shelves_path else None
        self._mtime: float | None = None
        self._shelved: list[_Range] = []
        self._next_check = float("-inf")

    def _reload(self) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.recheck_s
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._mtime, self._shelved = None, []
            return
        if mtime != self._mtime:
            self._shelved = _ranges(read_shelves(self.path), "shelved")
            self._mtime = mtime

    def reason(self, asset: str, rule: str, time_ns: int) -> str:
        self._reload()
        for r in (*self.fixed, *self._shelved):
            if r.covers(asset, rule, time_ns):
                return r.label
        return ""

    def __getstate__(self):
        # Rebuilt from settings on resume; the file is re-read.
        return {"settings": self.settings, "recheck_s": self.recheck_s}

    def __setstate__(self, state):
        type(self).__init__(self, state["settings"], state.get("recheck_s", 1.0))


def read_shelves(path: Path) -> list[SuppressionWindow]:
    doc = yaml.safe_load(path.read_text()) or []
    if not isinstance(doc, list):
        raise SettingsError(f"{path}: expected a list of shelves")
    try:
        return [SuppressionWindow(**{k: str(v) for k, v in d.items()}) for d in doc]
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None


#: A shelf's start when none is given: any event time. Alerts are judged in event time, and a backlog
#: or a replay carries events stamped before the wall-clock moment the shelf was added: "shelved until
#: 06:00" withholds those too.
ANY_TIME = "1970-01-01T00:00:00Z"


def add_shelf(path: Path, *, asset: str, rule: str, until: str, reason: str, start: str | None = None) -> SuppressionWindow:
    """Add a shelf (from ``start``, else any time, until ``until``) to the shelves file; see :func:`put_shelf`."""
    return put_shelf(path, asset=asset, rule=rule, until=until, reason=reason, start=start)[0]


def put_shelf(path: Path, *, asset: str, rule: str, until: str, reason: str,
              start: str | None = None) -> tuple[SuppressionWindow, bool]:
    """Add a shelf, or replace the one of the same asset, rule and end; return it and whether it replaced one.

    Repeating a ``predmaint shelve`` command therefore leaves one shelf, not two.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "shelves.yaml"
    >>> for reason in ("bearing swap", "bearing swap, day 2"):
    ...     shelf, replaced = put_shelf(path, asset="pump-03", rule="", until="2026-01-02T06:00:00Z",
    ...                                 reason=reason, start="2026-01-01T00:00:00Z")
    >>> replaced, [s.reason for s in read_shelves(path)]
    (True, ['bearing swap, day 2'])
    """
    try:
        shelf = SuppressionWindow(start or ANY_TIME, until, asset, rule, reason)
    except SettingsError as exc:
        raise SettingsError(f"shelve: {exc}") from None
    shelves = read_shelves(path) if path.exists() else []
    end_ns = shelf.range_ns[1]
    kept = [s for s in shelves if not (s.asset == asset and s.rule == rule and s.range_ns[1] == end_ns)]
    _write(path, [*kept, shelf])
    return shelf, len(kept) < len(shelves)


def remove_shelves(path: Path, *, asset: str, rule: str | None = None) -> list[SuppressionWindow]:
    """Remove the shelves of ``asset`` (only those of ``rule`` when given); return the removed ones."""
    shelves = read_shelves(path) if path.exists() else []
    removed = [s for s in shelves if s.asset == asset and (rule is None or s.rule == rule)]
    if removed:
        _write(path, [s for s in shelves if s not in removed])
    return removed


def _write(path: Path, shelves: list[SuppressionWindow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump([{k: v for k, v in vars(s).items() if v} for s in shelves]))
    tmp.replace(path)  # atomic: the pipeline never reads a half-written file
