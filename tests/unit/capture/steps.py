"""Step functions and ZenML steps whose annotations carry capture hints (used by the tests).

Defined at module level with postponed annotations, as real pipeline code is, so that hints
must be resolved from strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

from zenml import step

from zenml_serving.capture import Capture, CapturedOutput

if TYPE_CHECKING:
    from decimal import Decimal  # not importable at runtime from this module's globals


def plain(city: str, token: Annotated[str, Capture("none")], note: Annotated[str, "x"]) -> str:
    """A plain function: one hinted input, an unhinted single output."""
    return city + token + note


@step
def answer(
    question: str, api_token: Annotated[str, Capture("none")]
) -> Annotated[str, CapturedOutput(name="answer", capture="metadata")]:
    """A ZenML step with a hinted input and a hinted, named output."""
    return question + api_token


@step
def describe(
    values: list[float],
) -> tuple[
    Annotated[float, CapturedOutput(name="mean", capture="full")],
    Annotated[float, "spread"],
    Annotated[int, CapturedOutput(name="count", capture="none")],
]:
    """A ZenML step with three outputs, two of them hinted."""
    return sum(values) / len(values), max(values) - min(values), len(values)


@step
def legacy(text: str) -> Annotated[str, "shout", CapturedOutput(capture="errors_only")]:
    """The legacy `Annotated[T, name, ArtifactConfig]` form ZenML still accepts."""
    return text.upper()


def unnamed_tuple(x: int) -> tuple[int, Annotated[str, CapturedOutput(capture="none")]]:
    """Unnamed tuple elements: ZenML calls them output_0, output_1."""
    return x, str(x)


def twice_hinted(secret: Annotated[str, Capture("none"), Capture("full")]) -> None:
    """Two different hints on one input: ambiguous."""


def optional_hints(
    token: Annotated[str, Capture("none")] | None = None,
    count: Optional[Annotated[int, Capture("metadata")]] = None,  # noqa: UP045 - the old spelling
    both: Annotated[Annotated[str, Capture("none")] | None, Capture("none")] = None,
) -> None:
    """Hints inside `X | None` and `Optional[X]` still count."""


def unresolvable_plain(amount: Decimal, token: Annotated[str, Capture("none")]) -> None:
    """`Decimal` cannot be resolved at runtime; the hint on `token` still can."""


def unresolvable_hint(amount: Annotated[Decimal, Capture("none")]) -> None:
    """The hinted annotation itself cannot be resolved: the hint would be lost."""
