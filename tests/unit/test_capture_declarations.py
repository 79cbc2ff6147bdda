"""A capture policy comes from `extra` or from the deployer settings; two different ones are
refused, naming where each was declared."""

from __future__ import annotations

import pydantic
import pytest

from zenml_serving.deployment.capture_declarations import ConflictingCaptureError, declared_capture

POLICY = {"mode": "sampled", "sample_rate": 0.2}


class _Settings(pydantic.BaseModel):
    """Stands for ZenML's BaseSettings as the snapshot returns it (a pydantic model)."""

    model_config = pydantic.ConfigDict(extra="allow")


class TestDeclaredCapture:
    """Either place declares the policy; both must agree."""

    def test_nothing_declared(self) -> None:
        assert declared_capture({}, {"docker": _Settings()}, "the pipeline") == {}

    def test_from_extra(self) -> None:
        assert declared_capture({"serving_capture": POLICY}, {}, "the pipeline") == POLICY

    @pytest.mark.parametrize("key", ["deployer", "deployer.zenml-serving", "deployer:serving"])
    def test_from_deployer_settings(self, key: str) -> None:
        settings = {key: _Settings(serving_capture=POLICY, workers=2)}
        assert declared_capture({}, settings, "the pipeline") == POLICY

    def test_other_components_settings_are_not_read(self) -> None:
        settings = {"orchestrator": _Settings(serving_capture=POLICY)}
        assert declared_capture({}, settings, "the pipeline") == {}

    def test_the_same_policy_in_both_places(self) -> None:
        settings = {"deployer": {"serving_capture": dict(POLICY)}}
        assert declared_capture({"serving_capture": POLICY}, settings, "step 'a'") == POLICY

    def test_different_policies_are_refused_naming_both(self) -> None:
        settings = {"deployer:serving": _Settings(serving_capture={"mode": "none"})}
        with pytest.raises(ConflictingCaptureError) as caught:
            declared_capture({"serving_capture": POLICY}, settings, "step 'load'")
        message = str(caught.value)
        assert message.startswith("step 'load' declares two different capture policies")
        assert 'extra["serving_capture"]' in message
        assert 'settings["deployer:serving"]["serving_capture"]' in message
