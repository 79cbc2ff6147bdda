"""Run tracking at serving rates, against a real granian service and the local SQLite store.

A burst of invocations all become ZenML runs with their steps and metadata; a store that is
locked (SQLite's "unreachable") holds records in the bounded buffer until it is back; a writer
process killed with SIGKILL is restarted and nothing is written twice.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from zenml.client import Client
from zenml.enums import ExecutionStatus

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, start_service, wait_until
from tests.e2e.test_shared_store import mysql_store, snapshot_into

__all__ = ["mysql_store"]  # a fixture, used by name

TEXT = "examples.text_pipeline:text_pipeline"


def invoke_many(service: ServiceProcess, count: int) -> list[str]:
    """`count` invocations from 16 concurrent clients; their invocation ids."""

    def one(i: int) -> str:
        with httpx.Client(base_url=service.url, timeout=60.0) as client:
            response = client.post("/invoke", json={"parameters": {"message": f"burst {i}"}})
        assert response.status_code == 200, response.text
        return str(response.json()["invocation_id"])

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def tracking(service: ServiceProcess) -> dict[str, Any]:
    status: dict[str, Any] = service.client.get("/status").json()["tracking"]
    return status


def writer_pids(service: ServiceProcess) -> list[int]:
    """The tracking writer processes below the service (granian main -> worker -> writer)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"zenml_serving.tracking.process" in cmdline and _descends(ppid, service.process.pid):
            pids.append(int(entry.name))
    return pids


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def assert_recorded(invocation_ids: list[str]) -> None:
    """Each invocation is exactly one completed run with its three steps and metadata."""
    client = Client()
    for invocation_id in invocation_ids:
        runs = client.list_pipeline_runs(orchestrator_run_id=invocation_id, hydrate=True)
        assert runs.total == 1, f"{invocation_id}: {runs.total} runs"
        run = runs.items[0]
        assert run.status == ExecutionStatus.COMPLETED
        assert run.run_metadata["invocation_id"] == invocation_id
        assert run.run_metadata["capture.mode"] == "metadata"
        assert set(run.steps) == {"normalise", "score", "format_result"}
        for step in run.steps.values():
            assert step.status == ExecutionStatus.COMPLETED
            assert step.start_time is not None
            assert step.end_time is not None
            assert step.run_metadata["attempts"] == 1
        assert "outputs" in run.steps["score"].run_metadata
        assert [s.name for s in run.tags] == ["zenml-serving"]


def test_a_burst_of_invocations_all_become_runs(service_factory: ServiceFactory) -> None:
    service = service_factory(snapshot_of(TEXT), ZENML_SERVING_CAPTURE_DEFAULT="metadata")
    ids = invoke_many(service, 300)
    wait_until(lambda: tracking(service)["written"] == 300, 120, "300 runs written")
    status = tracking(service)
    assert sum(status["dropped"].values()) == 0
    assert_recorded(ids)


def test_a_locked_store_holds_records_until_it_is_back_and_drops_past_the_bound(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(
        snapshot_of(TEXT),
        ZENML_SERVING_CAPTURE_DEFAULT="metadata",
        ZENML_SERVING_TRACKING_QUEUE_SIZE="20",
    )
    invoke_many(service, 2)
    wait_until(lambda: tracking(service)["written"] == 2, 60, "the writer is up")
    lock = sqlite3.connect(Client().zen_store.url.removeprefix("sqlite:///"), timeout=30)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        ids = invoke_many(service, 60)  # answered while the store is unreachable
        assert tracking(service)["written"] == 2
        wait_until(lambda: tracking(service)["dropped"]["queue_full"] > 0, 30, "drops")
    finally:
        lock.rollback()
        lock.close()
    wait_until(lambda: tracking(service)["queue_depth"] == 0, 60, "the buffer written")
    wait_until(
        lambda: tracking(service)["written"] + tracking(service)["dropped"]["queue_full"] == 62,
        60,
        "every record written or counted",
    )
    status = tracking(service)
    assert status["dropped"]["write_failed"] == 0
    written = [i for i in ids if Client().list_pipeline_runs(orchestrator_run_id=i).total == 1]
    assert len(written) == status["written"] - 2, "what was buffered was written once"
    assert_recorded(written)


def test_a_killed_writer_process_is_restarted_and_writes_nothing_twice(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(snapshot_of(TEXT), ZENML_SERVING_CAPTURE_DEFAULT="metadata")
    first = invoke_many(service, 20)
    wait_until(lambda: tracking(service)["written"] == 20, 60, "first runs written")
    (pid,) = writer_pids(service)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid not in writer_pids(service), 10, "the writer gone")
    second = invoke_many(service, 20)
    wait_until(
        lambda: tracking(service)["written"] + tracking(service)["dropped"]["writer_lost"] == 40,
        90,
        "second runs written or counted lost",
    )
    (restarted,) = writer_pids(service)
    assert restarted != pid
    lost = tracking(service)["dropped"]["writer_lost"]
    assert_recorded(first)
    second_written = [i for i in second if Client().list_pipeline_runs(orchestrator_run_id=i).total]
    assert len(second_written) == 20 - lost
    assert_recorded(second_written)


def test_shutdown_flushes_what_is_queued(service_factory: ServiceFactory) -> None:
    service = service_factory(snapshot_of(TEXT), ZENML_SERVING_CAPTURE_DEFAULT="metadata")
    ids = invoke_many(service, 200)
    assert service.terminate() == 0
    assert "tracking_records_dropped" not in service.log()
    assert_recorded(ids)


READ_BACK = """
import json, sys
from zenml.client import Client
ids = json.load(sys.stdin)
seen = {}
for invocation_id in ids:
    runs = Client().list_pipeline_runs(orchestrator_run_id=invocation_id, hydrate=True)
    run = runs.items[0] if runs.items else None
    seen[invocation_id] = None if run is None else {
        "runs": runs.total,
        "status": str(run.status.value),
        "invocation_id": run.run_metadata.get("invocation_id"),
        "steps": {n: str(s.status.value) for n, s in run.steps.items()},
        "attempts": [s.run_metadata.get("attempts") for s in run.steps.values()],
    }
print(json.dumps(seen))
"""


@pytest.mark.mariadb
def test_a_burst_lands_in_a_mariadb_store_in_bulk(
    mysql_store: dict[str, str], tmp_path: Path
) -> None:
    snapshot_id = snapshot_into(mysql_store)
    service = start_service(
        snapshot_id, mysql_store, tmp_path, ZENML_SERVING_CAPTURE_DEFAULT="metadata"
    )
    try:
        ids = invoke_many(service, 100)
        wait_until(lambda: tracking(service)["written"] == 100, 120, "100 runs written")
    finally:
        assert service.terminate() == 0
    assert "tracking_bulk_write_fell_back" not in service.log()
    result = subprocess.run(
        [sys.executable, "-c", READ_BACK],
        input=json.dumps(ids),
        env={**os.environ, **mysql_store},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    for invocation_id in ids:
        assert seen[invocation_id] == {
            "runs": 1,
            "status": "completed",
            "invocation_id": invocation_id,
            "steps": dict.fromkeys(("normalise", "score", "format_result"), "completed"),
            "attempts": [1, 1, 1],
        }
