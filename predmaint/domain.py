"""Domain types that every layer passes around: stored points and dead letters.

They carry data only. The pure flow steps build them; the connectors write
them (InfluxDB, SQLite, Kafka); nothing here does I/O. :meth:`Point.to_line`
is InfluxDB's line protocol, the storage schema's one text form, kept with the
type so that every writer formats a point the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["DeadLetter", "Point", "PointReader", "PointWriter", "QueryReader"]


@dataclass(frozen=True)
class Point:
    """One InfluxDB point. ``time_ns`` is nanoseconds since the epoch, UTC.

    Examples
    --------
    >>> Point("health", {"asset": "pump 1"}, {"score": 97.5, "ok": True, "model": "a\\"b"}, 10).to_line()
    'health,asset=pump\\\\ 1 score=97.5,ok=true,model="a\\\\"b" 10'
    """

    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | bool | str]
    time_ns: int

    def to_line(self) -> str:
        tags = "".join(f",{_esc_tag(k)}={_esc_tag(v)}" for k, v in sorted(self.tags.items()) if v != "")
        fields = ",".join(f"{_esc_tag(k)}={_field_value(v)}" for k, v in self.fields.items())
        return f"{_esc_measurement(self.measurement)}{tags} {fields} {self.time_ns}"


def _esc_measurement(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _esc_tag(s: str) -> str:
    return _esc_measurement(str(s)).replace("=", "\\=")


def _field_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class DeadLetter:
    """An input that could not be processed, and why."""

    reason: str
    step: str
    asset: str | None = None
    sensor: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    original: bytes | None = None
    time_ns: int = 0


class PointWriter(Protocol):
    """Where points go: ``write`` returns once the batch is stored (implemented in :mod:`predmaint.connectors.storage`)."""

    def write(self, points: list[Point]) -> None: ...
    def close(self) -> None: ...


class PointReader(Protocol):
    """What the summary, the report and the tests read points through."""

    def points(self, measurement: str, **tags: str) -> list[Point]: ...
    def close(self) -> None: ...


class QueryReader(PointReader, Protocol):
    """A reader that also runs InfluxQL (InfluxDB only): what ``predmaint dashboards check`` needs.

    ``query`` returns the result's series, each a dict with ``name``, ``tags``,
    ``columns`` and ``values``.
    """

    def query(self, q: str) -> list[dict]: ...
