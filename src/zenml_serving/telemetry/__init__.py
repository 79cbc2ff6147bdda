"""Telemetry: tracing, metrics and logging (a leaf package, usable from anywhere).

The public surface is small on purpose; `metrics` (the metric objects) is imported as a
module where needed, since prometheus_client must see PROMETHEUS_MULTIPROC_DIR first.
"""

from __future__ import annotations

from zenml_serving.telemetry.capture import CaptureDecider
from zenml_serving.telemetry.redaction import Redactor, default_redact, make_redactor
from zenml_serving.telemetry.tracing import RedactingSpanProcessor, current_trace_attributes

__all__ = [
    "CaptureDecider",
    "RedactingSpanProcessor",
    "Redactor",
    "current_trace_attributes",
    "default_redact",
    "make_redactor",
]
