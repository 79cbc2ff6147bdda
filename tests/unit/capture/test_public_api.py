"""The public surface changes only on purpose, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import zenml_serving.capture as capture

PUBLIC = {
    "REDACTED",
    "SENSITIVE_FIELD_PARTS",
    "Capture",
    "CaptureConfigError",
    "CaptureDeclaration",
    "CaptureDefaults",
    "CaptureHints",
    "CaptureMode",
    "CapturePlan",
    "CapturedOutput",
    "InvocationCapture",
    "PipelineLike",
    "Preview",
    "StepCapture",
    "StepLike",
    "ValueCapture",
    "build_capture_plan",
    "describe_value",
    "is_card_number",
    "is_sampled",
    "is_sensitive_field",
    "luhn_valid",
    "mask_secrets",
    "parse_declaration",
    "preview",
    "read_capture_hints",
    "redact",
    "sampling_point",
}


class TestPublicApi:
    """`__all__` is pinned and every name in it resolves."""

    def test_all_is_pinned(self) -> None:
        assert set(capture.__all__) == PUBLIC

    def test_every_public_name_resolves(self) -> None:
        for name in capture.__all__:
            assert getattr(capture, name) is not None

    def test_captured_output_is_zenmls_artifact_config(self) -> None:
        from zenml import ArtifactConfig

        assert issubclass(capture.CapturedOutput, ArtifactConfig)

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            _ = capture.Nope  # type: ignore[attr-defined]


class TestImportCost:
    """The capture package imports neither ZenML (seconds) nor Litestar (not its concern)."""

    def test_importing_the_package_pulls_in_neither(self) -> None:
        code = (
            "import sys, zenml_serving.capture\n"
            "heavy = sorted(m for m in ('zenml', 'litestar') if m in sys.modules)\n"
            "print(','.join(heavy))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == ""
