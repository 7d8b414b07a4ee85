"""A long-lived :class:`asyncio.TaskGroup` owned by an object (the node) rather than by
a ``with`` block: the tasks a node starts on a peer's behalf (rpc handlers, dials) live
in it, and :meth:`TaskHost.aclose` ends them all.

The group runs in one task of its own, so a child that fails cannot cancel whoever
happened to call ``start()``; children are wrapped so that one failing (a bug) is
logged and does not end its siblings, as a trio nursery with a guard would do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskHost"]

log = logging.getLogger("nodemesh.node")


class TaskHost:
    """Start with :meth:`start`, add work with :meth:`spawn`, end with :meth:`aclose`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the task group (in a task of its own)."""
        ready: asyncio.Future[asyncio.TaskGroup] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(ready), name=f"{self._name} tasks"
        )
        self._group = await ready

    async def _run(self, ready: asyncio.Future[asyncio.TaskGroup]) -> None:
        async with asyncio.TaskGroup() as group:
            ready.set_result(group)
            await asyncio.get_running_loop().create_future()  # until aclose() cancels us

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> None:
        """Run ``coro`` in the group. Raises :class:`RuntimeError` once closed (or
        before :meth:`start`); ``coro`` is closed then, never left un-awaited."""
        if self._group is None:
            coro.close()
            raise RuntimeError(f"{self._name}: the task group is not running")
        self._group.create_task(self._guard(coro), name=name)

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:  # a bug in one task must not end the node's other tasks
            log.exception("task of %s failed", self._name)

    async def aclose(self) -> None:
        """Cancel every task of the group and wait until they are done."""
        runner, self._group = self._runner, None
        if runner is None:
            return
        runner.cancel()
        await asyncio.wait([runner])
