"""`settings={"deployer": {"serving_capture": ...}}` on a stack with the zenml-serving
deployer: ZenML accepts and stores it, the service applies it like `extra=`, and a step that
declares two different policies is refused at load."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT, snapshot_of
from zenml_serving.deployment.loader import DeploymentLoadError, load_served_pipeline
from zenml_serving.integration import FLAVOR_NAME, FLAVOR_SOURCE


@pytest.fixture(scope="module")
def serving_stack() -> Iterator[None]:
    """A stack with a zenml-serving deployer, active while the module's snapshots are made."""
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.exceptions import EntityExistsError

    client = Client()
    kind = StackComponentType.DEPLOYER
    with contextlib.suppress(EntityExistsError):
        client.create_flavor(FLAVOR_SOURCE, kind)
    suffix = uuid.uuid4().hex[:8]
    deployer = client.create_stack_component(f"serving-{suffix}", FLAVOR_NAME, kind, {})
    default = client.active_stack_model
    components = {t: c[0].id for t, c in default.components.items()}
    stack = client.create_stack(f"serving-{suffix}", components={**components, kind: deployer.id})
    client.activate_stack(stack.id)
    try:
        yield
    finally:
        client.activate_stack(default.id)


@pytest.mark.usefixtures("serving_stack")
class TestCaptureInDeployerSettings:
    """The settings form works beside `extra=`; disagreement is refused."""

    def test_settings_policies_reach_the_served_pipeline(self) -> None:
        served = load_served_pipeline(
            snapshot_of("tests.pipelines.capture_settings:settings_policy"), source_root=REPO_ROOT
        )
        assert served.capture == {"mode": "metadata"}
        assert served.step("quiet").capture == {"mode": "none"}
        assert served.step("agreed").capture == {"mode": "full"}

    def test_two_different_policies_are_refused_at_load(self) -> None:
        with pytest.raises(DeploymentLoadError) as caught:
            load_served_pipeline(
                snapshot_of("tests.pipelines.capture_settings:conflicting_policy"),
                source_root=REPO_ROOT,
            )
        assert "step 'torn' declares two different capture policies" in str(caught.value)
