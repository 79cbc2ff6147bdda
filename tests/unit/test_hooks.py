"""Pipeline hooks: on_init kwargs validated against the hook, on_cleanup errors logged only."""

from __future__ import annotations

import pytest
from zenml.config.pipeline_configurations import PipelineConfiguration
from zenml.utils import source_utils

from tests.services import log_events
from zenml_serving.deployment.hooks import HookFailedError, load_hooks, run_cleanup, run_init
from zenml_serving.deployment.model import PipelineHooks


def load(path: str, retries: int = 1) -> str:
    return f"{path}:{retries}"


def fail_cleanup() -> None:
    raise OSError("disk gone")


def configuration(**kwargs: object) -> PipelineConfiguration:
    return PipelineConfiguration(
        name="p",
        init_hook_source=source_utils.resolve(load),
        init_hook_kwargs=kwargs,
        cleanup_hook_source=source_utils.resolve(fail_cleanup),
    )


class TestHooks:
    """The kwargs a snapshot stores must fit the imported hook; cleanup never raises."""

    def test_kwargs_are_validated_and_passed(self) -> None:
        hooks = load_hooks(configuration(path="m.pkl", retries=3))
        assert run_init(hooks).state == "m.pkl:3"

    def test_kwargs_that_do_not_fit_name_the_hook(self) -> None:
        with pytest.raises(HookFailedError, match=r"on_init hook '.*\.load' does not accept"):
            load_hooks(configuration(path="m.pkl", colour="red"))

    def test_a_raising_cleanup_is_logged_and_returns(self) -> None:
        with log_events() as events:
            duration = run_cleanup(PipelineHooks(on_cleanup=fail_cleanup, cleanup_source="x.y"))
        assert duration is not None
        (failure,) = [e for e in events if e["event"] == "on_cleanup_failed"]
        assert failure["hook"] == "x.y"
