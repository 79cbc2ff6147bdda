"""Issue 16's three cases in-process: every sink obeys the one decision per value.

The app runs with tracking into the session's real ZenML store, an in-memory span exporter and
its own log output; the store is read back through ZenML's Client (and as raw SQLite rows).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from zenml.client import Client
from zenml.enums import ExecutionStatus
from zenml.models import PipelineRunResponse

from tests.integration.conftest import served
from tests.telemetry_support import all_attribute_text
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig
from zenml_serving.telemetry.redaction import REDACTED
from zenml_serving.telemetry.service import Telemetry

HOLES = "tests.pipelines.capture_holes:holes"
NOTE = "harmless-looking-note-value"
MEMO = "harmless-looking-memo-value"
TICKET = "harmless-looking-ticket-value"


@dataclass
class Served:
    """What one invocation left: the response, the spans, the log text."""

    response: dict[str, Any]
    status: int
    spans: tuple[ReadableSpan, ...]
    logs: str


def invoke(
    body: dict[str, Any], target: str = HOLES, *, tracing: bool = True, **config: Any
) -> Served:
    """Serve `target`, invoke it once, shut down (flushing tracking and spans)."""
    settings = ServingConfig(**{"log_format": "json", **config})
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(
        settings,
        span_exporter=exporter if tracing else None,
        set_global_tracer_provider=False,
    )
    app = create_app(settings, served_pipeline=served(target), telemetry=telemetry)
    with captured_logs() as logs, TestClient(app) as client:
        response = client.post("/invoke", json=body)
    return Served(response.json(), response.status_code, exporter.get_finished_spans(), logs())


@contextlib.contextmanager
def captured_logs() -> Iterator[Callable[[], str]]:
    """The process's rendered log lines (the service's own formatter, redaction included)."""
    stream = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield stream.getvalue
    finally:
        root.removeHandler(handler)


def run_of(invocation_id: str) -> PipelineRunResponse:
    runs = Client().list_pipeline_runs(orchestrator_run_id=invocation_id, hydrate=True)
    assert runs.items, "the invocation left no run"
    return runs.items[0]


def store_text() -> str:
    """Every row of every table of the session's store."""
    with sqlite3.connect(Client().zen_store.url.removeprefix("sqlite:///")) as connection:
        return "\n".join(connection.iterdump())


def attributes(spans: tuple[ReadableSpan, ...], name: str) -> dict[str, Any]:
    (span,) = [s for s in spans if s.name == name]
    return dict(span.attributes or {})


class TestNoneValuesStayOut:
    """A value whose mode is `none` is in no run-level preview, no row, no span, no log."""

    def test_a_capture_none_input_and_a_step_none_input_leave_no_trace(self) -> None:
        served_once = invoke({"parameters": {"text": "hi", "note": NOTE, "memo": MEMO}})
        assert served_once.status == 200
        run = run_of(served_once.response["invocation_id"])
        parameters = run.run_metadata["parameters"]["preview"]
        assert '"text": "hi"' in parameters, "parameters fed to full inputs are shown"
        assert '"note"' not in parameters, "a parameter feeding a none input is left out"
        assert '"memo"' not in parameters
        assert "note" not in run.steps["annotate"].run_metadata["inputs"]
        assert "memo" not in run.steps["remember"].run_metadata["inputs"]
        text = store_text()
        for sink, content in {
            "store": text,
            "spans": all_attribute_text(served_once.spans),
            "logs": served_once.logs,
        }.items():
            assert NOTE not in content, f"the none input `note` reached the {sink}"
            assert MEMO not in content, f"the none input `memo` reached the {sink}"
        invocation = attributes(served_once.spans, "invoke holes")
        assert '"text": "hi"' in invocation["zenml.invocation.parameters.preview"]


class TestErrorMessagesQuoteInputs:
    """A failing step with a withheld input logs its error type, not its message."""

    def test_with_tracing_and_metrics_off_too(self) -> None:
        gamma = f"boom-third-{NOTE}"  # third(note=gamma) quotes it in its error message
        served_once = invoke(
            {"parameters": {"gamma": gamma}},
            "tests.pipelines.capture_shapes:relay",
            tracing=False,
            metrics_enabled=False,
        )
        assert served_once.status == 500
        assert '"event": "step_failed"' in served_once.logs
        assert NOTE not in served_once.logs
        assert NOTE not in store_text()


class TestErrorsOnlyPersistsTheFailingInputs:
    """`errors_only`: the failing step's inputs become artifacts linked to its step run."""

    def test_the_failing_step_inputs_are_artifacts_through_the_client(self) -> None:
        served_once = invoke(
            {
                "parameters": {"text": "boom", "ticket": TICKET, "attempt": 7},
                "capture_override": {"mode": "errors_only"},
            }
        )
        assert served_once.status == 500
        run = run_of(served_once.response["invocation_id"])
        assert run.status == ExecutionStatus.FAILED
        failing = run.steps["lookup"]
        assert failing.status == ExecutionStatus.FAILED
        assert failing.inputs["text"][0].load() == "boom (1) [1]", "an upstream output"
        assert failing.inputs["attempt"][0].load() == 7, "a parameter"
        assert "ticket" not in failing.inputs, "a value under a redacted name is never persisted"
        assert failing.run_metadata["inputs"]["attempt"]["preview"] == "7"
        # The passing steps stay at metadata: no artifacts, no previews.
        assert run.steps["annotate"].outputs == {}
        assert "preview" not in run.steps["annotate"].run_metadata["inputs"]["text"]
        assert TICKET not in store_text()


class TestDeclaredRedactNamesReachSpansAndLogs:
    """`redact: ["ticket"]` on the pipeline covers what step code logs and traces."""

    def test_step_code_logging_and_tracing_a_ticket_is_redacted(self) -> None:
        served_once = invoke({"parameters": {"ticket": TICKET}})
        assert served_once.status == 200
        assert TICKET not in all_attribute_text(served_once.spans)
        assert attributes(served_once.spans, "step lookup")["app.ticket"] == REDACTED
        assert TICKET not in served_once.logs
        assert '"event": "ticket_lookup"' in served_once.logs
        assert f'"ticket": "{REDACTED}"' in served_once.logs


class TestOneTypeDescription:
    """Spans and the store describe a value's type the same way."""

    @pytest.mark.parametrize("mode", ["full", "metadata"])
    def test_span_and_store_say_dict(self, mode: str) -> None:
        served_once = invoke({"capture_override": {"mode": mode}})
        run = run_of(served_once.response["invocation_id"])
        stored = run.steps["lookup"].run_metadata["outputs"]["output"]["type"]
        span = attributes(served_once.spans, "step lookup")
        traced = (
            span["zenml.step.output.output.type"]
            if mode == "full"
            else span["zenml.step.output.types"][0]
        )
        assert stored == traced == "dict"

    def test_a_failure_is_typed_alike_in_span_and_store(self) -> None:
        served_once = invoke({"parameters": {"text": "boom"}})
        run = run_of(served_once.response["invocation_id"])
        info = run.steps["lookup"].exception_info
        assert info is not None
        (span,) = [s for s in served_once.spans if s.name == "step lookup"]
        (event,) = [e for e in span.events if e.name == "exception"]
        assert info.source == (event.attributes or {})["exception.type"] == "ValueError"
