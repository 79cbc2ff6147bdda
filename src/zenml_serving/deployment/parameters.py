"""The request-parameter model of a pipeline, built once from its function signature.

A parameter without a default in the pipeline function is required in every request (the value
given when the snapshot was made is only shown as an example); one with a default takes the
snapshot's value when the request leaves it out, as ZenML does for a run. Unknown parameters
are rejected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["build_parameters_model"]


def build_parameters_model(
    pipeline_name: str,
    entrypoint: Callable[..., Any],
    snapshot_values: Mapping[str, Any],
) -> type[pydantic.BaseModel]:
    """A pydantic model with one field per pipeline parameter, extra fields forbidden."""
    signature = inspect.signature(entrypoint)
    hints = _type_hints(entrypoint)
    fields: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ValueError(f"pipeline parameter '*{name}' cannot be served: name each parameter")
        annotation = hints.get(name, Any)
        if parameter.default is inspect.Parameter.empty:
            examples = [snapshot_values[name]] if name in snapshot_values else None
            fields[name] = (annotation, pydantic.Field(..., examples=_jsonable_list(examples)))
        else:
            default = snapshot_values.get(name, parameter.default)
            fields[name] = (annotation, pydantic.Field(default=default, validate_default=True))
    title = "".join(part.capitalize() for part in re.split(r"[^0-9a-zA-Z]+", pipeline_name))
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{title or 'Pipeline'}Parameters",
        __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=False),
        **fields,
    )
    return model


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        return {
            name: p.annotation
            for name, p in inspect.signature(function).parameters.items()
            if p.annotation is not inspect.Parameter.empty
        }


def _jsonable_list(values: list[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    import pydantic_core

    try:
        return [pydantic_core.to_jsonable_python(v) for v in values]
    except pydantic_core.PydanticSerializationError:
        return None
