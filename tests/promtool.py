"""Finding promtool and the Prometheus server (Debian's `prometheus` package, unpacked by
`.ci/run`) for tests. The server is only ever started by a test, on loopback, and stopped after."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.services import unavailable

CACHE_BIN = Path.home() / ".cache" / "zenml-serving" / "promtool" / "usr" / "bin"
CACHE = CACHE_BIN / "promtool"

INSTALL_HINT = (
    "promtool not found (set PROMTOOL, put it on PATH, or unpack Debian's package: "
    "apt-get download prometheus && dpkg-deb -x prometheus_*.deb ~/.cache/zenml-serving/promtool)"
)


def _find(variable: str, name: str) -> str | None:
    """$`variable`, then `name` on PATH, then the cache folder `.ci/run` unpacks into."""
    for candidate in (os.environ.get(variable), shutil.which(name), str(CACHE_BIN / name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_promtool() -> str | None:
    """$PROMTOOL, then promtool on PATH, then the cache folder `.ci/run` unpacks into."""
    return _find("PROMTOOL", "promtool")


def require_prometheus() -> str:
    """The Prometheus server's path ($PROMETHEUS, PATH, the cache), or skip (fail in CI)."""
    found = _find("PROMETHEUS", "prometheus")
    if found is None:
        unavailable(INSTALL_HINT.replace("promtool not found", "prometheus not found"))
    return found


def require_promtool() -> str:
    """promtool's path, or skip (fail in CI) with the reason and how to install it."""
    found = find_promtool()
    if found is None:
        unavailable(INSTALL_HINT)
    return found
