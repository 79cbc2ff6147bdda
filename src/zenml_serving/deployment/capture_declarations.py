"""Where a pipeline or a step declares its capture policy, read from the snapshot.

Two places, one layer:

- `extra={"serving_capture": {...}}`: ZenML's free-form mapping, accepted on any stack;
- `settings={"deployer": {"serving_capture": {...}}}` (or the keys `deployer.zenml-serving`,
  `deployer:<component name>`): the `zenml-serving` deployer's settings, which ZenML accepts
  and validates only when the active stack has that deployer (on another stack ZenML drops a
  `deployer.zenml-serving` key with a warning, and refuses `deployer`).

A pipeline (or step) may use either, or both with the same policy; both with different
policies is refused, naming the pipeline or step, rather than one silently winning.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CAPTURE_KEY", "ConflictingCaptureError", "declared_capture"]

CAPTURE_KEY = "serving_capture"
# ZenML's settings keys for a deployer: by type, by flavor (`.`) or by component name (`:`).
_DEPLOYER_KEY = re.compile(r"deployer(?:[.:].+)?")


class ConflictingCaptureError(ValueError):
    """`extra` and the deployer settings declare different capture policies."""


def declared_capture(
    extra: Mapping[str, Any], settings: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """The capture policy `where` (e.g. `step 'load'`) declares, unvalidated ({} if none)."""
    found: dict[str, Any] = {}
    if extra.get(CAPTURE_KEY) is not None:
        found[f'extra["{CAPTURE_KEY}"]'] = extra[CAPTURE_KEY]
    for key, value in settings.items():
        if not _DEPLOYER_KEY.fullmatch(key):
            continue
        policy = _as_dict(value).get(CAPTURE_KEY)
        if policy is not None:
            found[f'settings["{key}"]["{CAPTURE_KEY}"]'] = policy
    policies = list(found.values())
    if any(policy != policies[0] for policy in policies[1:]):
        shown = "; ".join(f"{place} = {policy!r}" for place, policy in found.items())
        raise ConflictingCaptureError(
            f"{where} declares two different capture policies ({shown}): keep one of them"
        )
    return dict(policies[0]) if policies else {}


def _as_dict(value: Any) -> dict[str, Any]:
    """A settings value from the snapshot: a pydantic model (ZenML's BaseSettings) or a dict."""
    if hasattr(value, "model_dump"):
        dumped: dict[str, Any] = value.model_dump()
        return dumped
    return dict(value) if isinstance(value, dict) else {}
