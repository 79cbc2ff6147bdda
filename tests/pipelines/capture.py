"""Pipelines whose capture declarations and payloads pin down what lands in the ZenML store.

`CANARY` is a secret planted in a parameter (under a sensitive name) and in an output (under a
harmless name, but secret-shaped): tests look for it everywhere the store keeps data.
"""

from __future__ import annotations

from typing import Annotated

from zenml import pipeline, step

from zenml_serving.capture import Capture

CANARY = "sk-canary0123456789abcdefghijKLMN"


@step
def clean(text: str, api_key: str) -> str:
    """Uses the secret, returns only the text."""
    assert api_key
    return text.strip().lower()


@step
def answer(text: str, note: Annotated[str, Capture("none")] = "private note") -> dict[str, str]:
    """Returns the text and, under a harmless name, the canary."""
    return {"answer": text, "echo": CANARY, "note_length": str(len(note))}


@step
def explode(text: str) -> str:
    """Fails when told to, with a message that carries the canary."""
    if "boom" in text:
        raise ValueError(f"cannot handle {text!r} with key {CANARY}")
    return text


@pipeline
def capture_pipeline(text: str = "Hello", api_key: str = CANARY) -> dict[str, str]:
    """clean -> explode -> answer, no capture declarations (the service default decides)."""
    return answer(text=explode(clean(text=text, api_key=api_key)))


@step(extra={"serving_capture": {"mode": "full"}})
def answer_full(text: str) -> dict[str, str]:
    """Declares `full` for itself: beats a request's override."""
    return {"answer": text}


@pipeline(extra={"serving_capture": {"mode": "metadata"}})
def layered_pipeline(text: str = "Hello", api_key: str = CANARY) -> dict[str, str]:
    """Pipeline says metadata; `answer_full` says full; a request may override the rest."""
    return answer_full(text=clean(text=text, api_key=api_key))
