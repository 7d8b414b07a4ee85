"""The node's long-lived task group: tasks run, a failing one is logged, aclose ends all."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nodemesh.runtime._tasks import TaskHost


async def test_aclose_cancels_running_tasks() -> None:
    """Tasks still running when aclose() is called are cancelled and awaited."""
    host = TaskHost("t")
    await host.start()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    host.spawn(forever())
    async with asyncio.timeout(5):
        await started.wait()
        await host.aclose()
    assert cancelled.is_set()


async def test_a_failing_task_is_logged_and_spares_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One task raising does not cancel its siblings or the group."""
    host = TaskHost("t")
    await host.start()
    done = asyncio.Event()

    async def boom() -> None:
        raise RuntimeError("bug")

    async def fine() -> None:
        await asyncio.sleep(0)
        done.set()

    with caplog.at_level(logging.ERROR, logger="nodemesh"):
        host.spawn(boom())
        host.spawn(fine())
        async with asyncio.timeout(5):
            await done.wait()
    await host.aclose()
    assert [r.getMessage() for r in caplog.records] == ["task of t failed"]


async def test_spawn_after_aclose_raises_and_closes_the_coroutine() -> None:
    """spawn() on a closed host raises RuntimeError and leaves no un-awaited coroutine."""
    host = TaskHost("t")
    await host.start()
    await host.aclose()

    async def never() -> None:
        raise AssertionError("must not run")

    with pytest.raises(RuntimeError, match="not running"):
        host.spawn(never())
