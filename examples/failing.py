"""A pipeline whose second step fails on a given input."""

from __future__ import annotations

from zenml import pipeline, step


@step
def prepare(text: str) -> str:
    """Pass the text on."""
    return text.strip()


@step
def validate(text: str, forbidden: str = "boom") -> str:
    """Raise ValueError when the text contains the forbidden word."""
    if forbidden in text:
        raise ValueError(f"the text contains the forbidden word {forbidden!r}")
    return text


@step
def finish(text: str) -> str:
    """Only reached when validation passed."""
    return f"ok: {text}"


@pipeline
def failing_pipeline(text: str = "hello") -> str:
    """prepare -> validate (fails on 'boom') -> finish."""
    return finish(validate(prepare(text)))
