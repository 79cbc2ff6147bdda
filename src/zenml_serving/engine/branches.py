"""Run the independent branches of one invocation at once: ready steps go to helper threads.

A step is ready once every upstream step has completed. The invocation's own thread schedules:
while exactly one step can run (a chain) it runs it itself, with no hand-off; when several are
ready it hands them to `BranchThreads`, at most `limit` of the invocation's steps running at
once, and waits for the next to finish. A step that `quick(step)` says is quick (its recent
runs took less than a hand-off is worth) runs on the invocation's thread too: handing a
microsecond step to another thread costs more (~20 us) than running it. Each step runs in a
copy of the invocation thread's `contextvars` context, taken when it starts, so its span nests
under the invocation span, the log context carries the invocation id, and ZenML's step
context (a `ContextVar`) is its own.
When a step fails, what it changed in its context is copied back to the invocation thread, as
if it had run there (the log processor then withholds the failure's message by the same rule).

Once the token is stopped or a step has failed, no further step starts; the steps already
running are waited for (threads cannot be killed, and the invocation's execution slot must stay
counted while any of its steps runs), their results discarded, and then the invocation raises.
"""

from __future__ import annotations

import contextvars
import functools
import queue
import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from zenml_serving.deployment.model import ServedStep

__all__ = ["BranchThreads", "run_branches", "widest_level"]

_MISSING = object()

_Finished = tuple["ServedStep", "BaseException | None", contextvars.Context]
"""A step that returned on a helper thread: its error (None: completed) and its context."""


class BranchThreads:
    """Daemon threads shared by every invocation of the process, started on demand.

    Daemon threads (not a ThreadPoolExecutor) because a step that never returns must not keep
    the process from exiting after the drain, as for the invocation threads.
    """

    def __init__(self, max_threads: int, name: str = "zenml-serving-branch") -> None:
        self._max = max(1, max_threads)
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job()` on a helper thread (it reports its own result)."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
            elif self._threads < self._max:
                self._threads += 1
                threading.Thread(
                    target=self._work, name=f"{self._name}-{self._threads}", daemon=True
                ).start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            job()  # never raises: run_branches wraps each step
            with self._lock:
                self._idle += 1


def widest_level(steps: Sequence[ServedStep]) -> int:
    """How many steps could run at once at best (1 for a chain): steps at the same depth."""
    depth: dict[str, int] = {}
    for step in steps:
        depth[step.name] = 1 + max((depth.get(up, 0) for up in step.upstream), default=0)
    counts: dict[int, int] = {}
    for level in depth.values():
        counts[level] = counts.get(level, 0) + 1
    return max(counts.values(), default=0)


def run_branches(
    steps: Sequence[ServedStep],
    run_step: Callable[[ServedStep], None],
    *,
    limit: int,
    threads: BranchThreads,
    before_start: Callable[[ServedStep], None],
    on_error: Callable[[], None] = lambda: None,
    quick: Callable[[ServedStep], bool] = lambda _: False,
) -> None:
    """Run every step of `steps` (in a valid order) once its upstream steps have completed.

    `run_step(step)` runs one step and stores its outputs; `before_start(step)` raises when no
    further step may start (cancellation, timeout). The first error (of a step, or the one
    `before_start` raised) is raised once every running step has returned; after it no
    further step starts. `on_error()` is called as soon as a step has failed (on the thread
    that saw it), so that the steps still running can give up their retries. `quick(step)`:
    run it on this thread even when other steps are ready.
    """
    _Schedule(steps, run_step, before_start, on_error, quick).run(limit, threads)


class _Schedule:
    """The state of one invocation's steps: who waits on whom, what is ready, what runs."""

    def __init__(
        self,
        steps: Sequence[ServedStep],
        run_step: Callable[[ServedStep], None],
        before_start: Callable[[ServedStep], None],
        on_error: Callable[[], None],
        quick: Callable[[ServedStep], bool],
    ) -> None:
        self.run_step = run_step
        self.quick = quick
        self.before_start = before_start
        self.on_error = on_error
        names = {step.name for step in steps}
        self.waiting_on = {s.name: {up for up in s.upstream if up in names} for s in steps}
        self.dependents: dict[str, list[ServedStep]] = {step.name: [] for step in steps}
        for step in steps:
            for up in self.waiting_on[step.name]:
                self.dependents[up].append(step)
        self.ready = deque(step for step in steps if not self.waiting_on[step.name])
        self.finished: queue.SimpleQueue[_Finished] = queue.SimpleQueue()
        self.running = 0
        self.error: BaseException | None = None

    def run(self, limit: int, threads: BranchThreads) -> None:
        while self.ready or self.running:
            self._start_ready(limit, threads)
            if self.running == 0:
                break
            step, error, context = self.finished.get()
            self.running -= 1
            if error is None:
                if self.error is None:
                    self._complete(step)
            elif self.error is None:
                self.error = error
                _adopt(context)
        if self.error is not None:
            raise self.error

    def _start_ready(self, limit: int, threads: BranchThreads) -> None:
        while self.ready and self.error is None and self.running < limit:
            step = self.ready.popleft()
            try:
                self.before_start(step)
            except BaseException as exc:  # raised once the running steps return
                self.error = exc
                return
            if (self.running == 0 and not self.ready) or self.quick(step):
                # The only step that can run now, or a quick one: here, no hand-off.
                try:
                    self.run_step(step)
                except BaseException as exc:  # raised like a helper's
                    self.on_error()
                    self.error = exc
                    return
                self._complete(step)
                continue
            self.running += 1
            threads.submit(functools.partial(self._on_helper, step, contextvars.copy_context()))

    def _on_helper(self, step: ServedStep, context: contextvars.Context) -> None:
        try:
            context.run(self.run_step, step)
        except BaseException as exc:  # handed to the scheduling thread
            self.on_error()
            self.finished.put((step, exc, context))
            return
        self.finished.put((step, None, context))

    def _complete(self, step: ServedStep) -> None:
        for child in self.dependents[step.name]:
            self.waiting_on[child.name].discard(step.name)
            if not self.waiting_on[child.name]:
                self.ready.append(child)


def _adopt(context: contextvars.Context) -> None:
    """Make what a failed step set in its context this thread's, as if it had run here."""
    for variable, value in context.items():
        if variable.get(_MISSING) is not value:
            variable.set(value)
