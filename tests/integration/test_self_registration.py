"""Self-registration against the session's real ZenML store (SelfRegistration, in-process)."""

from __future__ import annotations

import uuid

import pytest
from structlog.testing import capture_logs

from tests.conftest import REPO_ROOT, new_snapshot
from zenml_serving.api.context import DeploymentIdentity
from zenml_serving.config import ServingConfig
from zenml_serving.deployment.loader import load_served_pipeline
from zenml_serving.integration.registration import SelfRegistration

pytestmark = pytest.mark.anyio

TARGET = "tests.pipelines.zenml_native:arithmetic"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestOneDeploymentPerSnapshot:
    """A snapshot that is already a deployment is not registered again under another name."""

    async def test_a_second_name_is_refused_naming_the_first(self) -> None:
        pipeline = load_served_pipeline(new_snapshot(TARGET), source_root=REPO_ROOT)
        first, second = (f"reg-{uuid.uuid4().hex[:8]}" for _ in range(2))
        key = uuid.uuid4().hex

        def registration(name: str) -> SelfRegistration:
            config = ServingConfig(deployment_name=name, auth_key=key, port=18001)
            return SelfRegistration(config, pipeline)

        identity = DeploymentIdentity()
        await registration(first).announce(identity)
        assert identity.name == first

        refused = DeploymentIdentity()
        with capture_logs() as logs:
            await registration(second).announce(refused)
        assert refused.current() == (None, None)
        failure = next(log for log in logs if log["event"] == "self_registration_failed")
        assert f"ZENML_SERVING_DEPLOYMENT_NAME={first}" in failure["error"]

        again = DeploymentIdentity()
        await registration(first).announce(again)  # the same name is an update, not a refusal
        assert again.current() == identity.current()
