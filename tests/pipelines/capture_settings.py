"""Capture policies declared through the `zenml-serving` deployer's settings."""

from __future__ import annotations

from zenml import pipeline, step


@step(settings={"deployer": {"serving_capture": {"mode": "none"}}})
def quiet(text: str) -> str:
    """Records nothing (declared in the deployer settings)."""
    return text


@step(
    extra={"serving_capture": {"mode": "full"}},
    settings={"deployer.zenml-serving": {"serving_capture": {"mode": "full"}}},
)
def agreed(text: str) -> str:
    """Declares the same policy in both places."""
    return text.upper()


@pipeline(settings={"deployer.zenml-serving": {"serving_capture": {"mode": "metadata"}}})
def settings_policy(text: str = "hi") -> str:
    """Pipeline-level policy in the settings."""
    return agreed(quiet(text))


@step(
    extra={"serving_capture": {"mode": "full"}},
    settings={"deployer": {"serving_capture": {"mode": "none"}}},
)
def torn(text: str) -> str:
    """Two different policies: refused."""
    return text


@pipeline
def conflicting_policy(text: str = "hi") -> str:
    """One step declares two policies."""
    return torn(text)
