"""ServingConfig reads every variable once and names the bad one."""

from __future__ import annotations

import uuid

import pytest

from zenml_serving.config import ConfigError, ServingConfig


class TestDefaults:
    """Nothing set: the documented defaults."""

    def test_documented_defaults(self) -> None:
        config = ServingConfig.from_env({})
        assert (config.host, config.port) == ("0.0.0.0", 8001)
        assert config.max_queue_size == 100
        assert config.request_timeout_s == 300.0
        assert config.capture_default == "full"
        assert config.capture_max_bytes == 262_144
        assert config.create_runs is True
        assert config.deployment_id is None


class TestParsing:
    """Values are parsed and normalised."""

    def test_values_are_parsed(self) -> None:
        snapshot = uuid.uuid4()
        config = ServingConfig.from_env(
            {
                "ZENML_PIPELINE_DEPLOYMENT_ID": str(snapshot),
                "ZENML_SERVING_MAX_CONCURRENCY": "3",
                "ZENML_SERVING_CREATE_RUNS": "False",
                "ZENML_SERVING_CAPTURE_DEFAULT": "METADATA",
                "ZENML_SERVING_CAPTURE_REDACT": "ssn, Birth_Date ,",
                "ZENML_LOG_LEVEL": "debug",
            }
        )
        assert config.deployment_id == snapshot
        assert config.max_concurrency == 3
        assert config.create_runs is False
        assert config.capture_default == "metadata"
        assert config.capture_redact == ("ssn", "birth_date")
        assert config.log_level == "DEBUG"

    @pytest.mark.parametrize(
        ("variable", "value", "expected"),
        [
            ("ZENML_PIPELINE_DEPLOYMENT_ID", "abc", "a UUID"),
            ("ZENML_SERVICE_PORT", "70000", "1..65535"),
            ("ZENML_SERVING_MAX_CONCURRENCY", "0", "1..10000"),
            ("ZENML_SERVING_REQUEST_TIMEOUT", "-1", "seconds > 0"),
            ("ZENML_SERVING_CREATE_RUNS", "maybe", "true | false"),
            ("ZENML_SERVING_CAPTURE_DEFAULT", "all", "full | sampled"),
            ("ZENML_SERVING_CAPTURE_SAMPLE_RATE", "1.5", "0..1"),
            ("ZENML_SERVING_CAPTURE_OVERRIDE", "sometimes", "allow | deny"),
            ("ZENML_SERVING_SOURCE_ROOT", "/does/not/exist", "an existing folder"),
        ],
    )
    def test_a_bad_value_names_the_variable_value_and_allowed(
        self, variable: str, value: str, expected: str
    ) -> None:
        with pytest.raises(ConfigError) as raised:
            ServingConfig.from_env({variable: value})
        message = str(raised.value)
        assert message.startswith(f"{variable}={value!r} is invalid")
        assert expected in message
        assert raised.value.variable == variable


class TestPublicView:
    """/status shows the configuration as plain JSON values."""

    def test_public_view_is_json_friendly(self) -> None:
        view = ServingConfig.from_env({"ZENML_SERVING_CAPTURE_REDACT": "a,b"}).public_view()
        assert view["capture_redact"] == ["a", "b"]
        assert isinstance(view["source_root"], str)
