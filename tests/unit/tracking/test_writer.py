"""The tracking writer never blocks the caller, bounds its queue and counts every drop."""

from __future__ import annotations

import threading
import time

import pytest
import structlog

from zenml_serving.tracking.process import RecordFailed, WriterLostError
from zenml_serving.tracking.writer import TrackingWriter


class TestTrackingWriter:
    """Records are written in the background; what cannot be written is counted, not lost."""

    def test_records_are_written_in_order(self) -> None:
        written: list[int] = []
        writer = TrackingWriter(written.append)
        writer.start()
        for item in range(5):
            assert writer.submit(item)
        writer.stop(grace_s=10)
        assert written == [0, 1, 2, 3, 4]
        assert writer.stats.written == 5
        assert writer.stats.dropped == 0

    def test_a_full_queue_drops_and_counts_without_blocking(self) -> None:
        release = threading.Event()
        written: list[int] = []

        def slow_write(item: int) -> None:
            release.wait(10)
            written.append(item)

        with structlog.testing.capture_logs() as logs:
            writer = TrackingWriter(
                slow_write, max_queue=2, log_interval_s=3600, logger=structlog.get_logger()
            )
            writer.start()
            writer.submit(0)  # taken by the thread, which blocks
            while writer.depth:
                pass
            accepted = [writer.submit(i) for i in range(1, 6)]
            release.set()
            writer.stop(grace_s=10)
        assert accepted == [True, True, False, False, False]
        assert writer.stats.dropped_full == 3
        assert written == [0, 1, 2]
        reports = [e["since_last_report"] for e in logs if e["event"] == "tracking_records_dropped"]
        assert reports == [1, 2], "the first drop is logged at once, the rest once per interval"

    def test_a_failing_store_is_retried_then_counted(self) -> None:
        attempts: list[int] = []

        def failing(item: int) -> None:
            attempts.append(item)
            raise ConnectionError("store down")

        writer = TrackingWriter(failing, retries=3, retry_delay_s=0)
        writer.start()
        writer.submit(7)
        writer.stop(grace_s=10)
        assert attempts == [7, 7, 7]
        assert writer.stats.dropped_failed == 1

    def test_records_left_at_shutdown_are_counted(self) -> None:
        release = threading.Event()
        writer = TrackingWriter(lambda _: release.wait(10))
        writer.start()
        for item in range(4):
            writer.submit(item)
        writer.stop(grace_s=0)
        release.set()
        assert writer.stats.dropped_shutdown >= 3
        assert not writer.submit(99)
        assert writer.stats.dropped_shutdown >= 4

    def test_drops_are_reported_to_a_callback(self) -> None:
        reasons: list[str] = []
        writer = TrackingWriter(lambda _: None, max_queue=1, on_drop=lambda r, n: reasons.append(r))
        writer.submit(1)
        writer.submit(2)  # not started: the queue stays full
        assert reasons == ["full"]


class TestDuty:
    """The writer leaves the GIL to requests for most of the time; a flush does not wait."""

    def test_the_writer_rests_in_proportion_to_its_writes(self) -> None:
        spans: list[tuple[float, float]] = []

        def write(_: object) -> None:
            started = time.monotonic()
            time.sleep(0.02)
            spans.append((started, time.monotonic()))

        writer = TrackingWriter(write, duty=0.5)  # rest as long as each write took
        writer.start()
        for item in range(4):
            writer.submit(item)
        deadline = time.monotonic() + 10
        while len(spans) < 4 and time.monotonic() < deadline:  # not stopping: stop flushes
            time.sleep(0.01)
        writer.stop(grace_s=5.0)
        assert len(spans) == 4
        first_end, second_start = spans[0][1], spans[1][0]
        assert second_start - first_end >= 0.9 * (spans[0][1] - spans[0][0])

    def test_a_shutdown_flush_does_not_rest(self) -> None:
        written: list[int] = []
        writer = TrackingWriter(written.append, duty=0.001)
        for item in range(20):
            writer.submit(item)
        writer.start()
        writer.stop(grace_s=5.0)
        assert written == list(range(20))
        assert writer.stats.dropped == 0

    def test_a_duty_outside_0_1_is_refused(self) -> None:
        with pytest.raises(ValueError, match="duty"):
            TrackingWriter(lambda item: None, duty=0.0)


class TestBatchWriting:
    """`write_batch`: many records per call, an unreachable store waited for, a lost batch."""

    def test_queued_records_are_written_in_batches_in_order(self) -> None:
        batches: list[list[int]] = []
        release = threading.Event()

        def write_batch(items: list[int]) -> list[RecordFailed | None]:
            release.wait(10)
            batches.append(items)
            return [None] * len(items)

        writer = TrackingWriter(write_batch=write_batch, batch_size=50)
        writer.start()
        for item in range(101):
            assert writer.submit(item)
        release.set()
        writer.stop(grace_s=10)
        assert [i for batch in batches for i in batch] == list(range(101))
        assert len(batches) < 101, "records queued meanwhile go together"
        assert writer.stats.written == 101

    def test_an_unreachable_store_is_waited_for_beyond_the_retry_count(self) -> None:
        calls: list[list[int]] = []

        def write_batch(items: list[int]) -> list[RecordFailed | None]:
            calls.append(items)
            if len(calls) <= 5:
                return [RecordFailed("OperationalError: gone", unavailable=True)] * len(items)
            return [None] * len(items)

        writer = TrackingWriter(write_batch=write_batch, retries=2, retry_delay_s=0)
        writer.start()
        writer.submit(1)
        writer.stop(grace_s=10)
        assert writer.stats.written == 1
        assert writer.stats.dropped == 0
        assert len(calls) == 6

    def test_a_refused_record_is_dropped_after_its_retries_and_the_others_written(self) -> None:
        def write_batch(items: list[int]) -> list[RecordFailed | None]:
            return [RecordFailed("bad") if item == 2 else None for item in items]

        writer = TrackingWriter(write_batch=write_batch, retries=3, retry_delay_s=0)
        writer.start()
        for item in (1, 2, 3):
            writer.submit(item)
        writer.stop(grace_s=10)
        assert writer.stats.written == 2
        assert writer.stats.dropped_failed == 1

    def test_a_batch_held_by_a_dead_writer_process_is_counted_lost_and_not_resent(self) -> None:
        calls: list[list[int]] = []

        def write_batch(items: list[int]) -> list[RecordFailed | None]:
            calls.append(items)
            if len(calls) == 1:
                raise WriterLostError("killed")
            return [None] * len(items)

        reasons: list[str] = []
        writer = TrackingWriter(write_batch=write_batch, on_drop=lambda r, n: reasons.append(r))
        writer.start()
        writer.submit(1)
        writer.stop(grace_s=10)
        assert [i for batch in calls for i in batch] == [1], "never sent twice"
        assert writer.stats.dropped_lost == 1
        assert reasons == ["lost"]

    def test_the_sink_is_opened_at_start_and_closed_after_the_flush(self) -> None:
        events: list[str] = []

        def write_batch(items: list[int]) -> list[RecordFailed | None]:
            events.append("write")
            return [None] * len(items)

        writer = TrackingWriter(
            write_batch=write_batch,
            on_start=lambda: events.append("start"),
            on_stop=lambda: events.append("stop"),
        )
        writer.start()
        writer.submit(1)
        writer.stop(grace_s=10)
        assert events == ["start", "write", "stop"]
