"""The flavor's process handling never signals a process that is not a zenml-serving one,
even when a recorded process id has been reused by another program."""

from __future__ import annotations

import subprocess
import sys

from zenml_serving.integration.process import is_running, stop_service


class TestRecycledProcessIds:
    """A recorded pid that now belongs to another program is left alone."""

    def test_a_foreign_process_is_not_ours_and_survives_stop(self) -> None:
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            assert is_running(other.pid) is False
            assert stop_service(other.pid, timeout_s=1) is False
            assert other.poll() is None  # still running: never signalled
        finally:
            other.kill()
            other.wait()

    def test_a_gone_process_is_not_running(self) -> None:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        assert is_running(gone.pid) is False
        assert stop_service(gone.pid, timeout_s=1) is False
