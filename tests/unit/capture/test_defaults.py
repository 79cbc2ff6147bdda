"""The service defaults come from the environment, via ServingConfig."""

from __future__ import annotations

import pytest

from zenml_serving.capture import CaptureConfigError, CaptureDefaults, CaptureMode
from zenml_serving.config import ServingConfig


class TestFromConfig:
    """Every ZENML_SERVING_CAPTURE_* variable and CREATE_RUNS reach the defaults."""

    def test_documented_defaults(self) -> None:
        defaults = CaptureDefaults.from_config(ServingConfig.from_env({}))
        assert defaults == CaptureDefaults()
        assert defaults.mode is CaptureMode.FULL
        assert defaults.max_bytes == 262_144
        assert defaults.override_allowed is True
        assert defaults.create_runs is True

    def test_every_variable(self) -> None:
        config = ServingConfig.from_env(
            {
                "ZENML_SERVING_CAPTURE_DEFAULT": "errors_only",
                "ZENML_SERVING_CAPTURE_SAMPLE_RATE": "0.3",
                "ZENML_SERVING_CAPTURE_MAX_BYTES": "4096",
                "ZENML_SERVING_CAPTURE_REDACT": "SSN, iban",
                "ZENML_SERVING_CAPTURE_OVERRIDE": "deny",
                "ZENML_SERVING_CREATE_RUNS": "false",
            }
        )
        assert CaptureDefaults.from_config(config) == CaptureDefaults(
            mode=CaptureMode.ERRORS_ONLY,
            sample_rate=0.3,
            max_bytes=4096,
            redact=("ssn", "iban"),
            override_allowed=False,
            create_runs=False,
        )


class TestValidation:
    """Impossible defaults cannot be built, even outside the environment parser."""

    def test_mode_names_are_accepted(self) -> None:
        assert CaptureDefaults(mode="metadata").mode is CaptureMode.METADATA  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            ({"mode": "everything"}, "'mode' = 'everything'"),
            ({"sample_rate": 2.0}, "'sample_rate' = 2.0"),
            ({"max_bytes": 0}, "'max_bytes' = 0"),
        ],
    )
    def test_bad_values_are_named(self, kwargs: dict[str, object], fragment: str) -> None:
        with pytest.raises(CaptureConfigError, match=r"^service defaults: ") as caught:
            CaptureDefaults(**kwargs)  # type: ignore[arg-type]
        assert fragment in str(caught.value)

    def test_redact_names_are_normalised(self) -> None:
        assert CaptureDefaults(redact=(" SSN", "", "ssn", "Iban")).redact == ("ssn", "iban")
