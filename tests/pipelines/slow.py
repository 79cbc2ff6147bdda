"""A three-step chain whose steps sleep for parameter-given seconds and journal that they ran.

The journal (a file path parameter) is evidence from outside the service process: tests read
it to prove which steps started, e.g. that no step starts after a cancellation or timeout.
"""

from __future__ import annotations

import time
from pathlib import Path

from zenml import pipeline, step


def _journal(path: str, entry: str) -> None:
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(entry + "\n")


@step
def first(journal: str, sleep_s: float) -> str:
    """Journal, sleep, pass on."""
    _journal(journal, "first:start")
    time.sleep(sleep_s)
    _journal(journal, "first:end")
    return "first"


@step
def second(previous: str, journal: str, sleep_s: float) -> str:
    """Journal, sleep, pass on."""
    _journal(journal, "second:start")
    time.sleep(sleep_s)
    _journal(journal, "second:end")
    return previous + ">second"


@step
def third(previous: str, journal: str, sleep_s: float) -> str:
    """Journal, sleep, finish."""
    _journal(journal, "third:start")
    time.sleep(sleep_s)
    _journal(journal, "third:end")
    return previous + ">third"


@pipeline
def slow_pipeline(
    journal: str = "", first_s: float = 0.0, second_s: float = 0.0, third_s: float = 0.0
) -> str:
    """first -> second -> third, each sleeping as told."""
    a = first(journal=journal, sleep_s=first_s)
    b = second(previous=a, journal=journal, sleep_s=second_s)
    return third(previous=b, journal=journal, sleep_s=third_s)
