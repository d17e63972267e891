"""The bytewax sink that writes points through a storage writer, overlapping I/O with compute.

Each partition hands batches to a background thread and returns at once, so the
dataflow computes the next windows while the previous points travel to
InfluxDB. Durability is restored where recovery needs it: bytewax calls
``snapshot()`` at the end of every epoch before committing that epoch's
recovery state, and ``snapshot()`` waits until every queued batch is stored.

While storage is unavailable the writer retries (``storage.retry_for_s``,
see :mod:`predmaint.connectors.storage`) and the sink holds the dataflow
back: ``write_batch`` blocks once ``max_queued_batches`` wait, and
``snapshot()`` until all are stored, so nothing is dropped and nothing piles
up without bound. A write that failed for good (a refusal, or an outage
longer than ``retry_for_s``) is raised from the next ``write_batch`` or
``snapshot()``, which stops the flow before the epoch is committed; a
restart then replays it. ``close()`` never raises: bytewax calls it from a
destructor, also while the worker unwinds after an error, where an
exception becomes a Rust panic that aborts the process and hides the cause.
"""

from __future__ import annotations

import logging
import queue
import threading

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from predmaint.connectors.storage import open_writer
from predmaint.domain import Point, PointWriter
from predmaint.settings import StorageSettings

log = logging.getLogger(__name__)

#: How often a blocked ``write_batch``/``snapshot`` looks whether the writer failed.
_POLL_S = 0.2
#: How long ``close()`` waits for a writer thread that is still busy.
_CLOSE_WAIT_S = 2.0


class _PipelinedPartition(StatefulSinkPartition[Point, None]):
    def __init__(self, writer: PointWriter, max_queued_batches: int):
        self.writer = writer
        # Bounded: when storage is slower than the flow, or down, write_batch
        # blocks (backpressure) instead of buffering without limit.
        self.pending: queue.Queue[list[Point]] = queue.Queue(maxsize=max_queued_batches)
        self.failure: BaseException | None = None
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._drain, name="predmaint-storage-writer", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                batch = self.pending.get(timeout=_POLL_S)
            except queue.Empty:
                if self.closing.is_set():
                    return
                continue
            try:
                # After a failure (or once closing) the rest is only counted
                # off: the epoch will not be committed, a restart replays it.
                if self.failure is None and not self.closing.is_set():
                    self.writer.write(batch)
            except BaseException as exc:  # surfaced on the dataflow thread
                self.failure = exc
            finally:
                self.pending.task_done()

    def _raise_failure(self) -> None:
        if self.failure is not None:
            # Already a StorageError naming the storage and the cause (a bug
            # keeps its own type and traceback).
            raise self.failure

    def write_batch(self, values: list[Point]) -> None:
        self._raise_failure()
        if not values:
            return
        batch = list(values)
        while True:
            try:
                self.pending.put(batch, timeout=_POLL_S)
                return
            except queue.Full:
                self._raise_failure()

    def snapshot(self) -> None:
        # pending.join() without a timeout would not see a failure while
        # batches behind it are still being counted off.
        with self.pending.all_tasks_done:
            while self.pending.unfinished_tasks and self.failure is None:
                self.pending.all_tasks_done.wait(_POLL_S)
        self._raise_failure()
        return None

    def close(self) -> None:
        """Stop the writer thread and close the writer; log, never raise (see the module docstring)."""
        try:
            unstored = self.pending.unfinished_tasks
            self.closing.set()
            cancel = getattr(self.writer, "cancel", None)
            if cancel is not None:
                cancel()  # a write waiting for an unavailable server gives up now
            self.thread.join(_CLOSE_WAIT_S)
            if self.thread.is_alive():
                # Still inside a request (bounded by storage.timeout_s); it is a
                # daemon thread and its batches are replayed after a restart.
                log.info("storage sink: closing while a write is in flight; its epoch is replayed on restart")
                return
            if unstored and self.failure is None:
                log.info("storage sink: closed with %d batch(es) not stored; their epoch is replayed on restart",
                         unstored)
            self.writer.close()
        except Exception as exc:
            log.warning("storage sink: error while closing (ignored): %s", exc)


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
