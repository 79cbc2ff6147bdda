"""What a request body must be before it is parsed: JSON, small enough, shallow enough.

`vet_json_body` is the `before_request` hook of `POST /invoke`: it runs before Litestar reads
the body into the request model (a guard would too, but Litestar copies the route handler for
every guard call, measurably slower on this path). Wrong content type -> 415, body over
ZENML_SERVING_MAX_REQUEST_SIZE -> 413 (Litestar's `request_max_body_size`), malformed JSON ->
400 naming the byte where parsing stopped, `parameters` nested deeper than
ZENML_SERVING_MAX_PARAMETER_DEPTH or holding more than ZENML_SERVING_MAX_PARAMETER_ITEMS values
-> 422 naming the field. The WebSocket `invoke` message goes through `check_parameters` too.
The parsed body is cached by Litestar, so the request model reads it without decoding it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.exceptions import SerializationException

from zenml_serving.api.errors import problem

if TYPE_CHECKING:
    from litestar import Request

    from zenml_serving.config import ServingConfig

__all__ = ["ParameterLimits", "check_parameters", "vet_json_body"]

STATE_KEY = "zenml_serving_parameter_limits"
_BYTE_POSITION = re.compile(r"\(byte (\d+)\)")


@dataclass(frozen=True)
class ParameterLimits:
    """How deep and how large `parameters` may be."""

    max_depth: int
    max_items: int

    @classmethod
    def from_config(cls, config: ServingConfig) -> ParameterLimits:
        return cls(max_depth=config.max_parameter_depth, max_items=config.max_parameter_items)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def vet_json_body(request: Request[Any, Any, Any]) -> None:
    """415/413/400/422 for a body that is not JSON, too large, malformed or too deep."""
    if not _is_json(request.headers.get("content-type", "")):
        raise problem(
            415,
            "media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        )
    try:
        body = await request.json()  # 413 from Litestar past request_max_body_size
    except SerializationException as exc:
        message = str(exc.detail or exc)
        match = _BYTE_POSITION.search(message)
        raise problem(
            400,
            "malformed-json",
            "Malformed JSON",
            f"the body is not valid JSON: {message}",
            position=int(match.group(1)) if match else None,
        ) from None
    if isinstance(body, dict) and "parameters" in body:
        check_parameters(body["parameters"], request.app.state[STATE_KEY])


def check_parameters(parameters: object, limits: ParameterLimits) -> None:
    """Raise a 422 problem naming the field if `parameters` is too deep or has too many values."""
    problem_field = _first_violation(parameters, limits)
    if problem_field is None:
        return
    field, message = problem_field
    raise problem(
        422,
        "validation",
        "Invalid request",
        f"invalid field(s): {field}",
        errors=[{"field": field, "message": message}],
    )


def _first_violation(root: object, limits: ParameterLimits) -> tuple[str, str] | None:
    """Walk `root` iteratively (no recursion: a hostile body must not exhaust the stack)."""
    stack: list[tuple[object, str, int]] = [(root, "parameters", 0)]
    seen = 0
    while stack:
        value, path, depth = stack.pop()
        seen += 1
        if seen > limits.max_items:
            return "parameters", f"more than {limits.max_items} values in all"
        if isinstance(value, (dict, list)) and seen + len(stack) + len(value) > limits.max_items:
            return "parameters", f"more than {limits.max_items} values in all"
        if isinstance(value, dict):
            children: list[tuple[object, str, int]] = [
                (child, f"{path}.{key}", depth + 1) for key, child in value.items()
            ]
        elif isinstance(value, list):
            children = [(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(value)]
        else:
            continue
        if children and depth + 1 > limits.max_depth:
            return path, f"nested deeper than {limits.max_depth} levels"
        stack.extend(reversed(children))
    return None
