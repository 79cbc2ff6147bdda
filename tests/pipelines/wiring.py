"""Pipelines whose bodies wire parameters in every way the snapshot alone gets wrong."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel
from zenml import pipeline, step


@step
def echo(text: str) -> str:
    """Return the argument unchanged."""
    return text


@step
def tag(text: str, label: str) -> str:
    """Prefix the text with a label."""
    return f"{label}:{text}"


@step
def split(text: str) -> tuple[Annotated[str, "head"], Annotated[str, "tail"]]:
    """Two outputs that feed different steps."""
    head, _, tail = text.partition(" ")
    return head, tail


@step
def join(first: str, second: str, third: str, separator: str) -> str:
    """Fan-in of several inputs."""
    return separator.join([first, second, third])


@pipeline
def renamed_pipeline(raw: str = "default") -> str:
    """Parameter `raw` feeds argument `text`: ZenML's own server answers the default here."""
    return echo(text=raw)


@pipeline
def shared_parameter_pipeline(word: str = "w", count_label: str = "n") -> str:
    """One parameter feeds several steps, the same step runs twice, a literal is fixed."""
    a = echo(text=word)
    b = tag(text=word, label=count_label)
    c = tag(text=a, label="fixed", id="tag_literal")
    return join(first=a, second=b, third=c, separator="|")


@pipeline
def multi_output_wiring_pipeline(sentence: str = "hello big world", sep: str = "/") -> str:
    """A step's two outputs feed different steps."""
    head, tail = split(text=sentence)
    return join(
        first=echo(text=head), second=echo(text=tail, id="echo_tail"), third=head, separator=sep
    )


class Settings(BaseModel):
    """A structured parameter."""

    prefix: str = "p"
    repeat: int = 1


@step
def render(text: str, settings: Settings) -> str:
    """Uses a pydantic parameter."""
    return settings.prefix + text * settings.repeat


@step
def show_flag(flag: bool) -> str:
    """A bool parameter (only two values: tracing must still tell it apart)."""
    return "on" if flag else "off"


@step
def scale(value: float, factor: float) -> float:
    """Numbers, with an int parameter feeding a float argument."""
    return value * factor


DEFAULT_SETTINGS = Settings()


@pipeline
def typed_pipeline(
    text: str = "x", settings: Settings = DEFAULT_SETTINGS, factor: int = 2, flag: bool = False
) -> tuple[Annotated[str, "rendered"], Annotated[float, "scaled"], Annotated[str, "flag"]]:
    """A pydantic parameter, an int feeding a float argument, and a bool."""
    rendered = render(text=text, settings=settings)
    scaled = scale(value=1.5, factor=factor)
    flagged = show_flag(flag=flag)
    return rendered, scaled, flagged


@pipeline
def computed_pipeline(raw: str = "abc") -> str:
    """Computes a step argument from a parameter in the body: cannot be served faithfully."""
    return echo(text=raw.upper())


@pipeline
def branching_pipeline(use_tag: bool = False) -> str:
    """The graph depends on a parameter: cannot be served faithfully."""
    if use_tag:
        return tag(text="x", label="y")
    return echo(text="x")


@pipeline
def required_pipeline(question: str, temperature: float = 0.5) -> tuple[str, float]:
    """`question` has no default: every request must give it."""
    return echo(text=question), scale(value=2.0, factor=temperature)
