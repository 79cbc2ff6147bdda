"""Pipelines whose outputs or steps are awkward for an HTTP service."""

from __future__ import annotations

from zenml import pipeline, step


class Opaque:
    """Not JSON-representable."""

    def __init__(self, value: str) -> None:
        self.value = value


@step
def make_opaque(text: str) -> Opaque:
    """Returns an object JSON cannot represent."""
    return Opaque(text)


@pipeline
def opaque_output_pipeline(text: str = "x") -> Opaque:
    """The pipeline output cannot be returned as JSON."""
    return make_opaque(text=text)


@step
def append_item(items: list[str], item: str) -> list[str]:
    """Mutates its input: a shared literal would leak between invocations."""
    items.append(item)
    return items


@pipeline
def mutating_pipeline(item: str = "a") -> list[str]:
    """The literal list must be fresh for every invocation."""
    return append_item(items=["seed"], item=item)
