"""text_pipeline's steps under a capture policy of `full` previews without artifacts, for
`bench/tracking_rate.py --pipeline bench.tracking_pipelines:text_previews` (issue 18's
"previews included" rate)."""

from __future__ import annotations

from examples.text_pipeline import format_result, normalise, score
from zenml import pipeline


@pipeline(extra={"serving_capture": {"mode": "full", "artifacts": "metadata"}})
def text_previews(
    message: str = "ZenML serving is fast and simple", loud: bool = False
) -> dict[str, object]:
    """normalise -> score -> format, recorded with previews, outputs not persisted."""
    text = normalise(text=message)
    value = score(text=text)
    return format_result(text=text, score=value, shout=loud)
