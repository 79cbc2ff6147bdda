"""The Grafana dashboard, its provisioning and the Prometheus alert rules, checked offline."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.promtool import require_promtool
from zenml_serving.telemetry import metrics

ROOT = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARD = ROOT / "dashboards" / "zenml-serving.json"
DATASOURCES = ROOT / "provisioning" / "datasources" / "zenml-serving.yaml"
PROVIDERS = ROOT / "provisioning" / "dashboards" / "zenml-serving.yaml"
ALERTS = ROOT / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "prometheus" / "alerts.test.yml"
PROMETHEUS = ROOT / "prometheus" / "prometheus.yml"

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*"}
TARGET_LABELS = {"instance", "job"}
"""Labels Prometheus adds to every scraped series."""


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of every panel, Grafana variables replaced."""
    expressions = []
    for panel in _panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            expressions.append(expr)
    return expressions


def alert_expressions() -> list[str]:
    """Every alert rule's expression."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


_METRIC = re.compile(r"\b(zenml_serving_[a-z0-9_]+)\b")
_SELECTOR = re.compile(r"\b(zenml_serving_[a-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def _labels_of_series(name: str) -> set[str]:
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    for metric in metrics.ALL_METRICS:
        for family in metric.describe():
            if name in {family.name + suffix for suffix in suffixes}:
                labels = set(metric._labelnames)
                return labels | ({"le"} if name.endswith("_bucket") else set())
    raise KeyError(name)


class TestDashboard:
    """The dashboard loads into the provisioned Grafana and queries what the service exports."""

    def test_parses_and_has_the_panels_an_sre_needs(self) -> None:
        dashboard = _dashboard()
        assert dashboard["uid"] == "zenml-serving"
        titles = " | ".join(p["title"] for p in _panels()).lower()
        for needed in (
            "request rate",
            "error ratio",
            "p50 / p95 / p99",
            "429",
            "queue depth vs capacity",
            "in flight",
            "step latency",
            "step errors",
            "jobs by state",
            "tracking",
        ):
            assert needed in titles, needed

    def test_panel_ids_are_unique(self) -> None:
        ids = [p["id"] for p in _dashboard()["panels"]]
        assert len(ids) == len(set(ids))

    def test_every_datasource_is_the_provisioned_one(self) -> None:
        provisioned = {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
        used = {p["datasource"]["uid"] for p in _panels()}
        used |= {t["datasource"]["uid"] for p in _panels() for t in p["targets"]}
        used |= {v["datasource"]["uid"] for v in _dashboard()["templating"]["list"]}
        assert used <= provisioned, used - provisioned

    def test_every_metric_used_is_exported(self) -> None:
        exported = metrics.exported_series_names()
        variable_queries = [v["definition"] for v in _dashboard()["templating"]["list"]]
        for expr in [*dashboard_expressions(), *alert_expressions(), *variable_queries]:
            used = set(_METRIC.findall(expr))
            assert used, f"no zenml_serving metric in {expr!r}"
            assert used <= exported, f"{used - exported} in {expr!r}"

    def test_every_label_matched_exists_on_its_metric(self) -> None:
        for expr in [*dashboard_expressions(), *alert_expressions()]:
            for name, matchers in _SELECTOR.findall(expr):
                labels = _labels_of_series(name) | TARGET_LABELS
                for label in _MATCHER.findall(matchers):
                    assert label in labels, f"{name} has no label {label!r} ({expr!r})"


class TestProvisioning:
    """Datasources have fixed uids; the dashboard provider points where the README mounts."""

    def test_datasources(self) -> None:
        sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
        by_uid = {s["uid"]: s for s in sources}
        assert len(by_uid) == len(sources)
        assert by_uid["zenml-prometheus"]["type"] == "prometheus"
        assert by_uid["zenml-tempo"]["type"] == "tempo"

    def test_dashboard_provider(self) -> None:
        providers = yaml.safe_load(PROVIDERS.read_text())["providers"]
        assert [p["type"] for p in providers] == ["file"]
        assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards/zenml-serving"

    def test_prometheus_config_loads_the_alert_rules(self) -> None:
        config = yaml.safe_load(PROMETHEUS.read_text())
        assert config["rule_files"] == [ALERTS.name]
        assert config["scrape_configs"][0]["metrics_path"] == "/metrics"


class TestPromtool:
    """promtool parses every expression and the alert unit tests pass."""

    def test_every_dashboard_expression_parses(self, tmp_path: Path) -> None:
        promtool = require_promtool()
        rules = {
            "groups": [
                {
                    "name": "dashboard",
                    "rules": [
                        {"record": f"dashboard:panel_{i}", "expr": expr}
                        for i, expr in enumerate(dashboard_expressions())
                    ],
                }
            ]
        }
        path = tmp_path / "dashboard_rules.yml"
        path.write_text(yaml.safe_dump(rules))
        result = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_alert_rules_check(self) -> None:
        promtool = require_promtool()
        result = subprocess.run(
            [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_alert_rule_unit_tests(self) -> None:
        promtool = require_promtool()
        result = subprocess.run(
            [promtool, "test", "rules", ALERT_TESTS.name],
            cwd=ALERT_TESTS.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_every_alert_has_a_firing_and_a_quiet_unit_test(self) -> None:
        groups = yaml.safe_load(ALERTS.read_text())["groups"]
        alerts = {rule["alert"] for group in groups for rule in group["rules"]}
        cases = [
            case
            for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
            for case in test.get("alert_rule_test", [])
        ]
        for alert in alerts:
            outcomes = {bool(c["exp_alerts"]) for c in cases if c["alertname"] == alert}
            assert outcomes == {True, False}, alert
