"""`redact` hides sensitive fields at any depth and secret-shaped values anywhere, once."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import uuid
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import pydantic
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.capture.secrets_strategies import PROPERTY, embedded, secret_shaped
from zenml_serving.capture import REDACTED, redact
from zenml_serving.capture.redaction import CYCLE_MARKER, DEPTH_MARKER, MAX_DEPTH

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"


class Login(pydantic.BaseModel):
    user: str
    password: str
    remember: bool = False


@dataclasses.dataclass
class Connection:
    host: str
    auth: dict[str, str]


class Pair(NamedTuple):
    name: str
    token: str


class Colour(enum.Enum):
    RED = "red"


class Opaque:
    def __repr__(self) -> str:
        return f"Opaque(conn='postgres://u:p@h', auth={JWT})"


class TestSensitiveFields:
    """The value of a sensitive field is replaced whole, whatever it is and wherever it sits."""

    def test_top_level_fields_case_insensitively(self) -> None:
        assert redact({"user": "bob", "Password": "hunter2", "API_KEY": {"a": 1}}) == {
            "user": "bob",
            "Password": REDACTED,
            "API_KEY": REDACTED,
        }

    def test_nested_in_mappings_lists_and_tuples(self) -> None:
        value = {"items": [{"name": "a", "secret": "s1"}, ({"refresh_token": "t"},)]}
        assert redact(value) == {
            "items": [{"name": "a", "secret": REDACTED}, ({"refresh_token": REDACTED},)]
        }

    def test_models_dataclasses_and_named_tuples_are_fields_too(self) -> None:
        value = [
            Login(user="bob", password="hunter2"),
            Connection(host="db", auth={"user": "u", "pass": "p"}),
            Pair("x", "t0k3n"),
        ]
        assert redact(value) == [
            {"user": "bob", "password": REDACTED, "remember": False},
            {"host": "db", "auth": REDACTED},
            {"name": "x", "token": REDACTED},
        ]

    def test_configured_extras(self) -> None:
        value = {"customer": {"SSN": "123-45-6789", "name": "Ann"}}
        assert redact(value) == value
        assert redact(value, ["ssn"]) == {"customer": {"SSN": REDACTED, "name": "Ann"}}

    def test_non_string_keys_are_checked_by_their_text(self) -> None:
        class Field(enum.Enum):
            PASSWORD = 1

        assert redact({Field.PASSWORD: "x", 7: "y"}) == {1: REDACTED, 7: "y"}


class TestSecretShapedValues:
    """Secret-shaped values are masked under any field name, also inside longer strings."""

    def test_in_strings_keys_and_integers(self) -> None:
        value = {"note": f"use {JWT} please", JWT: "k", "card": 4111111111111111, "n": 42}
        assert redact(value) == {
            "note": "use [REDACTED] please",
            REDACTED: "k",
            "card": REDACTED,
            "n": 42,
        }

    def test_bytes_are_masked_as_text(self) -> None:
        assert redact(b"Bearer abcdefghij0123456789") == "Bearer [REDACTED]"

    def test_other_objects_become_their_masked_repr(self) -> None:
        result = redact({"conn": Opaque()})
        assert result == {"conn": "Opaque(conn='postgres://u:p@h', auth=[REDACTED])"}


class TestPlainData:
    """The result is plain data and the input is never changed."""

    def test_common_types_become_json_friendly(self) -> None:
        when = datetime.datetime(2026, 11, 29, 9, 14, tzinfo=datetime.timezone.utc)
        ident = uuid.UUID(int=1)
        value = {
            "when": when,
            "day": when.date(),
            "id": ident,
            "price": decimal.Decimal("9.50"),
            "path": PurePosixPath("/data/x.csv"),
            "colour": Colour.RED,
            "tags": {"a"},
            "frozen": frozenset({"b"}),
            "flags": (True, None, 1.5),
        }
        assert redact(value) == {
            "when": "2026-11-29T09:14:00+00:00",
            "day": "2026-11-29",
            "id": str(ident),
            "price": "9.50",
            "path": "/data/x.csv",
            "colour": "red",
            "tags": {"a"},
            "frozen": frozenset({"b"}),
            "flags": (True, None, 1.5),
        }

    def test_the_input_is_not_mutated(self) -> None:
        value: dict[str, Any] = {
            "password": "x",
            "nested": [{"token": "t"}],
            "model": Login(user="u", password="p"),
        }
        before = copy.deepcopy(value)
        redact(value)
        assert value == before

    def test_cycles_are_cut(self) -> None:
        value: dict[str, Any] = {"name": "loop"}
        value["self"] = value
        assert redact(value) == {"name": "loop", "self": CYCLE_MARKER}

    def test_shared_but_acyclic_values_are_kept(self) -> None:
        shared = {"a": 1}
        assert redact([shared, shared]) == [{"a": 1}, {"a": 1}]

    def test_depth_is_bounded(self) -> None:
        value: Any = "deep"
        for _ in range(MAX_DEPTH + 10):
            value = [value]
        result = redact(value)
        for _ in range(MAX_DEPTH):
            result = result[0]
        assert result == DEPTH_MARKER


# -- properties ---------------------------------------------------------------------------

SENSITIVE_KEYS = st.sampled_from(
    [
        "password",
        "X-Api-Key",
        "refresh_token",
        "Authorization",
        "sessionId",
        "client_SECRET",
        "db_credentials",
        "private",
        "cookie",
        "apikey",
        "passwd",
        "oauth",
    ]
)
ORDINARY_KEYS = st.sampled_from(["name", "city", "values", "text", "count", "id", "data", "meta"])
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=20),
)


def structures(leaves: st.SearchStrategy[Any] = LEAVES) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(
                st.one_of(ORDINARY_KEYS, SENSITIVE_KEYS, st.text(max_size=10)), children, max_size=4
            ),
        ),
        max_leaves=20,
    )


CANARY = "CANARY-7f3b9c"


def strings_in(value: Any) -> list[str]:
    """Every string in a redacted structure, keys included (exact text, no repr escaping)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for item in value for s in strings_in(item)]
    return []


@st.composite
def planted_under_sensitive_key(draw: st.DrawFn) -> Any:
    """A random structure with the canary under a sensitive key at a random depth."""
    secret: Any = draw(st.sampled_from([CANARY, [CANARY], {"inner": CANARY}, (1, CANARY)]))
    value: Any = {draw(SENSITIVE_KEYS): secret}
    for _ in range(draw(st.integers(0, 6))):
        wrapper = draw(st.sampled_from(["dict", "list", "tuple", "model", "dataclass"]))
        siblings = draw(st.lists(LEAVES, max_size=2))
        if wrapper == "dict":
            value = {draw(ORDINARY_KEYS): value, "other": siblings}
        elif wrapper == "list":
            value = [*siblings, value]
        elif wrapper == "tuple":
            value = (value, *siblings)
        elif wrapper == "model":
            value = Wrapper(payload=value)
        else:
            value = Box(content=value)
    return value


class Wrapper(pydantic.BaseModel):
    payload: Any


@dataclasses.dataclass
class Box:
    content: Any


class TestProperties:
    """Properties over generated data: idempotent, and no planted secret ever survives."""

    @PROPERTY
    @given(structures())
    def test_idempotent(self, value: Any) -> None:
        once = redact(value)
        assert redact(once) == once

    @PROPERTY
    @given(structures(), st.lists(st.text(min_size=1, max_size=5), max_size=3))
    def test_idempotent_with_extras(self, value: Any, extras: list[str]) -> None:
        once = redact(value, extras)
        assert redact(once, extras) == once

    @PROPERTY
    @given(planted_under_sensitive_key())
    def test_a_canary_under_a_sensitive_key_never_survives(self, value: Any) -> None:
        assert CANARY not in repr(redact(value))

    @PROPERTY
    @given(embedded(secret_shaped()), st.integers(0, 5), ORDINARY_KEYS)
    def test_a_secret_shaped_value_never_survives(
        self, planted: tuple[str, str], depth: int, key: str
    ) -> None:
        secret, text = planted
        value: Any = text
        for _ in range(depth):
            value = {key: [value]}
        assert not any(secret in text for text in strings_in(redact(value)))
