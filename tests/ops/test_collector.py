"""otel/collector.yaml, checked offline (no otelcol here): structure, order, redaction rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

COLLECTOR = Path(__file__).resolve().parents[2] / "otel" / "collector.yaml"


def _config() -> dict[str, Any]:
    return yaml.safe_load(COLLECTOR.read_text())


def _go_regex(pattern: str) -> re.Pattern[str]:
    """RE2 patterns as Python compiles them (the subset used here means the same in both)."""
    return re.compile(pattern)


class TestCollectorConfig:
    """OTLP in, memory_limiter first, redaction, batching last, traces and metrics out."""

    def test_every_pipeline_component_is_defined(self) -> None:
        config = _config()
        for name, pipeline in config["service"]["pipelines"].items():
            for kind in ("receivers", "processors", "exporters"):
                for component in pipeline[kind]:
                    assert component in config[kind], f"{name}: {kind} {component} undefined"
        for extension in config["service"].get("extensions", []):
            assert extension in config["extensions"]

    def test_traces_pipeline(self) -> None:
        traces = _config()["service"]["pipelines"]["traces"]
        assert traces["receivers"] == ["otlp"]
        assert traces["processors"] == ["memory_limiter", "redaction", "batch"]
        assert any(e.startswith("otlp") for e in traces["exporters"])

    def test_metrics_pipeline(self) -> None:
        config = _config()
        metrics = config["service"]["pipelines"]["metrics"]
        assert metrics["processors"][0] == "memory_limiter"
        assert metrics["processors"][-1] == "batch"
        scrape = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]
        assert scrape["metrics_path"] == "/metrics"

    def test_otlp_receiver_takes_grpc_and_http(self) -> None:
        protocols = _config()["receivers"]["otlp"]["protocols"]
        assert protocols["http"]["endpoint"].endswith(":4318")
        assert protocols["grpc"]["endpoint"].endswith(":4317")

    def test_redaction_masks_secret_keys_and_values(self) -> None:
        redaction = _config()["processors"]["redaction"]
        assert redaction["allow_all_keys"] is True  # values are masked, keys kept
        keys = [_go_regex(p) for p in redaction["blocked_key_patterns"]]
        values = [_go_regex(p) for p in redaction["blocked_values"]]
        for key in ("password", "zenml.step.input.api_key", "http.request.header.cookie"):
            assert any(k.fullmatch(key) for k in keys), key
        for key in ("http.route", "zenml.step.name", "url.path", "zenml.invocation.id"):
            assert not any(k.fullmatch(key) for k in keys), key
        secrets = (
            "Bearer abcdefgh12345678",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "sk-abcdefghijklmnop1234",
            "-----BEGIN RSA PRIVATE KEY-----",
        )
        for secret in secrets:
            assert any(v.search(secret) for v in values), secret
        assert not any(v.search("POST /invoke") for v in values)
