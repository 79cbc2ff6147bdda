"""Auth, body limits, CORS and response headers, in-process on a real snapshot.

What a caller or a browser would notice: who gets in, what a hostile body gets back, and which
headers every answer carries.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import AsyncTestClient

from tests.integration.conftest import served
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig

pytestmark = pytest.mark.anyio

TEXT = "examples.text_pipeline:text_pipeline"
KEY = "k3y-for-tests-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {KEY}"}
BODY = {"parameters": {"message": "I love fast reliable tools"}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def app_for(**config: Any) -> Litestar:
    return create_app(ServingConfig(**config), served_pipeline=served(TEXT))


@pytest.fixture
async def open_client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app_for(max_request_bytes=4096, max_parameter_depth=4)) as client:
        yield client


@pytest.fixture
async def keyed_client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app_for(auth_key=KEY)) as client:
        yield client


class TestBearerKey:
    """With ZENML_SERVING_AUTH_KEY set, only callers with the key reach the pipeline."""

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/invoke"),
            ("GET", "/jobs"),
            ("GET", "/jobs/00000000-0000-4000-8000-000000000000"),
            ("POST", "/jobs/00000000-0000-4000-8000-000000000000/cancel"),
            ("GET", "/stream/00000000-0000-4000-8000-000000000000"),
            ("GET", "/info"),
            ("GET", "/status"),
            ("GET", "/schema/openapi.json"),
        ],
    )
    async def test_without_a_key_every_api_route_is_401_and_says_nothing(
        self, keyed_client: AsyncTestClient[Litestar], method: str, path: str
    ) -> None:
        response = await keyed_client.request(method, path, json=BODY if method == "POST" else None)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="zenml-serving"'
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "urn:zenml-serving:problem:unauthorized"
        assert "text_pipeline" not in response.text
        assert "message" not in response.text.replace('"detail"', "")

    async def test_a_wrong_key_is_401_invalid_token(
        self, keyed_client: AsyncTestClient[Litestar]
    ) -> None:
        for credentials in ("Bearer not-the-key-at-all", "Basic " + KEY, "Bearer " + KEY[:-1]):
            response = await keyed_client.post(
                "/invoke", json=BODY, headers={"Authorization": credentials}
            )
            assert response.status_code == 401, credentials
            assert "invalid_token" in response.headers["www-authenticate"]

    async def test_the_key_gets_in(self, keyed_client: AsyncTestClient[Litestar]) -> None:
        response = await keyed_client.post("/invoke", json=BODY, headers=BEARER)
        assert response.status_code == 200
        assert response.json()["status"] == "completed"
        info = await keyed_client.get("/info", headers={"Authorization": f"bearer {KEY}"})
        assert info.status_code == 200

    async def test_probes_and_playground_stay_open_and_say_nothing_of_the_pipeline(
        self, keyed_client: AsyncTestClient[Litestar]
    ) -> None:
        for path in ("/health", "/livez", "/playground", "/playground/static/app.js"):
            response = await keyed_client.get(path)
            assert response.status_code == 200, path
            assert "text_pipeline" not in response.text, path

    async def test_metrics_need_the_key_unless_opened_for_scrapers(
        self, keyed_client: AsyncTestClient[Litestar]
    ) -> None:
        assert (await keyed_client.get("/metrics")).status_code == 401
        assert (await keyed_client.get("/metrics", headers=BEARER)).status_code == 200
        async with AsyncTestClient(app_for(auth_key=KEY, metrics_auth=False)) as client:
            assert (await client.get("/metrics")).status_code == 200

    async def test_websocket_needs_the_key_header_or_subprotocol(
        self, keyed_client: AsyncTestClient[Litestar]
    ) -> None:
        with await keyed_client.websocket_connect("/stream") as socket:
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive()
            assert closed.value.code == 4401
            assert "Authorization: Bearer" in closed.value.detail

        encoded = base64.urlsafe_b64encode(KEY.encode()).decode().rstrip("=")
        with await keyed_client.websocket_connect(
            "/stream", subprotocols=["zenml-serving", f"bearer.{encoded}"]
        ) as socket:
            socket.send_json({"type": "ping"})
            assert socket.receive_json() == {"type": "pong"}

        with await keyed_client.websocket_connect("/stream", headers=BEARER) as socket:
            socket.send_json({"type": "ping"})
            assert socket.receive_json() == {"type": "pong"}


class TestHostileBodies:
    """Each kind of bad body gets its own status and a detail that says what to fix."""

    async def test_wrong_content_type_is_415(self, open_client: AsyncTestClient[Litestar]) -> None:
        response = await open_client.post(
            "/invoke",
            content=b'{"parameters": {}}',
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 415
        assert "application/json" in response.json()["detail"]

    async def test_malformed_json_is_400_with_the_position(
        self, open_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await open_client.post(
            "/invoke",
            content=b'{"parameters": {"message": "x",}}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        problem = response.json()
        assert problem["type"] == "urn:zenml-serving:problem:malformed-json"
        assert problem["position"] == 31
        assert "byte 31" in problem["detail"]

    async def test_a_body_over_the_limit_is_413(
        self, open_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await open_client.post("/invoke", json={"parameters": {"message": "x" * 5000}})
        assert response.status_code == 413
        assert "ZENML_SERVING_MAX_REQUEST_SIZE" in response.json()["detail"]

    async def test_parameters_nested_too_deep_are_422_naming_the_field(
        self, open_client: AsyncTestClient[Litestar]
    ) -> None:
        deep: Any = 1
        for _ in range(6):
            deep = {"inner": deep}
        response = await open_client.post("/invoke", json={"parameters": {"message": deep}})
        assert response.status_code == 422
        errors = response.json()["errors"]
        assert errors[0]["field"] == "parameters.message.inner.inner.inner"
        assert "deeper than 4" in errors[0]["message"]

    async def test_too_many_values_are_422(self) -> None:
        app = app_for(max_parameter_items=100)
        async with AsyncTestClient(app) as client:
            response = await client.post("/invoke", json={"parameters": {"message": [1] * 200}})
        assert response.status_code == 422
        assert "more than 100 values" in response.json()["errors"][0]["message"]

    async def test_a_websocket_message_over_the_limit_closes_1009(
        self, open_client: AsyncTestClient[Litestar]
    ) -> None:
        with await open_client.websocket_connect("/stream") as socket:
            socket.send_text('{"type": "ping", "pad": "' + "x" * 5000 + '"}')
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive()
            assert closed.value.code == 1009

    async def test_a_websocket_invoke_too_deep_gets_a_422_message(
        self, open_client: AsyncTestClient[Litestar]
    ) -> None:
        with await open_client.websocket_connect("/stream") as socket:
            deep: Any = 1
            for _ in range(6):
                deep = [deep]
            socket.send_json({"type": "invoke", "request_id": "r1", "parameters": {"m": deep}})
            error = socket.receive_json()
            assert error["type"] == "error"
            assert error["status"] == 422
            assert error["request_id"] == "r1"
            assert error["errors"][0]["field"].startswith("parameters.m")


class TestBrowserFacing:
    """CORS only where configured; headers that keep API answers out of pages and caches."""

    async def test_security_headers_on_api_answers(
        self, open_client: AsyncTestClient[Litestar]
    ) -> None:
        for response in (
            await open_client.post("/invoke", json=BODY),
            await open_client.get("/jobs/nope"),
            await open_client.get("/no/such/route"),
        ):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert "traceback" not in response.text.lower()

    async def test_the_playground_page_keeps_its_own_policy(
        self, open_client: AsyncTestClient[Litestar]
    ) -> None:
        page = await open_client.get("/playground")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-cache"

    async def test_no_cors_headers_by_default(self, open_client: AsyncTestClient[Litestar]) -> None:
        response = await open_client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers

    async def test_an_allowlisted_origin_gets_cors_without_credentials(self) -> None:
        app = app_for(auth_key=KEY, cors_origins=("https://app.example.com",))
        async with AsyncTestClient(app) as client:
            preflight = await client.options(
                "/invoke",
                headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
            assert "access-control-allow-credentials" not in preflight.headers
            other = await client.get("/health", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers


class TestProbes:
    """/health is readiness, /livez liveness; both report the checks behind the answer."""

    async def test_healthy_service(self, open_client: AsyncTestClient[Litestar]) -> None:
        health = await open_client.get("/health")
        assert health.status_code == 200
        checks = health.json()["checks"]
        assert {name: check["ok"] for name, check in checks.items()} == {
            "event_loop": True,
            "executor": True,
            "admitting": True,
        }
        live = await open_client.get("/livez")
        assert live.status_code == 200
        assert live.json()["status"] == "ok"

    async def test_a_step_holding_the_gil_fails_both_probes(self) -> None:
        """A step in C code that never releases the GIL (~1.5 s here) starves the event loop:
        the probes say so (lag is kept for a few seconds, so the answer outlives the stall).
        The stall must outlast the sampler's 0.25 s sleep plus the 0.2 s threshold whatever
        the phase it starts in (with ~0.4 s, size 24, it measured 0.14-0.27 s)."""
        app = create_app(
            ServingConfig(health_max_loop_lag_s=0.2),
            served_pipeline=served("tests.pipelines.faults:fault_pipeline"),
        )
        async with AsyncTestClient(app) as client:
            assert (await client.get("/livez")).status_code == 200
            response = await client.post(
                "/invoke", json={"parameters": {"fault": "hold_gil", "size": 26}}
            )
            assert response.status_code == 200
            live = await client.get("/livez")
            health = await client.get("/health")
        assert live.status_code == 503
        assert health.status_code == 503
        loop = live.json()["checks"]["event_loop"]
        assert loop["ok"] is False
        assert loop["lag_s"] > 0.2

    async def test_every_slot_held_by_an_abandoned_step_fails_both_probes(self) -> None:
        app = create_app(
            ServingConfig(max_concurrency=1, request_timeout_s=0.3, shutdown_grace_s=0.1),
            served_pipeline=served("tests.pipelines.faults:fault_pipeline"),
        )
        async with AsyncTestClient(app) as client:
            hung = await client.post(
                "/invoke", json={"parameters": {"fault": "hang", "seconds": 2.0}}
            )
            assert hung.status_code == 504
            live = await client.get("/livez")
            health = await client.get("/health")
            assert live.status_code == 503
            assert live.json()["status"] == "wedged"
            executor = health.json()["checks"]["executor"]
            assert executor == {
                "ok": False,
                "in_flight": 1,
                "capacity": 1,
                "abandoned_still_running": 1,
            }
            for _ in range(60):  # the step returns after 2 s: the slot comes back
                await anyio.sleep(0.1)
                if (await client.get("/livez")).status_code == 200:
                    break
            assert (await client.get("/health")).status_code == 200


class TestUnexpectedErrors:
    """An exception nothing expected is a problem+json 500 with no traceback, and logged."""

    def test_an_unexpected_exception_is_a_bare_problem(self) -> None:
        from litestar import get
        from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
        from litestar.testing import TestClient

        from zenml_serving.api.errors import PROBLEM_MAP

        @get("/boom")
        async def boom() -> None:
            raise RuntimeError("secret-ish internal detail")

        app = Litestar(
            [boom],
            plugins=[
                ProblemDetailsPlugin(
                    ProblemDetailsConfig(
                        enable_for_all_http_exceptions=True,
                        exception_to_problem_detail_map=PROBLEM_MAP,
                    )
                )
            ],
        )
        with TestClient(app) as client:
            response = client.get("/boom")
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == "urn:zenml-serving:problem:internal"
        assert "secret-ish" not in response.text
        assert "Traceback" not in response.text
