"""A shared ZenML store on MySQL (the machine's MariaDB): snapshot into it, serve from it.

Replicas share one ZenML store, so snapshot loading must work against a MySQL-compatible
server as well as the local SQLite default. The test creates a fresh database and a user of
its own (ZenML refuses a MySQL URL without a password, and root has none here) and drops both
at the end of the module.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import start_service
from tests.services import MARIADB_HOST, MARIADB_PORT, mariadb_root

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

TEXT = "examples.text_pipeline:text_pipeline"


@pytest.fixture(scope="module")
def mysql_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a ZenML client on a fresh MariaDB database."""
    root = mariadb_root()
    suffix = secrets.token_hex(4)
    database, user, password = f"zenml_serving_{suffix}", f"zs_{suffix}", secrets.token_hex(12)
    with root.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}`")
        for host in ("%", "localhost"):
            cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'{host}'")
    try:
        yield {
            "ZENML_CONFIG_PATH": str(tmp_path_factory.mktemp("mysql-client") / "config"),
            "ZENML_STORE_URL": (
                f"mysql://{user}:{password}@{MARIADB_HOST}:{MARIADB_PORT}/{database}"
            ),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_LOGGING_VERBOSITY": "WARN",
            "ZENML_ENABLE_RICH_TRACEBACK": "false",
            "ZENML_SERVING_SOURCE_ROOT": str(REPO_ROOT),
        }
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
            for host in ("%", "localhost"):
                cursor.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        root.close()


def snapshot_into(store_env: dict[str, str], target: str = TEXT) -> str:
    """`zenml-serving snapshot` a pipeline (the example by default) into the store; return
    the snapshot ID."""
    result = subprocess.run(
        [sys.executable, "-m", "zenml_serving", "snapshot", target],
        cwd=REPO_ROOT,
        # The snapshot command migrates the fresh database: drop the read-only switch an
        # in-process service load of an earlier test left in this process's environment.
        env={
            **{k: v for k, v in os.environ.items() if k != "DISABLE_DATABASE_MIGRATION"},
            **store_env,
        },
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


class TestMySqlStore:
    """Snapshot and serve through a MySQL-compatible ZenML store."""

    def test_a_snapshot_in_mariadb_is_loaded_and_served(
        self, mysql_store: dict[str, str], tmp_path: Path
    ) -> None:
        snapshot_id = snapshot_into(mysql_store)
        database = mysql_store["ZENML_STORE_URL"].rsplit("/", 1)[1]
        root = mariadb_root()
        try:
            with root.cursor() as cursor:
                cursor.execute(f"SHOW TABLES FROM `{database}`")
                tables = {row[0] for row in cursor.fetchall()}
        finally:
            root.close()
        assert "pipeline" in tables, "ZenML created its schema in MariaDB, not in SQLite"

        service = start_service(snapshot_id, mysql_store, tmp_path)
        try:
            info = service.client.get("/info").json()
            assert info["snapshot"]["id"] == snapshot_id
            assert info["pipeline"]["name"] == "text_pipeline"
            response = service.client.post(
                "/invoke", json={"parameters": {"message": "I love fast reliable tools"}}
            )
            assert response.status_code == 200
            assert response.json()["outputs"] == {
                "output": {"text": "i love fast reliable tools", "score": 0.6, "label": "positive"}
            }
        finally:
            assert service.terminate() == 0
