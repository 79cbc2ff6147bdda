"""Finding promtool (Debian's `prometheus` package, unpacked without its daemon) for tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.services import unavailable

CACHE = Path.home() / ".cache" / "zenml-serving" / "promtool" / "usr" / "bin" / "promtool"

INSTALL_HINT = (
    "promtool not found (set PROMTOOL, put it on PATH, or unpack Debian's package: "
    "apt-get download prometheus && dpkg-deb -x prometheus_*.deb ~/.cache/zenml-serving/promtool)"
)


def find_promtool() -> str | None:
    """$PROMTOOL, then promtool on PATH, then the cache folder `.ci/run` unpacks into."""
    for candidate in (os.environ.get("PROMTOOL"), shutil.which("promtool"), str(CACHE)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_promtool() -> str:
    """promtool's path, or skip (fail in CI) with the reason and how to install it."""
    found = find_promtool()
    if found is None:
        unavailable(INSTALL_HINT)
    return found
