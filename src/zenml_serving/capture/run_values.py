"""Run-level values: which request parameters and pipeline outputs a run-level preview may show.

A request parameter is not a step value of its own: it is the value of every step input it
feeds. So the run-level `parameters` preview (ZenML run metadata, the invocation span) shows a
parameter only where *every* step input it feeds may be previewed, for the outcome at hand
(the failing step's inputs use their on-failure decision, every other step its on-success
one); otherwise the parameter is left out of the preview, name and value. A parameter that
feeds no step follows the run-level mode alone. A pipeline output is shown only where its step
output may be previewed.

`ValueRoutes` (where each parameter and pipeline output goes) is built once at startup;
`decide_run_values` turns the step decisions of one kind of invocation into a `RunValues`,
which the plan caches, so an invocation pays a dict lookup for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zenml_serving.capture.resolved import StepCapture

__all__ = ["RunValues", "ValueRoutes", "decide_run_values"]


@dataclass(frozen=True, slots=True)
class ValueRoutes:
    """Where the run-level values of a pipeline go, from its wiring."""

    consumers: Mapping[str, tuple[tuple[str, str], ...]]
    """Parameter name -> the (step, input) pairs it feeds."""
    outputs: Mapping[str, tuple[str, str]]
    """Pipeline output name -> the (step, output) behind it."""


@dataclass(frozen=True, slots=True)
class RunValues:
    """The run-level names to leave out of previews, for one kind of invocation."""

    withheld_parameters: frozenset[str]
    """On success, cancellation or timeout."""
    withheld_parameters_failed: Mapping[str, frozenset[str]]
    """By failing step."""
    withheld_outputs: frozenset[str]

    def parameters(self, failed_step: str | None) -> frozenset[str]:
        """The parameter names withheld for an invocation that failed in `failed_step` (or not)."""
        if failed_step is None:
            return self.withheld_parameters
        return self.withheld_parameters_failed.get(failed_step, self.withheld_parameters)


def decide_run_values(routes: ValueRoutes, steps: Mapping[str, StepCapture]) -> RunValues:
    """What the run-level previews leave out, given every step's decisions."""

    def withheld(failing: str | None) -> frozenset[str]:
        return frozenset(
            parameter
            for parameter, consumers in routes.consumers.items()
            if not all(
                steps[step].input(name, failed=step == failing).preview for step, name in consumers
            )
        )

    return RunValues(
        withheld_parameters=withheld(None),
        withheld_parameters_failed=MappingProxyType({name: withheld(name) for name in steps}),
        withheld_outputs=frozenset(
            output
            for output, (step, name) in routes.outputs.items()
            if not steps[step].output(name).preview
        ),
    )
