"""What a request body must be before it is parsed: JSON, small enough, shallow enough.

`vet_json_body` is the `before_request` hook of `POST /invoke`: it runs before Litestar reads
the body into the request model (a guard would too, but Litestar copies the route handler for
every guard call, measurably slower on this path). Wrong content type -> 415, body over
ZENML_SERVING_MAX_REQUEST_SIZE -> 413 (Litestar's `request_max_body_size`), a body not sent
within ZENML_SERVING_BODY_TIMEOUT -> 408, empty or malformed JSON -> 400 naming the byte where
parsing stopped, JSON nested too deep to decode -> 400, any field nested deeper than
ZENML_SERVING_MAX_PARAMETER_DEPTH or `parameters` holding more than
ZENML_SERVING_MAX_PARAMETER_ITEMS values -> 422 naming the field. All of this happens before
anything walks the body recursively (pydantic, the error renderer): a hostile body must not
exhaust the stack. The WebSocket `invoke` message goes through `check_body` too. The parsed
body is cached by Litestar, so the request model reads it without decoding it again.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.exceptions import SerializationException

from zenml_serving.api.errors import problem

if TYPE_CHECKING:
    from litestar import Request

    from zenml_serving.config import ServingConfig

__all__ = ["ParameterLimits", "check_body", "check_parameters", "vet_json_body"]

STATE_KEY = "zenml_serving_parameter_limits"
_BYTE_POSITION = re.compile(r"\(byte (\d+)\)")
# A \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one, or a lone low half.
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_EXPONENT_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?[eE][+-]?\d+")


@dataclass(frozen=True)
class ParameterLimits:
    """How deep and how large `parameters` may be, and how long a body may take to arrive."""

    max_depth: int
    max_items: int
    body_timeout_s: float = 30.0

    @classmethod
    def from_config(cls, config: ServingConfig) -> ParameterLimits:
        return cls(
            max_depth=config.max_parameter_depth,
            max_items=config.max_parameter_items,
            body_timeout_s=config.body_timeout_s,
        )


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
    limits: ParameterLimits = request.app.state[STATE_KEY]
    try:
        # 413 from Litestar past request_max_body_size
        raw = await asyncio.wait_for(request.body(), limits.body_timeout_s)
    except asyncio.TimeoutError:
        raise problem(
            408,
            "body-timeout",
            "Request timeout",
            f"the body did not arrive within {limits.body_timeout_s:g} s "
            "(ZENML_SERVING_BODY_TIMEOUT); send as many bytes as Content-Length says",
            headers={"Connection": "close"},
        ) from None
    if not raw.strip():
        raise _malformed("the body is empty: send a JSON object", position=0)
    try:
        body = await request.json()  # decodes the body read above, once (Litestar caches it)
    except RecursionError:
        raise _malformed(
            "the body is nested too deep to decode "
            f"(at most {limits.max_depth} levels, ZENML_SERVING_MAX_PARAMETER_DEPTH)",
            position=None,
        ) from None
    except SerializationException as exc:
        message, position = _explain(str(exc.detail or exc), raw)
        raise _malformed(f"the body is not valid JSON: {message}", position=position) from None
    check_body(body, limits)


def _malformed(detail: str, *, position: int | None) -> Exception:
    return problem(400, "malformed-json", "Malformed JSON", detail, position=position)


def _explain(message: str, raw: bytes) -> tuple[str, int | None]:
    """msgspec's message and the byte where parsing stopped, made precise where msgspec's
    own words mislead: it calls a lone UTF-16 surrogate escape truncation, and names no byte
    for a number out of range."""
    match = _BYTE_POSITION.search(message)
    if "truncated" in message:
        lone = _LONE_SURROGATE.search(raw)
        if lone is not None:
            return (
                f"a lone UTF-16 surrogate escape {lone.group().decode()} (JSON text must "
                "be valid Unicode: a high surrogate needs its low half)",
                lone.start(),
            )
        return message, len(raw)
    if "out of range" in message and match is None:
        for number in _EXPONENT_NUMBER.finditer(raw):
            if float(number.group()) in (float("inf"), float("-inf")):
                return message.split(" - at ", maxsplit=1)[
                    0
                ] + f": {number.group().decode()}", number.start()
    return message, int(match.group(1)) if match else None


def check_body(body: object, limits: ParameterLimits) -> None:
    """Raise a 422 problem naming the field if any field of `body` is nested too deep or
    `parameters` has too many values (an iterative walk: safe on any depth)."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "parameters":
                check_parameters(value, limits)
            else:
                _raise_if(_first_violation(value, limits, root=str(key), count=False))
    else:
        _raise_if(_first_violation(body, limits, root="body", count=False))


def check_parameters(parameters: object, limits: ParameterLimits) -> None:
    """Raise a 422 problem naming the field if `parameters` is too deep or has too many values."""
    _raise_if(_first_violation(parameters, limits, root="parameters", count=True))


def _raise_if(violation: tuple[str, str] | None) -> None:
    if violation is None:
        return
    field, message = violation
    field = field if len(field) <= 200 else field[:200] + "..."
    raise problem(
        422,
        "validation",
        "Invalid request",
        f"invalid field(s): {field}",
        errors=[{"field": field, "message": message}],
    )


def _first_violation(
    value: object, limits: ParameterLimits, *, root: str, count: bool
) -> tuple[str, str] | None:
    """Walk `value` iteratively (no recursion: a hostile body must not exhaust the stack);
    `count`: also hold it to the item limit."""
    stack: list[tuple[object, str, int]] = [(value, root, 0)]
    seen = 0
    while stack:
        value, path, depth = stack.pop()
        seen += 1
        if count and seen > limits.max_items:
            return root, f"more than {limits.max_items} values in all"
        if (
            count
            and isinstance(value, (dict, list))
            and seen + len(stack) + len(value) > limits.max_items
        ):
            return root, f"more than {limits.max_items} values in all"
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
