"""The conservative built-in redaction that telemetry uses until the capture package's lands.

`Redactor` is the hook: any `Callable[[Any], Any]` that returns a redacted *copy* of a value
(nested mappings and sequences, strings) and never mutates its argument. Every telemetry
sink (span processor, span/log payload helper, structlog processor) calls the one redactor it
was given, so plugging the capture package's function in at `Telemetry(redact=...)` covers
them all.

The built-in one:
- replaces the value of any mapping key that contains, case-insensitively, one of
  `SECRET_KEY_PARTS` (or a configured extra name), at any depth;
- in strings, masks `name=value` / `"name": "value"` pairs whose name matches (query strings,
  JSON text, log messages) and values shaped like secrets whatever their name (bearer tokens,
  JWTs, `sk-...` API keys, PEM private keys).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "SECRET_KEY_PARTS", "Redactor", "default_redact", "make_redactor"]

Redactor = Callable[[Any], Any]
"""Returns a redacted copy of its argument (never mutates it)."""

REDACTED = "[REDACTED]"

SECRET_KEY_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "cookie",
    "session",
    "private",
)

_MAX_DEPTH = 32

_CACHED_KEY_LENGTH = 128
"""Keys (field and attribute names) up to this length have their verdict cached."""

_SECRET_VALUE_HINT = re.compile(r"(?i:bearer|basic)\s|eyJ|[psr]k-|-----BEGIN")
"""Every match of `_SECRET_VALUES` contains one of these."""

_SECRET_VALUES = re.compile(
    r"(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"  # Authorization header values
    r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWTs
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # sk-... style API keys
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
)


def _pair_pattern(parts: Iterable[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(p) for p in sorted(set(parts), key=len, reverse=True))
    # name=value (query strings, log text) or "name": "value" / 'name': value (JSON, reprs)
    return re.compile(
        rf"""(?P<name>["']?[\w.-]*(?:{names})[\w.-]*["']?\s*[:=]\s*)"""
        r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s&,;}\]]+)""",
        re.IGNORECASE,
    )


def _masked_pair(match: re.Match[str]) -> str:
    """`name=value` with the value masked, quoted as it was (so JSON text stays JSON)."""
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}{quote}{REDACTED}{quote}"


def make_redactor(extra_names: Iterable[str] = ()) -> Redactor:
    """The built-in redactor, also matching `extra_names` (ZENML_SERVING_CAPTURE_REDACT)."""
    parts = tuple(p.lower() for p in (*SECRET_KEY_PARTS, *extra_names) if p)
    pairs = _pair_pattern(parts)
    # One cheap pass decides whether the expensive patterns can match at all: most values
    # ("completed", "/invoke", ids) contain no secret-looking name or value prefix.
    names = re.compile("|".join(re.escape(p) for p in parts), re.IGNORECASE)

    @functools.lru_cache(maxsize=4096)
    def secret_name(key: str) -> bool:
        return names.search(key) is not None

    def secret_key(key: Any) -> bool:
        key = key if isinstance(key, str) else str(key)
        return secret_name(key) if len(key) <= _CACHED_KEY_LENGTH else bool(names.search(key))

    def scrub(text: str) -> str:
        if len(text) < 8:
            return text
        if names.search(text):
            text = pairs.sub(_masked_pair, text)
        if _SECRET_VALUE_HINT.search(text):
            text = _SECRET_VALUES.sub(REDACTED, text)
        return text

    def redact(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per kind
        if isinstance(value, str):
            return scrub(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if depth >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            return {
                k: REDACTED if secret_key(k) else redact(v, depth + 1) for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            items = [redact(v, depth + 1) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, (set, frozenset)):
            return [redact(v, depth + 1) for v in value]
        if isinstance(value, (bytes, bytearray)):
            return scrub(bytes(value).decode("utf-8", errors="replace"))
        return value

    def redactor(value: Any) -> Any:
        return redact(value)

    return redactor


default_redact: Redactor = make_redactor()
"""The built-in redactor with no extra names."""
