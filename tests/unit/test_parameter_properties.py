"""Properties of the parameters model built from a pipeline signature (hypothesis).

Whatever the values: values of the declared types validate and round-trip through JSON; a
value of another JSON type is rejected, naming its parameter; an unknown name is rejected,
naming it.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zenml_serving.deployment.parameters import build_parameters_model


def pipeline_function(
    text: str,
    count: int = 1,
    ratio: float = 0.5,
    flag: bool = False,
    numbers: list[int] | None = None,
    weights: dict[str, float] | None = None,
    note: str | None = None,
) -> None:
    """A pipeline signature with one parameter of each JSON type."""


MODEL = build_parameters_model("props", pipeline_function, {"text": "snap"})

_finite = st.floats(allow_nan=False, allow_infinity=False)
VALID: dict[str, st.SearchStrategy[Any]] = {
    "text": st.text(),
    "count": st.integers(),
    "ratio": _finite,
    "flag": st.booleans(),
    "numbers": st.none() | st.lists(st.integers(), max_size=5),
    "weights": st.none() | st.dictionaries(st.text(max_size=5), _finite, max_size=5),
    "note": st.none() | st.text(),
}

_json_leaves = st.none() | st.booleans() | st.integers() | _finite | st.text(max_size=5)
_json = st.recursive(
    _json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)


def _wrong(name: str) -> st.SearchStrategy[Any]:
    """JSON values that are not of `name`'s declared type."""
    not_text = st.none() | st.booleans() | st.integers() | _finite | st.lists(_json, max_size=2)
    wrong: dict[str, st.SearchStrategy[Any]] = {
        "text": not_text,
        "count": st.booleans() | _finite | st.text() | st.lists(_json, max_size=2),
        "ratio": st.booleans() | st.text() | st.none() | st.dictionaries(st.text(), _json),
        "flag": st.integers() | _finite | st.text() | st.none(),
        "numbers": st.integers()
        | st.text()
        | st.dictionaries(st.text(), _json)
        | st.lists(st.text() | st.booleans() | _finite, min_size=1, max_size=3),
        "weights": st.integers()
        | st.text()
        | st.lists(_json)
        | st.dictionaries(st.text(max_size=3), st.text() | st.booleans(), min_size=1),
        "note": st.booleans() | st.integers() | _finite | st.lists(_json, max_size=2),
    }
    return wrong[name]


class TestParameterProperties:
    """The parameters model accepts exactly the declared JSON types and names what it refuses."""

    @given(
        st.fixed_dictionaries(
            {"text": VALID["text"]}, optional={k: v for k, v in VALID.items() if k != "text"}
        )
    )
    def test_declared_types_validate_and_round_trip(self, values: dict[str, Any]) -> None:
        validated = MODEL.model_validate(values)
        dumped = validated.model_dump(include=set(values))
        assert dumped == values
        again = MODEL.model_validate_json(validated.model_dump_json())
        assert again == validated

    @given(st.sampled_from(sorted(VALID)).flatmap(lambda n: st.tuples(st.just(n), _wrong(n))))
    @settings(max_examples=200)
    def test_a_wrong_type_is_rejected_naming_the_parameter(self, case: tuple[str, Any]) -> None:
        name, value = case
        values = {"text": "t", name: value}
        with pytest.raises(pydantic.ValidationError) as raised:
            MODEL.model_validate(values)
        assert raised.value.errors()
        assert {error["loc"][0] for error in raised.value.errors()} == {name}

    @given(st.text(min_size=1).filter(lambda n: n not in MODEL.model_fields), _json)
    def test_an_unknown_name_is_rejected_naming_it(self, name: str, value: Any) -> None:
        with pytest.raises(pydantic.ValidationError) as raised:
            MODEL.model_validate({"text": "t", name: value})
        errors = [(e["loc"], e["type"]) for e in raised.value.errors()]
        assert errors == [((name,), "extra_forbidden")]
