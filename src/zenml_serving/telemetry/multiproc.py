"""Prepare Prometheus multiprocess mode before granian starts its workers.

Kept apart from `metrics.py` on purpose: prometheus_client decides at import whether it runs
in multiprocess mode, so the parent process must set PROMETHEUS_MULTIPROC_DIR before anything
imports it, and the workers inherit the variable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["prepare_multiprocess_dir"]


def prepare_multiprocess_dir(
    workers: int, environ: MutableMapping[str, str] | None = None
) -> Path | None:
    """Empty PROMETHEUS_MULTIPROC_DIR (create it if needed) before the workers start.

    With several workers and no folder configured, a fresh temporary one is created and put
    in the environment the workers inherit. Returns the folder, or None for single-process
    mode. Stale files from an earlier run would otherwise add dead workers' counts.
    """
    env = os.environ if environ is None else environ
    raw = env.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not raw:
        if workers <= 1:
            return None
        path = Path(tempfile.mkdtemp(prefix="zenml-serving-metrics-"))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        return path
    path = Path(raw).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path
