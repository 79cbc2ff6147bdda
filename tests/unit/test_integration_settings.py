"""The flavor's settings become the service's variables, and the service accepts them; the
self-registration variables are validated like every other."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT
from zenml_serving.config import ConfigError, ServingConfig
from zenml_serving.integration.registration import service_url
from zenml_serving.integration.settings import ENVIRONMENT_OF, ZenMLServingDeployerSettings


class TestServiceEnvironment:
    """Each knob maps onto the variable the README documents; unset ones are left out."""

    def test_set_fields_become_a_valid_configuration(self) -> None:
        settings = ZenMLServingDeployerSettings(
            workers=2,
            max_concurrency=8,
            request_timeout=12.5,
            create_runs=False,
            capture_default="sampled",
            capture_sample_rate=0.25,
            redis_url="redis://127.0.0.1:6379/0",
            cors_origins=["https://a.example.com", "https://b.example.com"],
            environment={"ZENML_SERVING_MAX_JOBS": "500"},
        )
        env = settings.service_environment()
        assert env["ZENML_SERVING_WORKERS"] == "2"
        assert env["ZENML_SERVING_CREATE_RUNS"] == "false"
        assert env["ZENML_SERVING_CORS_ORIGINS"] == "https://a.example.com,https://b.example.com"
        config = ServingConfig.from_env(env)
        assert (config.workers, config.max_concurrency, config.max_jobs) == (2, 8, 500)
        assert config.request_timeout_s == 12.5
        assert (config.capture_default, config.capture_sample_rate) == ("sampled", 0.25)
        assert config.create_runs is False

    def test_unset_fields_keep_the_service_defaults(self) -> None:
        assert ZenMLServingDeployerSettings().service_environment() == {}

    def test_every_mapped_variable_is_read_by_the_service(self) -> None:
        source = (REPO_ROOT / "src" / "zenml_serving" / "config.py").read_text()
        for field, variable in ENVIRONMENT_OF.items():
            assert field in ZenMLServingDeployerSettings.model_fields
            assert f'"{variable}"' in source, variable

    def test_bad_values_are_refused_by_zenml_when_the_settings_are_made(self) -> None:
        with pytest.raises(ValueError, match="workers"):
            ZenMLServingDeployerSettings(workers=0)


class TestSelfRegistrationConfig:
    """The record's url and the switches are read and checked at startup."""

    @pytest.mark.parametrize(
        ("env", "url"),
        [
            ({}, "http://127.0.0.1:8001"),
            ({"ZENML_SERVICE_HOST": "10.0.0.5", "ZENML_SERVICE_PORT": "9000"}, "http://10.0.0.5:9000"),
            ({"ZENML_SERVICE_HOST": "::1"}, "http://[::1]:8001"),
            ({"ZENML_SERVING_PUBLIC_URL": "https://churn.ml.example.com/"}, "https://churn.ml.example.com"),
        ],
    )  # fmt: skip
    def test_service_url(self, env: dict[str, str], url: str) -> None:
        assert service_url(ServingConfig.from_env(env)) == url

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("ZENML_SERVING_API", "fastapi"),
            ("ZENML_SERVING_PUBLIC_URL", "churn.svc:8001"),
            ("ZENML_SERVING_DEPLOYMENT_NAME", "x" * 256),
        ],
    )
    def test_bad_values_name_the_variable(self, variable: str, value: str) -> None:
        with pytest.raises(ConfigError) as caught:
            ServingConfig.from_env({variable: value})
        assert caught.value.variable == variable

    def test_defaults_change_nothing(self) -> None:
        config = ServingConfig.from_env({})
        assert config.api_style == "native"
        assert config.deployment_name is None
