"""Turn step outputs into JSON-ready builtins once, on the worker thread.

Pydantic models, dataclasses, msgspec structs, enums, dates, UUIDs, sets and array-likes with
`tolist()` are converted; anything else is an error that names the output and its type.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import msgspec
import pydantic

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["OutputNotSerializableError", "to_json_builtins"]


class OutputNotSerializableError(TypeError):
    """A pipeline output cannot be represented as JSON."""

    def __init__(self, output: str, value: Any) -> None:
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        super().__init__(
            f"pipeline output '{output}' of type {kind} cannot be returned as JSON; return a "
            "JSON-friendly value (dict, list, str, number, pydantic model, dataclass)"
        )
        self.output = output


def _enc_hook(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, PurePath):
        return str(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise NotImplementedError


def to_json_builtins(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Every output as JSON-compatible builtins; OutputNotSerializableError names a bad one."""
    converted: dict[str, Any] = {}
    for name, value in outputs.items():
        try:
            converted[name] = msgspec.to_builtins(value, enc_hook=_enc_hook, str_keys=True)
        except (NotImplementedError, TypeError, msgspec.EncodeError):
            raise OutputNotSerializableError(name, value) from None
    return converted
