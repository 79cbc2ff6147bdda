"""The one error the capture package raises for a bad policy, at startup or for a bad override.

Every message names where the declaration lives (`step 'score'`, `pipeline 'text_pipeline'`,
`request capture_override`), the key, the bad value and what is allowed, so that an operator can
fix the pipeline code without reading ours.
"""

from __future__ import annotations

__all__ = ["CaptureConfigError"]


class CaptureConfigError(ValueError):
    """A capture declaration, annotation or override is invalid; the message says how to fix it."""

    def __init__(self, where: str, key: str, problem: str, *, allowed: str | None = None) -> None:
        message = f"{where}: serving_capture {key} {problem}"
        if allowed is not None:
            message += f"; allowed: {allowed}"
        super().__init__(message)
        self.where = where
        """Who declared it: `step 'name'`, `pipeline 'name'` or `request capture_override`."""
        self.key = key
        """The offending key, e.g. `'mode'` or `'inputs'['city']`."""
        self.allowed = allowed
        """What would have been accepted, when that can be said in a few words."""
