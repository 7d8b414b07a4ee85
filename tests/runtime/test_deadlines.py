"""Deadlines: one timer per timeout value expires each call at its deadline (a stub
loop's clock, no waiting)."""

from __future__ import annotations

import asyncio
from typing import Any

from nodemesh.runtime._deadlines import Deadlines

EXPIRED = object()


class StubLoop:
    """The two loop methods Deadlines uses, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Any]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any) -> Any:
        self.timers.append((when, callback))
        return object()

    def fire(self) -> None:
        """Run the earliest timer once its time has come."""
        self.timers.sort(key=lambda timer: timer[0])
        when, callback = self.timers.pop(0)
        self.now = max(self.now, when)
        callback()


async def test_one_timer_expires_calls_in_order_and_skips_finished_ones() -> None:
    """Three calls arm one timer; a finished call is dropped, the others expire at their
    own deadlines, each firing re-arming for the next."""
    loop = asyncio.get_running_loop()
    stub = StubLoop()
    deadlines = Deadlines(stub, EXPIRED)  # type: ignore[arg-type]
    futures = [loop.create_future() for _ in range(3)]
    for i, future in enumerate(futures):
        deadlines.add(5.0 + i, future)
    assert len(stub.timers) == 1  # one timer for all three
    futures[0].set_result("reply")
    stub.fire()  # at 5.0: the first is done, the second not due: re-armed for 6.0
    assert not futures[1].done() and stub.timers == [(6.0, stub.timers[0][1])]
    stub.fire()
    assert futures[1].result() is EXPIRED and not futures[2].done()
    stub.fire()
    assert futures[2].result() is EXPIRED
    assert not deadlines.busy and not stub.timers
    deadlines.add(20.0, loop.create_future())  # idle again: the next call arms a timer
    assert len(stub.timers) == 1


async def test_sequential_calls_keep_one_entry_and_busy_counts_unfinished_calls() -> None:
    """Each call added takes out the finished ones before it (no call at the end of
    each call): sequential calls keep one entry, and a queue of finished calls only is
    not busy (so GenCalls may forget it)."""
    loop = asyncio.get_running_loop()
    stub = StubLoop()
    deadlines = Deadlines(stub, EXPIRED)  # type: ignore[arg-type]
    for i in range(100):
        future = loop.create_future()
        deadlines.add(5.0 + i, future)
        assert deadlines.busy
        future.set_result("reply")
    assert len(deadlines._queue) == 1 and not deadlines.busy
    assert len(stub.timers) == 1  # one timer armed for all of them
    stub.fire()  # the finished call at the head is dropped, nothing re-armed
    assert not deadlines._queue and not stub.timers
