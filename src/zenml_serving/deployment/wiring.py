"""Recover which pipeline parameter feeds which step argument, by tracing the pipeline body.

A ZenML snapshot stores the *values* each step received when it was compiled, not where they
came from: with `echo(text=raw)` the snapshot only knows `echo.text == "default"`. Matching names
is wrong whenever a parameter and an argument are named differently, or a parameter feeds
several steps. So at startup we call the pipeline function (ZenML's `prepare`, which runs the
body under its compilation context without touching the store) once with the snapshot's values,
then once more per parameter with only that parameter changed. A step argument whose value
follows exactly one parameter, and equals it, is wired to that parameter; one that never changes
is a literal; anything else (computed from a parameter, or a body that branches on one) cannot be
served faithfully and is refused with a message that says why.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core

if TYPE_CHECKING:
    from zenml.pipelines.pipeline_definition import Pipeline

__all__ = ["UnservableWiringError", "Wiring", "trace_wiring"]

_PROBE_SUFFIX = "\u2063zs-probe"


class UnservableWiringError(ValueError):
    """The pipeline body does something a served pipeline cannot reproduce per request."""


@dataclass(frozen=True)
class Wiring:
    """Per step invocation: which arguments come straight from which pipeline parameter."""

    parameter_args: Mapping[str, Mapping[str, str]]
    """invocation id -> {argument name -> pipeline parameter name}."""


@dataclass(frozen=True)
class _Trace:
    call_values: Mapping[str, Mapping[str, Any]]
    """invocation id -> {argument -> JSON form of the value passed in the pipeline body}."""
    structure: Mapping[str, tuple[tuple[str, str, str], ...]]
    """invocation id -> sorted (argument, upstream invocation, output) artifact inputs."""


def trace_wiring(
    pipeline: Pipeline,
    baseline: Mapping[str, Any],
    annotations: Mapping[str, Any],
    compiled_parameters: Mapping[str, Mapping[str, Any]],
) -> Wiring:
    """Trace `pipeline`'s body and return the parameter wiring of every step invocation.

    `baseline` holds the snapshot's value of every pipeline parameter, `annotations` their
    types, `compiled_parameters` the parameter values the snapshot stored per invocation (a run
    configuration may have overridden a body value: then the argument is a literal).
    """
    base = _trace(pipeline, baseline)
    depends: dict[tuple[str, str], set[str]] = {}
    follows: dict[tuple[str, str], set[str]] = {}

    for name, value in baseline.items():
        changed = _perturb(value, annotations.get(name, Any))
        if changed is None:
            # The type admits a single value: whatever it is wired to, the value is the same.
            continue
        probe = _trace(pipeline, {**baseline, name: changed})
        if probe.structure != base.structure:
            raise UnservableWiringError(
                f"the pipeline body builds a different step graph when parameter '{name}' "
                "changes (it branches on the parameter); a served pipeline needs one fixed "
                "graph: move the decision into a step"
            )
        changed_json = _jsonable(changed)
        base_json = _jsonable(value)
        for invocation, args in base.call_values.items():
            for arg, base_value in args.items():
                if probe.call_values[invocation][arg] == base_value:
                    continue
                depends.setdefault((invocation, arg), set()).add(name)
                if base_value == base_json and probe.call_values[invocation][arg] == changed_json:
                    follows.setdefault((invocation, arg), set()).add(name)

    wiring: dict[str, dict[str, str]] = {}
    for (invocation, arg), params in sorted(depends.items()):
        direct = follows.get((invocation, arg), set())
        if len(params) != 1 or direct != params:
            listed = ", ".join(f"'{p}'" for p in sorted(params))
            raise UnservableWiringError(
                f"step '{invocation}' argument '{arg}' is computed from pipeline parameter "
                f"{listed} in the pipeline body; a served pipeline can only pass parameters "
                "straight to step arguments: do the computation inside a step"
            )
        (param,) = params
        compiled = compiled_parameters.get(invocation, {})
        if arg in compiled and _jsonable(compiled[arg]) != base.call_values[invocation][arg]:
            # The snapshot's run configuration overrode the value passed in the body.
            continue
        wiring.setdefault(invocation, {})[arg] = param
    return Wiring(parameter_args=wiring)


def _trace(pipeline: Pipeline, values: Mapping[str, Any]) -> _Trace:
    traced = pipeline.copy()
    try:
        traced.prepare(**values)
    except Exception as exc:
        raise UnservableWiringError(
            f"tracing the pipeline body with parameters {sorted(values)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    call_values: dict[str, dict[str, Any]] = {}
    structure: dict[str, tuple[tuple[str, str, str], ...]] = {}
    for invocation_id, invocation in traced.invocations.items():
        call_values[invocation_id] = {
            arg: _jsonable(value) for arg, value in invocation.parameters.items()
        }
        edges: list[tuple[str, str, str]] = []
        for arg, artifact_or_list in invocation.input_artifacts.items():
            artifacts = (
                artifact_or_list if isinstance(artifact_or_list, list) else [artifact_or_list]
            )
            edges.extend((arg, a.invocation_id, a.output_name) for a in artifacts)
        edges.extend(("<after>", upstream, "") for upstream in invocation.upstream_steps)
        structure[invocation_id] = tuple(sorted(edges))
    return _Trace(call_values=call_values, structure=structure)


def _jsonable(value: Any) -> Any:
    try:
        return pydantic_core.to_jsonable_python(value)
    except pydantic_core.PydanticSerializationError:
        return repr(value)


def _perturb(value: Any, annotation: Any) -> Any | None:
    """A value valid for `annotation` that differs from `value`, or None if none exists."""
    adapter = pydantic.TypeAdapter(annotation)
    original = _jsonable(value)
    for candidate in _candidates(value, annotation):
        try:
            validated = adapter.validate_python(candidate)
        except (pydantic.ValidationError, TypeError, ValueError):
            continue
        if _jsonable(validated) != original:
            return validated
    if _single_valued(annotation):
        return None
    raise UnservableWiringError(
        f"cannot find a second valid value of type {annotation!r} to trace the parameter "
        f"with value {value!r}; give it a plainer type (str, number, bool, list, dict, model)"
    )


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _single_valued(annotation: Any) -> bool:
    annotation = _strip(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return len(typing.get_args(annotation)) <= 1
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return len(annotation) <= 1
    return annotation is type(None)


def _candidates(value: Any, annotation: Any) -> list[Any]:  # noqa: PLR0911, PLR0912
    annotation = _strip(annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return [a for a in args if a != value]
    if origin in (typing.Union, types.UnionType):
        found: list[Any] = []
        for member in args:
            if member is type(None):
                if value is not None:
                    found.append(None)
                continue
            found.extend(_candidates(value, member) if value is not None else _probes(member))
        return found
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [m for m in annotation if m != value]
    if value is None:
        return _probes(annotation)
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1_000_003, value - 1_000_003, value + 1, value - 1]
    if isinstance(value, float):
        return [value + 1000.5, value - 1000.5, value * 2 + 0.5, -value - 0.5, 0.5]
    if isinstance(value, str):
        return [value + _PROBE_SUFFIX, _PROBE_SUFFIX, value[:-1], "a", "0"]
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump()
    if isinstance(value, Mapping):
        return _mapping_candidates(dict(value), annotation)
    if isinstance(value, (list, tuple)):
        item = args[0] if args else Any
        found = []
        if value:
            found += [[*value[1:], value[0]] if len(value) > 1 else None]
            found += [[c, *value[1:]] for c in _candidates(value[0], item)[:2]]
            found.append(list(value[:-1]))
        found += [[*value, p] for p in _probes(item)]
        return [f for f in found if f is not None]
    return []


def _mapping_candidates(value: dict[str, Any], annotation: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for key, field in annotation.model_fields.items():
            current = value.get(key, field.get_default(call_default_factory=True))
            found += [{**value, key: c} for c in _candidates(current, field.annotation)[:2]]
        return found
    args = typing.get_args(annotation)
    item = args[1] if len(args) == 2 else Any
    for key, current in value.items():
        found += [{**value, key: c} for c in _candidates(current, item)[:2]]
    found += [{**value, _PROBE_SUFFIX: p} for p in _probes(item)]
    if value:
        found.append({})
    return found


def _probes(annotation: Any) -> list[Any]:
    """Some plausible values of a type, used where there is no current value to change."""
    annotation = _strip(annotation)
    origin = typing.get_origin(annotation) or annotation
    if annotation is Any:
        return [_PROBE_SUFFIX, 7, {}]
    simple: dict[Any, list[Any]] = {
        str: [_PROBE_SUFFIX],
        int: [7],
        float: [0.5],
        bool: [True, False],
        list: [[]],
        tuple: [()],
        set: [[]],
        dict: [{}],
    }
    if origin in simple:
        return simple[origin]
    if origin in (typing.Union, types.UnionType):
        return [p for member in typing.get_args(annotation) for p in _probes(member)]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [{}]
    return []
