"""Redaction of span attributes and log events, by the capture package's rules.

What is sensitive (field names, secret-shaped values: bearer tokens, JWTs, API keys, PEM keys,
`name=value` pairs, card numbers) is decided by `zenml_serving.capture.detectors` and nowhere
else. This module only walks what telemetry holds (flat attribute mappings, log events of
plain data) with the detectors compiled once, because it runs for every span and every log
line: `capture.redact`, which also renders arbitrary objects, is for payloads (previews).

`Redactor` is the hook: any `Callable[[Any], Any]` returning a redacted copy, never mutating
its argument. Every telemetry sink (span processor, log processor) calls the one it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from zenml_serving.capture.detectors import (
    REDACTED,
    is_card_number,
    mask_secrets_with,
    normalise_fields,
    sensitive_field_matcher,
)

__all__ = ["REDACTED", "Redactor", "default_redact", "make_redactor"]

Redactor = Callable[[Any], Any]
"""Returns a redacted copy of its argument (never mutates it)."""

_MAX_DEPTH = 32
_SMALLEST_CARD = 10**12


def make_redactor(extra_fields: Iterable[str] = ()) -> Redactor:
    """A redactor for telemetry, with `extra_fields` (ZENML_SERVING_CAPTURE_REDACT) too."""
    sensitive = sensitive_field_matcher(normalise_fields(extra_fields))

    def redact(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per kind
        if isinstance(value, str):
            return mask_secrets_with(value, sensitive) if len(value) >= 8 else value
        if value is None or isinstance(value, (bool, float)):
            return value
        if isinstance(value, int):
            return REDACTED if value >= _SMALLEST_CARD and is_card_number(str(value)) else value
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            return {
                k: REDACTED if sensitive(str(k)) else redact(v, depth + 1) for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            items = [redact(v, depth + 1) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, (set, frozenset)):
            return [redact(v, depth + 1) for v in value]
        if isinstance(value, (bytes, bytearray)):
            return redact(bytes(value).decode("utf-8", errors="replace"), depth)
        return value

    def redactor(value: Any) -> Any:
        return redact(value)

    return redactor


default_redact: Redactor = make_redactor()
"""The telemetry redactor with no extra names."""
