"""Issue 16's three capture cases against a real granian service and the local ZenML store.

One service, three invocations; then the service stops (flushing its run tracking) and the
store is read through ZenML's Client, its raw SQLite rows and the artifact store's files. Spans
go to the console exporter, i.e. into the process's output, with its log lines.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from zenml.client import Client
from zenml.enums import ExecutionStatus
from zenml.models import PipelineRunResponse

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory
from zenml_serving.capture import REDACTED

NOTE = "e2e-note-kept-out-value"
MEMO = "e2e-memo-kept-out-value"
TICKET = "e2e-ticket-kept-out-value"


def run_of(invocation_id: str) -> PipelineRunResponse:
    runs = Client().list_pipeline_runs(orchestrator_run_id=invocation_id, hydrate=True)
    assert runs.items, "the invocation left no run"
    return runs.items[0]


def store_and_artifacts_text() -> str:
    """Every row of every table of the store, and every file of the artifact store."""
    with sqlite3.connect(Client().zen_store.url.removeprefix("sqlite:///")) as connection:
        parts = list(connection.iterdump())
    for folder, _, files in os.walk(Client().active_stack.artifact_store.path):
        parts.extend((Path(folder) / f).read_bytes().decode(errors="replace") for f in files)
    return "\n".join(parts)


def test_none_inputs_errors_only_artifacts_and_declared_redact_names(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(
        snapshot_of("tests.pipelines.capture_holes:holes"),
        OTEL_TRACES_EXPORTER="console",
        ZENML_SERVING_LOG_FORMAT="json",
    )
    ok = service.client.post(
        "/invoke", json={"parameters": {"text": "hi", "note": NOTE, "memo": MEMO}}
    )
    failed = service.client.post(
        "/invoke",
        json={
            "parameters": {"text": "boom", "attempt": 3},
            "capture_override": {"mode": "errors_only"},
        },
    )
    traced = service.client.post("/invoke", json={"parameters": {"ticket": TICKET}})
    assert (ok.status_code, failed.status_code, traced.status_code) == (200, 500, 200)
    metrics = service.client.get("/metrics").text
    assert service.terminate() == 0
    output = service.log()

    # 1. `none` inputs: not in the run-level preview, nor anywhere else.
    run = run_of(ok.json()["invocation_id"])
    preview = run.run_metadata["parameters"]["preview"]
    assert '"text": "hi"' in preview
    assert '"note"' not in preview
    assert '"memo"' not in preview
    everything = store_and_artifacts_text()
    for value in (NOTE, MEMO):
        assert value not in everything
        assert value not in output
        assert value not in metrics

    # 2. errors_only: the failing step's inputs are artifacts linked to its step run.
    failed_run = run_of(failed.json()["invocation_id"])
    assert failed_run.status == ExecutionStatus.FAILED
    lookup = failed_run.steps["lookup"]
    assert lookup.inputs["text"][0].load() == "boom (1) [1]"
    assert lookup.inputs["attempt"][0].load() == 3

    # 3. declared redact names: the ticket step code logs and traces is redacted.
    assert TICKET not in output
    assert TICKET not in everything
    assert '"event": "ticket_lookup"' in output
    assert f'"app.ticket": "{REDACTED}"' in output
