"""How an invocation ended for its client, and the one counter each outcome adds to.

The execution manager reports completed, failed, cancelled, timed_out, or a refusal at
admission (overloaded: 429, shutting_down: 503). /status totals and the
`zenml_serving_invocations_total` outcome label count them through `counted_as`, so that the
two never disagree (a drain's refusals count as `rejected` in both).
"""

from __future__ import annotations

from typing import Final

__all__ = ["ADMISSION_REFUSALS", "counted_as"]

ADMISSION_REFUSALS: Final = ("overloaded", "shutting_down")
"""Outcomes of an invocation refused before it ran; each counts as `rejected`."""


def counted_as(outcome: str) -> str:
    """The counter `outcome` adds to: itself, or `rejected` for a refusal at admission."""
    return "rejected" if outcome in ADMISSION_REFUSALS else outcome
