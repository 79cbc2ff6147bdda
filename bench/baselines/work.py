"""The trivial work every baseline does: the example pipeline's logic, inline, in microseconds.

The answer has the same shape and about the same size as zenml-serving's `POST /invoke`
response, so the baselines move the same bytes through the same JSON encoder.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

__all__ = ["SNAPSHOT_ID", "answer"]

SNAPSHOT_ID = "00000000-0000-0000-0000-000000000000"
_POSITIVE = frozenset({"fast", "simple", "good", "great", "love", "reliable", "happy"})
_NEGATIVE = frozenset({"slow", "bad", "broken", "hate", "flaky", "sad"})
_DEFAULT = "ZenML serving is fast and simple"


def answer(parameters: dict[str, Any]) -> dict[str, Any]:
    """normalise -> score -> format on `parameters["message"]`, as one dict ready for JSON."""
    started = time.perf_counter()
    text = " ".join(str(parameters.get("message", _DEFAULT)).split()).lower()
    words = [w.strip(".,!?;:") for w in text.split()]
    positive = sum(w in _POSITIVE for w in words)
    negative = sum(w in _NEGATIVE for w in words)
    score = round((positive - negative) / len(words), 4) if words else 0.0
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    if parameters.get("loud"):
        text = text.upper()
    duration_ms = (time.perf_counter() - started) * 1000
    return {
        "invocation_id": str(uuid.uuid4()),
        "status": "completed",
        "pipeline": "text_pipeline",
        "snapshot_id": SNAPSHOT_ID,
        "outputs": {"output": {"text": text, "score": score, "label": label}},
        "duration_ms": duration_ms,
        "steps": [
            {"name": n, "status": "completed", "duration_ms": duration_ms / 3, "attempts": 1}
            for n in ("normalise", "score", "format_result")
        ],
        "trace_id": None,
    }
