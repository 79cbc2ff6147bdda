"""ExecutionSlots: the concurrency limit, the bounded line, 429 and honest accounting."""

from __future__ import annotations

import asyncio

import pytest

from zenml_serving.execution.slots import ExecutionSlots, OverloadedError, Slot, give_up

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def take(slots: ExecutionSlots) -> Slot:
    """A slot: at once when one is free, else after waiting in line."""
    reservation = slots.reserve()
    return reservation if isinstance(reservation, Slot) else await reservation


def queued(slots: ExecutionSlots) -> asyncio.Future[Slot]:
    """A place in line (the test set things up so that no slot is free)."""
    reservation = slots.reserve()
    assert not isinstance(reservation, Slot), "expected to wait in line"
    return reservation


class TestAdmission:
    """Work runs up to the limit, waits up to the line's size, and is refused beyond."""

    async def test_the_limit_then_the_line_then_429(self) -> None:
        slots = ExecutionSlots(limit=2, max_waiting=1)
        running = [await take(slots), await take(slots)]
        waiting = queued(slots)
        assert not waiting.done()
        with pytest.raises(OverloadedError) as raised:
            slots.reserve()
        assert raised.value.retry_after_s >= 1
        assert (slots.in_use, slots.waiting) == (2, 1)
        running[0].release()
        slot = await waiting
        assert (slots.in_use, slots.waiting) == (2, 0)
        slot.release()
        running[1].release()
        assert slots.in_use == 0

    async def test_first_come_first_served(self) -> None:
        slots = ExecutionSlots(limit=1, max_waiting=10)
        holder = await take(slots)
        line = [queued(slots) for _ in range(5)]
        order: list[int] = []
        for index, reservation in enumerate(line):
            reservation.add_done_callback(lambda _, i=index: order.append(i))
        holder.release()
        for reservation in line:
            (await reservation).release()
            await asyncio.sleep(0)
        assert order == [0, 1, 2, 3, 4]

    async def test_retry_after_grows_with_the_line_and_recent_durations(self) -> None:
        slots = ExecutionSlots(limit=1, max_waiting=100)
        slots.record_duration(4.0)
        short = slots.retry_after_s()
        held = await take(slots)
        line = [queued(slots) for _ in range(9)]
        assert slots.retry_after_s() > short
        assert slots.retry_after_s() == 40
        for reservation in line:
            give_up(reservation)
        held.release()


class TestOrphans:
    """A slot abandoned by its caller stays counted until its thread returns."""

    async def test_an_orphaned_slot_blocks_new_work_until_released(self) -> None:
        slots = ExecutionSlots(limit=1, max_waiting=0)
        slot = await take(slots)
        slot.orphan()
        assert slots.orphaned == 1
        with pytest.raises(OverloadedError):
            slots.reserve()
        slot.release()
        assert (slots.orphaned, slots.in_use) == (0, 0)
        (await take(slots)).release()

    async def test_leaving_the_line_frees_the_place(self) -> None:
        slots = ExecutionSlots(limit=1, max_waiting=1)
        holder = await take(slots)
        waiting = queued(slots)
        give_up(waiting)
        await asyncio.sleep(0)
        assert slots.waiting == 0
        queued(slots).cancel()
        holder.release()
        assert slots.in_use == 0

    async def test_a_slot_handed_over_while_giving_up_is_passed_on(self) -> None:
        slots = ExecutionSlots(limit=1, max_waiting=2)
        holder = await take(slots)
        first = queued(slots)
        second = queued(slots)
        holder.release()  # hands the slot to `first`
        give_up(first)  # ...who no longer wants it: it must go to `second`
        slot = await second
        assert slots.in_use == 1
        slot.release()
        assert slots.in_use == 0


class TestClosing:
    """Draining fails everyone in line at once."""

    async def test_close_fails_waiters_and_refuses_new_work(self) -> None:
        slots = ExecutionSlots(limit=1, max_waiting=5)
        holder = await take(slots)
        waiters = [queued(slots) for _ in range(3)]
        assert slots.close(RuntimeError("draining")) == 3
        for waiter in waiters:
            with pytest.raises(RuntimeError, match="draining"):
                await waiter
        with pytest.raises(RuntimeError):
            slots.reserve()
        holder.release()


async def test_full_says_whether_reserve_would_refuse() -> None:
    slots = ExecutionSlots(1, 1)
    assert not slots.full
    held = await take(slots)
    assert not slots.full  # a place in line is free
    waiting = queued(slots)
    assert slots.full
    with pytest.raises(OverloadedError):
        slots.reserve()
    held.release()  # the slot passes to the one in line; the line is empty again
    assert not slots.full
    (await waiting).release()
