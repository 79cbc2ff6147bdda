"""The served versions of a pipeline: the current one, and retired ones still in use.

A version is a ServedPipeline (its steps with the artifacts loaded at startup) plus the
pipeline state its `on_init` returned. A reload builds a new version beside the current one and
swaps it in atomically: an invocation leases the version current when it starts and keeps it to
the end, so in-flight invocations finish on the objects they started with. A retired version is
handed to `on_retired` (which runs `on_cleanup`) once its last invocation has returned.

The lease is a lock and a counter: under a microsecond per invocation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from zenml_serving.deployment.model import ServedPipeline

__all__ = ["ServedVersion", "ServedVersions"]


@dataclass(frozen=True, eq=False)
class ServedVersion:
    """One loaded version of the pipeline and its `on_init` state."""

    pipeline: ServedPipeline
    state: Any = None
    number: int = 1
    """1 at startup, +1 per successful reload (per process)."""
    loaded_at: float = field(default_factory=time.time)
    load_duration_s: float = 0.0
    """Resolving and loading the snapshot, its artifacts and model versions."""
    init_duration_s: float | None = None
    """How long `on_init` took (None: the pipeline has no `on_init`)."""

    def describe(self) -> dict[str, Any]:
        """What /info shows about this version."""
        pipeline = self.pipeline
        return {
            "number": self.number,
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "load_duration_s": round(self.load_duration_s, 4),
            "on_init": {
                "hook": pipeline.hooks.init_source or None,
                "duration_s": (
                    round(self.init_duration_s, 4) if self.init_duration_s is not None else None
                ),
            },
            "on_cleanup": pipeline.hooks.cleanup_source or None,
            "artifacts": [artifact.describe() for artifact in pipeline.artifacts],
            "model_versions": [version.describe() for version in pipeline.model_versions],
        }


class ServedVersions:
    """Holds the current version, leases it to invocations, retires replaced ones."""

    def __init__(
        self, first: ServedVersion, *, on_retired: Callable[[ServedVersion], None] | None = None
    ) -> None:
        self._current = first
        self._leases: dict[int, int] = {id(first): 0}
        self._retired: dict[int, ServedVersion] = {}
        self._lock = threading.Lock()
        self._on_retired = on_retired

    @property
    def current(self) -> ServedVersion:
        """The version new invocations get."""
        return self._current

    def lease(self) -> ServedVersion:
        """The current version, held until `release`."""
        with self._lock:
            version = self._current
            self._leases[id(version)] += 1
        return version

    def release(self, version: ServedVersion) -> None:
        """An invocation is done with `version`; a retired version's last one retires it."""
        with self._lock:
            key = id(version)
            self._leases[key] -= 1
            done = self._leases[key] == 0 and key in self._retired
            if done:
                del self._leases[key]
                del self._retired[key]
        if done and self._on_retired is not None:
            self._on_retired(version)

    def swap(self, new: ServedVersion) -> ServedVersion:
        """Make `new` current; the old one retires now if unused, else when its last
        invocation returns. Returns the old version."""
        with self._lock:
            old = self._current
            self._current = new
            self._leases[id(new)] = 0
            unused = self._leases[id(old)] == 0
            if unused:
                del self._leases[id(old)]
            else:
                self._retired[id(old)] = old
        if unused and self._on_retired is not None:
            self._on_retired(old)
        return old

    def in_use(self) -> dict[int, int]:
        """Version number -> invocations running on it (retired versions included)."""
        with self._lock:
            versions = [self._current, *self._retired.values()]
            return {v.number: self._leases.get(id(v), 0) for v in versions}

    def still_leased(self) -> list[ServedVersion]:
        """Retired versions that invocations still hold (at shutdown: orphaned steps)."""
        with self._lock:
            return list(self._retired.values())
