"""Hypothesis strategies for secret-shaped values (independent of the detectors under test).

`PROPERTY` is the settings every property test here uses: no deadline (tests never assert
wall-clock times) and, with `HYPOTHESIS_PROFILE=thorough` in the environment, 20x the examples.
"""

from __future__ import annotations

import base64
import os
import string

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
PROPERTY = settings(
    deadline=None,
    max_examples=4000 if _THOROUGH else 200,
    suppress_health_check=[HealthCheck.too_slow],
)

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body + digit` pass Luhn (written independently of the code)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


@st.composite
def card_numbers(draw: st.DrawFn, *, separated: bool | None = None) -> str:
    """A Luhn-valid 13..19 digit number starting with 2..6, maybe grouped by spaces/dashes."""
    length = draw(st.integers(13, 19))
    first = draw(st.sampled_from("23456"))
    middle = draw(st.text(string.digits, min_size=length - 2, max_size=length - 2))
    number = first + middle + luhn_check_digit(first + middle)
    if separated is False or (separated is None and draw(st.booleans())):
        return number
    separator = draw(st.sampled_from([" ", "-"]))
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


def _b64url(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(B64URL, min_size=min_size, max_size=max_size)


@st.composite
def jwts(draw: st.DrawFn) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    payload = "eyJ" + draw(_b64url(4, 60))
    return f"{header}.{payload}.{draw(_b64url(0, 60))}"


@st.composite
def api_keys(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-", "sk_live_", "rk_test_"]))
    body = draw(st.text(ALNUM, min_size=19, max_size=60))
    digit = draw(st.sampled_from(string.digits))
    at = draw(st.integers(0, len(body)))
    return prefix + body[:at] + digit + body[at:]


@st.composite
def bearer_tokens(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["Bearer", "bearer", "BEARER"]))
    return f"{scheme} {draw(st.text(ALNUM + '-._~+/', min_size=20, max_size=80))}"


@st.composite
def pem_keys(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]))
    lines = draw(st.lists(st.text(ALNUM + "+/", min_size=1, max_size=64), min_size=1, max_size=5))
    body = "\n".join(lines)
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


def secret_shaped() -> st.SearchStrategy[str]:
    """Any secret-shaped value, whatever the field it sits in."""
    return st.one_of(card_numbers(), jwts(), api_keys(), bearer_tokens(), pem_keys())


SEPARATORS = [" ", "\n", ", ", " | ", "\t", ": ", " (", ") "]


@st.composite
def embedded(draw: st.DrawFn, secret: st.SearchStrategy[str]) -> tuple[str, str]:
    """(secret, text containing it between arbitrary text and separators)."""
    value = draw(secret)
    before = draw(st.text(max_size=30)) + draw(st.sampled_from(SEPARATORS))
    after = draw(st.sampled_from(SEPARATORS)) + draw(st.text(max_size=30))
    return value, before + value + after
