"""The job backend is chosen by configuration (memory for one process, SQLite for several
workers of one host, Redis when a URL is set); settings are validated, named when wrong, and
the Redis password never shown."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.services import log_events
from zenml_serving.config import ConfigError, ServingConfig, redact_url
from zenml_serving.execution.backends import build_backend, process_owner
from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore
from zenml_serving.execution.redis_backend import RedisJobBackend
from zenml_serving.execution.sqlite_backend import SqliteJobBackend


class TestRedisSettings:
    """ZENML_SERVING_REDIS_* are parsed, checked, and named when wrong."""

    def test_defaults_mean_in_memory(self) -> None:
        config = ServingConfig.from_env({})
        assert config.redis_url is None
        assert config.redis_prefix == "zenml-serving"
        assert config.redis_timeout_s == 2.0

    @pytest.mark.parametrize(
        "url",
        [
            "redis://127.0.0.1:6379/0",
            "rediss://:secret@redis.example:6380/1",
            "redis://user:secret@[::1]:6379",
            "unix:///run/redis.sock?db=2",
        ],
    )
    def test_redis_urls_are_accepted(self, url: str) -> None:
        assert ServingConfig.from_env({"ZENML_SERVING_REDIS_URL": url}).redis_url == url

    @pytest.mark.parametrize(
        ("variable", "value", "expected"),
        [
            ("ZENML_SERVING_REDIS_URL", "localhost:6379", "redis://"),
            ("ZENML_SERVING_REDIS_URL", "http://redis:6379", "redis://"),
            ("ZENML_SERVING_REDIS_URL", "redis://", "redis://"),
            ("ZENML_SERVING_REDIS_URL", "redis://host:99999", "redis://"),
            ("ZENML_SERVING_REDIS_PREFIX", "has space", "letters, digits"),
            ("ZENML_SERVING_REDIS_PREFIX", "a{b}", "no spaces or braces"),
            ("ZENML_SERVING_REDIS_TIMEOUT", "0", "seconds > 0"),
        ],
    )
    def test_a_bad_value_names_the_variable(self, variable: str, value: str, expected: str) -> None:
        with pytest.raises(ConfigError) as raised:
            ServingConfig.from_env({variable: value})
        assert str(raised.value).startswith(f"{variable}={value!r} is invalid")
        assert expected in str(raised.value)

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
            ("rediss://me:s3cret@[::1]:6380", "rediss://me:***@[::1]:6380"),
            ("redis://redis:6379/0?password=s3cret&db=1", "redis://redis:6379/0?password=***&db=1"),
            ("redis://redis:6379/0", "redis://redis:6379/0"),
        ],
    )
    def test_passwords_are_never_shown(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown
        view = ServingConfig.from_env({"ZENML_SERVING_REDIS_URL": url}).public_view()
        assert view["redis_url"] == shown


class TestJobBackendSettings:
    """ZENML_SERVING_JOB_BACKEND, ZENML_SERVING_MAX_JOB_BYTES, ZENML_SERVING_RUNTIME_DIR."""

    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({}, "memory"),
            ({"ZENML_SERVING_WORKERS": "2"}, "sqlite"),
            ({"ZENML_SERVING_WORKERS": "2", "ZENML_SERVING_REDIS_URL": "redis://r:6379"}, "redis"),
            ({"ZENML_SERVING_WORKERS": "2", "ZENML_SERVING_JOB_BACKEND": "memory"}, "memory"),
            ({"ZENML_SERVING_JOB_BACKEND": "sqlite"}, "sqlite"),
        ],
    )
    def test_auto_picks_the_backend_that_shares_jobs(
        self, env: dict[str, str], expected: str
    ) -> None:
        assert ServingConfig.from_env(env).effective_job_backend == expected

    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({"ZENML_SERVING_JOB_BACKEND": "redis"}, "needs ZENML_SERVING_REDIS_URL"),
            ({"ZENML_SERVING_JOB_BACKEND": "files"}, "auto | memory | sqlite | redis"),
            ({"ZENML_SERVING_MAX_JOB_BYTES": "100"}, "65536"),
            ({"ZENML_SERVING_MAX_JOB_BYTES": "lots"}, "bytes"),
        ],
    )
    def test_a_bad_value_names_the_variable(self, env: dict[str, str], expected: str) -> None:
        with pytest.raises(ConfigError) as raised:
            ServingConfig.from_env(env)
        assert str(raised.value).startswith(next(iter(env)))
        assert expected in str(raised.value)

    def test_the_runtime_folder_must_not_be_a_link(self, tmp_path: Path) -> None:
        (tmp_path / "real").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "real")
        config = ServingConfig(workers=2, runtime_dir=tmp_path / "link")
        with pytest.raises(ConfigError, match="ZENML_SERVING_RUNTIME_DIR"):
            build_backend(config, uuid.uuid4())


class TestBuildBackend:
    """One process: memory; several workers: SQLite in a private folder (memory, with a
    warning, only when asked for); a URL: Redis, namespaced."""

    def test_in_memory_by_default(self) -> None:
        backend = build_backend(ServingConfig(), uuid.uuid4())
        assert isinstance(backend.jobs, MemoryJobStore)
        assert isinstance(backend.events, MemoryEventLog)
        assert backend.jobs.describe()["shared"] is False

    def test_several_workers_share_a_private_sqlite_store(self, tmp_path: Path) -> None:
        snapshot = uuid.uuid4()
        folder = tmp_path / "runtime"
        backend = build_backend(ServingConfig(workers=2, runtime_dir=folder), snapshot)
        assert isinstance(backend.jobs, SqliteJobBackend)
        assert backend.events is backend.jobs
        assert backend.jobs.path == folder / f"jobs-{snapshot}.sqlite3"
        assert backend.jobs.owner == process_owner()
        assert os.stat(folder).st_mode & 0o777 == 0o700

    def test_several_workers_in_memory_only_when_asked_and_warned_about(self) -> None:
        with log_events() as logs:
            backend = build_backend(ServingConfig(workers=2, job_backend="memory"), uuid.uuid4())
        assert isinstance(backend.jobs, MemoryJobStore)
        assert [e["event"] for e in logs] == ["job_backend_per_worker"]
        assert "404" in logs[0]["detail"]

    def test_redis_is_namespaced_by_prefix_and_snapshot(self) -> None:
        snapshot = uuid.uuid4()
        backend = build_backend(
            ServingConfig(redis_url="redis://:pw@redis:6379/0", redis_prefix="team-a"), snapshot
        )
        assert isinstance(backend.jobs, RedisJobBackend)
        assert backend.events is backend.jobs
        assert backend.jobs.namespace == f"team-a:{{{snapshot}}}"
        assert backend.jobs.owner == process_owner()
        description = backend.jobs.describe()
        assert description["url"] == "redis://:***@redis:6379/0"
        assert description["connected"] is False, "not started yet"
