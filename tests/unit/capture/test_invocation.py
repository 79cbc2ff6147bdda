"""One resolved object per invocation says what every sink may record, for success and failure."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from tests.unit.capture.served import echo, ids_for_rate, plan_for, resolve, served_step
from zenml_serving.capture import (
    Capture,
    CaptureConfigError,
    CaptureMode,
    InvocationCapture,
    StepCapture,
    is_sampled,
)

FULL, META, NONE = CaptureMode.FULL, CaptureMode.METADATA, CaptureMode.NONE


def single_step(mode: str, **step_capture: Any) -> InvocationCapture:
    return resolve(plan_for(served_step("s", echo, {"mode": mode, **step_capture})))


def flags(step: StepCapture) -> dict[str, Any]:
    """What a user sees recorded for the step's one input and one output."""
    return {
        "recorded": step.recorded,
        "input_preview": step.input("text").preview,
        "input_metadata": step.input("text").metadata,
        "output_preview": step.output("output").preview,
        "output_persisted": step.output("output").persist,
        "failed_input_preview": step.input("text", failed=True).preview,
        "failed_input_persisted": step.input("text", failed=True).persist,
        "error_detail": step.error_detail,
    }


class TestModes:
    """Each mode records what capture-policies.md's table says, no more."""

    def test_full_records_everything(self) -> None:
        capture = single_step("full")
        assert flags(capture.step("s")) == dict.fromkeys(flags(capture.step("s")), True)
        assert capture.record_run
        assert capture.run_payloads()
        assert capture.run_payloads(failed=True)

    def test_metadata_records_no_payload_and_no_artifact(self) -> None:
        capture = resolve(plan_for(served_step("s", echo), capture={"mode": "metadata"}))
        assert flags(capture.step("s")) == {
            "recorded": True,
            "input_preview": False,
            "input_metadata": True,
            "output_preview": False,
            "output_persisted": False,
            "failed_input_preview": False,
            "failed_input_persisted": False,
            "error_detail": False,
        }
        assert capture.record_run
        assert not capture.run_payloads()
        assert not capture.run_payloads(failed=True)
        assert not capture.any_payload

    def test_none_records_nothing(self) -> None:
        capture = resolve(plan_for(served_step("s", echo), capture={"mode": "none"}))
        assert flags(capture.step("s")) == dict.fromkeys(flags(capture.step("s")), False)
        assert not capture.record_run
        assert not capture.any_payload

    def test_sampled_is_full_for_sampled_invocations_and_metadata_for_the_rest(self) -> None:
        plan = plan_for(served_step("s", echo), capture={"mode": "sampled", "sample_rate": 0.5})
        sampled_id, unsampled_id = ids_for_rate(0.5)
        sampled, unsampled = plan.resolve(sampled_id), plan.resolve(unsampled_id)
        assert sampled.sampled
        assert sampled.step("s").sampled
        assert flags(sampled.step("s")) == flags(single_step("full").step("s"))
        assert not unsampled.sampled
        assert not unsampled.step("s").sampled
        assert flags(unsampled.step("s")) == flags(single_step("metadata").step("s"))
        assert sampled.run_payloads()
        assert not unsampled.run_payloads()


class TestErrorsOnly:
    """`errors_only`: metadata while all goes well; full for a failing step and for the run."""

    def test_a_succeeding_step_records_metadata_only(self) -> None:
        step = resolve(plan_for(served_step("s", echo), capture={"mode": "errors_only"})).step("s")
        assert step.recorded
        assert step.input("text").mode is META
        assert not step.input("text").preview
        assert step.output("output").mode is META
        assert not step.output("output").persist

    def test_a_failing_step_records_inputs_error_and_traceback_in_full(self) -> None:
        step = resolve(plan_for(served_step("s", echo), capture={"mode": "errors_only"})).step("s")
        failed = step.input("text", failed=True)
        assert failed.mode is FULL
        assert failed.preview
        assert failed.persist  # the failing call can be reproduced from its inputs
        assert step.error_detail
        assert step.needs_input_previews  # so the observer renders them when the step starts

    def test_the_run_records_payloads_only_when_it_fails(self) -> None:
        capture = resolve(plan_for(served_step("s", echo), capture={"mode": "errors_only"}))
        assert capture.record_run
        assert not capture.run_payloads(failed=False)
        assert capture.run_payloads(failed=True)

    def test_only_the_step_that_declares_it_turns_full(self) -> None:
        plan = plan_for(
            served_step("fragile", echo, {"mode": "errors_only"}),
            served_step("steady", echo),
            capture={"mode": "metadata"},
        )
        capture = resolve(plan)
        assert capture.step("fragile").input("text", failed=True).preview
        assert not capture.step("steady").input("text", failed=True).preview
        assert not capture.step("steady").error_detail
        assert not capture.run_payloads(failed=True)  # the run-level mode is metadata

    def test_a_per_value_metadata_entry_stays_metadata_on_failure(self) -> None:
        capture = single_step("errors_only", inputs={"text": "metadata"})
        failed = capture.step("s").input("text", failed=True)
        assert failed.mode is META
        assert not failed.persist
        # The error message could quote the withheld input: its type only.
        assert not capture.step("s").error_detail

    def test_an_input_redacted_by_name_keeps_the_error_message_out(self) -> None:
        capture = single_step("errors_only", redact=["text"])
        assert capture.step("s").input("text", failed=True).preview
        assert not capture.step("s").error_detail

    def test_metadata_does_not_turn_full_on_failure(self) -> None:
        step = single_step("metadata").step("s")
        assert not step.input("text", failed=True).preview
        assert not step.error_detail


class TestArtifacts:
    """Artifacts follow the value's mode unless an explicit `artifacts` key says otherwise."""

    def test_metadata_mode_with_artifacts_full_persists_without_previews(self) -> None:
        output = single_step("metadata", artifacts="full").step("s").output("output")
        assert output.persist
        assert not output.preview

    def test_full_mode_with_artifacts_none_previews_without_persisting(self) -> None:
        step = single_step("full", artifacts="none").step("s")
        assert step.output("output").preview
        assert not step.output("output").persist
        assert not step.input("text", failed=True).persist

    def test_artifacts_sampled_follows_the_invocation_sample(self) -> None:
        plan = plan_for(served_step("s", echo, {"artifacts": "sampled", "sample_rate": 0.5}))
        sampled_id, unsampled_id = ids_for_rate(0.5)
        assert plan.resolve(sampled_id).step("s").output("output").persist
        assert not plan.resolve(unsampled_id).step("s").output("output").persist
        assert plan.resolve(unsampled_id).step("s").output("output").preview  # mode is full

    def test_artifacts_errors_only_persists_the_inputs_of_a_failing_step_only(self) -> None:
        step = single_step("full", artifacts="errors_only").step("s")
        assert not step.output("output").persist
        assert step.input("text", failed=True).persist

    def test_the_step_key_beats_the_pipeline_key(self) -> None:
        plan = plan_for(
            served_step("own", echo, {"artifacts": "full"}),
            served_step("inherits", echo),
            capture={"mode": "full", "artifacts": "none"},
        )
        capture = resolve(plan)
        assert capture.step("own").output("output").persist
        assert not capture.step("inherits").output("output").persist

    def test_a_value_declared_none_is_never_persisted(self) -> None:
        step = single_step("full", artifacts="full", outputs={"output": "none"}).step("s")
        assert not step.output("output").persist
        assert not step.output("output").metadata

    def test_a_value_declared_full_in_a_metadata_step_is_persisted(self) -> None:
        step = single_step("metadata", outputs="full").step("s")
        assert step.output("output").preview
        assert step.output("output").persist

    def test_the_inputs_of_a_succeeding_step_are_not_persisted_again(self) -> None:
        assert not single_step("full").step("s").input("text").persist


class TestNone:
    """`none` is a gate for the step it applies to; a step's own mode still beats a request."""

    def test_a_step_under_none_ignores_annotations_and_pipeline_entries(self) -> None:
        def hinted(text: Annotated[str, Capture("full")]) -> str:
            return text

        plan = plan_for(
            served_step("s", hinted), capture={"mode": "none", "outputs": {"output": "full"}}
        )
        step = resolve(plan).step("s")
        assert not step.recorded
        assert step.input("text").mode is NONE
        assert not step.input("text").metadata
        assert step.output("output").mode is NONE
        assert not step.any_payload

    def test_a_step_declaring_none_and_a_value_full_is_rejected(self) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            plan_for(served_step("score", echo, {"mode": "none", "inputs": {"text": "full"}}))
        assert str(caught.value).startswith(
            "step 'score': serving_capture 'inputs'['text'] = 'full' contradicts 'mode' = 'none'"
        )

    def test_a_step_declaring_none_and_artifacts_is_rejected(self) -> None:
        with pytest.raises(CaptureConfigError, match="'artifacts' = 'full' contradicts"):
            plan_for(served_step("score", echo, {"mode": "none", "artifacts": "full"}))

    def test_a_step_declaring_none_for_all_of_it_is_fine(self) -> None:
        plan = plan_for(served_step("s", echo, {"mode": "none", "inputs": {"text": "none"}}))
        assert not resolve(plan).step("s").recorded

    def test_a_step_full_under_a_request_none_records_a_payload_free_run(self) -> None:
        plan = plan_for(served_step("debugged", echo, {"mode": "full"}), served_step("other", echo))
        capture = resolve(plan, {"mode": "none"})
        assert capture.mode is NONE
        assert capture.record_run  # the step's own mode wins, so its record needs a run
        assert capture.step("debugged").recorded
        assert capture.step("debugged").output("output").preview
        assert not capture.step("other").recorded
        assert not capture.run_payloads()
        assert not capture.run_payloads(failed=True)

    def test_everything_none_means_no_run(self) -> None:
        plan = plan_for(served_step("a", echo), served_step("b", echo), mode="none")
        capture = resolve(plan)
        assert not capture.record_run
        assert not capture.any_payload


class TestCreateRunsOff:
    """ZENML_SERVING_CREATE_RUNS=false: no run and no artifact, whatever the policies say."""

    def test_no_run_no_artifact_but_telemetry_previews_still_follow_policy(self) -> None:
        plan = plan_for(served_step("s", echo, {"artifacts": "full"}), create_runs=False)
        capture = resolve(plan)
        assert not capture.record_run
        assert not capture.step("s").output("output").persist
        assert not capture.step("s").input("text", failed=True).persist
        assert capture.step("s").output("output").preview  # span/log previews are not runs


class TestSamplingAcrossTheInvocation:
    """Every step and the run decide from the same id, and a replay decides the same."""

    def test_all_steps_agree_with_the_run(self) -> None:
        plan = plan_for(
            served_step("a", echo),
            served_step("b", echo),
            capture={"mode": "sampled", "sample_rate": 0.3},
        )
        for i in range(300):
            capture = plan.resolve(f"inv-{i}")
            expected = is_sampled(f"inv-{i}", 0.3)
            assert capture.sampled is expected
            assert capture.step("a").sampled is capture.step("b").sampled is expected

    def test_a_replay_resolves_identically(self) -> None:
        plan = plan_for(served_step("a", echo), capture={"mode": "sampled"})
        assert plan.resolve("same-id", {"sample_rate": 0.4}) == plan.resolve(
            "same-id", {"sample_rate": 0.4}
        )

    def test_rates_layer_step_then_request_then_pipeline_then_service(self) -> None:
        plan = plan_for(
            served_step("always", echo, {"sample_rate": 1.0}),
            served_step("inherits", echo),
            capture={"mode": "sampled", "sample_rate": 0.0},
            sample_rate=1.0,
        )
        without_request = plan.resolve("x")
        assert without_request.step("always").sampled  # step rate 1.0
        assert not without_request.step("inherits").sampled  # pipeline rate 0.0 beats service
        with_request = plan.resolve("x", {"sample_rate": 1.0})
        assert with_request.step("inherits").sampled  # request rate beats the pipeline's
        never = plan.resolve("x", {"sample_rate": 0.0})
        assert never.step("always").sampled  # the step's own rate beats the request's

    def test_the_service_rate_applies_when_nobody_else_sets_one(self) -> None:
        plan = plan_for(served_step("s", echo), mode="sampled", sample_rate=0.2)
        observed = sum(
            plan.resolve(f"id-{i}").step("s").output("output").preview for i in range(5000)
        )
        assert abs(observed / 5000 - 0.2) <= 5 * (0.2 * 0.8 / 5000) ** 0.5


class TestOverrides:
    """A request override is validated, applied, or ignored when the service denies it."""

    def test_a_denied_override_is_ignored_and_says_so(self) -> None:
        plan = plan_for(served_step("s", echo), override_allowed=False)
        capture = resolve(plan, {"mode": "none"})
        assert capture.mode is FULL
        assert capture.step("s").recorded
        assert capture.override_ignored
        assert not capture.override_applied

    def test_an_empty_override_is_no_override(self) -> None:
        capture = resolve(plan_for(served_step("s", echo)), {"mode": None})
        assert not capture.override_applied
        assert not capture.override_ignored

    @pytest.mark.parametrize(
        ("override", "fragment"),
        [
            ({"mode": "all"}, "'mode' = 'all' is not a capture mode; allowed: full, sampled"),
            ({"sample_rate": 3}, "'sample_rate' = 3 is not a sample rate"),
            ({"modes": "full"}, "'modes' is not a known key; allowed: mode, sample_rate"),
        ],
    )
    def test_a_bad_override_names_the_request(self, override: Any, fragment: str) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            resolve(plan_for(served_step("s", echo)), override)
        assert str(caught.value).startswith("request capture_override: serving_capture ")
        assert fragment in str(caught.value)


class TestSizesAndRedaction:
    """max_bytes: step > pipeline > service; redaction lists add up across layers."""

    def test_limits_and_lists_per_layer(self) -> None:
        plan = plan_for(
            served_step("own", echo, {"max_bytes": 10, "redact": ["iban"]}),
            served_step("inherits", echo),
            capture={"max_bytes": 100, "redact": ["ssn"]},
            max_bytes=1000,
            redact=("dob",),
        )
        capture = resolve(plan)
        assert (capture.step("own").max_bytes, capture.step("own").redact) == (
            10,
            ("dob", "ssn", "iban"),
        )
        assert capture.step("inherits").max_bytes == 100
        assert (capture.max_bytes, capture.redact) == (100, ("dob", "ssn"))

    def test_the_step_preview_applies_them(self) -> None:
        plan = plan_for(served_step("s", echo, {"max_bytes": 40, "redact": ["iban"]}))
        preview = resolve(plan).step("s").preview({"iban": "DE89370400440532013000", "x": "y" * 50})
        assert preview.text.startswith('{"iban": "[REDACTED]"')
        assert preview.truncated
        assert len(preview.text.encode()) <= 40


class TestBuildValidation:
    """Every declaration is validated when the plan is built, naming the culprit."""

    def test_a_pipeline_entry_for_an_unknown_input(self) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            plan_for(served_step("s", echo), capture={"inputs": {"txt": "none"}})
        assert str(caught.value) == (
            "pipeline 'text_pipeline': serving_capture 'inputs' names 'txt', which is not an "
            "input of any step of pipeline 'text_pipeline'; allowed: text"
        )

    def test_a_step_entry_for_an_unknown_output(self) -> None:
        with pytest.raises(CaptureConfigError, match="which is not an output of step 's'"):
            plan_for(served_step("s", echo, {"outputs": {"answer": "none"}}))

    def test_an_unknown_step_key(self) -> None:
        with pytest.raises(CaptureConfigError, match=r"^step 's': serving_capture 'mod' is not"):
            plan_for(served_step("s", echo, {"mod": "full"}))


class TestResolutionIsCheap:
    """Per request: one hash and lookups; the step decisions are precomputed and shared."""

    def test_step_decisions_are_shared_between_invocations(self) -> None:
        plan = plan_for(served_step("s", echo))
        assert plan.resolve("a").step("s") is plan.resolve("b").step("s")

    def test_describe_explains_the_effective_policy(self) -> None:
        def hinted(text: Annotated[str, Capture("none")]) -> str:
            return text

        plan = plan_for(served_step("s", hinted), capture={"mode": "metadata"})
        assert plan.describe() == {
            "mode": "metadata (pipeline)",
            "steps": {
                "s": {
                    "mode": "metadata (pipeline)",
                    "inputs": {"text": "none (annotation)"},
                    "outputs": {"output": "metadata (global)"},
                }
            },
        }


class TestAttributes:
    """The decision itself is loggable: payload-free facts for spans and log events."""

    def test_attributes(self) -> None:
        capture = resolve(plan_for(served_step("s", echo)), {"mode": "metadata"})
        assert capture.attributes() == {
            "capture.mode": "metadata",
            "capture.mode_source": "request",
            "capture.sampled": capture.sampled,
            "capture.record_run": True,
            "capture.override_applied": True,
            "capture.override_ignored": False,
        }
