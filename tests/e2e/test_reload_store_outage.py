"""A reload while the ZenML store is unreachable fails cleanly and the old version serves on.

The service reaches its store (a fresh MariaDB database, as in test_shared_store.py) through a
TCP relay this test owns: closing the relay makes the store unreachable for the running
service, reopening it brings it back, with no change to the service or the database.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port, start_service
from tests.e2e.test_shared_store import mysql_store, snapshot_into  # noqa: F401
from tests.services import MARIADB_HOST, MARIADB_PORT

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

CONTEXT = "tests.pipelines.step_context:context_pipeline"
KEY = "outage-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Relay:
    """Forwards 127.0.0.1:`port` to MariaDB until closed; can be reopened on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, []
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not, and
            # the socket would go on accepting.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((MARIADB_HOST, MARIADB_PORT), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


@pytest.fixture
def relay() -> Iterator[Relay]:
    relay = Relay()
    relay.open()
    yield relay
    relay.close()


class TestReloadWithTheStoreUnreachable:
    """The reload answers 503 naming the store problem; invocations keep their answers; once
    the store is back a reload succeeds."""

    def test_old_version_keeps_serving_until_the_store_returns(
        self,
        mysql_store: dict[str, str],  # noqa: F811 - the fixture imported above
        relay: Relay,
        tmp_path: Path,
    ) -> None:
        snapshot_id = snapshot_into(mysql_store, CONTEXT)
        direct = f"@{MARIADB_HOST}:{MARIADB_PORT}/"
        relayed = f"@127.0.0.1:{relay.port}/"
        store_env = {
            **mysql_store,
            "ZENML_STORE_URL": mysql_store["ZENML_STORE_URL"].replace(direct, relayed),
        }
        service = start_service(
            snapshot_id,
            store_env,
            tmp_path,
            ZENML_SERVING_AUTH_KEY=KEY,
            ZENML_SERVING_CREATE_RUNS="false",
        )
        try:
            invoke = {"json": {"parameters": {"name": "ada"}}, "headers": AUTH}
            assert service.client.post("/invoke", **invoke).status_code == 200
            relay.close()
            failed = service.client.post("/admin/reload", headers=AUTH)
            assert failed.status_code == 503
            problem = failed.json()
            assert problem["type"] == "urn:zenml-serving:problem:reload-failed"
            assert "version 1 keeps serving" in problem["detail"]
            assert "from the ZenML store" in problem["detail"]
            answer = service.client.post("/invoke", **invoke)
            assert answer.status_code == 200
            assert answer.json()["outputs"]["output"]["text"] == "hello, ada"
            assert '"event": "reload_failed"' in service.log()

            relay.open()
            reloaded = service.client.post("/admin/reload", headers=AUTH)
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json()["serving_version"] == 2
            assert service.client.post("/invoke", **invoke).status_code == 200
        finally:
            assert service.terminate() == 0
