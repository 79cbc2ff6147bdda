"""Read per-value capture hints from a step function's own annotations.

Inputs carry `Annotated[T, Capture(mode)]`; outputs carry
`Annotated[T, CapturedOutput(name=..., capture=mode)]` (also inside a tuple of outputs). The
snapshot drops both, so the hints are read from the imported function, with `Annotated` extras
kept (`typing.get_type_hints(fn, include_extras=True)`).

A hint that cannot be read is a startup error rather than silently no hint: a missing
`Capture("none")` would record a value the author meant to keep out.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from types import MappingProxyType, UnionType
from typing import TYPE_CHECKING, Annotated, Any

from zenml_serving.capture.errors import CaptureConfigError
from zenml_serving.capture.markers import Capture

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from zenml_serving.capture.policy import CaptureMode

__all__ = ["CaptureHints", "read_capture_hints"]

_SINGLE_OUTPUT = "output"  # ZenML's name for an unnamed single output
_UNIONS: tuple[Any, ...] = (typing.Union, UnionType)


@dataclass(frozen=True, slots=True)
class CaptureHints:
    """Per-value capture hints found in a step function's annotations."""

    inputs: Mapping[str, CaptureMode] = field(default_factory=lambda: MappingProxyType({}))
    """Input name -> mode, from `Annotated[T, Capture(mode)]`."""
    outputs: Mapping[str, CaptureMode] = field(default_factory=lambda: MappingProxyType({}))
    """Output name -> mode, from `Annotated[T, CapturedOutput(..., capture=mode)]`."""


def read_capture_hints(
    function: Callable[..., Any],
    *,
    where: str,
    inputs: Collection[str] | None = None,
    outputs: Sequence[str] | None = None,
) -> CaptureHints:
    """The capture hints of `function`'s inputs and outputs.

    `outputs` are the step's output names in order (ZenML's; `ServedStep.outputs`): a tuple
    return annotation maps onto them position by position. Without them, names are derived as
    ZenML does (`output` for one unnamed output, `output_<i>` inside a tuple).
    `where` names the step in errors (`step 'score'`).
    """
    annotations = _annotations(function, where=where)
    input_hints: dict[str, CaptureMode] = {}
    for name, annotation in annotations.items():
        if name == "return" or (inputs is not None and name not in inputs):
            continue
        mode = _input_hint(annotation, where=where, name=name)
        if mode is not None:
            input_hints[name] = mode

    output_hints: dict[str, CaptureMode] = {}
    if "return" in annotations:
        for name, annotation in _output_annotations(annotations["return"], outputs, where=where):
            mode = _output_hint(annotation, where=where, name=name)
            if mode is not None:
                output_hints[name] = mode
    return CaptureHints(MappingProxyType(input_hints), MappingProxyType(output_hints))


class _Holder:
    """Something `typing.get_type_hints` can read one annotation from."""

    def __init__(self, annotations: dict[str, Any]) -> None:
        self.__annotations__ = annotations


def _annotations(function: Callable[..., Any], *, where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:  # noqa: S110 - fall back to resolving one annotation at a time below
        pass
    # One unresolvable annotation (a name imported under TYPE_CHECKING, say) must not hide the
    # hints of the others: resolve them one by one and fail only where a hint may be lost.
    target = typing.cast("Any", function)
    while hasattr(target, "__wrapped__"):
        target = target.__wrapped__
    namespace = getattr(target, "__globals__", {})
    try:
        raw: dict[str, Any] = dict(getattr(target, "__annotations__", {}) or {})
    except Exception as exc:
        raise CaptureConfigError(
            where, "annotations", f"cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    resolved: dict[str, Any] = {}
    for name, annotation in raw.items():
        try:
            resolved.update(
                typing.get_type_hints(
                    _Holder({name: annotation}), globalns=namespace, include_extras=True
                )
            )
        except Exception as exc:
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if "Capture" in text:
                label = "return annotation" if name == "return" else f"annotation of {name!r}"
                raise CaptureConfigError(
                    where,
                    "hint",
                    f"in the {label} cannot be resolved ({type(exc).__name__}: {exc}), so its "
                    "capture hint would be lost",
                    allowed="annotations importable at runtime in the step's module",
                ) from exc
    return resolved


def _metadata(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is Annotated:
        return tuple(annotation.__metadata__)
    return ()


def _input_markers(annotation: Any) -> list[Capture]:
    """`Capture` markers on the annotation, also inside `Optional[...]` / `X | None` members."""
    found = [m for m in _metadata(annotation) if isinstance(m, Capture)]
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in _UNIONS:
        for member in typing.get_args(annotation):
            found.extend(_input_markers(member))
    return found


def _input_hint(annotation: Any, *, where: str, name: str) -> CaptureMode | None:
    found = list(dict.fromkeys(m.mode for m in _input_markers(annotation)))
    if len(found) > 1:
        raise CaptureConfigError(
            where,
            "hint",
            f"for input {name!r} is given {len(found)} different modes ({annotation!r})",
            allowed="one Capture(...) mode per input",
        )
    return found[0] if found else None


def _output_hint(annotation: Any, *, where: str, name: str) -> CaptureMode | None:
    candidates = [m for m in _metadata(annotation) if not isinstance(m, str)]
    if not candidates:
        return None  # no need to import ZenML for a plain or name-only annotation
    from zenml_serving.capture.outputs import CapturedOutput

    found = [m.capture for m in candidates if isinstance(m, CapturedOutput)]
    if len(found) > 1:  # ZenML itself refuses this; keep the message ours if it ever does not
        raise CaptureConfigError(
            where,
            "hint",
            f"for output {name!r} is given {len(found)} times",
            allowed="one CapturedOutput(...) per output",
        )
    return found[0] if found else None


def _has_output_hint(annotation: Any) -> bool:
    return any(not isinstance(m, str) and hasattr(m, "capture") for m in _metadata(annotation))


def _declared_name(annotation: Any) -> str | None:
    for item in _metadata(annotation):
        if isinstance(item, str):
            return item
        name = getattr(item, "name", None)
        if isinstance(name, str) and name:
            return name
    return None


def _output_annotations(
    annotation: Any, outputs: Sequence[str] | None, *, where: str
) -> list[tuple[str, Any]]:
    """Pair each output name with its annotation, as ZenML splits a return annotation."""
    if annotation is None or annotation is type(None):
        return []
    elements = typing.get_args(annotation) if typing.get_origin(annotation) is tuple else ()
    is_tuple = bool(elements) and elements[-1] is not Ellipsis

    if outputs is None:
        if is_tuple and len(elements) > 1:
            return [
                (_declared_name(element) or f"output_{i}", element)
                for i, element in enumerate(elements)
            ]
        return [(_declared_name(annotation) or _SINGLE_OUTPUT, annotation)]

    pairs: list[tuple[str, Any]] | None = None
    if len(outputs) == 1 and not (
        is_tuple and len(elements) == 1 and _has_output_hint(elements[0])
    ):
        pairs = [(outputs[0], annotation)]
    elif is_tuple and len(elements) == len(outputs):
        pairs = list(zip(outputs, elements, strict=True))
    if pairs is not None:
        for i, (name, element) in enumerate(pairs):
            declared = _declared_name(element)
            if declared is not None and declared != name and _has_output_hint(element):
                raise CaptureConfigError(
                    where,
                    "hint",
                    f"on return element {i} names output {declared!r}, but the step's output "
                    f"{i} is {name!r}",
                    allowed=", ".join(outputs),
                )
        return pairs
    if any(_has_output_hint(e) for e in (*elements, annotation)):
        raise CaptureConfigError(
            where,
            "hint",
            f"in the return annotation {annotation!r} cannot be matched to the step's outputs "
            f"({', '.join(outputs) or 'none'})",
            allowed="one CapturedOutput per element of a tuple with one element per output",
        )
    return []
