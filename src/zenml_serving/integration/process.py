"""The service as a local background process: start it, wait for it, check it, drain it.

`zenml-serving serve` (granian) runs in its own session with its output appended to a log
file, so it outlives the `zenml` command that started it. It is recognised later by its
process id *and* its command line, so a recycled process id is never taken for it (or
signalled). Stopping sends SIGTERM, which drains (in-flight work gets
ZENML_SERVING_SHUTDOWN_GRACE), and SIGKILL only past the deadline.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "ServiceExitedError",
    "ServiceProcess",
    "is_running",
    "start_service",
    "stop_service",
    "wait_healthy",
]

_MARKER = "zenml_serving"
_POLL_S = 0.2
# Services this interpreter started (e.g. `pipeline.deploy()` in a notebook): their handles
# are kept, so that Python neither warns about a running child at garbage collection nor
# leaves a stopped one as a zombie (`stop_service` collects its exit status).
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


@atexit.register
def _let_services_outlive_us() -> None:
    """A service outlives the command that started it on purpose (`zenml pipeline deploy`):
    drop the handles without Python's "subprocess is still running" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        _STARTED.clear()


class ServiceExitedError(RuntimeError):
    """The service ended before it was ready; the message ends with its last log lines."""


@dataclass(frozen=True)
class ServiceProcess:
    """A started service."""

    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid


def start_service(env: Mapping[str, str], log_file: Path, cwd: Path) -> ServiceProcess:
    """Start `python -m zenml_serving serve` with `env`, output appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", _MARKER, "serve"],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _STARTED[process.pid] = process
    return ServiceProcess(process=process, log_file=log_file)


def is_running(pid: int) -> bool:
    """True if `pid` is a live (not zombie) zenml-serving process."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
        return any(_MARKER in part for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def wait_healthy(service: ServiceProcess, health_url: str, timeout_s: float) -> bool:
    """Wait until `health_url` answers 200 (True) or `timeout_s` passes (False); raise
    ServiceExitedError if the process ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # The Popen handle, not `is_running`: until exec, the child shows our command line.
        if service.process.poll() is not None:
            raise ServiceExitedError(
                f"the service exited (status {service.process.returncode}) before it was "
                f"ready; its log ({service.log_file}) ends with:\n" + tail(service.log_file, 15)
            )
        if probe(health_url):
            return True
        time.sleep(_POLL_S)
    return False


def probe(url: str, timeout_s: float = 2.0) -> bool:
    """True if GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http(s) URL we built
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def stop_service(pid: int, timeout_s: float) -> bool:
    """SIGTERM (drain) and wait up to `timeout_s`, then SIGKILL the process group. True if a
    process was stopped, False if none was running."""
    if not is_running(pid):
        return False
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
            process.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass
    _reap(pid)
    return True


def tail(log_file: Path, lines: int) -> str:
    """The last `lines` lines of `log_file` ("" if it does not exist)."""
    try:
        with log_file.open(encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def _reap(pid: int) -> None:
    """Collect the exit status of a service this interpreter started."""
    started = _STARTED.get(pid)
    if started is not None and started.poll() is not None:
        del _STARTED[pid]
