"""The built-in redactor: what every telemetry sink applies until the capture package's lands."""

from __future__ import annotations

import json

from zenml_serving.telemetry.redaction import REDACTED, default_redact, make_redactor

CANARY = "canary-value-1234"


class TestKeys:
    """Values under secret-looking keys are replaced at any depth; others are kept."""

    def test_nested_mappings_and_lists(self) -> None:
        value = {
            "user": {"name": "ada", "Password": CANARY},
            "items": [{"api_key": CANARY, "n": 1}, {"sessionId": CANARY}],
            "auth_header": CANARY,
            "http.route": "/invoke",
        }
        redacted = default_redact(value)
        assert redacted == {
            "user": {"name": "ada", "Password": REDACTED},
            "items": [{"api_key": REDACTED, "n": 1}, {"sessionId": REDACTED}],
            "auth_header": REDACTED,
            "http.route": "/invoke",
        }

    def test_argument_is_not_mutated(self) -> None:
        value = {"token": CANARY, "inner": [{"secret": CANARY}]}
        default_redact(value)
        assert value == {"token": CANARY, "inner": [{"secret": CANARY}]}

    def test_extra_names(self) -> None:
        redact = make_redactor(["ssn"])
        assert redact({"customer_ssn": CANARY, "name": "x"}) == {
            "customer_ssn": REDACTED,
            "name": "x",
        }

    def test_scalars_pass_through(self) -> None:
        assert default_redact({"count": 3, "ratio": 0.5, "ok": True, "none": None}) == {
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "none": None,
        }


class TestStrings:
    """Secrets inside text: name=value pairs and values shaped like secrets."""

    def test_query_string(self) -> None:
        text = default_redact(f"mode=sync&api_key={CANARY}&token={CANARY}")
        assert CANARY not in text
        assert text.startswith("mode=sync&")

    def test_json_text(self) -> None:
        text = default_redact(f'{{"password": "{CANARY}", "city": "Paris"}}')
        assert CANARY not in text
        assert '"city": "Paris"' in text

    def test_secret_shaped_values(self) -> None:
        for secret in (
            "Bearer abcdef0123456789abcdef",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dGhpc2lzYXNpZ25hdHVyZQ",
            "sk-proj0123456789abcdefghij",
            "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----",
        ):
            assert secret not in default_redact(f"found {secret} here"), secret

    def test_ordinary_text_is_unchanged(self) -> None:
        text = "POST /invoke answered 200 in 3 ms for invocation 5f1c"
        assert default_redact(text) == text

    def test_json_text_stays_json(self) -> None:
        text = '{"text":"hello","api_key":"[REDACTED]","token":"abc"}'
        assert json.loads(default_redact(text)) == {
            "text": "hello",
            "api_key": REDACTED,
            "token": REDACTED,
        }
