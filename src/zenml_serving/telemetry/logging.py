"""structlog configuration: JSON lines in production, readable console output on a terminal.

Standard-library loggers (ZenML, granian, Litestar) are routed through the same processors,
so every line the process writes has the same shape: `timestamp`, `level`, `logger`, `event`,
and `trace_id`/`span_id` of the current OpenTelemetry span when there is one. The last step
before rendering passes the whole event (exception tracebacks included) through the redactor
that every telemetry sink shares.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import trace

from zenml_serving.telemetry.capture import LOG_EXCEPTION_MESSAGES
from zenml_serving.telemetry.redaction import default_redact

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from zenml_serving.telemetry.redaction import Redactor

__all__ = [
    "WITHHELD",
    "add_trace_context",
    "configure_logging",
    "redacting_processor",
    "withhold_exception_messages",
]

WITHHELD = "[withheld by capture policy]"

# Tracebacks as structured data, WITHOUT frame locals: locals hold request payloads and
# secrets, which only the capture policy may let into logs.
_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def add_trace_context(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Add `trace_id` and `span_id` of the current span (if any and not already set)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def withhold_exception_messages(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop exception messages (they often quote inputs) where capture allows no payload."""
    if LOG_EXCEPTION_MESSAGES.get():
        return event_dict
    pending = list(event_dict.get("exception") or ())
    while pending:
        entry = pending.pop()
        if isinstance(entry, dict):
            if "exc_value" in entry:
                entry["exc_value"] = WITHHELD
            pending.extend(entry.get("exceptions") or ())
    return event_dict


def redacting_processor(redact: Redactor) -> Any:
    """A structlog processor that hands the renderer a redacted copy of the event."""

    def processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
        return redact(dict(event_dict))

    return processor


def configure_logging(
    level: str = "INFO", *, json: bool | None = None, redact: Redactor = default_redact
) -> None:
    """Configure structlog and the standard-library root logger (idempotent).

    Call it again after importing ZenML, which installs its own root handlers. `json=None`
    renders JSON unless stderr is a terminal.
    """
    render_json = not sys.stderr.isatty() if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if render_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # skip the work for disabled levels
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _DICT_TRACEBACKS if render_json else _identity,
            withhold_exception_messages,
            redacting_processor(redact),
            renderer,
        ],
    )
    handler = logging.StreamHandler(_stderr())
    handler.setFormatter(formatter)
    handler.set_name("zenml-serving")
    root = logging.getLogger()
    # Replace every root handler, ZenML's console handlers included (importing ZenML installs
    # them): one process, one log format.
    for old in root.handlers:
        old.close()
    root.handlers = [handler]
    root.setLevel(level)


_STDERR: Any = None


def _stderr() -> Any:
    """Our own line-buffered stream on file descriptor 2.

    Importing ZenML replaces `sys.stderr.write` with a wrapper that routes every write through
    its step-log machinery; log lines written by the service itself need none of that (it cost
    several percent of a request), so they bypass it.
    """
    global _STDERR  # noqa: PLW0603 - one stream per process, opened on first use
    if _STDERR is None:
        try:
            fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
            _STDERR = open(  # noqa: SIM115 - lives as long as the process
                fd, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False
            )
        except (OSError, ValueError):  # no real stderr (e.g. captured by a test runner)
            _STDERR = sys.stderr
    return _STDERR


def _identity(_: Any, __: str, event_dict: Any) -> Any:
    return event_dict
