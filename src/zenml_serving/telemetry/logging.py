"""structlog configuration: JSON lines in production, readable console output on a terminal.

Standard-library loggers (ZenML, granian, Litestar) are routed through the same processors,
so every line the process writes has the same shape.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging"]

# Tracebacks as structured data, WITHOUT frame locals: locals hold request payloads and
# secrets, which only the capture policy may let into logs.
_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """Configure structlog and the standard-library root logger (idempotent).

    Call it again after importing ZenML, which installs its own root handlers.
    """
    render_json = not sys.stderr.isatty() if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if render_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
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
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("zenml-serving")
    root = logging.getLogger()
    # Replace every root handler, ZenML's console handlers included (importing ZenML installs
    # them): one process, one log format.
    for old in root.handlers:
        old.close()
    root.handlers = [handler]
    root.setLevel(level)


def _identity(_: Any, __: str, event_dict: Any) -> Any:
    return event_dict
