"""The README's default: a small text pipeline, normalise -> score -> format.

Parameter names differ from the step arguments they feed (`message` -> `text`,
`loud` -> `shout`) on purpose: serving must wire them by the pipeline body, not by name.
"""

from __future__ import annotations

from typing import Annotated

from zenml import pipeline, step

POSITIVE = frozenset({"fast", "simple", "good", "great", "love", "reliable", "happy"})
NEGATIVE = frozenset({"slow", "bad", "broken", "hate", "flaky", "sad"})


@step
def normalise(text: str, lowercase: bool = True) -> str:
    """Collapse whitespace and (by default) lowercase."""
    cleaned = " ".join(text.split())
    return cleaned.lower() if lowercase else cleaned


@step
def score(text: str) -> Annotated[float, "score"]:
    """A toy sentiment score in [-1, 1]: positive minus negative words over all words."""
    words = [w.strip(".,!?;:") for w in text.split()]
    if not words:
        return 0.0
    positive = sum(w in POSITIVE for w in words)
    negative = sum(w in NEGATIVE for w in words)
    return round((positive - negative) / len(words), 4)


@step
def format_result(text: str, score: float, shout: bool = False) -> dict[str, object]:
    """The response: the text, its score and a label."""
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return {"text": text.upper() if shout else text, "score": score, "label": label}


@pipeline
def text_pipeline(
    message: str = "ZenML serving is fast and simple", loud: bool = False
) -> dict[str, object]:
    """normalise -> score -> format."""
    text = normalise(text=message)
    value = score(text=text)
    return format_result(text=text, score=value, shout=loud)
