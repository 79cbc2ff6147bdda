"""Hostile input and faults, round 2 (issue 17): each defect found by probing a live service,
replayed against a real granian process."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets.sync.client as ws_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, start_service, wait_until
from tests.e2e.sse import read_events

pytestmark = pytest.mark.e2e

SLOW = "tests.pipelines.slow:slow_pipeline"
PROBLEM = "urn:zenml-serving:problem:"


def slow_params(first: float = 0.0) -> dict[str, Any]:
    return {"parameters": {"journal": "", "first_s": first, "second_s": 0.0, "third_s": 0.0}}


@pytest.fixture(scope="module")
def service(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """Four streams in all, two per client address, quick heartbeats, a 1 s body timeout."""
    started = start_service(
        snapshot_of(SLOW),
        zenml_store_env,
        tmp_path_factory.mktemp("hostile"),
        ZENML_SERVING_MAX_STREAMS="4",
        ZENML_SERVING_MAX_STREAMS_PER_CLIENT="2",
        ZENML_SERVING_SSE_HEARTBEAT="0.5",
        ZENML_SERVING_BODY_TIMEOUT="1",
    )
    yield started
    started.terminate()


def ws_url(service: ServiceProcess) -> str:
    return service.url.replace("http", "ws") + "/stream"


def connect_from(service: ServiceProcess, address: str, **options: Any) -> Any:
    """A WebSocket to the service from a loopback `address` of the test's choosing."""
    sock = socket.create_connection(("127.0.0.1", service.port), source_address=(address, 0))
    return ws_client.connect(ws_url(service), sock=sock, **options)


def receive_until(sock: Any, predicate: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        message = json.loads(sock.recv(timeout=30))
        messages.append(message)
        if predicate(message):
            return messages


def read_until_closed(sock: Any) -> tuple[list[dict[str, Any]], int | None]:
    """The messages until the server closes the socket, and its close code (None: the
    connection dropped without a close frame)."""
    messages: list[dict[str, Any]] = []
    try:
        while True:
            messages.append(json.loads(sock.recv(timeout=30)))
    except ConnectionClosed as closed:
        return messages, closed.rcvd.code if closed.rcvd is not None else None


def close_code(sock: Any) -> int | None:
    """Read until the server closes the socket; its close code."""
    return read_until_closed(sock)[1]


def no_unhandled_errors(service: ServiceProcess) -> None:
    log = service.log()
    assert "unhandled_exception" not in log
    assert "Traceback" not in log


class TestStreamCaps:
    """Streams are capped per client (429) and in all (503), with Retry-After; probes and
    invocations still answer while streams are at the cap (defect 1)."""

    def test_caps_and_probes_at_the_cap(self, service: ServiceProcess) -> None:
        job = service.client.post("/invoke?mode=async", json=slow_params(60)).json()
        clients = {
            address: httpx.Client(
                base_url=service.url,
                timeout=30,
                transport=httpx.HTTPTransport(local_address=address),
            )
            for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3")
        }
        try:
            with contextlib.ExitStack() as open_streams:
                for address in ("127.0.0.1", "127.0.0.2"):
                    for _ in range(2):
                        response = open_streams.enter_context(
                            clients[address].stream("GET", job["stream"])
                        )
                        assert response.status_code == 200
                mine = clients["127.0.0.1"].get(job["stream"])
                assert mine.status_code == 429
                assert mine.json()["type"] == PROBLEM + "too-many-streams"
                assert int(mine.headers["retry-after"]) > 0
                everyone = clients["127.0.0.3"].get(job["stream"])
                assert everyone.status_code == 503
                assert everyone.json()["type"] == PROBLEM + "streams-exhausted"
                assert int(everyone.headers["retry-after"]) > 0
                with connect_from(service, "127.0.0.3") as refused:
                    assert close_code(refused) == 1013
                with connect_from(service, "127.0.0.1") as refused:
                    assert close_code(refused) == 4429

                assert service.client.get("/health").status_code == 200
                assert service.client.post("/invoke", json=slow_params()).status_code == 200
                assert service.client.get("/status").json()["execution"]["open_streams"] == 4
            wait_until(
                lambda: service.client.get("/status").json()["execution"]["open_streams"] == 0,
                what="the closed streams to be given back",
            )
            with clients["127.0.0.3"].stream("GET", job["stream"]) as again:
                assert again.status_code == 200
        finally:
            for client in clients.values():
                client.close()
            service.client.post(f"/jobs/{job['job_id']}/cancel")


class TestStreamEnds:
    """A client that has seen the final event gets an ended stream at once (defect 2)."""

    def test_last_event_id_at_or_past_the_end_ends_the_stream(
        self, service: ServiceProcess
    ) -> None:
        job = service.client.post("/invoke?mode=async", json=slow_params()).json()
        with service.client.stream("GET", job["stream"]) as response:
            events = [e for e in read_events(response) if e.event != "heartbeat"]
        final_id = int(events[-1].id or 0)
        assert events[-1].event == "job.completed"
        for last_seen in (final_id, final_id + 1000):
            for options in (
                {"headers": {"Last-Event-ID": str(last_seen)}},
                {"params": {"after": last_seen}},
            ):
                with service.client.stream("GET", job["stream"], timeout=10, **options) as again:
                    assert [e.event for e in read_events(again)] == []


class TestSocketMessages:
    """Unknown jobs, wrong field types and deep nesting over the WebSocket (defects 5, 6, Also)."""

    def test_subscribing_to_unknown_jobs_is_answered_every_time(
        self, service: ServiceProcess
    ) -> None:
        with ws_client.connect(ws_url(service)) as sock:
            for job_id in ["nope"] * 3 + [f"unknown-{i}" for i in range(200)]:
                sock.send(json.dumps({"type": "subscribe", "job_id": job_id}))
                reply = json.loads(sock.recv(timeout=30))
                assert (reply["type"], reply["status"], reply["job_id"]) == ("error", 404, job_id)
            sock.send(json.dumps({"type": "ping"}))
            assert json.loads(sock.recv(timeout=30)) == {"type": "pong"}

    def test_wrong_field_types_are_422_frames_and_the_socket_stays_open(
        self, service: ServiceProcess
    ) -> None:
        with ws_client.connect(ws_url(service)) as sock:
            sock.send(json.dumps({"type": "subscribe", "job_id": "x", "after": -5}))
            after = json.loads(sock.recv(timeout=30))
            assert (after["status"], after["errors"][0]["field"]) == (422, "after")
            sock.send(json.dumps({"type": "invoke", "request_id": 5, **slow_params()}))
            request_id = json.loads(sock.recv(timeout=30))
            assert (request_id["status"], request_id["errors"][0]["field"]) == (422, "request_id")
            sock.send(json.dumps({"type": "ping"}))
            assert json.loads(sock.recv(timeout=30)) == {"type": "pong"}

    def test_deep_nesting_is_a_422_frame_or_closes_1009(self, service: ServiceProcess) -> None:
        nested: Any = "x"
        for _ in range(100):
            nested = {"a": nested}
        with ws_client.connect(ws_url(service)) as sock:
            for body in (
                {"parameters": {"journal": nested}},
                {"parameters": {}, "unknown": nested},
                {"parameters": {}, "capture_override": nested},
            ):
                sock.send(json.dumps({"type": "invoke", "request_id": "deep", **body}))
                error = receive_until(sock, lambda m: m["type"] == "error")[-1]
                assert error["status"] == 422
                assert "nested deeper" in error["errors"][0]["message"]
        with ws_client.connect(ws_url(service), max_size=None) as sock:
            sock.send('{"type": "invoke", "parameters": ' + "[" * 100_000 + "]" * 100_000 + "}")
            assert close_code(sock) == 1009
        no_unhandled_errors(service)


class TestSocketFollowBound:
    """One socket follows at most 100 jobs; one more is a 429 error, not memory (defect 5)."""

    def test_the_101st_subscription_is_refused(self, service_factory: ServiceFactory) -> None:
        # One slot: one job runs (and is orphaned when cancelled), the other 100 wait.
        service = service_factory(
            snapshot_of(SLOW), ZENML_SERVING_MAX_CONCURRENCY="1", ZENML_SERVING_MAX_QUEUE_SIZE="200"
        )
        jobs = [
            service.client.post("/invoke?mode=async", json=slow_params(20)).json()["job_id"]
            for _ in range(101)
        ]
        try:
            with ws_client.connect(ws_url(service)) as sock:
                for job_id in jobs:
                    sock.send(json.dumps({"type": "subscribe", "job_id": job_id}))
                refused = receive_until(sock, lambda m: m["type"] == "error")[-1]
                assert (refused["status"], refused["job_id"]) == (429, jobs[-1])
                sock.send(json.dumps({"type": "unsubscribe", "job_id": jobs[0]}))
                sock.send(json.dumps({"type": "subscribe", "job_id": jobs[-1]}))
                followed = receive_until(
                    sock, lambda m: m["type"] == "event" and m["job_id"] == jobs[-1]
                )
                assert not [m for m in followed if m["type"] == "error"]
        finally:
            for job_id in jobs:
                service.client.post(f"/jobs/{job_id}/cancel")


_JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()
)


def _nested(leaf: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        leaf = [leaf] if as_list else {"\u0000k": leaf}
    return leaf


class TestHostileProperties:
    """Whatever the nesting, NUL bytes, emptiness or method: a 4xx or a 2xx, never a 5xx."""

    @given(
        depth=st.integers(0, 3000),
        where=st.sampled_from(["parameters", "capture_override", "unknown\u0000"]),
        leaf=_JSON_LEAF,
        as_list=st.booleans(),
    )
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def test_nested_bodies_are_never_a_server_error(
        self, service: ServiceProcess, depth: int, where: str, leaf: Any, as_list: bool
    ) -> None:
        body = {"parameters": {}, where: _nested(leaf, depth, as_list)}
        try:
            content = json.dumps(body).encode()
        except RecursionError:
            return  # deeper than the test's own encoder goes
        response = service.client.post(
            "/invoke", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (200, 400, 422), response.text
        if response.status_code != 200:
            assert response.json()["type"].startswith(PROBLEM)

    @given(raw=st.binary(max_size=64))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def test_any_bytes_as_a_body_are_a_4xx(self, service: ServiceProcess, raw: bytes) -> None:
        response = service.client.post(
            "/invoke", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code < 500, response.text

    @given(name=st.text(max_size=20))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def test_any_static_name_is_a_file_or_a_404(self, service: ServiceProcess, name: str) -> None:
        url = httpx.URL(service.url).copy_with(
            raw_path=b"/playground/static/" + quote(name, safe="").encode()
        )
        for method in ("GET", "HEAD"):
            response = service.client.request(method, url)
            assert response.status_code in (200, 404), (method, name)

    @given(path=st.sampled_from(["/health", "/livez", "/info", "/status", "/jobs", "/nope"]))
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    def test_head_answers_as_get_does(self, service: ServiceProcess, path: str) -> None:
        head, get = service.client.head(path), service.client.get(path)
        assert head.status_code == get.status_code
        assert head.content == b""


class TestBodies:
    """Deep, empty, odd and slow bodies are clear 4xx answers, never a 5xx (6, 13, 19, Also)."""

    @pytest.mark.parametrize("where", ["parameters", "unknown", "capture_override"])
    def test_deep_nesting_is_refused_before_any_recursive_walk(
        self, service: ServiceProcess, where: str
    ) -> None:
        for depth, status in ((100, 422), (5000, 400), (100_000, 400)):
            inner = "[" * depth + "]" * depth
            body = (
                '{"parameters": ' + inner + "}"
                if where == "parameters"
                else '{"parameters": {}, "' + where + '": ' + inner + "}"
            )
            response = service.client.post(
                "/invoke", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == status, response.text
            assert response.json()["type"] in (PROBLEM + "validation", PROBLEM + "malformed-json")
        no_unhandled_errors(service)

    def test_empty_and_odd_json(self, service: ServiceProcess) -> None:
        def post(body: bytes) -> httpx.Response:
            return service.client.post(
                "/invoke", content=body, headers={"Content-Type": "application/json"}
            )

        empty = post(b"")
        assert (empty.status_code, empty.json()["type"]) == (400, PROBLEM + "malformed-json")
        surrogate = post(b'{"parameters": {"journal": "\\ud800"}}')
        assert surrogate.status_code == 400
        assert "surrogate" in surrogate.json()["detail"]
        assert surrogate.json()["position"] == 28  # the backslash of the escape
        overflow = post(b'{"parameters": {"first_s": 1e309}}')
        assert overflow.status_code == 400
        assert overflow.json()["position"] == 27

    def test_a_body_short_of_its_content_length_is_408(self, service: ServiceProcess) -> None:
        with socket.create_connection(("127.0.0.1", service.port), timeout=30) as raw:
            raw.sendall(
                b"POST /invoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"parameters"'
            )
            answer = raw.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"body-timeout" in answer


class TestStaticAndProbes:
    """Static paths, HEAD, /status and the OpenAPI pages (defects 7, 14, 16, 17, 18)."""

    def test_odd_static_paths_are_plain_404s(self, service: ServiceProcess) -> None:
        for path in (
            "/playground/static/%00",
            "/playground/static/.",
            "/playground/static/x%00.js",
        ):
            response = service.client.get(path)
            assert response.status_code == 404, path
            assert "zenml_serving" not in response.text
            assert "/playground/static" not in response.json()["detail"]
        assert service.client.get("/playground/static/app.js").status_code == 200
        no_unhandled_errors(service)

    def test_head_is_served_for_get_routes(self, service: ServiceProcess) -> None:
        for path in ("/health", "/livez", "/info", "/playground", "/playground/static/app.js"):
            head = service.client.head(path)
            assert head.status_code == 200, path
            assert head.content == b""
            get = service.client.get(path)
            assert head.headers["content-type"] == get.headers["content-type"]

    def test_status_does_not_claim_where_granian_listens(self, service: ServiceProcess) -> None:
        config = service.client.get("/status").json()["config"]
        assert "host" not in config
        assert "port" not in config

    def test_no_openapi_viewer_that_cannot_render(self, service: ServiceProcess) -> None:
        assert service.client.get("/schema/swagger").status_code == 404
        document = service.client.get("/schema")
        assert document.status_code == 200
        assert document.json()["openapi"].startswith("3.")


class TestSocketOrigin:
    """A WebSocket from a foreign page is refused (defect 9)."""

    def test_foreign_origin_is_closed_4403_own_and_none_are_served(
        self, service: ServiceProcess
    ) -> None:
        with ws_client.connect(ws_url(service), origin=Origin("https://evil.example")) as sock:
            assert close_code(sock) == 4403
        for origin in (Origin(service.url), None):
            with ws_client.connect(ws_url(service), origin=origin) as sock:
                sock.send(json.dumps({"type": "ping"}))
                assert json.loads(sock.recv(timeout=30)) == {"type": "pong"}

    def test_the_switch_accepts_any_origin(self, service_factory: ServiceFactory) -> None:
        service = service_factory(snapshot_of(SLOW), ZENML_SERVING_WS_CHECK_ORIGIN="false")
        with ws_client.connect(ws_url(service), origin=Origin("https://tool.example")) as sock:
            sock.send(json.dumps({"type": "ping"}))
            assert json.loads(sock.recv(timeout=30)) == {"type": "pong"}


class TestShutdownAnswers:
    """SIGTERM: WebSocket followers are told and closed 1001; a sync call stopped at the end of
    the grace is a 503, not the client-closed 499 (defects 10, 11)."""

    def test_websocket_followers_get_a_final_word_and_1001(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of(SLOW), ZENML_SERVING_SHUTDOWN_GRACE="2")
        with ws_client.connect(ws_url(service)) as sock:
            sock.send(json.dumps({"type": "invoke", "request_id": "r", **slow_params(20)}))
            accepted = receive_until(sock, lambda m: m["type"] == "accepted")[-1]
            receive_until(sock, lambda m: m.get("event", {}).get("type") == "step.started")
            service.process.send_signal(15)
            messages, code = read_until_closed(sock)
        assert code == 1001
        final = [m for m in messages if m["type"] == "error"]
        assert final[-1]["job_id"] == accepted["job_id"]
        assert final[-1]["status"] == 503
        assert service.process.wait(60) == 0
        assert "drain_finished" in service.log()

    def test_sync_call_stopped_by_the_end_of_the_grace_is_503(
        self, service_factory: ServiceFactory, tmp_path: Path
    ) -> None:
        service = service_factory(snapshot_of(SLOW), ZENML_SERVING_SHUTDOWN_GRACE="1")
        journal = tmp_path / "j"
        body = slow_params(20)
        body["parameters"]["journal"] = str(journal)
        with httpx.Client(base_url=service.url, timeout=60) as client:
            answers: list[httpx.Response] = []
            call = threading.Thread(
                target=lambda: answers.append(client.post("/invoke", json=body))
            )
            call.start()
            wait_until(journal.exists, what="the step to start")
            service.process.send_signal(15)
            call.join(60)
        assert answers[0].status_code == 503
        assert answers[0].json()["type"] == PROBLEM + "shutting-down"


class TestSecretsStayInside:
    """The Redis password never reaches the startup error, nor a 503 its address (8, 15)."""

    def test_startup_error_masks_the_redis_password(self, service_factory: ServiceFactory) -> None:
        service = service_factory(
            snapshot_of(SLOW),
            wait=False,
            ZENML_SERVING_REDIS_URL="redis://admin:hunter2-secret@127.0.0.1:99999/0",
        )
        assert service.process.wait(60) != 0
        log = service.log()
        assert "ZENML_SERVING_REDIS_URL" in log
        assert "hunter2-secret" not in log
        assert "admin:***@" in log

    def test_unreachable_redis_503_names_no_address(self, service_factory: ServiceFactory) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        service = service_factory(
            snapshot_of(SLOW),
            ZENML_SERVING_REDIS_URL=f"redis://operator:pw-secret@127.0.0.1:{port}/0",
            ZENML_SERVING_REDIS_TIMEOUT="0.5",
        )
        response = service.client.post("/invoke?mode=async", json=slow_params())
        assert response.status_code == 503
        for secret in ("operator", "pw-secret", str(port), "127.0.0.1"):
            assert secret not in response.text
        assert "job_backend_unavailable" in service.log()
