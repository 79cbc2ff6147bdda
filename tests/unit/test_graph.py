"""Steps run after their upstream steps, in a stable order."""

from __future__ import annotations

import pytest

from zenml_serving.deployment.graph import CycleError, execution_order


class TestExecutionOrder:
    """Dependencies first; ties keep declaration order."""

    def test_dependencies_come_first_whatever_the_declaration_order(self) -> None:
        order = execution_order({"join": ["a", "b"], "b": ["load"], "a": ["load"], "load": []})
        assert order == ["load", "b", "a", "join"]

    def test_independent_steps_keep_declaration_order(self) -> None:
        assert execution_order({"z": [], "y": [], "x": []}) == ["z", "y", "x"]

    def test_a_cycle_is_reported_with_its_steps(self) -> None:
        with pytest.raises(CycleError, match=r"\['a', 'b'\]"):
            execution_order({"a": ["b"], "b": ["a"], "c": []})

    def test_an_unknown_upstream_step_is_reported(self) -> None:
        with pytest.raises(CycleError, match="unknown step"):
            execution_order({"a": ["ghost"]})
