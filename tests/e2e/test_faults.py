"""Faults in step code: the affected request is answered as clearly as possible and the
service keeps serving the rest."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory

pytestmark = pytest.mark.e2e

FAULTS = "tests.pipelines.faults:fault_pipeline"


def fault(kind: str, **extra: object) -> dict[str, object]:
    return {"parameters": {"fault": kind, **extra}}


class TestStepFaults:
    """Raising, hanging and impossible allocations end one request, not the service."""

    def test_each_fault_is_answered_and_the_service_keeps_serving(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of(FAULTS), ZENML_SERVING_REQUEST_TIMEOUT="2")
        raised = service.client.post("/invoke", json=fault("raise"))
        assert (raised.status_code, raised.json()["error_type"]) == (500, "RuntimeError")

        impossible = service.client.post("/invoke", json=fault("allocate", size=10**15))
        assert impossible.status_code == 500
        assert impossible.json()["error_type"] == "MemoryError"
        assert impossible.json()["step"] == "misbehave"

        large = service.client.post("/invoke", json=fault("allocate", size=200 * 2**20))
        assert large.json()["outputs"] == {"output": f"allocated {200 * 2**20} bytes"}

        hung = service.client.post("/invoke", json=fault("hang", seconds=4))
        assert hung.status_code == 504

        assert service.client.post("/invoke", json=fault("none")).json()["outputs"] == {
            "output": "ok"
        }
        assert service.client.get("/health").status_code == 200


class TestAStepThatExits:
    """`sys.exit()` or KeyboardInterrupt in a step fails that step, named, never the process."""

    def test_answered_500_and_the_service_keeps_serving(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of(FAULTS))
        for kind, name in (("sys_exit", "SystemExit"), ("interrupt", "KeyboardInterrupt")):
            failed = service.client.post("/invoke", json=fault(kind))
            assert failed.status_code == 500, failed.text
            problem = failed.json()
            assert problem["type"].endswith("step-failed")
            assert (problem["step"], problem["error_type"]) == ("misbehave", name)

        job = service.client.post("/invoke?mode=async", json=fault("sys_exit")).json()
        deadline = time.monotonic() + 30
        record = service.client.get(f"/jobs/{job['job_id']}").json()
        while record["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            record = service.client.get(f"/jobs/{job['job_id']}").json()
        assert record["status"] == "failed"
        assert (record["error"]["type"], record["error"]["step"]) == ("SystemExit", "misbehave")

        ok = service.client.post("/invoke", json=fault("none"))
        assert ok.json()["outputs"] == {"output": "ok"}
        totals = service.client.get("/status").json()["execution"]["totals"]
        assert totals["failed"] == 3
        assert service.process.poll() is None


class TestDeadWorker:
    """A step that kills its process: granian respawns the worker, the others keep serving."""

    def test_a_killed_worker_is_replaced(self, service_factory: ServiceFactory) -> None:
        service = service_factory(snapshot_of(FAULTS), ZENML_SERVING_WORKERS="2")
        with pytest.raises(httpx.TransportError):
            service.client.post("/invoke", json=fault("exit"), timeout=30)

        deadline = time.monotonic() + 90
        served = 0
        while served < 10 and time.monotonic() < deadline:
            try:
                response = service.client.post("/invoke", json=fault("none"), timeout=10)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            assert response.status_code == 200
            served += 1
        assert served == 10, service.log()
        assert service.process.poll() is None, "the service itself is still running"
        assert "Respawning worker" in service.log()
