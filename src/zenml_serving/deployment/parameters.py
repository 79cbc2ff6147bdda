"""The request-parameter model of a pipeline, built once from its function signature.

A parameter without a default in the pipeline function is required in every request (the value
given when the snapshot was made is only shown as an example); one with a default takes the
snapshot's value when the request leaves it out, as ZenML does for a run. Unknown parameters
are rejected, so a typo never silently falls back to a default.

Values are not coerced between JSON types: `bool`, `int`, `float` and `str` (also inside lists,
dicts, tuples and unions) take only their own JSON type, so `"1"` is not an int, `0` not a
bool and `"0.5"` not a float (an int is still a float). Enums, pydantic models and other types
keep pydantic's own rules (an enum by value, a model as an object under its own config).

`relaxed_parameters_model` gives the same model with pydantic's lax conversions, as ZenML's
own deployment server validates (its CLI sends every `--name=value` as a string).
"""

from __future__ import annotations

import copy
import inspect
import re
import types
import typing
from typing import TYPE_CHECKING, Annotated, Any, Union

import pydantic
import pydantic_core

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "build_parameters_model",
    "exact_json_type",
    "relaxed_parameters_model",
    "strict_json_types",
]


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
        annotation = strict_json_types(hints.get(name, Any))
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


# The JSON type each leaf takes, checked *before* pydantic's lax conversion. Not
# `pydantic.Strict()`: Litestar validates bodies with `model_validate(strict=False)`, which
# turns field strictness off.
_JSON_TYPES: dict[type, tuple[tuple[type, ...], str, str]] = {
    bool: ((bool,), "bool_type", "Input should be a valid boolean"),
    int: ((int,), "int_type", "Input should be a valid integer"),
    float: ((int, float), "float_type", "Input should be a valid number"),
    str: ((str,), "string_type", "Input should be a valid string"),
}


class _ExactJsonType(pydantic.BeforeValidator):
    """The validator `exact_json_type` makes (its own class, so that it can be taken out)."""


def exact_json_type(kind: type) -> pydantic.BeforeValidator:
    """A validator that lets through only values of `kind`'s own JSON type (bool is not int)."""
    allowed, code, message = _JSON_TYPES[kind]

    def check(value: Any) -> Any:
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, allowed):
            raise pydantic_core.PydanticCustomError(code, message)
        return value

    return _ExactJsonType(check)


def relaxed_parameters_model(strict: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """`strict` (from `build_parameters_model`) with pydantic's lax conversions instead of
    exact JSON types (`"5"` is an int, `"true"` a bool), as ZenML's server validates; unknown
    and missing parameters stay errors."""
    fields: dict[str, Any] = {}
    for name, info in strict.model_fields.items():
        relaxed = copy.copy(info)
        relaxed.metadata = [m for m in info.metadata if not isinstance(m, _ExactJsonType)]
        fields[name] = (_lax_json_types(info.annotation), relaxed)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        strict.__name__, __config__=strict.model_config, **fields
    )
    return model


def _lax_json_types(annotation: Any) -> Any:
    """`annotation` without the validators `strict_json_types` added, at any depth."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        inner = _lax_json_types(args[0])
        kept = tuple(m for m in annotation.__metadata__ if not isinstance(m, _ExactJsonType))
        return Annotated.__class_getitem__((inner, *kept)) if kept else inner
    lax = tuple(a if a is Ellipsis else _lax_json_types(a) for a in args)
    try:
        if origin in (Union, types.UnionType):
            return Union.__getitem__(lax)
        if origin in (list, dict, tuple, set, frozenset) and args:
            return origin[lax]
    except TypeError:
        pass
    return annotation


def strict_json_types(annotation: Any) -> Any:
    """`annotation` with every `bool`/`int`/`float`/`str` in it taking only its own JSON type
    (no coercion), through `Annotated`, unions and builtin generics; anything else unchanged."""
    if annotation in _JSON_TYPES:
        return Annotated[annotation, exact_json_type(annotation)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    strict = tuple(a if a is Ellipsis else strict_json_types(a) for a in args)
    try:
        if origin is Annotated:
            return Annotated.__class_getitem__((strict[0], *annotation.__metadata__))
        if origin in (Union, types.UnionType):
            return Union.__getitem__(strict)
        if origin in (list, dict, tuple, set, frozenset) and args:
            return origin[strict]
    except TypeError:
        pass
    return annotation


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
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
    try:
        return [pydantic_core.to_jsonable_python(v) for v in values]
    except pydantic_core.PydanticSerializationError:
        return None
