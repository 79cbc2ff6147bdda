"""Execution order of a step graph: dependencies first, ties broken by declaration order."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["CycleError", "execution_order"]


class CycleError(ValueError):
    """The step graph has a cycle or names an upstream step that does not exist."""


def execution_order(upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Steps in an order where each comes after all of its upstream steps.

    Among steps that are ready at the same time, the one declared first runs first, so the
    order is stable and matches the order the pipeline body called the steps in.
    """
    position = {name: index for index, name in enumerate(upstream)}
    for name, parents in upstream.items():
        missing = [p for p in parents if p not in position]
        if missing:
            raise CycleError(f"step '{name}' depends on unknown step(s) {missing}")
    remaining: dict[str, set[str]] = {name: set(parents) for name, parents in upstream.items()}
    order: list[str] = []
    while remaining:
        ready = sorted((n for n, p in remaining.items() if not p), key=position.__getitem__)
        if not ready:
            raise CycleError(f"steps {sorted(remaining)} depend on each other in a cycle")
        first = ready[0]
        order.append(first)
        del remaining[first]
        for waiting_on in remaining.values():
            waiting_on.discard(first)
    return order
