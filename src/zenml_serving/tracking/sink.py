"""ProcessSink: captured invocations -> run records -> the writer process, in batches.

The tracking writer's thread calls it with a batch. Records are built here (previews and
redaction need the live values), then pickled to the writer process. A record that cannot be
pickled (a step value of a type pickle refuses) is written from this process through ZenML's
public API instead, so it is still recorded, only at the old cost.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import structlog

from zenml_serving.tracking.builder import build_run_record
from zenml_serving.tracking.process import RecordFailed

if TYPE_CHECKING:
    from zenml_serving.tracking.capture import CapturedInvocation
    from zenml_serving.tracking.process import WriterProcess
    from zenml_serving.tracking.recorder import ZenStoreRecorder
    from zenml_serving.tracking.records import RunRecord

__all__ = ["ProcessSink"]

_log = structlog.stdlib.get_logger(__name__)


class ProcessSink:
    """`TrackingWriter(write_batch=ProcessSink(...))`."""

    def __init__(self, process: WriterProcess) -> None:
        self._process = process
        self._in_process: ZenStoreRecorder | None = None

    def __call__(self, batch: list[CapturedInvocation]) -> list[RecordFailed | None]:
        """Build and write `batch`; one outcome per invocation."""
        outcomes: list[RecordFailed | None] = [None] * len(batch)
        built: list[tuple[int, RunRecord]] = []
        for i, captured in enumerate(batch):
            try:
                built.append((i, build_run_record(captured)))
            except Exception as exc:  # one bad record must not sink the batch
                outcomes[i] = RecordFailed(f"{type(exc).__name__}: {exc}")
        try:
            sent = self._process.write([record for _, record in built])
        except pickle.PicklingError:
            sent = self._split([record for _, record in built])
        for (i, _), outcome in zip(built, sent, strict=True):
            outcomes[i] = outcome
        return outcomes

    def _split(self, records: list[RunRecord]) -> list[RecordFailed | None]:
        """Send what pickles; write the rest here."""
        picklable: list[int] = []
        outcomes: list[RecordFailed | None] = []
        for i, record in enumerate(records):
            if _pickles(record):
                picklable.append(i)
                outcomes.append(None)
            else:
                outcomes.append(self._write_here(record))
        if picklable:
            sent = self._process.write([records[i] for i in picklable])
            for i, outcome in zip(picklable, sent, strict=True):
                outcomes[i] = outcome
        return outcomes

    def _write_here(self, record: RunRecord) -> RecordFailed | None:
        from zenml_serving.tracking.batch import store_unreachable
        from zenml_serving.tracking.recorder import ZenStoreRecorder

        _log.info("tracking_record_written_in_process", invocation_id=record.invocation_id)
        if self._in_process is None:
            self._in_process = ZenStoreRecorder()
        try:
            self._in_process.write(record)
        except Exception as exc:
            return RecordFailed(f"{type(exc).__name__}: {exc}", store_unreachable(exc))
        return None


def _pickles(record: RunRecord) -> bool:
    try:
        pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return False
    return True
