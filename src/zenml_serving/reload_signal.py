"""Tell the other workers of this server to reload: a reload epoch in a file they all watch.

`POST /admin/reload` reaches one granian worker. That worker reloads, then bumps an epoch
number in a file named after the granian main process (every worker's parent), so the file is
shared by the workers of one server and no other. Each worker checks the file twice a second
(one `stat`) and reloads when the epoch moved past the one it has seen. Each follower runs
its own reload (and `on_init`), logs and counts its own outcome; a follower that fails keeps
its old version like any failed reload.

Only used with several workers (ZENML_SERVING_WORKERS > 1): a single worker has no one to tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zenml_serving.engine.reload import Reloader

__all__ = ["ReloadSignal"]

_CHECK_INTERVAL_S = 0.5


class ReloadSignal:
    """The shared reload epoch of the workers of one server."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(tempfile.gettempdir()) / f"zenml-serving-{os.getppid()}.reload"
        self._seen = self._read()
        self._task: asyncio.Task[None] | None = None

    def announce(self) -> int:
        """A worker reloaded: bump the epoch (under a file lock), remember it as seen."""
        with self.path.open("a+", encoding="ascii") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read().strip()
            epoch = (int(text) if text.isdigit() else 0) + 1
            handle.seek(0)
            handle.truncate()
            handle.write(str(epoch))
            handle.flush()
        self._seen = epoch
        return epoch

    def start(self, reloader: Reloader) -> None:
        """Follow announcements from the other workers (on the event loop)."""
        self._task = asyncio.create_task(self._follow(reloader))

    def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()

    async def _follow(self, reloader: Reloader) -> None:
        while True:
            await asyncio.sleep(_CHECK_INTERVAL_S)
            epoch = self._read()
            if epoch > self._seen:
                self._seen = epoch
                await reloader.reload("another worker")

    def _read(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int(self.path.read_text(encoding="ascii").strip() or 0)
        return 0
