"""A one-step pipeline that holds its execution slot until a file appears (test-controlled).

Tests open the gate by creating the file, so overload (429) can be produced on purpose, with
no sleeps and no timing assumptions.
"""

from __future__ import annotations

import time
from pathlib import Path

from zenml import pipeline, step


@step
def wait_for_gate(gate: str, limit_s: float) -> str:
    """Return once `gate` exists (or fail after `limit_s`, so nothing hangs forever)."""
    deadline = time.monotonic() + limit_s
    while gate and not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.01)
    return "opened"


@pipeline
def gated_pipeline(gate: str = "", limit_s: float = 60.0) -> str:
    """wait_for_gate: blocks while the `gate` file does not exist."""
    return wait_for_gate(gate=gate, limit_s=limit_s)
