"""Independent branches of one invocation run at once, on a real granian process.

Overlap is asserted on the order of the invocation's own step events (never on clocks): every
branch starts before any branch completes, which three 300 ms sleeps run one after another
could never produce.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceProcess, start_service, wait_until
from tests.e2e.sse import read_events

pytestmark = pytest.mark.e2e

BRANCHES = ("search", "weather", "calendar")


def journal_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.fixture(scope="module")
def service(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    started = start_service(
        snapshot_of("tests.pipelines.branches:branches_pipeline"),
        zenml_store_env,
        tmp_path_factory.mktemp("branches"),
    )
    yield started
    started.terminate()


def stream(service: ServiceProcess, **parameters: Any) -> list[dict[str, Any]]:
    with service.client.stream(
        "POST", "/invoke?mode=stream", json={"parameters": parameters}
    ) as response:
        assert response.status_code == 200
        return [e.json() for e in read_events(response) if e.event != "heartbeat"]


def position(events: list[dict[str, Any]], kind: str, step: str) -> int:
    return next(i for i, e in enumerate(events) if e["type"] == kind and e.get("step") == step)


class TestBranchesRunAtOnce:
    def test_three_waiting_branches_overlap_and_the_join_answers(
        self, service: ServiceProcess
    ) -> None:
        events = stream(service, query="rain?", sleep_s=0.3)

        assert events[-1]["type"] == "job.completed"
        assert events[-1]["outputs"] == {
            "output": "search(rain?) | weather(rain?) | calendar(rain?)"
        }
        last_start = max(position(events, "step.started", b) for b in BRANCHES)
        first_end = min(position(events, "step.completed", b) for b in BRANCHES)
        assert last_start < first_end
        join = position(events, "step.started", "answer")
        assert join > max(position(events, "step.completed", b) for b in BRANCHES)

    def test_sync_answer_lists_every_step(self, service: ServiceProcess) -> None:
        response = service.client.post("/invoke", json={"parameters": {"sleep_s": 0.05}})
        assert response.status_code == 200
        steps = {s["name"]: s["status"] for s in response.json()["steps"]}
        assert steps == dict.fromkeys([*BRANCHES, "answer"], "completed")

    def test_a_failing_branch_fails_the_invocation_naming_it(
        self, service: ServiceProcess, tmp_path: Path
    ) -> None:
        journal = tmp_path / "fail"
        response = service.client.post(
            "/invoke",
            json={"parameters": {"journal": str(journal), "sleep_s": 0.2, "fail": "weather"}},
        )

        assert response.status_code == 500
        problem = response.json()
        assert problem["step"] == "weather"
        assert problem["error_type"] == "ConnectionError"
        assert "answer" not in response.text  # no outputs: the siblings' results are discarded
        entries = journal_of(journal)
        assert "answer:start" not in entries
        assert {f"{b}:end" for b in BRANCHES} <= set(entries)

    def test_cancelling_mid_way_starts_no_further_step(
        self, service: ServiceProcess, tmp_path: Path
    ) -> None:
        journal = tmp_path / "cancel"
        accepted = service.client.post(
            "/invoke?mode=async", json={"parameters": {"journal": str(journal), "sleep_s": 1.0}}
        )
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        wait_until(
            lambda: {f"{b}:start" for b in BRANCHES} <= set(journal_of(journal)),
            what="the three branches to start",
        )

        cancelled = service.client.post(f"/jobs/{job_id}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        wait_until(
            lambda: {f"{b}:end" for b in BRANCHES} <= set(journal_of(journal)),
            what="the running branches to return",
        )
        time.sleep(0.3)  # give a (wrong) join the chance to start
        assert "answer:start" not in journal_of(journal)
        job = service.client.get(f"/jobs/{job_id}").json()
        assert job["status"] == "cancelled"
        assert job.get("outputs") is None
        assert {s["name"]: s["status"] for s in job["steps"]} == {
            **dict.fromkeys(BRANCHES, "cancelled"),
            "answer": "pending",
        }


class TestOptingOut:
    def test_a_pipeline_that_opts_out_runs_its_steps_one_after_another(
        self, zenml_store_env: dict[str, str], tmp_path: Path
    ) -> None:
        service = start_service(
            snapshot_of("tests.pipelines.branches:branches_opted_out"), zenml_store_env, tmp_path
        )
        try:
            events = stream(service, sleep_s=0.05)
            steps = [(e["type"], e["step"]) for e in events if e["type"].startswith("step.")]
            # Each step completes before the next one starts.
            assert [kind for kind, _ in steps] == ["step.started", "step.completed"] * 4
            assert service.client.get("/status").json()["config"]["step_concurrency"] == 1
        finally:
            service.terminate()
