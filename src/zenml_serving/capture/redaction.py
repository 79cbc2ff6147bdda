"""Redaction and previews: the single place a payload passes through before it leaves the process.

`redact(value)` returns a redacted copy made of plain data (dicts, lists, tuples, sets, strings,
numbers, booleans, None) and never mutates its input:
- the value of every field whose name is sensitive (`detectors.SENSITIVE_FIELD_PARTS` plus the
  configured extras, case-insensitive substrings) becomes `REDACTED`, at any depth of mappings,
  lists, tuples and sets, including pydantic models, dataclasses and named tuples (their
  fields are names too);
- every string is masked for secret-shaped values (`detectors.mask_secrets`), and an integer
  that is a payment card number becomes `REDACTED`;
- dates, UUIDs, decimals and paths become their string form, enums their (redacted) value,
  bytes their UTF-8 text, and any other object its masked `repr`.

`preview(value, max_bytes=...)` renders the redacted value as JSON text cut to at most
`max_bytes` UTF-8 bytes on a character boundary. ZenML metadata, span attributes and log
events must all be fed from these two functions.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import pydantic

from zenml_serving.capture.detectors import (
    REDACTED,
    is_card_number,
    mask_secrets_with,
    normalise_fields,
    sensitive_field_matcher,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MAX_DEPTH", "REDACTED", "Preview", "describe_value", "preview", "redact"]

MAX_DEPTH = 64
"""Containers nested deeper than this are replaced by `DEPTH_MARKER`, not walked."""
DEPTH_MARKER = "[MAX DEPTH]"
CYCLE_MARKER = "[CYCLE]"

_PLAIN_SCALARS = (bool, float, type(None))
_SMALLEST_CARD = 10**12  # card numbers have 13 digits or more
_AS_TEXT = (uuid.UUID, decimal.Decimal, PurePath)
_AS_ISO = (datetime.datetime, datetime.date, datetime.time)


def redact(value: Any, extra_fields: Iterable[str] = ()) -> Any:
    """A redacted copy of `value` made of plain data; `value` itself is never changed.

    `extra_fields` are field names to redact in addition to the built-in ones (matched
    case-insensitively as substrings). Idempotent: `redact(redact(x)) == redact(x)`.
    """
    return _Redactor(normalise_fields(extra_fields)).walk(value, 0)


@dataclass(frozen=True, slots=True)
class Preview:
    """A redacted, size-bounded rendering of one value, ready for every sink.

    All fields are strings, ints and booleans, so the preview is valid ZenML metadata and valid
    OpenTelemetry span attribute values as is.
    """

    text: str
    """The redacted value as JSON text (non-JSON values by `repr`), at most `max_bytes` UTF-8
    bytes, never ending in a partial character. A prefix of the full rendering."""
    truncated: bool
    """True when the full rendering was longer than `max_bytes` and was cut."""
    original_bytes: int
    """UTF-8 size of the full redacted rendering, before any cut."""
    type_name: str
    """The type of the original value (`str`, `dict`, `mymodule.Report`)."""

    def as_metadata(self) -> dict[str, str | int | bool]:
        """The preview as a flat metadata mapping (ZenML run/step metadata, log fields)."""
        return {
            "preview": self.text,
            "truncated": self.truncated,
            "size_bytes": self.original_bytes,
            "type": self.type_name,
        }

    def attributes(self, prefix: str) -> dict[str, str | int | bool]:
        """The preview as span attributes named `<prefix>.preview`, `<prefix>.truncated`..."""
        return {f"{prefix}.{key}": value for key, value in self.as_metadata().items()}


def preview(value: Any, *, max_bytes: int, extra_fields: Iterable[str] = ()) -> Preview:
    """Redact `value`, render it as JSON and cut it to at most `max_bytes` UTF-8 bytes.

    The bound is exact: `len(result.text.encode("utf-8")) <= max_bytes`, with no marker added
    to the text (`truncated` says it was cut, `original_bytes` how long it was).
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    redactor = _Redactor(normalise_fields(extra_fields))
    text = _render(redactor.walk(value, 0), redactor.mask)
    # Lone surrogates cannot be encoded: show them escaped so the text is valid UTF-8.
    data = text.encode("utf-8", errors="backslashreplace")
    if len(data) <= max_bytes:
        return Preview(data.decode("utf-8"), False, len(data), type_name(value))
    end = max_bytes
    while end > 0 and (data[end] & 0xC0) == 0x80:  # never cut inside a multi-byte character
        end -= 1
    return Preview(data[:end].decode("utf-8"), True, len(data), type_name(value))


def describe_value(value: Any) -> dict[str, str | int]:
    """Payload-free facts about a value, for `metadata` capture: its type and length if any."""
    facts: dict[str, str | int] = {"type": type_name(value)}
    if isinstance(value, (str, bytes, bytearray, list, tuple, dict, set, frozenset)):
        facts["length"] = len(value)
    return facts


def type_name(value: Any) -> str:
    """`str` for builtins, `module.QualName` for everything else."""
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class _Redactor:
    """One redaction pass with its extras compiled once."""

    __slots__ = ("_active", "_sensitive")

    def __init__(self, extra_fields: tuple[str, ...]) -> None:
        self._sensitive = sensitive_field_matcher(extra_fields)
        self._active: set[int] = set()  # ids of the containers on the current path

    def mask(self, text: str) -> str:
        return mask_secrets_with(text, self._sensitive)

    def walk(self, value: Any, depth: int) -> Any:
        cls = type(value)  # exact types first: the common case costs one comparison or two
        if cls is str:
            return self.mask(value)
        if cls is int:
            return value if -_SMALLEST_CARD < value < _SMALLEST_CARD else self._number(value)
        if cls is float or cls is bool or value is None:
            return value
        return self._other(value, depth)

    def _other(self, value: Any, depth: int) -> Any:  # noqa: PLR0911 - one branch per kind
        if isinstance(value, enum.Enum):
            return self.walk(value.value, depth)
        if isinstance(value, str):
            return self.mask(value if type(value) is str else str.__str__(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return self._number(value)
        if isinstance(value, _PLAIN_SCALARS):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.mask(bytes(value).decode("utf-8", errors="backslashreplace"))
        if isinstance(value, _AS_ISO):
            return value.isoformat()
        if isinstance(value, _AS_TEXT):
            return self.mask(str(value))
        if depth >= MAX_DEPTH:
            return DEPTH_MARKER
        if id(value) in self._active:
            return CYCLE_MARKER
        self._active.add(id(value))
        try:
            return self._container(value, depth + 1)
        finally:
            self._active.discard(id(value))

    @staticmethod
    def _number(value: int) -> Any:
        return REDACTED if is_card_number(str(abs(value))) else value

    def _container(self, value: Any, depth: int) -> Any:  # noqa: PLR0911 - one branch per kind
        if isinstance(value, Mapping):
            return self._fields(value.items(), depth)
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
            return self._fields(zip(value._fields, value, strict=True), depth)
        if isinstance(value, pydantic.BaseModel):
            try:
                dumped = value.model_dump()
            except Exception:  # a model that cannot dump itself is shown by its masked repr
                return self._opaque(value)
            return self._fields(dumped.items(), depth)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._fields(
                ((f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)), depth
            )
        if isinstance(value, list):
            return [self.walk(item, depth) for item in value]
        if isinstance(value, tuple):
            return tuple(self.walk(item, depth) for item in value)
        if isinstance(value, (set, frozenset)):
            items = (self.walk(item, depth) for item in value)
            return frozenset(items) if isinstance(value, frozenset) else set(items)
        return self._opaque(value)

    def _fields(self, items: Iterable[tuple[Any, Any]], depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key, item in items:
            name = key if isinstance(key, str) else str(key)
            result[self._key(key)] = REDACTED if self._sensitive(name) else self.walk(item, depth)
        return result

    def _key(self, key: Any) -> Any:
        if isinstance(key, enum.Enum):
            key = key.value
        if isinstance(key, str):
            return self.mask(key if type(key) is str else str.__str__(key))
        if isinstance(key, int) and not isinstance(key, bool):
            return self._number(key)
        if isinstance(key, _PLAIN_SCALARS):
            return key
        return self.mask(str(key))

    def _opaque(self, value: Any) -> str:
        try:
            text = repr(value)
        except Exception:
            return f"<{type_name(value)} object>"
        return self.mask(text)


def _render(value: Any, mask: Callable[[str], str]) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError, RecursionError):
        return mask(repr(value))


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)  # stable across processes (set order is not)
    raise TypeError(type_name(value))
