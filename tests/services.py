"""The machine's Redis and MariaDB servers for tests, and Redis servers a test starts itself.

A test that needs a server and does not find it is skipped with the reason, except in CI
(`CI` set), where a missing server is a failure: CI machines have both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from zenml_serving.telemetry.logging import configure_logging

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymysql.connections import Connection

# Configure logging while tests are collected, before any logger of the package is first used:
# structlog caches a logger on first use with the configuration of that moment, and
# `log_events` needs them all to log through the standard library.
configure_logging()

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
SHARED_REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306


@contextlib.contextmanager
def log_events(name: str = "zenml_serving") -> Iterator[list[dict[str, Any]]]:
    """The structlog event dicts the package's loggers emit meanwhile (unlike
    `structlog.testing.capture_logs`, this also sees loggers cached before a reconfiguration,
    which `create_app` does)."""
    events: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, dict):
                events.append(dict(record.msg))

    handler = Collect()
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.DEBUG)  # importing ZenML may have raised the root logger's level
    logger.addHandler(handler)
    try:
        yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`; in CI (where everything must be present) fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shared_redis_url() -> str:
    """The machine's Redis (skip, or fail in CI, if it does not answer PING)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}: {exc}")
    finally:
        client.close()
    return SHARED_REDIS_URL


def fresh_namespace(label: str) -> str:
    """A key prefix no other test (or deployment) uses."""
    return f"zenml-serving-test-{label}-{uuid.uuid4().hex[:12]}"


def delete_namespace(prefix: str) -> None:
    """Remove every key under `prefix` from the machine's Redis."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
    finally:
        client.close()


@dataclass
class RedisServer:
    """A `redis-server` of the test's own on a free port (no persistence), to stop and start."""

    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed (Debian package redis-server)")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        if self.log_path is None:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        else:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20.0
        while not _accepts("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop it (its data goes with it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def mariadb_root() -> Connection:
    """A pymysql connection to the machine's MariaDB as root (skip/fail if absent)."""
    import pymysql

    try:
        return pymysql.connect(
            host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="", autocommit=True
        )
    except pymysql.MySQLError as exc:
        unavailable(f"no MariaDB server on {MARIADB_HOST}:{MARIADB_PORT} for root: {exc}")
