"""The metric objects, outcome counting, exposition and multiprocess folder preparation."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from zenml_serving.telemetry import metrics
from zenml_serving.telemetry.multiproc import prepare_multiprocess_dir


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


class TestNames:
    """Prometheus conventions: a prefix, `_total` counters, `_seconds` histograms."""

    def test_conventions(self) -> None:
        for metric in metrics.ALL_METRICS:
            for family in metric.describe():
                assert family.name.startswith(metrics.PREFIX)
                if family.type == "histogram":
                    assert family.name.endswith("_seconds"), family.name
                assert family.documentation

    def test_exposition_parses_and_counters_end_in_total(self) -> None:
        body, content_type = metrics.render(None)
        assert content_type.startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert "zenml_serving_invocations" in families
        assert families["zenml_serving_invocations"].type == "counter"
        assert b"zenml_serving_invocations_total{" in body

    def test_openmetrics_when_asked(self) -> None:
        _, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
        assert content_type.startswith("application/openmetrics-text")


class TestOutcomes:
    """Admission refusals count as rejected invocations and as rejections by reason."""

    def test_count_outcome(self) -> None:
        before = {
            "rejected": _value("zenml_serving_invocations_total", mode="sync", outcome="rejected"),
            "overloaded": _value("zenml_serving_rejections_total", reason="overloaded"),
            "completed": _value(
                "zenml_serving_invocations_total", mode="async", outcome="completed"
            ),
        }
        metrics.count_outcome("sync", "overloaded")
        metrics.count_outcome("async", "completed")
        assert (
            _value("zenml_serving_invocations_total", mode="sync", outcome="rejected")
            == before["rejected"] + 1
        )
        assert (
            _value("zenml_serving_rejections_total", reason="overloaded")
            == before["overloaded"] + 1
        )
        assert (
            _value("zenml_serving_invocations_total", mode="async", outcome="completed")
            == before["completed"] + 1
        )


class TestMultiprocessDir:
    """Emptied before the workers start; created when several workers need one."""

    def test_single_worker_without_folder(self) -> None:
        env: dict[str, str] = {}
        assert prepare_multiprocess_dir(1, env) is None
        assert env == {}

    def test_several_workers_get_a_fresh_folder(self) -> None:
        env: dict[str, str] = {}
        path = prepare_multiprocess_dir(2, env)
        assert path is not None
        assert path.is_dir()
        assert env["PROMETHEUS_MULTIPROC_DIR"] == str(path)
        assert list(path.iterdir()) == []

    def test_configured_folder_is_emptied_of_stale_files(self, tmp_path: Path) -> None:
        folder = tmp_path / "metrics"
        folder.mkdir()
        (folder / "counter_123.db").write_bytes(b"stale")
        (folder / "README").write_text("kept")
        env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
        assert prepare_multiprocess_dir(4, env) == folder
        assert [p.name for p in folder.iterdir()] == ["README"]

    def test_configured_folder_is_created(self, tmp_path: Path) -> None:
        folder = tmp_path / "new" / "metrics"
        assert prepare_multiprocess_dir(2, {"PROMETHEUS_MULTIPROC_DIR": str(folder)}) == folder
        assert folder.is_dir()


class TestMultiprocessRead:
    """A worker's file caught while being created (still empty) is read again, not a 500."""

    def test_empty_file_then_written(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from prometheus_client.mmap_dict import MmapedDict

        (tmp_path / "counter_1.db").write_bytes(b"")
        monkeypatch.setattr(metrics, "_MULTIPROC_DIR", str(tmp_path))

        def worker_finishes_its_file(_: float) -> None:
            (tmp_path / "counter_1.db").unlink()
            MmapedDict(str(tmp_path / "counter_1.db")).close()

        monkeypatch.setattr(metrics.time, "sleep", worker_finishes_its_file)
        body, _ = metrics.render(None)
        assert body == b""

    def test_a_file_that_stays_broken_is_an_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "counter_1.db").write_bytes(b"")
        monkeypatch.setattr(metrics, "_MULTIPROC_DIR", str(tmp_path))
        monkeypatch.setattr(metrics.time, "sleep", lambda _: None)
        with pytest.raises(struct.error):
            metrics.render(None)


class TestTrackingMetrics:
    """The tracking writer's drops and queue depth reach the metrics."""

    def test_drops_counted_by_reason_through_the_writer_hook(self) -> None:
        from zenml_serving.tracking.writer import TrackingWriter

        name, labels = "zenml_serving_tracking_dropped_total", {"reason": "full"}
        before = metrics.REGISTRY.get_sample_value(name, labels) or 0.0
        # Not started: the one place in its queue is taken by the first record.
        writer = TrackingWriter(lambda _: None, max_queue=1, on_drop=metrics.count_tracking_drops)
        assert [writer.submit(item) for item in range(3)] == [True, False, False]
        assert metrics.REGISTRY.get_sample_value(name, labels) == before + 2
        assert writer.depth == 1


class TestStateSampling:
    """Gauges come from this process's own bookkeeping: the job store is never read."""

    @staticmethod
    def _manager(counts: dict[str, int]) -> Any:
        from types import SimpleNamespace

        async def query(**_: Any) -> Any:
            raise AssertionError("the job gauges must not query the job store")

        slots = SimpleNamespace(in_use=2, orphaned=0, waiting=1, max_waiting=7, limit=3)
        return SimpleNamespace(
            slots=slots, owner="me", jobs=SimpleNamespace(query=query), job_counts=lambda: counts
        )

    def test_job_gauges_come_from_the_kept_counts(self) -> None:
        asyncio.run(metrics.sample_state(self._manager({"running": 1, "completed": 4})))
        assert _value("zenml_serving_jobs", state="running") == 1
        assert _value("zenml_serving_jobs", state="completed") == 4
        assert _value("zenml_serving_jobs", state="queued") == 0
        assert _value("zenml_serving_queue_capacity") == 7
        assert _value("zenml_serving_executions_in_flight") == 2
