"""The bytewax sink that writes points through a storage writer, overlapping I/O with compute.

Each partition hands batches to a background thread and returns at once, so the
dataflow computes the next windows while the previous points travel to
InfluxDB. Durability is restored where recovery needs it: bytewax calls
``snapshot()`` at the end of every epoch before committing that epoch's
recovery state, and ``snapshot()`` waits until every queued batch is stored.
A write that failed for good is raised there (or on the next batch), which
stops the flow before the epoch is committed; a restart then replays it.
"""

from __future__ import annotations

import queue
import threading

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from predmaint.connectors.storage import StorageError, open_writer
from predmaint.domain import Point, PointWriter
from predmaint.settings import StorageSettings

_STOP = object()


class _PipelinedPartition(StatefulSinkPartition[Point, None]):
    def __init__(self, writer: PointWriter, max_queued_batches: int):
        self.writer = writer
        # Bounded: when storage is slower than the flow, write_batch blocks
        # (backpressure) instead of buffering without limit.
        self.pending: queue.Queue = queue.Queue(maxsize=max_queued_batches)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._drain, name="predmaint-storage-writer", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            batch = self.pending.get()
            try:
                if batch is _STOP:
                    return
                if self.failure is None:
                    self.writer.write(batch)
            except BaseException as exc:  # surfaced on the dataflow thread
                self.failure = exc
            finally:
                self.pending.task_done()

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise StorageError(f"storage_out: writing points failed: {self.failure}") from self.failure

    def write_batch(self, values: list[Point]) -> None:
        self._raise_failure()
        if values:
            self.pending.put(list(values))

    def snapshot(self) -> None:
        self.pending.join()
        self._raise_failure()
        return None

    def close(self) -> None:
        self.pending.join()
        self.pending.put(_STOP)
        self.thread.join()
        self.writer.close()
        self._raise_failure()


class StorageSink(FixedPartitionedSink[Point, None]):
    """Points keyed by asset, spread over ``partitions`` writers, each with its own connection."""

    def __init__(self, settings: StorageSettings, partitions: int = 2, max_queued_batches: int = 64):
        self.settings = settings
        self.partitions = partitions
        self.max_queued_batches = max_queued_batches

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(self.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _PipelinedPartition:
        return _PipelinedPartition(open_writer(self.settings), self.max_queued_batches)
