"""Targets (a command + env + readiness URL) and the servers started from them.

A server runs in its own session (process group) so that stopping it also stops the workers it
forked; every server started is registered and stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.machine import affinity_of, tree_cpu_ticks, tree_pids

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["Server", "ServerError", "Target", "free_port", "stop_all"]

_RUNNING: list[Server] = []


class ServerError(RuntimeError):
    """A server did not start, or did not become ready in time."""


@dataclass(frozen=True)
class Target:
    """Something to benchmark: how to start it and how to know it is ready.

    `{port}` in `argv` and in `env` values is replaced by the port given at start.
    """

    name: str
    argv: tuple[str, ...]
    description: str
    env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str = "/health"
    ready_timeout_s: float = 120.0
    shape_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per shape name, Shape fields to replace for this target (e.g. a slow server's timeout)."""

    def command_line(self, port: int | str = "{port}") -> str:
        """The shell line that starts it (env included) for BENCHMARKS.md."""
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        argv = " ".join(a.replace("{port}", str(port)) for a in self.argv)
        return f"{env} {argv}".replace("{port}", str(port)).strip()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if run.py dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One running instance of a target."""

    def __init__(
        self,
        target: Target,
        *,
        base_env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        cpu: int | None,
    ) -> None:
        self.target = target
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cpu = cpu
        env = dict(base_env)
        env.update({k: v.replace("{port}", str(self.port)) for k, v in target.env.items()})
        argv = [a.replace("{port}", str(self.port)) for a in target.argv]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]
        self.argv = argv
        self._log = log_path.open("ab")
        self._log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        self._log.flush()
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - run.py starts servers from one thread
        )
        _RUNNING.append(self)
        self.ready_after_s: float | None = None

    @property
    def pid(self) -> int:
        """The process we started (granian's main process, or uvicorn's only one)."""
        return self.process.pid

    def wait_ready(self, *, poll_s: float = 0.02) -> float:
        """Poll the readiness URL until it answers 200; return seconds since start."""
        url = self.base_url + self.target.ready_path
        deadline = self.started_at + self.target.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.target.name} exited with {self.process.returncode} before it was "
                    f"ready; see {self._log.name}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        self.ready_after_s = time.monotonic() - self.started_at
                        return self.ready_after_s
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(poll_s)
        raise ServerError(
            f"{self.target.name} not ready after {self.target.ready_timeout_s:g} s; "
            f"see {self._log.name}"
        )

    def cpu_ticks(self) -> int:
        """CPU time (clock ticks) of the server and all its processes so far."""
        return tree_cpu_ticks(self.pid)

    def describe(self) -> dict[str, Any]:
        """Processes and their CPU affinity, for the raw results file."""
        return {
            "argv": self.argv,
            "pids": {str(p): affinity_of(p) for p in tree_pids(self.pid)},
            "ready_after_s": self.ready_after_s,
        }

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        # Workers that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


def stop_all() -> None:
    """Stop every server still running (called on exit, error and Ctrl-C)."""
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop(timeout_s=5.0)
