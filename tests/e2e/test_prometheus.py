"""A real Prometheus scrapes a real service and evaluates the shipped alert rules.

Debian's `prometheus` server (unpacked by `.ci/run`) runs on a loopback port with a 1 s scrape
and evaluation interval, `grafana/prometheus/alerts.yml` as its rules, and the service as its
one target. What must hold: the scrape succeeds (Prometheus parses our Content-Type and body),
the service's series are queryable, every shipped rule loads, and the 429 alert goes pending
while the service sheds load.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT, snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, free_port, wait_until
from tests.promtool import require_prometheus

pytestmark = pytest.mark.e2e

GATED = "tests.pipelines.gated:gated_pipeline"
ALERTS = REPO_ROOT / "grafana" / "prometheus" / "alerts.yml"


class Prometheus:
    """A Prometheus server process and a client for its HTTP API."""

    def __init__(self, binary: str, target: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {ALERTS}\n"
            "scrape_configs:\n  - job_name: zenml-serving\n"
            f"    static_configs:\n      - targets: ['{target}']\n",
            encoding="utf-8",
        )
        port = free_port()
        self.log_path = folder / "prometheus.log"
        with self.log_path.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a successful API answer, or None while the server is not up yet."""
        try:
            answer = self.client.get(f"/api/v1/{path}", params=params)
        except httpx.TransportError:
            return None
        if answer.status_code != 200:
            return None
        return answer.json()["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result vector (empty while nothing matches)."""
        data = self.api("query", query=expression)
        return list(data["result"]) if data else []

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def shedding_service(service_factory: ServiceFactory) -> ServiceProcess:
    """One slot and one place in line: a third concurrent call is answered 429."""
    return service_factory(
        snapshot_of(GATED), ZENML_SERVING_MAX_CONCURRENCY="1", ZENML_SERVING_MAX_QUEUE_SIZE="1"
    )


@pytest.fixture
def prometheus(shedding_service: ServiceProcess, tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(
        require_prometheus(), f"127.0.0.1:{shedding_service.port}", tmp_path / "prometheus"
    )
    try:
        yield server
    finally:
        server.stop()


class TestRealPrometheus:
    """Prometheus scrapes the service, loads the rules, and sees overload as a pending alert."""

    def test_scrape_rules_and_overload_alert(
        self, shedding_service: ServiceProcess, prometheus: Prometheus, tmp_path: Path
    ) -> None:
        service = shedding_service
        wait_until(
            lambda: [s["value"][1] for s in prometheus.query('up{job="zenml-serving"}')] == ["1"],
            timeout_s=60,
            what="the service's target to be up in Prometheus",
        )
        targets = prometheus.api("targets")["activeTargets"]
        assert [t["lastError"] for t in targets] == [""]

        groups = prometheus.api("rules")["groups"]
        loaded = {rule["name"] for group in groups for rule in group["rules"]}
        assert "ZenMLServingOverloaded" in loaded
        assert all(rule["health"] == "ok" for group in groups for rule in group["rules"])

        # Hold the slot and the place in line, then knock until the alert is pending.
        gate = tmp_path / "gate"
        body = {"parameters": {"gate": str(gate), "limit_s": 120.0}}
        held = [service.client.post("/invoke?mode=async", json=body) for _ in range(2)]
        assert [r.status_code for r in held] == [202, 202]

        def overloaded_alert_state() -> str | None:
            assert service.client.post("/invoke", json=body).status_code == 429
            alerts = prometheus.api("alerts")
            states = [
                a["state"]
                for a in (alerts or {}).get("alerts", [])
                if a["labels"]["alertname"] == "ZenMLServingOverloaded"
            ]
            return states[0] if states else None

        try:
            wait_until(
                lambda: overloaded_alert_state() in ("pending", "firing"),
                timeout_s=90,
                what="ZenMLServingOverloaded to go pending",
            )
            shed = prometheus.query(
                'sum(zenml_serving_http_requests_total{route="/invoke",status="429"})'
            )
            assert shed, "the 429s are a series Prometheus can query"
            assert float(shed[0]["value"][1]) > 0
        finally:
            gate.touch()
