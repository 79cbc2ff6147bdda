"""ServingConfig reads every variable once and names the bad one."""

from __future__ import annotations

import uuid

import pytest

from zenml_serving.api.stream_limits import PROBE_RESERVE, granian_backpressure
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
        assert config.tracking_writer == "process"
        assert config.deployment_id is None
        assert (config.step_concurrency, config.step_concurrency_set) == (4, False)


class TestParsing:
    """Values are parsed and normalised."""

    def test_values_are_parsed(self) -> None:
        snapshot = uuid.uuid4()
        config = ServingConfig.from_env(
            {
                "ZENML_PIPELINE_DEPLOYMENT_ID": str(snapshot),
                "ZENML_SERVING_MAX_CONCURRENCY": "3",
                "ZENML_SERVING_STEP_CONCURRENCY": "1",
                "ZENML_SERVING_CREATE_RUNS": "False",
                "ZENML_SERVING_CAPTURE_DEFAULT": "METADATA",
                "ZENML_SERVING_CAPTURE_REDACT": "ssn, Birth_Date ,",
                "ZENML_LOG_LEVEL": "debug",
            }
        )
        assert config.deployment_id == snapshot
        assert config.max_concurrency == 3
        assert (config.step_concurrency, config.step_concurrency_set) == (1, True)
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
            ("ZENML_SERVING_STEP_CONCURRENCY", "0", "1..256"),
            ("ZENML_SERVING_REQUEST_TIMEOUT", "-1", "seconds > 0"),
            ("ZENML_SERVING_CREATE_RUNS", "maybe", "true | false"),
            ("ZENML_SERVING_CAPTURE_DEFAULT", "all", "full | sampled"),
            ("ZENML_SERVING_CAPTURE_SAMPLE_RATE", "1.5", "0..1"),
            ("ZENML_SERVING_CAPTURE_OVERRIDE", "sometimes", "allow | deny"),
            ("ZENML_SERVING_TRACKING_WRITER", "fork", "process | thread"),
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


class TestSecuritySettings:
    """The auth key never shows; CORS and limits are validated at startup."""

    KEY = "0123456789abcdef-key"

    def test_the_key_is_read_but_never_shown(self) -> None:
        config = ServingConfig.from_env({"ZENML_SERVING_AUTH_KEY": self.KEY})
        assert config.auth_key == self.KEY
        assert config.public_view()["auth_key"] == "***"
        assert self.KEY not in repr(config)
        assert ServingConfig.from_env({}).public_view()["auth_key"] is None

    def test_a_short_key_is_refused_without_echoing_it(self) -> None:
        with pytest.raises(ConfigError) as error:
            ServingConfig.from_env({"ZENML_SERVING_AUTH_KEY": "short-secret"})
        assert error.value.variable == "ZENML_SERVING_AUTH_KEY"
        assert "short-secret" not in str(error.value)
        assert "at least 16 characters" in str(error.value)

    @pytest.mark.parametrize(
        "origins", ["app.example.com", "https://app.example.com/path", "ftp://x.example"]
    )
    def test_an_origin_must_be_scheme_and_host(self, origins: str) -> None:
        with pytest.raises(ConfigError, match="ZENML_SERVING_CORS_ORIGINS"):
            ServingConfig.from_env({"ZENML_SERVING_CORS_ORIGINS": origins})

    def test_origins_are_listed_and_a_wildcard_needs_no_key(self) -> None:
        config = ServingConfig.from_env(
            {"ZENML_SERVING_CORS_ORIGINS": "https://a.example.com/, http://localhost:5173"}
        )
        assert config.cors_origins == ("https://a.example.com", "http://localhost:5173")
        assert ServingConfig.from_env({"ZENML_SERVING_CORS_ORIGINS": "*"}).cors_origins == ("*",)
        with pytest.raises(ConfigError, match="list the origins explicitly"):
            ServingConfig.from_env(
                {"ZENML_SERVING_CORS_ORIGINS": "*", "ZENML_SERVING_AUTH_KEY": self.KEY}
            )

    def test_limits(self) -> None:
        config = ServingConfig.from_env(
            {
                "ZENML_SERVING_MAX_REQUEST_SIZE": "65536",
                "ZENML_SERVING_MAX_PARAMETER_DEPTH": "8",
                "ZENML_SERVING_MAX_PARAMETER_ITEMS": "500",
            }
        )
        assert (config.max_request_bytes, config.max_parameter_depth) == (65536, 8)
        assert config.max_parameter_items == 500
        with pytest.raises(ConfigError, match="ZENML_SERVING_MAX_REQUEST_SIZE"):
            ServingConfig.from_env({"ZENML_SERVING_MAX_REQUEST_SIZE": "10"})


class TestStreamAndBodySettings:
    """Stream caps, the WebSocket origin switch and the body timeout are validated by name."""

    def test_defaults_and_values(self) -> None:
        config = ServingConfig.from_env(
            {
                "ZENML_SERVING_MAX_STREAMS": "40",
                "ZENML_SERVING_MAX_STREAMS_PER_CLIENT": "4",
                "ZENML_SERVING_WS_CHECK_ORIGIN": "false",
                "ZENML_SERVING_BODY_TIMEOUT": "2.5",
            }
        )
        assert (config.max_streams, config.max_streams_per_client) == (40, 4)
        assert (config.ws_check_origin, config.body_timeout_s) == (False, 2.5)
        defaults = ServingConfig.from_env({})
        assert (defaults.max_streams, defaults.max_streams_per_client) == (500, 100)

    @pytest.mark.parametrize(
        ("env", "variable"),
        [
            ({"ZENML_SERVING_MAX_STREAMS": "0"}, "ZENML_SERVING_MAX_STREAMS"),
            (
                {"ZENML_SERVING_MAX_STREAMS": "5", "ZENML_SERVING_MAX_STREAMS_PER_CLIENT": "6"},
                "ZENML_SERVING_MAX_STREAMS_PER_CLIENT",
            ),
            ({"ZENML_SERVING_WS_CHECK_ORIGIN": "maybe"}, "ZENML_SERVING_WS_CHECK_ORIGIN"),
            ({"ZENML_SERVING_BODY_TIMEOUT": "0"}, "ZENML_SERVING_BODY_TIMEOUT"),
        ],
    )
    def test_bad_values_name_the_variable(self, env: dict[str, str], variable: str) -> None:
        with pytest.raises(ConfigError) as error:
            ServingConfig.from_env(env)
        assert error.value.variable == variable

    def test_granian_backpressure_leaves_room_beyond_the_streams(self) -> None:
        config = ServingConfig(max_streams=2000, max_concurrency=10, max_queue_size=100)
        assert granian_backpressure(config, default=1024) == 2000 + 10 + 100 + PROBE_RESERVE
        assert granian_backpressure(ServingConfig(max_streams=10), default=1024) == 1024


class TestRedisUrlNeverShowsItsPassword:
    """A bad ZENML_SERVING_REDIS_URL is shown with its password masked, however it is bad."""

    @pytest.mark.parametrize(
        "url",
        [
            "redis://admin:s3cret-pw@redis:99999/0",
            "redis://:s3cret-pw@redis:port/0",
            "http://admin:s3cret-pw@redis/0",
            "redis://admin:s3cret@pw@redis:99999/0",
        ],
    )
    def test_startup_error_masks_the_password(self, url: str) -> None:
        with pytest.raises(ConfigError) as error:
            ServingConfig.from_env({"ZENML_SERVING_REDIS_URL": url})
        assert "s3cret" not in str(error.value)
        assert "pw" not in str(error.value).replace("ZENML", "")
        assert ":***@" in str(error.value)
