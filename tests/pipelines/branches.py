"""Three independent branches that wait (as a tool call on the network would) and a join.

Each branch journals its start and end to a file parameter (evidence from outside the service
process) and fails when its name is `fail`. `branches_opted_out` is the same graph with
`extra={"serving_step_concurrency": 1}`: its steps run one after another.
"""

from __future__ import annotations

import time
from pathlib import Path

from zenml import pipeline, step


def _journal(path: str, entry: str) -> None:
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(entry + "\n")


def _call(name: str, query: str, journal: str, sleep_s: float, fail: str) -> str:
    _journal(journal, f"{name}:start")
    time.sleep(sleep_s)
    _journal(journal, f"{name}:end")
    if fail == name:
        raise ConnectionError(f"{name} is unreachable")
    return f"{name}({query})"


@step
def search(query: str, journal: str, sleep_s: float, fail: str) -> str:
    """Branch 1: wait, then answer."""
    return _call("search", query, journal, sleep_s, fail)


@step
def weather(query: str, journal: str, sleep_s: float, fail: str) -> str:
    """Branch 2: wait, then answer."""
    return _call("weather", query, journal, sleep_s, fail)


@step
def calendar(query: str, journal: str, sleep_s: float, fail: str) -> str:
    """Branch 3: wait, then answer."""
    return _call("calendar", query, journal, sleep_s, fail)


@step
def answer(found: str, forecast: str, agenda: str, journal: str) -> str:
    """The join: combine the three tools' answers."""
    _journal(journal, "answer:start")
    return " | ".join((found, forecast, agenda))


def _body(query: str, journal: str, sleep_s: float, fail: str) -> str:
    found = search(query=query, journal=journal, sleep_s=sleep_s, fail=fail)
    forecast = weather(query=query, journal=journal, sleep_s=sleep_s, fail=fail)
    agenda = calendar(query=query, journal=journal, sleep_s=sleep_s, fail=fail)
    return answer(found=found, forecast=forecast, agenda=agenda, journal=journal)


@pipeline
def branches_pipeline(
    query: str = "plan my day", journal: str = "", sleep_s: float = 0.3, fail: str = ""
) -> str:
    """(search | weather | calendar) -> answer."""
    return _body(query, journal, sleep_s, fail)


@pipeline(extra={"serving_step_concurrency": 1})
def branches_opted_out(
    query: str = "plan my day", journal: str = "", sleep_s: float = 0.3, fail: str = ""
) -> str:
    """The same graph, steps one after another."""
    return _body(query, journal, sleep_s, fail)
