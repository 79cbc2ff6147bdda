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
_DOUBLED = str.maketrans("0123456789", "0246813579")

# Each detector runs only when a cheap substring test says it could match, so that ordinary
# text costs a few C-level scans rather than a regex attempt at every position.
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
    r"[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)"
)
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_API_KEY = re.compile(
    r"""(?<![A-Za-z0-9_-])(?:
          (?:sk|rk)[-_](?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}  # OpenAI, Anthropic, Stripe
        | gh[pousr]_[A-Za-z0-9]{30,} | github_pat_[A-Za-z0-9_]{30,}  # GitHub
        | glpat-[A-Za-z0-9_-]{20,}  # GitLab
        | xox[abposr]-[A-Za-z0-9-]{10,}  # Slack
        | AKIA[0-9A-Z]{16}  # AWS access key id
        | AIza[0-9A-Za-z_-]{35}  # Google
        | hf_[A-Za-z0-9]{30,}  # Hugging Face
    )""",
    re.VERBOSE,
)
_API_KEY_HINTS = (
    "sk-", "sk_", "rk-", "rk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
    "glpat-", "xox", "AKIA", "AIza", "hf_",
)  # fmt: skip
_BEARER = re.compile(r"(?<![A-Za-z0-9_-])((?i:bearer)[ \t]+)([A-Za-z0-9._~+/-]+=*)")
_SEPARATOR = re.compile(r"[:=]")
_MAX_NAME = 128
# The value of a sensitive `name=value` / `name: value` pair.
_PAIR_VALUE = re.compile(
    r"""
    "(?:[^"\\\n]|\\.){0,4096}"
    | '(?:[^'\\\n]|\\.){0,4096}'
    | (?:(?i:bearer|basic|digest|negotiate|token)[ \t]+)?[^\s,;&"'<>(){}\[\]]+
    """,
    re.VERBOSE,
)
# A run of 13 or more digits, single spaces or dashes allowed between them.
_DIGIT_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
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
    reverse = digits[::-1]
    # Every second digit from the right is doubled; translate maps d to the digit sum of 2d.
    total = sum(map(int, reverse[0::2])) + sum(map(int, reverse[1::2].translate(_DOUBLED)))
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
    if "PRIVATE KEY" in text:
        text = _PEM.sub(REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if any(hint in text for hint in _API_KEY_HINTS):
        text = _API_KEY.sub(REDACTED, text)
    if "bearer" in text.lower():
        text = _BEARER.sub(_mask_bearer, text)
    if ":" in text or "=" in text:
        text = _mask_pairs(text, sensitive)
    if any(digit in text for digit in "0123456789"):
        text = _DIGIT_RUN.sub(_mask_cards, text)
    return text


def _mask_bearer(match: re.Match[str]) -> str:
    token = match[2]
    return match[1] + (REDACTED if _looks_like_token(token) else token)


def _is_name_char(char: str) -> bool:
    return char.isalnum() or char in "_.-"


def _mask_pairs(text: str, sensitive: Callable[[str], bool]) -> str:
    """Mask the value of every `name=value` / `name: value` / `"name": "value"` whose name is
    sensitive. Works from each separator back to its name, so ordinary text costs little."""
    out: list[str] = []
    pos = 0
    for separator in _SEPARATOR.finditer(text):
        at = separator.start()
        if at < pos:
            continue  # inside a value already masked
        name_end = at
        while name_end > 0 and text[name_end - 1] in " \t":
            name_end -= 1
        if name_end > 0 and text[name_end - 1] in "\"'":
            name_end -= 1
        name_start = name_end
        while (
            name_start > 0
            and name_end - name_start <= _MAX_NAME
            and _is_name_char(text[name_start - 1])
        ):
            name_start -= 1
        name = text[name_start:name_end]
        if (
            not name
            or name_start < pos
            or not (name[0].isalpha() or name[0] == "_")
            or (name_start > 0 and _is_name_char(text[name_start - 1]))
            or not sensitive(name)
        ):
            continue
        value_start = separator.end()
        while value_start < len(text) and text[value_start] in " \t":
            value_start += 1
        value = _PAIR_VALUE.match(text, value_start)
        if value is None:
            continue
        quote = value[0][0]
        out.append(text[pos:value_start])
        out.append(f"{quote}{REDACTED}{quote}" if quote in "\"'" else REDACTED)
        pos = value.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _looks_like_token(token: str) -> bool:
    """Long, or mixing letters with digits or symbols: not an English word after `bearer`."""
    return len(token) >= 20 or (len(token) >= 8 and not token.isalpha())


def _mask_cards(match: re.Match[str]) -> str:
    """Mask card numbers in a run of digit groups (`4111 1111-1111 1111`, `4111111111111111`).

    A card number is 13..19 digits, Luhn-valid, starting with 2..6, written either as one group
    or grouped as cards are printed (4-4-4-4 with a shorter last group, Amex 4-6-5, Diners
    4-6-4). Every group inside such a window is masked, so digits written next to a card number
    cannot make part of it visible.
    """
    run = match[0]
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(run)]
    masked = [False] * len(groups)
    for i, (start, end) in enumerate(groups):
        if run[start] not in _CARD_FIRST_DIGITS:
            continue
        digits = run[start:end]
        if len(digits) != 4:  # not the first group of a printed card: only one group can be
            if is_card_number(digits):
                masked[i] = True
            continue
        lengths = [4]
        for j in range(i + 1, min(i + 5, len(groups))):  # at most 4-4-4-4-3 groups
            digits += run[groups[j][0] : groups[j][1]]
            lengths.append(groups[j][1] - groups[j][0])
            if len(digits) > _CARD_MAX:
                break
            if len(digits) >= _CARD_MIN and _card_grouping(lengths) and is_card_number(digits):
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


def _card_grouping(lengths: list[int]) -> bool:
    """Digit group lengths as card numbers are written (the total is checked separately)."""
    if len(lengths) == 1:
        return True
    if lengths in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4
