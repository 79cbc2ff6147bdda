"""The telemetry variables of ServingConfig: defaults, OTEL_* semantics, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import zenml_serving.telemetry
from zenml_serving.config import ConfigError, ServingConfig


class TestTelemetryVariables:
    """No exporter unless asked for; the standard OTEL_* names; our ZENML_SERVING_* switches."""

    def test_defaults_make_no_network_calls(self) -> None:
        config = ServingConfig.from_env({})
        assert config.otel_traces_exporter == "none"
        assert config.otel_exporter_otlp_endpoint is None
        assert config.otel_sdk_disabled is False
        assert config.otel_service_name == "zenml-serving"
        assert config.otel_traces_sampler == "parentbased_always_on"
        assert (config.metrics_enabled, config.access_log, config.log_format) == (
            True,
            False,
            "auto",
        )
        assert config.prometheus_multiproc_dir is None

    def test_an_endpoint_turns_otlp_on(self) -> None:
        config = ServingConfig.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
        assert config.otel_traces_exporter == "otlp"
        assert config.otel_exporter_otlp_endpoint == "http://collector:4318"

    def test_endpoint_credentials_stay_out_of_status(self) -> None:
        config = ServingConfig.from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:hunter2@collector:4318"}
        )
        assert "hunter2" not in str(config.public_view())

    def test_signal_specific_variables_win(self) -> None:
        config = ServingConfig.from_env(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            }
        )
        assert config.otel_exporter_otlp_endpoint == "http://b:4318/v1/traces"
        assert config.otel_exporter_otlp_protocol == "http/protobuf"

    def test_explicit_none_beats_an_endpoint(self) -> None:
        config = ServingConfig.from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"}
        )
        assert config.otel_traces_exporter == "none"

    def test_values_are_parsed(self, tmp_path: Path) -> None:
        config = ServingConfig.from_env(
            {
                "OTEL_SDK_DISABLED": "TRUE",
                "OTEL_SERVICE_NAME": "scoring",
                "OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio",
                "OTEL_TRACES_SAMPLER_ARG": "0.25",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "128",
                "OTEL_BSP_SCHEDULE_DELAY": "250",
                "ZENML_SERVING_METRICS": "off",
                "ZENML_SERVING_ACCESS_LOG": "false",
                "ZENML_SERVING_LOG_FORMAT": "JSON",
                "ZENML_SERVING_METRICS_INTERVAL": "5",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-yet"),
            }
        )
        assert config.otel_sdk_disabled is True
        assert config.otel_service_name == "scoring"
        assert config.otel_traces_sampler == "parentbased_traceidratio"
        assert config.otel_traces_sampler_arg == 0.25
        assert (config.otel_bsp_max_export_batch_size, config.otel_bsp_schedule_delay_ms) == (
            128,
            250,
        )
        assert (config.metrics_enabled, config.access_log) == (False, False)
        assert config.log_format == "json"
        assert config.metrics_interval_s == 5.0
        assert config.prometheus_multiproc_dir == tmp_path / "not-yet"

    @pytest.mark.parametrize(
        ("variable", "value", "allowed"),
        [
            ("OTEL_TRACES_EXPORTER", "zipkin", "none | otlp | console"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "http/protobuf | grpc"),
            ("OTEL_TRACES_SAMPLER", "sometimes", "parentbased_always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "2", "0..1"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", "1..2048"),
            ("OTEL_BSP_SCHEDULE_DELAY", "soon", "(ms)"),
            ("ZENML_SERVING_LOG_FORMAT", "xml", "auto | json | console"),
            ("ZENML_SERVING_METRICS", "maybe", "true | false"),
            ("ZENML_SERVING_METRICS_INTERVAL", "0", "seconds > 0"),
        ],
    )
    def test_bad_values_name_the_variable(self, variable: str, value: str, allowed: str) -> None:
        with pytest.raises(ConfigError) as raised:
            ServingConfig.from_env({variable: value})
        assert raised.value.variable == variable
        assert value in str(raised.value)
        assert allowed in str(raised.value)


class TestPublicApi:
    """The telemetry package's public names change only on purpose."""

    def test_all(self) -> None:
        assert set(zenml_serving.telemetry.__all__) == {
            "CaptureDecider",
            "RedactingSpanProcessor",
            "Redactor",
            "current_trace_attributes",
            "default_redact",
            "make_redactor",
        }
