"""A pipeline whose parameters exercise every kind of field the playground's form generates:
a required string, an enum, integer, number, array, nested model, optional and boolean.

`text` has no default, so snapshotting it needs a value (`snapshot_of(..., text="Hello")`);
the service then requires it in every request and shows the value as an example.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel
from zenml import pipeline, step


class Options(BaseModel):
    """A nested parameter, shown as a JSON field."""

    prefix: str = ">"
    width: int = 3


@step
def build(
    text: str,
    case: Literal["upper", "lower", "keep"],
    repeat: int,
    scale: float,
    tags: list[str],
    options: Options,
    note: str | None,
    loud: bool,
) -> Annotated[dict[str, object], "rendered"]:
    """Render the parameters into one dict, with a long value to collapse."""
    shaped = {"upper": text.upper(), "lower": text.lower(), "keep": text}[case]
    body = options.prefix + shaped * repeat
    return {
        "text": body + ("!" if loud else ""),
        "scaled": round(repeat * scale, 6),
        "tags": tags,
        "note": note,
        "long": [f"{options.prefix}{i:0{options.width}d}" for i in range(60)],
    }


@step
def summarise(rendered: dict[str, object]) -> Annotated[str, "summary"]:
    """A short second output."""
    return f"{len(str(rendered['text']))} chars"


@pipeline
def form_pipeline(
    text: str,
    case: Literal["upper", "lower", "keep"] = "keep",
    repeat: int = 1,
    scale: float = 1.5,
    tags: list[str] = ["a", "b"],  # noqa: B006 - ZenML stores the default
    options: Options = Options(),  # noqa: B008 - ZenML stores the default
    note: str | None = None,
    loud: bool = False,
) -> tuple[Annotated[dict[str, object], "rendered"], Annotated[str, "summary"]]:
    """One step per parameter kind: string, enum, integer, number, array, object, optional, bool."""
    rendered = build(
        text=text,
        case=case,
        repeat=repeat,
        scale=scale,
        tags=tags,
        options=options,
        note=note,
        loud=loud,
    )
    return rendered, summarise(rendered=rendered)
