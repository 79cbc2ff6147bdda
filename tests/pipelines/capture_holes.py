"""The three capture cases of issue 16, as a pipeline author writes them.

- `annotate.note` is `Annotated[str, Capture("none")]`, fed by the pipeline parameter `note`;
- `remember` declares its input `memo` `none` in its own `extra`;
- the pipeline declares `redact: ["ticket"]`, and `lookup` logs and traces its `ticket`
  (step code does: a structlog event and an attribute on the current span);
- `lookup` fails when `text` contains `boom`: under `errors_only` its inputs are persisted.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from opentelemetry import trace
from zenml import pipeline, step

from zenml_serving.capture import Capture

_log = structlog.stdlib.get_logger("capture_holes")


@step
def annotate(text: str, note: Annotated[str, Capture("none")]) -> str:
    """Uses a note that must never be recorded."""
    return f"{text.strip()} ({len(note)})"


@step(extra={"serving_capture": {"inputs": {"memo": "none"}}})
def remember(text: str, memo: str) -> str:
    """Uses a memo that must never be recorded (the step's own declaration)."""
    return f"{text} [{len(memo)}]"


@step
def lookup(text: str, ticket: str, attempt: int) -> dict[str, object]:
    """Logs and traces the ticket as step code does; fails on `boom`."""
    _log.info("ticket_lookup", ticket=ticket, attempt=attempt)
    trace.get_current_span().set_attribute("app.ticket", ticket)
    if "boom" in text:
        raise ValueError("lookup failed")
    return {"text": text, "attempt": attempt}


@pipeline(extra={"serving_capture": {"mode": "full", "redact": ["ticket"]}})
def holes(
    text: str = "hello", note: str = "n", memo: str = "m", ticket: str = "t", attempt: int = 1
) -> dict[str, object]:
    """annotate(text, note) -> remember(memo) -> lookup(ticket, attempt)."""
    noted = annotate(text=text, note=note)
    remembered = remember(text=noted, memo=memo)
    return lookup(text=remembered, ticket=ticket, attempt=attempt)
