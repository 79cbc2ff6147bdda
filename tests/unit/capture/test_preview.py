"""A preview is the redacted value as JSON text, cut to `max_bytes` on a character boundary."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.capture.secrets_strategies import PROPERTY, embedded, secret_shaped
from zenml_serving.capture import REDACTED, describe_value, preview
from zenml_serving.capture.redaction import Preview

BIG = 1 << 30
MULTIBYTE = st.text(alphabet=st.sampled_from(["a", "é", "漢", "😀", "\n", '"', "\\"]), max_size=80)
VALUES = st.recursive(
    st.one_of(
        st.none(), st.integers(), st.floats(allow_nan=False), MULTIBYTE, st.text(max_size=30)
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(MULTIBYTE, children, max_size=4)
    ),
    max_leaves=15,
)


class TestRendering:
    """The text is JSON of the redacted value; non-JSON values fall back to repr."""

    def test_json_of_the_redacted_value(self) -> None:
        result = preview({"city": "Zürich", "password": "x", "n": [1, 2.5, None]}, max_bytes=BIG)
        assert json.loads(result.text) == {
            "city": "Zürich",
            "password": REDACTED,
            "n": [1, 2.5, None],
        }
        assert "Zürich" in result.text  # readable, not \\u-escaped
        assert result.truncated is False
        assert result.original_bytes == len(result.text.encode("utf-8"))
        assert result.type_name == "dict"

    def test_a_string_is_a_json_string(self) -> None:
        assert preview("hello", max_bytes=BIG).text == '"hello"'

    def test_sets_render_in_a_stable_order(self) -> None:
        assert preview({"b", "a", "c"}, max_bytes=BIG).text == '["a", "b", "c"]'

    def test_keys_that_json_cannot_hold_fall_back_to_repr(self) -> None:
        result = preview({("a", 1): "v"}, max_bytes=BIG)
        assert result.text == """{"('a', 1)": "v"}"""

    def test_lone_surrogates_are_escaped_to_stay_valid_utf8(self) -> None:
        result = preview("a\ud800b", max_bytes=BIG)
        assert result.text.encode("utf-8") == b'"a\\ud800b"'

    def test_type_name_of_a_user_class(self) -> None:
        class Report:
            pass

        type_name = preview(Report(), max_bytes=BIG).type_name
        assert type_name.startswith("tests.unit.capture.test_preview.")
        assert type_name.endswith(".Report")

    def test_sinks_get_plain_attribute_values(self) -> None:
        result = preview({"a": "b"}, max_bytes=4)
        assert result.as_metadata() == {
            "preview": '{"a"',
            "truncated": True,
            "size_bytes": 10,
            "type": "dict",
        }
        assert result.attributes("zenml.step.input.q") == {
            "zenml.step.input.q.preview": '{"a"',
            "zenml.step.input.q.truncated": True,
            "zenml.step.input.q.size_bytes": 10,
            "zenml.step.input.q.type": "dict",
        }


class TestTruncation:
    """Cut to the byte budget, never inside a character, and say so."""

    def test_cut_at_the_budget(self) -> None:
        result = preview("abcdefghij", max_bytes=5)
        assert result == Preview('"abcd', True, 12, "str")

    @pytest.mark.parametrize(
        ("max_bytes", "expected"),
        [(1, '"'), (2, '"'), (3, '"é'), (4, '"é'), (6, '"é'), (7, '"é😀'), (8, '"é😀"')],
    )
    def test_never_splits_a_character(self, max_bytes: int, expected: str) -> None:
        # '"' is 1 byte, 'é' 2, '😀' 4.
        assert preview("é😀", max_bytes=max_bytes).text == expected

    def test_exactly_at_the_budget_is_not_truncated(self) -> None:
        assert preview("abc", max_bytes=5) == Preview('"abc"', False, 5, "str")

    def test_zero_budget(self) -> None:
        assert preview("abc", max_bytes=0) == Preview("", True, 5, "str")

    def test_a_negative_budget_is_refused(self) -> None:
        with pytest.raises(ValueError, match="max_bytes"):
            preview("abc", max_bytes=-1)

    def test_redaction_happens_before_the_cut(self) -> None:
        # A secret that would straddle the cut is masked first, so no prefix of it leaks.
        text = "x" * 10 + " sk-proj-Abcdefghij0123456789XYZ"
        assert "sk-" not in preview(text, max_bytes=20).text


class TestProperties:
    """Bounds and safety over generated values."""

    @PROPERTY
    @given(VALUES, st.integers(0, 300))
    def test_within_budget_and_a_prefix_of_the_full_text(self, value: Any, max_bytes: int) -> None:
        full = preview(value, max_bytes=BIG)
        cut = preview(value, max_bytes=max_bytes)
        data = cut.text.encode("utf-8")  # strict: the text is valid UTF-8
        assert len(data) <= max_bytes
        assert full.text.startswith(cut.text)
        assert cut.truncated == (full.original_bytes > max_bytes)
        assert cut.original_bytes == full.original_bytes == len(full.text.encode("utf-8"))
        if cut.truncated:
            assert max_bytes - len(data) <= 3  # only a partial character is dropped
        else:
            assert cut.text == full.text

    @PROPERTY
    @given(embedded(secret_shaped()), st.integers(0, 400))
    def test_a_secret_never_appears_in_any_cut(
        self, planted: tuple[str, str], max_bytes: int
    ) -> None:
        secret, text = planted
        rendered = preview({"message": text}, max_bytes=max_bytes).text
        assert json.dumps(secret, ensure_ascii=False)[1:-1] not in rendered


class TestDescribe:
    """`describe_value` gives payload-free facts for `metadata` capture."""

    def test_type_and_length(self) -> None:
        assert describe_value("secret text") == {"type": "str", "length": 11}
        assert describe_value({"a": 1}) == {"type": "dict", "length": 1}
        assert describe_value(3.5) == {"type": "float"}
