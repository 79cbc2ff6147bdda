"""Secrets are found by field name and by shape, and ordinary text is left alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.capture.secrets_strategies import (
    PROPERTY,
    card_numbers,
    embedded,
    secret_shaped,
)
from zenml_serving.capture import (
    REDACTED,
    SENSITIVE_FIELD_PARTS,
    is_card_number,
    is_sensitive_field,
    luhn_valid,
    mask_secrets,
)


class TestSensitiveFieldNames:
    """A field is sensitive when its name contains a listed part, in any case."""

    @pytest.mark.parametrize(
        "name",
        [
            "password",
            "PASSWORD",
            "user_password",
            "passwd",
            "client_secret",
            "refresh_token",
            "api_key",
            "ApiKey",
            "x-api-key",
            "Authorization",
            "oauth_state",
            "credentials",
            "sessionId",
            "Set-Cookie",
            "private_notes",
            "primary_key",
        ],
    )
    def test_sensitive_names(self, name: str) -> None:
        assert is_sensitive_field(name)

    @pytest.mark.parametrize("name", ["city", "user", "text", "values", "count", "pass", "tok"])
    def test_ordinary_names(self, name: str) -> None:
        assert not is_sensitive_field(name)

    def test_extras_add_names_case_insensitively(self) -> None:
        assert not is_sensitive_field("customer_ssn")
        assert is_sensitive_field("customer_SSN", ["ssn"])
        assert is_sensitive_field("customer_ssn", [" SSN "])

    def test_an_empty_extra_does_not_make_everything_sensitive(self) -> None:
        assert not is_sensitive_field("city", ["", "  "])

    def test_the_contracted_list(self) -> None:
        assert set(SENSITIVE_FIELD_PARTS) == {
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
        }


class TestLuhn:
    """Card numbers are recognised by the Luhn check and a 2..6 first digit."""

    @pytest.mark.parametrize(
        "number",
        [
            "4111111111111111",  # Visa
            "4242424242424242",
            "4012888888881881",
            "5555555555554444",  # Mastercard
            "2223003122003222",  # Mastercard 2-series
            "378282246310005",  # Amex (15)
            "6011111111111117",  # Discover
            "3530111333300000",  # JCB
            "30569309025904",  # Diners (14)
            "6200000000000005",  # UnionPay
            "4222222222222",  # 13-digit Visa
        ],
    )
    def test_test_card_numbers_are_cards(self, number: str) -> None:
        assert luhn_valid(number)
        assert is_card_number(number)

    @pytest.mark.parametrize(
        "number",
        [
            "4111111111111112",  # one digit off
            "4111111111111121",  # two digits swapped
            "5555555555554440",
            "378282246310006",
        ],
    )
    def test_failing_luhn_is_not_a_card(self, number: str) -> None:
        assert not luhn_valid(number)
        assert not is_card_number(number)

    @pytest.mark.parametrize(
        ("number", "why"),
        [
            ("0000000000000000", "Luhn-valid, but no network starts with 0"),
            ("1732870000000000000", "a nanosecond timestamp"),
            ("7992739871300000", "starts with 7"),
            ("411111111111", "12 digits: too short"),
            ("41111111111111111113", "20 digits: too long"),
        ],
    )
    def test_not_card_shaped(self, number: str, why: str) -> None:
        assert not is_card_number(number), why

    def test_non_digits_are_never_valid(self) -> None:
        assert not luhn_valid("4111 1111 1111 1111")
        assert not luhn_valid("")
        assert not luhn_valid("٤١١١١١١١١١١١١١١١")  # Arabic-Indic digits

    @PROPERTY
    @given(card_numbers(separated=False))
    def test_generated_numbers_are_cards(self, number: str) -> None:
        assert is_card_number(number)

    @PROPERTY
    @given(card_numbers(separated=False), st.integers(0, 18), st.integers(1, 9))
    def test_changing_one_digit_breaks_luhn(self, number: str, at: int, delta: int) -> None:
        at %= len(number)
        changed = number[:at] + str((int(number[at]) + delta) % 10) + number[at + 1 :]
        assert not luhn_valid(changed)


class TestSecretShapes:
    """Secret-shaped substrings are masked wherever they appear in a text."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("card 4111 1111 1111 1111 ok", "card [REDACTED] ok"),
            ("card 4111-1111-1111-1111.", "card [REDACTED]."),
            ("pay 4111111111111111 now", "pay [REDACTED] now"),
            ("order 12 4111111111111111", "order 12 [REDACTED]"),
            ("visa13 4222 2222 2222 2.", "visa13 [REDACTED]."),
            ("amex 3782 822463 10005", "amex [REDACTED]"),
            ("two 4111 1111 1111 1111 5555555555554444", "two [REDACTED]"),
            ("auth Bearer abcdef0123456789xyz", "auth Bearer [REDACTED]"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl end",
                "jwt [REDACTED] end",
            ),
            ("OPENAI_KEY is sk-proj-Abcdefghij0123456789XYZ", "OPENAI_KEY is [REDACTED]"),
            ("stripe sk_live_51Habcdefghijklmnopqrstu", "stripe [REDACTED]"),
            ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [REDACTED]"),
            ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED]"),
            ("hf hf_abcdefghijklmnopqrstuvwxyz01234567", "hf [REDACTED]"),
            (
                "k -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n-----END RSA PRIVATE KEY----- x",
                "k [REDACTED] x",
            ),
            ("cut -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq", "cut [REDACTED]"),
        ],
    )
    def test_masked(self, text: str, expected: str) -> None:
        assert mask_secrets(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "the bearer of bad news",
            "sk-learn-compatible-estimator-without-digits",
            "task-1234567890abcdefghijkl",  # 'sk-' inside a word
            "call +1 555-123-4567 or 0800 123 456",
            "id 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "at 2026-11-29 09:14:00, took 1234 ms",
            "ISBN 978-3-16-148410-0",
            "plain text with numbers 1 2 3 and é ü 漢字",
            "41 1111 1111 1111 11",  # Luhn-valid digits, but not grouped as a card is printed
            "a=a=a=a=b and x: y",
        ],
    )
    def test_ordinary_text_is_unchanged(self, text: str) -> None:
        assert mask_secrets(text) == text

    @PROPERTY
    @given(embedded(secret_shaped()))
    def test_a_planted_secret_never_survives(self, planted: tuple[str, str]) -> None:
        secret, text = planted
        assert secret not in mask_secrets(text)

    @PROPERTY
    @given(embedded(card_numbers()))
    def test_no_card_digits_survive_next_to_other_digits(self, planted: tuple[str, str]) -> None:
        secret, text = planted
        masked = mask_secrets("7 " + text + " 9")
        digits = "".join(c for c in secret if c.isdigit())
        assert digits[:6] not in "".join(c for c in masked if c.isdigit() or c == "[")


class TestNameValuePairs:
    """`name=value` and `name: value` in free text hide the value when the name is sensitive."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("password=hunter2 user=bob", "password=[REDACTED] user=bob"),
            (
                "https://x.io/cb?code=1&access_token=abc123&x=1",
                "https://x.io/cb?code=1&access_token=[REDACTED]&x=1",
            ),
            ('{"password": "a b c", "user": "bob"}', '{"password": "[REDACTED]", "user": "bob"}'),
            ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED]"),
            ("Cookie: sid=abc; theme=dark", "Cookie: [REDACTED]; theme=dark"),
            ("API_KEY = 'abc def'", "API_KEY = '[REDACTED]'"),
        ],
    )
    def test_masked(self, text: str, expected: str) -> None:
        assert mask_secrets(text) == expected

    def test_extras_apply(self) -> None:
        assert mask_secrets("ssn=123-45-6789 ok", ["ssn"]) == "ssn=[REDACTED] ok"
        assert mask_secrets("ssn=123-45-6789 ok") == "ssn=123-45-6789 ok"


class TestMaskingIsIdempotent:
    """Masking masked text changes nothing."""

    @PROPERTY
    @given(st.text())
    def test_any_text(self, text: str) -> None:
        once = mask_secrets(text)
        assert mask_secrets(once) == once

    @PROPERTY
    @given(embedded(secret_shaped()), st.text(max_size=20))
    def test_text_with_secrets(self, planted: tuple[str, str], tail: str) -> None:
        once = mask_secrets(planted[1] + tail)
        assert REDACTED in once
        assert mask_secrets(once) == once
