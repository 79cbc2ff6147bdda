"""Find secrets by field name and by shape, in names and in free text.

Two questions, answered here and nowhere else:
- is this field name sensitive? (`is_sensitive_field`: case-insensitive substring match against
  `SENSITIVE_FIELD_PARTS` plus configured extras);
- does this text contain something secret-shaped? (`mask_secrets`: PEM private keys, JWTs,
  well-known API key formats such as `sk-...`, bearer tokens, `name=value` / `name: value` pairs
  whose name is sensitive, and payment card numbers that pass the Luhn check).

Everything is masked with the same marker, `REDACTED`. Masking is idempotent: masking masked
text changes nothing.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "REDACTED",
    "SENSITIVE_FIELD_PARTS",
    "is_card_number",
    "is_sensitive_field",
    "luhn_valid",
    "mask_secrets",
    "mask_secrets_with",
    "normalise_fields",
    "sensitive_field_matcher",
]

REDACTED = "[REDACTED]"
"""What replaces a sensitive value, everywhere."""

SENSITIVE_FIELD_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "key",
    "auth",
    "credential",
    "oauth",
    "session",
    "cookie",
    "private",
)
"""A field whose name contains one of these (case-insensitively) has its value redacted."""

_CARD_MIN, _CARD_MAX = 13, 19
_CARD_FIRST_DIGITS = frozenset("23456")  # every major card network's numbers start with 2..6
_MAX_PASSES = 4

_SHAPES = re.compile(
    r"""
    (?P<pem>-----BEGIN[A-Z0-9 ]*PRIVATE\ KEY[A-Z ]*-----
        [\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE\ KEY[A-Z ]*-----|\Z))
    | (?P<jwt>(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)
    | (?P<apikey>(?<![A-Za-z0-9_-])(?:
          (?:sk|rk)[-_](?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}  # OpenAI, Anthropic, Stripe
        | gh[pousr]_[A-Za-z0-9]{30,} | github_pat_[A-Za-z0-9_]{30,}  # GitHub
        | glpat-[A-Za-z0-9_-]{20,}  # GitLab
        | xox[abposr]-[A-Za-z0-9-]{10,}  # Slack
        | AKIA[0-9A-Z]{16}  # AWS access key id
        | AIza[0-9A-Za-z_-]{35}  # Google
        | hf_[A-Za-z0-9]{30,}  # Hugging Face
      ))
    | (?P<bearer>(?<![A-Za-z0-9_-])(?i:bearer)[ \t]+)(?P<bearer_token>[A-Za-z0-9._~+/-]+=*)
    | (?P<kv_name>(?<![\w.-])[A-Za-z_][\w.-]*)
      (?P<kv_sep>["']?[ \t]*[:=][ \t]*)
      (?P<kv_value>"(?:[^"\\\n]|\\.){0,4096}"
        | '(?:[^'\\\n]|\\.){0,4096}'
        | (?:(?i:bearer|basic|digest|negotiate|token)[ \t]+)?[^\s,;&"'<>(){}\[\]]+)
    | (?P<digits>(?<![0-9])[0-9]+(?:[ -][0-9]+)*)
    """,
    re.VERBOSE,
)
_DIGIT_GROUP = re.compile(r"[0-9]+")


def normalise_fields(names: Iterable[str]) -> tuple[str, ...]:
    """Extra field names as matched: stripped, lower-cased, de-duplicated, empties dropped."""
    return tuple(dict.fromkeys(n.strip().lower() for n in names if n and n.strip()))


@lru_cache(maxsize=64)
def _field_pattern(extra_fields: tuple[str, ...]) -> re.Pattern[str]:
    parts = (*SENSITIVE_FIELD_PARTS, *extra_fields)
    return re.compile("|".join(re.escape(p) for p in sorted(set(parts), key=len, reverse=True)))


def is_sensitive_field(name: str, extra_fields: Iterable[str] = ()) -> bool:
    """True when `name` contains a sensitive part or an extra name (case-insensitively)."""
    return sensitive_field_matcher(normalise_fields(extra_fields))(name)


def sensitive_field_matcher(extra_fields: tuple[str, ...]) -> Callable[[str], bool]:
    """`is_sensitive_field` for already-normalised extras, compiled once (for hot loops)."""
    search = _field_pattern(extra_fields).search
    return lambda name: search(name.lower()) is not None


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers; `digits` must be all digits."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """A payment card number: 13..19 digits, starting with 2..6, passing the Luhn check."""
    return (
        _CARD_MIN <= len(digits) <= _CARD_MAX
        and digits[:1] in _CARD_FIRST_DIGITS
        and luhn_valid(digits)
    )


def mask_secrets(text: str, extra_fields: Iterable[str] = ()) -> str:
    """`text` with every secret-shaped substring replaced by `REDACTED`.

    `extra_fields` extend the sensitive names of `name=value` pairs. The result is a fixed
    point: masking it again returns it unchanged.
    """
    return mask_secrets_with(text, sensitive_field_matcher(normalise_fields(extra_fields)))


def mask_secrets_with(text: str, sensitive: Callable[[str], bool]) -> str:
    """`mask_secrets` with a matcher from `sensitive_field_matcher` (for hot loops)."""
    for _ in range(_MAX_PASSES):
        masked = _mask_once(text, sensitive)
        if masked == text:
            return masked
        text = masked
    return text


def _mask_once(text: str, sensitive: Callable[[str], bool]) -> str:
    out: list[str] = []
    pos = 0
    match = _SHAPES.search(text)
    while match is not None:
        start, end = match.span()
        if match["kv_name"] is not None:
            if sensitive(match["kv_name"]):
                out.append(text[pos : match.start("kv_value")])
                quote = match["kv_value"][0]
                out.append(f"{quote}{REDACTED}{quote}" if quote in "\"'" else REDACTED)
                pos = end
            else:
                # Not sensitive: keep `name=`, and look for secrets inside the value too.
                end = match.end("kv_sep")
                out.append(text[pos:end])
                pos = end
        elif match["bearer"] is not None:
            token = match["bearer_token"]
            out.append(text[pos : match.start("bearer_token")])
            out.append(REDACTED if _looks_like_token(token) else token)
            pos = end
        elif match["digits"] is not None:
            out.append(text[pos:start])
            out.append(_mask_cards(match["digits"]))
            pos = end
        else:  # pem, jwt, apikey: the whole match is the secret
            out.append(text[pos:start])
            out.append(REDACTED)
            pos = end
        match = _SHAPES.search(text, pos)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _looks_like_token(token: str) -> bool:
    """Long, or mixing letters with digits or symbols: not an English word after `bearer`."""
    return len(token) >= 20 or (len(token) >= 8 and not token.isalpha())


def _mask_cards(run: str) -> str:
    """Mask card numbers in a run of digit groups (`4111 1111-1111 1111`, `4111111111111111`).

    A card number is a window of whole groups (13..19 digits, Luhn-valid, starting with 2..6);
    every group inside any such window is masked, so digits next to a card number cannot make
    part of it visible. A single group longer than 19 digits is never a card number.
    """
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(run)]
    masked = [False] * len(groups)
    for i in range(len(groups)):
        digits = ""
        for j in range(i, len(groups)):
            digits += run[groups[j][0] : groups[j][1]]
            if len(digits) > _CARD_MAX:
                break
            if is_card_number(digits):
                masked[i : j + 1] = [True] * (j + 1 - i)
    if not any(masked):
        return run
    out: list[str] = []
    pos = 0
    for i, (start, end) in enumerate(groups):
        if not masked[i]:
            continue
        if i > 0 and masked[i - 1]:
            pos = end  # the separator between two masked groups goes with them
            continue
        out.append(run[pos:start])
        out.append(REDACTED)
        pos = end
    out.append(run[pos:])
    return "".join(out)
