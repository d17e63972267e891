"""The bytewax sink that writes points through a storage writer."""

from __future__ import annotations

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.storage import Point, PointWriter, open_writer
from pipelines.settings import StorageSettings


class _StoragePartition(StatelessSinkPartition[Point]):
    def __init__(self, writer: PointWriter):
        self.writer = writer

    def write_batch(self, items: list[Point]) -> None:
        # One request per bytewax batch; write() returns only once stored, so a
        # recovery snapshot taken after it never covers unwritten points.
        if items:
            self.writer.write(items)

    def close(self) -> None:
        self.writer.close()


class StorageSink(DynamicSink[Point]):
    """Each worker opens its own writer from the same settings."""

    def __init__(self, settings: StorageSettings):
        self.settings = settings

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StoragePartition:
        return _StoragePartition(open_writer(self.settings))
