"""A pipeline whose one step misbehaves in the way its `fault` parameter says."""

from __future__ import annotations

import os
import re
import sys
import time

from zenml import pipeline, step


@step
def misbehave(fault: str, size: int, seconds: float) -> str:
    """`raise`, `allocate` (`size` bytes), `hang` (`seconds`), `exit` (kill the process after
    `seconds`), `hold_gil` (a regex that backtracks 2**`size` times without releasing the
    GIL), `sys_exit` (`sys.exit()`), `interrupt` (KeyboardInterrupt), or ok."""
    if fault == "raise":
        raise RuntimeError("asked to fail")
    if fault == "allocate":
        block = bytearray(size)
        return f"allocated {len(block)} bytes"
    if fault == "hang":
        time.sleep(seconds)
    if fault == "hold_gil":
        re.fullmatch(r"(a+)+", "a" * size + "b")
    if fault == "sys_exit":
        sys.exit("asked to exit")
    if fault == "interrupt":
        raise KeyboardInterrupt
    if fault == "exit":
        time.sleep(seconds)  # > 0: let the caller's 202 leave before the process dies
        os._exit(17)
    return "ok"


@pipeline
def fault_pipeline(fault: str = "none", size: int = 0, seconds: float = 0.0) -> str:
    """One step that misbehaves on request."""
    return misbehave(fault=fault, size=size, seconds=seconds)
