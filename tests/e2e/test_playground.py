"""The playground page in a real browser: Debian's Chromium driven by Playwright (no browser
download) against a real granian process serving a real snapshot.

Needs `apt-get install chromium` (for /usr/bin/chromium) and the `playwright` Python package
(in the `test` extra); without either, the browser tests skip and say what to install. The
HTTP-only checks at the top run without a browser.

Every test leaves a screenshot under `test-artifacts/playground/`; the async run's is also kept
as `test-artifacts/playground.png`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import REPO_ROOT, snapshot_of
from tests.e2e.conftest import free_port
from tests.services import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Route

pytestmark = pytest.mark.e2e

# Debian's package (`apt-get install chromium`); another system Chromium can be named here.
CHROMIUM = Path(os.environ.get("ZENML_SERVING_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
FORM = "tests.pipelines.playground_form:form_pipeline"
SLOW = "tests.pipelines.slow:slow_pipeline"
CHUNKS = "tests.pipelines.chunks:chunks_pipeline"
FAILING = "examples.failing:failing_pipeline"
# Values for parameters without a default, needed to snapshot the pipeline at all.
SNAPSHOT_VALUES: dict[str, dict[str, object]] = {FORM: {"text": "Hello"}}
SLOW_STEPS = ("first", "second", "third")


# ------------------------------------------------------------------ a real granian process


@dataclass
class Service:
    """One granian process serving one snapshot on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    snapshot_id: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def _start(
    target: str, store_env: dict[str, str], log_dir: Path, auth_key: str | None = None
) -> Service:
    snapshot_id = str(snapshot_of(target, **SNAPSHOT_VALUES.get(target, {})))
    port = free_port()
    log_path = log_dir / f"granian-{port}.log"
    env = {
        **os.environ,
        **store_env,
        "ZENML_PIPELINE_DEPLOYMENT_ID": snapshot_id,
        "ZENML_SERVING_SHUTDOWN_GRACE": "1",
        "ZENML_SERVING_SSE_HEARTBEAT": "1",
        **({"ZENML_SERVING_AUTH_KEY": auth_key} if auth_key else {}),
    }
    command = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "zenml_serving.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(process, port, log_path, snapshot_id)
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=service.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"granian exited with {process.returncode}:\n{service.log()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").status_code == 200:
                    return service
            time.sleep(0.2)
    service.stop()
    pytest.fail(f"granian not ready in time:\n{service.log()}")


@pytest.fixture(scope="module")
def services(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Service]]:
    """`services(target, auth_key=None)`: a granian process for that pipeline (and key),
    started once per module."""
    started: dict[tuple[str, str | None], Service] = {}
    log_dir = tmp_path_factory.mktemp("playground-services")

    def get(target: str, auth_key: str | None = None) -> Service:
        if (target, auth_key) not in started:
            started[target, auth_key] = _start(target, zenml_store_env, log_dir, auth_key)
        return started[target, auth_key]

    yield get
    for service in started.values():
        service.stop()


# ------------------------------------------------------------------ the page, without a browser


class TestServedFiles:
    """The service itself serves the page and every asset it needs, and nothing else is used."""

    def test_root_redirects_to_the_page(self, services: Callable[[str], Service]) -> None:
        service = services(FORM)
        with httpx.Client(base_url=service.url) as client:
            root = client.get("/")
            assert root.status_code == 302
            assert root.headers["location"] == "/playground"
            page = client.get("/playground")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<base href="/playground/">' in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "connect-src 'self'" in csp

    def test_assets_are_local_and_typed(self, services: Callable[[str], Service]) -> None:
        service = services(FORM)
        page = httpx.get(service.url + "/playground").text
        referenced = re.findall(r'(?:src|href)="(static/[^"]+)"', page)
        assert {"static/app.js", "static/playground.css"} <= set(referenced)
        assert "http://" not in page
        assert "https://" not in page
        types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        with httpx.Client(base_url=service.url + "/playground/") as client:
            for module in ("app.js", "api.js", "form.js", "render.js", "sse.js"):
                body = client.get(f"static/{module}").text
                assert "https://" not in body.replace("https://html.spec.whatwg.org", "")
                imports = re.findall(r'from "(\./[^"]+)"', body)
                assert all(client.get(f"static/{i[2:]}").status_code == 200 for i in imports)
            for asset in referenced:
                response = client.get(asset)
                assert response.status_code == 200, asset
                assert response.headers["content-type"].startswith(types[Path(asset).suffix])

    def test_page_is_not_in_the_openapi_schema(self, services: Callable[[str], Service]) -> None:
        schema = httpx.get(services(FORM).url + "/schema/openapi.json").json()
        assert not any(p == "/" or p.startswith("/playground") for p in schema["paths"])


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, via Playwright; skips saying what to install.

    Module-scoped on purpose: Playwright's sync API runs an asyncio loop on this thread while
    it is open, and anyio/asyncio tests in later modules cannot start theirs until it closes.
    """
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not found: install Debian's browser (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(
            "the playwright Python package is missing: pip install -e '.[test]' (it drives "
            "the system Chromium; no browser download)"
        )
    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary user-data dir of its own.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Playground:
    """One browser tab on the playground of `service`, with what it requested and logged."""

    page: Page
    service: Service
    requests: list[Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def open(self, path: str = "/") -> Page:
        self.page.goto(self.service.url + path)
        self.wait_ready()
        return self.page

    def wait_ready(self) -> None:
        self.page.wait_for_selector("body[data-ready='true']", timeout=30_000)

    def step(self, name: str) -> Any:
        return self.page.locator(f"#steps li[data-step='{name}']")

    def field(self, name: str) -> Any:
        return self.page.locator(f"#fields [data-param='{name}']")

    def api_requests(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.url.split("?")[0].endswith(path)]

    def watch_steps(self) -> None:
        """Record every status each step goes through (quick ones included)."""
        self.page.evaluate(
            """() => {
              window.__stepLog = [];
              const list = document.getElementById("steps");
              new MutationObserver((records) => {
                for (const r of records) {
                  if (r.attributeName === "data-status") {
                    window.__stepLog.push([r.target.dataset.step, r.target.dataset.status]);
                  }
                }
              }).observe(list, {
                subtree: true, attributes: true, attributeFilter: ["data-status"],
              });
            }"""
        )

    def step_log(self) -> list[tuple[str, str]]:
        return [tuple(x) for x in self.page.evaluate("() => window.__stepLog")]

    def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / "playground" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def playground(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[[Service], Playground]]:
    """`playground(service)`: a fresh browser context (fresh sessionStorage) on its page.

    After the test: a screenshot, and checks that the page raised no script error, broke no
    Content-Security-Policy rule, and requested nothing from anywhere but the service.
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    opened: list[Playground] = []
    contexts = []

    def open_on(service: Service) -> Playground:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        tab = Playground(page, service)
        # A lambda: Playwright cannot wrap a builtin method such as list.append.
        page.on("request", lambda r: tab.requests.append(r))  # noqa: PLW0108
        page.on("pageerror", lambda error: tab.problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                tab.problems.append(f"console: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        opened.append(tab)
        return tab

    yield open_on
    try:
        for index, tab in enumerate(opened):
            suffix = f"-{index}" if index else ""
            with contextlib.suppress(Exception):
                tab.screenshot(re.sub(r"[^\w.-]+", "_", request.node.name) + suffix)
            assert tab.problems == [], tab.problems
            foreign = [r.url for r in tab.requests if not r.url.startswith(tab.service.url)]
            assert foreign == [], f"the page requested other origins: {foreign}"
    finally:
        for context in contexts:
            context.close()


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


# ------------------------------------------------------------------ what a user sees and does


class TestPipelineAndForm:
    """The page shows what is served and a form generated from the parameter schema."""

    def test_pipeline_snapshot_steps_and_fields(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(FORM))
        page = tab.open("/")
        assert page.url == tab.service.url + "/playground"
        expect(page.locator("h1")).to_have_text("form_pipeline")
        expect(page.locator("#snapshot-id")).to_have_text(tab.service.snapshot_id)
        expect(page).to_have_title(re.compile("form_pipeline"))
        steps = page.locator("#steps > li")
        expect(steps).to_have_count(2)
        assert steps.evaluate_all("els => els.map(e => e.dataset.step)") == ["build", "summarise"]
        expect(tab.step("summarise")).to_contain_text("after build")

        # Every field is labelled; types, defaults and required marks come from the schema.
        text = page.get_by_label("text")
        expect(text).to_have_attribute("aria-required", "true")
        expect(text).to_have_attribute("placeholder", "e.g. Hello")
        expect(text).to_have_value("")
        expect(tab.field("text").locator(".req")).to_have_text("*")
        case = page.get_by_label("case")
        assert case.evaluate("e => e.tagName") == "SELECT"
        assert case.locator("option").all_inner_texts() == ["upper", "lower", "keep"]
        expect(case.locator("option:checked")).to_have_text("keep")
        expect(page.get_by_label("repeat")).to_have_attribute("type", "number")
        expect(page.get_by_label("repeat")).to_have_attribute("step", "1")
        expect(page.get_by_label("repeat")).to_have_value("1")
        expect(page.get_by_label("scale")).to_have_value("1.5")
        for name, value in (("tags", ["a", "b"]), ("options", {"prefix": ">", "width": 3})):
            area = page.get_by_label(name)
            assert area.evaluate("e => e.tagName") == "TEXTAREA"
            assert json.loads(area.input_value()) == value
        expect(tab.field("options")).to_contain_text("Options (object)")
        assert json.loads(page.get_by_label("note").input_value()) is None
        expect(tab.field("note")).to_contain_text("string | null")
        expect(page.get_by_label("loud")).not_to_be_checked()
        expect(page.get_by_label("Capture override")).to_have_value("")
        expect(page.locator("#capture-mode option:checked")).to_have_text("not set")

    def test_bad_json_is_caught_in_the_browser(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(FORM))
        page = tab.open()
        page.get_by_label("tags").fill('["a", ')
        error = tab.field("tags").locator(".field-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("invalid JSON")
        expect(page.get_by_label("tags")).to_have_attribute("aria-invalid", "true")
        page.get_by_label("options").fill("[1, 2]")
        expect(tab.field("options").locator(".field-error")).to_have_text(
            "expected a JSON object ({…})"
        )
        expect(page.locator("#curl-line")).to_have_value(re.compile("fix the marked fields"))

        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#run-status")).to_have_text("Fix the marked fields first")
        expect(tab.field("text").locator(".field-error")).to_have_text("required")
        expect(page.get_by_label("text")).to_be_focused()
        assert tab.api_requests("/invoke") == []

        page.get_by_label("tags").fill('["x"]')
        expect(tab.field("tags").locator(".field-error")).to_be_hidden()
        expect(page.get_by_label("tags")).not_to_have_attribute("aria-invalid", "true")

    def test_server_validation_errors_land_next_to_their_field(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(FORM))
        page = tab.open()
        page.get_by_label("text").fill("x")
        page.get_by_label("repeat").fill("2.5")  # the service wants an integer
        page.get_by_label("options").fill('{"width": "wide"}')
        page.get_by_label("Capture override").select_option("sampled")
        page.get_by_label("sample rate").fill("3")
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.locator("#run-status")).to_have_text("Invalid request: see the marked fields")
        invoke = tab.api_requests("/invoke")
        assert len(invoke) == 1
        response = invoke[0].response()
        assert response is not None
        assert response.status == 422
        expect(tab.field("repeat").locator(".field-error")).to_contain_text("valid integer")
        expect(tab.field("options").locator(".field-error")).to_contain_text("width: ")
        expect(page.locator("#capture-error")).to_contain_text("sample_rate")
        expect(tab.field("text").locator(".field-error")).to_be_hidden()
        expect(page.get_by_label("repeat")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("repeat")).to_be_focused()


class TestRunning:
    """Sync and async runs, their steps and outputs, cancellation and failures."""

    def test_sync_run_outputs_and_the_exact_curl_line(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(FORM))
        page = tab.open()
        page.get_by_label("text").fill("Hi")
        page.get_by_label("case").select_option("upper")
        page.get_by_label("repeat").fill("2")
        page.get_by_label("loud").check()
        page.get_by_label("Capture override").select_option("metadata")
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.locator("#run-status")).to_have_text(re.compile("^Completed in "))
        for name in ("build", "summarise"):
            expect(tab.step(name)).to_have_attribute("data-status", "completed")
            expect(tab.step(name).locator(".step-duration")).to_have_text(re.compile(r"\d ms$"))
        rendered = page.locator(".output[data-output='rendered']")
        expect(rendered).to_contain_text('"text": ">HIHI!"')
        expect(page.locator(".output[data-output='summary']")).to_contain_text('"6 chars"')
        # The 60-item list is folded until opened.
        fold = rendered.locator("details.j-fold")
        expect(fold).to_have_count(1)
        expect(fold.locator("summary")).to_contain_text("60 items")
        expect(fold.get_by_text('">059"')).to_be_hidden()
        fold.locator("summary").click()
        expect(fold.get_by_text('">059"')).to_be_visible()

        # The request the page sent is exactly the one its curl line sends.
        sent = tab.api_requests("/invoke")[-1]
        curl = page.locator("#curl-line").input_value()
        words = shlex.split(curl)
        assert words[:5] == ["curl", "-sS", "-X", "POST", tab.service.url + "/invoke?mode=sync"]
        assert json.loads(words[words.index("-d") + 1]) == json.loads(sent.post_data or "")
        assert json.loads(sent.post_data or "") == {
            "parameters": {
                "text": "Hi",
                "case": "upper",
                "repeat": 2,
                "scale": 1.5,
                "tags": ["a", "b"],
                "options": {"prefix": ">", "width": 3},
                "note": None,
                "loud": True,
            },
            "capture_override": {"mode": "metadata"},
        }
        if shutil.which("curl"):
            answer = subprocess.run(
                ["bash", "-c", curl], capture_output=True, text=True, check=True, timeout=60
            )
            assert json.loads(answer.stdout)["outputs"]["rendered"]["text"] == ">HIHI!"

        # The Copy button puts that line on the clipboard.
        page.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=tab.service.url
        )
        page.get_by_role("button", name="Copy", exact=True).click()
        expect(page.locator("#copy-state")).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == curl

    def test_async_run_lights_up_each_step_then_shows_outputs(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(SLOW))
        page = tab.open()
        expect(page.locator("h1")).to_have_text("slow_pipeline")
        tab.watch_steps()
        for name in ("first_s", "second_s", "third_s"):
            page.get_by_label(name).fill("0.3")
        page.get_by_label("async").check()
        expect(page.locator("#curl-line")).to_have_value(re.compile(r"/invoke\?mode=async'"))
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.locator("#run-status")).to_have_text(re.compile("completed in"))
        steps = SLOW_STEPS
        for name in steps:
            expect(tab.step(name)).to_have_attribute("data-status", "completed")
            expect(tab.step(name).locator(".step-duration")).to_have_text(re.compile(r"\d (ms|s)$"))
        # Each step went pending -> running -> completed, one after the other, as events came.
        seen = [(s, status) for s, status in tab.step_log() if status in ("running", "completed")]
        assert seen == [(s, status) for s in steps for status in ("running", "completed")]
        expect(page.locator(".output[data-output='output']")).to_contain_text(
            '"first>second>third"'
        )
        types = page.locator("#events li").evaluate_all("els => els.map(e => e.dataset.type)")
        assert types[0] == "job.queued"
        assert types[-1] == "job.completed"
        assert types.count("step.started") == types.count("step.completed") == 3
        assert not any(r.url.endswith("/jobs") for r in tab.requests)  # SSE, not polling

        job = page.locator("#recent-jobs button.job")
        expect(job).to_have_count(1)
        expect(job.locator(".badge")).to_have_text("completed")
        # Streams are read with fetch(), never EventSource (which cannot send auth headers).
        stream = tab.api_requests("/stream/" + str(job.get_attribute("data-job")))
        assert stream
        assert stream[0].resource_type == "fetch"
        page.locator("#events-box summary").click()
        shot = tab.screenshot("async-run")
        shutil.copyfile(shot, ARTIFACTS / "playground.png")

    def test_chunks_a_step_emits_show_as_partial_output(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(CHUNKS))
        page = tab.open()
        expect(page.locator("#partial-box")).to_be_hidden()
        page.get_by_label("count").fill("5")
        page.get_by_label("secret").fill("shown")
        page.get_by_label("async").check()
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.locator("#run-status")).to_have_text(re.compile("completed"))
        expect(page.locator("#partial-meta")).to_have_text("5 chunks")
        text = page.locator("#partial").text_content() or ""
        assert text.startswith("[chatter] ")
        lines = text.removeprefix("[chatter] ").splitlines()
        assert [json.loads(line)["i"] for line in lines] == [1, 2, 3, 4, 5]
        assert json.loads(lines[0])["text"] == "token 1 shown"
        types = page.locator("#events li").evaluate_all("els => els.map(e => e.dataset.type)")
        assert types.count("step.chunk") == 5

    def test_cancel_a_slow_async_run(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(SLOW))
        page = tab.open()
        page.get_by_label("first_s").fill("5")
        page.get_by_label("second_s").fill("5")
        page.get_by_label("async").check()
        cancel = page.get_by_role("button", name="Cancel", exact=True)
        expect(cancel).to_be_disabled()
        page.get_by_role("button", name="Run", exact=True).click()
        expect(tab.step("first")).to_have_attribute("data-status", "running")
        expect(cancel).to_be_enabled()
        tab.screenshot("step-running")
        cancel.click()

        expect(page.locator("#run-status")).to_have_text(re.compile("cancelled$"))
        assert len(tab.api_requests("/cancel")) == 1
        expect(tab.step("first")).to_have_attribute("data-status", "cancelled")
        for name in ("second", "third"):
            expect(tab.step(name)).to_have_attribute("data-status", "skipped")
            expect(tab.step(name).locator(".step-status")).to_have_text("not run")
        expect(page.locator("#error-box")).to_contain_text("Job cancelled")
        expect(page.locator("#recent-jobs .badge")).to_have_text("cancelled")
        expect(cancel).to_be_disabled()
        job_id = page.locator("#recent-jobs button.job").get_attribute("data-job")
        status = httpx.get(f"{tab.service.url}/jobs/{job_id}").json()["status"]
        assert status == "cancelled"

    def test_cancel_a_sync_run_aborts_the_request(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(SLOW))
        page = tab.open()
        page.get_by_label("first_s").fill("5")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#run-status")).to_contain_text("Running")
        page.get_by_role("button", name="Cancel", exact=True).click()
        expect(page.locator("#run-status")).to_contain_text("Cancelled")
        expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()

    def test_failing_step_is_highlighted_with_its_error(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(FAILING))
        page = tab.open()
        page.get_by_label("text").fill("kaboom")
        page.get_by_role("button", name="Run", exact=True).click()  # sync: a 500 naming the step
        failed = tab.step("validate")
        expect(failed).to_have_attribute("data-status", "failed")
        expect(failed.locator(".step-error")).to_have_text(
            "ValueError: the text contains the forbidden word 'boom'"
        )
        expect(page.locator("#error-box")).to_contain_text("Step failed (500)")

        page.get_by_label("async").check()
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#recent-jobs .badge")).to_have_text("failed")
        expect(tab.step("prepare")).to_have_attribute("data-status", "completed")
        expect(failed).to_have_attribute("data-status", "failed")
        expect(failed.locator(".step-error")).to_contain_text("forbidden word 'boom'")
        expect(failed.locator(".step-duration")).to_have_text(re.compile(r"\d ms$"))
        expect(tab.step("finish")).to_have_attribute("data-status", "skipped")
        expect(page.locator("#error-box")).to_contain_text("Job failed")
        expect(page.locator("#error-box")).to_contain_text("step 'validate': ValueError")
        expect(page.locator("#outputs")).to_be_empty()


class TestSession:
    """Recent jobs survive a reload of the tab and re-attach to the live stream."""

    def test_reopen_a_running_job_after_reload(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(SLOW))
        page = tab.open()
        for name in ("first_s", "second_s", "third_s"):
            page.get_by_label(name).fill("3")
        page.get_by_label("async").check()
        page.get_by_role("button", name="Run", exact=True).click()
        expect(tab.step("first")).to_have_attribute("data-status", "running")

        page.reload()
        tab.wait_ready()
        job = page.locator("#recent-jobs button.job")
        expect(job).to_have_count(1)
        job_id = str(job.get_attribute("data-job"))
        expect(page.get_by_label("first_s")).to_have_value("0")  # a fresh form...
        job.click()
        expect(page.get_by_label("first_s")).to_have_value("3")  # ...refilled from the job
        expect(page.get_by_label("async")).to_be_checked()
        expect(page.locator("#run-status")).to_have_text(re.compile("completed in"))
        expect(page.locator(".output[data-output='output']")).to_contain_text("third")
        for name in SLOW_STEPS:
            expect(tab.step(name)).to_have_attribute("data-status", "completed")
        assert tab.api_requests(f"/jobs/{job_id}")
        resumed = [r.url for r in tab.api_requests(f"/stream/{job_id}") if "?after=" in r.url]
        assert resumed
        assert int(resumed[0].rsplit("=", 1)[1]) >= 3  # queued, started, step.started seen

    def test_stream_reconnects_with_last_event_id(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        """The first stream connection drops after two events: the page resumes after them."""
        expect = _expect()
        tab = playground(services(SLOW))
        connections: list[dict[str, str]] = []

        def drop_first(route: Route) -> None:
            connections.append(route.request.all_headers())
            if len(connections) > 1:
                route.continue_()
                return
            full = route.fetch().text().replace("\r\n", "\n")  # all of a quick job's stream
            events = [e for e in full.split("\n\n") if e.startswith("id: ")]
            assert len(events) > 2
            route.fulfill(
                status=200,
                headers={"Content-Type": "text/event-stream"},
                body="retry: 50\n\n" + "\n\n".join(events[:2]) + "\n\n",
            )

        tab.page.route(re.compile(r"/stream/[^/?]+$"), drop_first)
        page = tab.open()
        page.get_by_label("async").check()
        page.get_by_role("button", name="Run", exact=True).click()

        expect(page.locator("#run-status")).to_have_text(re.compile("completed in"))
        assert len(connections) == 2, connections
        assert "last-event-id" not in connections[0]
        assert connections[1].get("last-event-id") == "2"
        ids = page.locator("#events li").all_text_contents()
        numbers = [int(t.split()[0].lstrip("#")) for t in ids]
        assert numbers == list(range(1, len(numbers) + 1))  # nothing lost, nothing twice
        for name in SLOW_STEPS:
            expect(tab.step(name)).to_have_attribute("data-status", "completed")


class TestAuthentication:
    """With ZENML_SERVING_AUTH_KEY set on the service, the page asks for the key once."""

    KEY = "s3cret-key-for-the-playground"

    def test_key_asked_once_kept_in_the_tab_and_sent_everywhere(
        self, services: Callable[..., Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(SLOW, auth_key=self.KEY))
        api = re.compile(r"^http://127\.0\.0\.1:\d+/(info|invoke|jobs|stream)")
        answered_401: list[str] = []
        tab.page.on(
            "response",
            lambda response: (
                answered_401.append(response.url)
                if response.status == 401 and api.match(response.url)
                else None
            ),
        )
        page = tab.page
        page.goto(tab.service.url + "/playground")
        dialog = page.get_by_role("dialog", name="API key required")
        expect(dialog).to_be_visible()
        tab.screenshot("auth-dialog")
        dialog.get_by_label("API key").fill("wrong")
        dialog.get_by_role("button", name="Use key").click()
        expect(dialog).to_contain_text("rejected")  # asked again, saying why
        dialog.get_by_label("API key").fill(self.KEY)
        dialog.get_by_role("button", name="Use key").click()
        tab.wait_ready()
        expect(page.locator("h1")).to_have_text("slow_pipeline")
        expect(page.locator("#auth-state")).to_be_visible()
        assert len(answered_401) == 2

        page.get_by_label("async").check()
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#run-status")).to_have_text(re.compile("completed in"))
        expect(dialog).to_be_hidden()
        assert len(answered_401) == 2  # no further prompt, no further 401
        calls = [r for r in tab.requests if api.match(r.url)]
        assert {"/info", "/invoke", "/stream/"} <= {
            m.group(0) for r in calls if (m := re.search(r"/(info|invoke|stream/)", r.url))
        }
        keyed = [r for r in calls if r.headers.get("authorization") == f"Bearer {self.KEY}"]
        assert len(calls) - len(keyed) == 2  # only the two calls that were answered 401

        storage = page.evaluate("() => [{...sessionStorage}, localStorage.length]")
        assert self.KEY in storage[0].values()
        assert storage[1] == 0
        curl = page.locator("#curl-line").input_value()
        assert self.KEY not in curl
        assert '"Authorization: Bearer $ZENML_SERVING_AUTH_KEY"' in curl

        page.get_by_role("button", name="forget").click()
        expect(page.locator("#auth-state")).to_be_hidden()
        assert self.KEY not in page.evaluate("() => Object.values(sessionStorage)")


class TestEventStreamParser:
    """The page's SSE parser follows the WHATWG event-stream rules, chunk splits included."""

    def test_parser_edge_cases(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        tab = playground(services(FORM))
        tab.open()
        events = tab.page.evaluate(
            """async () => {
              const { SseParser } = await import(new URL("static/sse.js", document.baseURI));
              const parser = new SseParser();
              const chunks = [
                "\\ufeff: comment\\nretry: 1500\\nid: 1\\r",
                "\\nevent: job.queued\\ndata: {\\"a\\"",
                ":1}\\n\\n", "data: line one\\ndata:line two\\r\\n\\r\\n",
                "event: heartbeat\\ndata: {}\\n\\nid: 7\\nevent: x\\n\\n",
                "id\\ndata\\n\\n", "retry: soon\\ndata: tail without blank line",
              ];
              const out = chunks.flatMap((c) => parser.feed(c));
              parser.end();
              return { out, retry: parser.retry, last: parser.lastEventId };
            }"""
        )
        assert events["out"] == [
            {"type": "job.queued", "data": '{"a":1}', "id": "1"},
            {"type": "message", "data": "line one\nline two", "id": "1"},
            {"type": "heartbeat", "data": "{}", "id": "1"},
            {"type": "message", "data": "", "id": ""},
        ]
        assert events["retry"] == 1500
        assert events["last"] == ""


class TestOverload:
    """A 429 says when to retry (simulated: one service cannot be made busy on demand)."""

    def test_retry_after_is_shown(
        self, services: Callable[[str], Service], playground: Callable[[Service], Playground]
    ) -> None:
        expect = _expect()
        tab = playground(services(SLOW))
        tab.page.route(
            re.compile(r"/invoke(\?|$)"),
            lambda route: route.fulfill(
                status=429,
                headers={"Content-Type": "application/problem+json", "Retry-After": "3"},
                body=json.dumps(
                    {"status": 429, "title": "Too many requests", "detail": "all slots busy"}
                ),
            ),
        )
        page = tab.open()
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#error-box")).to_contain_text("Too many requests (429)")
        expect(page.locator("#error-box")).to_contain_text("Retry-After: 3 s")
        expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()
