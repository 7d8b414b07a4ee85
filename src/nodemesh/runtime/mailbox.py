"""Mailboxes: the Python side's processes.

A mailbox has a real pid that Erlang can send to, link to and monitor. Messages are
queued in arrival order; per sender that is the order they were sent, as Erlang
guarantees. Exit signals and monitor notifications arrive as ordinary messages, the way
an Erlang process that traps exits sees them: ``('EXIT', Pid, Reason)`` and
``('DOWN', Ref, 'process', PidOrName, Reason)`` (first elements are atoms).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from nodemesh.errors import ReceiveTimeoutError
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime.node import Node

__all__ = ["Mailbox"]


class Mailbox:
    """A queue of messages addressed to one pid (and maybe a registered name).

    Create mailboxes with :meth:`Node.mailbox` or :meth:`Node.register`.
    """

    __slots__ = ("_closed", "_messages", "_node", "_waiter", "name", "pid")

    def __init__(self, node: Node, pid: Pid, name: Atom | None = None) -> None:
        self._node = node
        self.pid = pid
        self.name = name
        self._messages: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        return f"<Mailbox {self.pid}{label} queued={len(self._messages)}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the node stopped)."""
        return self._closed

    def __len__(self) -> int:
        return len(self._messages)

    def deliver(self, message: Any) -> bool:
        """Queue a message (called by the node; never blocks). True would mean the
        mailbox reached its bound (unbounded here: always False)."""
        if self._closed:
            return False
        self._messages.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return False

    def receive_nowait(self) -> Any:
        """Take the oldest message; raise :class:`asyncio.QueueEmpty` if there is none."""
        if self._messages:
            return self._messages.popleft()
        raise asyncio.QueueEmpty

    async def receive(self, timeout: float | None = None) -> Any:
        """Take the oldest message, waiting up to ``timeout`` seconds (None: forever).

        Raises :class:`ReceiveTimeoutError` when nothing arrives in time.
        """
        if self._messages:
            return self._messages.popleft()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._messages:
            if self._closed:
                raise ReceiveTimeoutError(f"mailbox {self.pid} is closed")
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise ReceiveTimeoutError(f"no message within {timeout} s")
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, remaining)
            except TimeoutError:
                raise ReceiveTimeoutError(f"no message within {timeout} s") from None
            finally:
                self._waiter = None
        return self._messages.popleft()

    async def __aiter__(self) -> AsyncIterator[Any]:
        """Receive messages until the mailbox is closed."""
        while True:
            try:
                yield await self.receive()
            except ReceiveTimeoutError:
                if self._closed:
                    return
                raise

    async def send(self, dest: Pid | str | tuple[str, str], message: Any) -> None:
        """Send ``message`` to ``dest`` with this mailbox as the sender."""
        await self._node.send(dest, message, sender=self.pid)

    def link(self, pid: Pid) -> None:
        """Link to ``pid``: when it exits, ``('EXIT', pid, Reason)`` arrives here."""
        self._node.link(self.pid, pid)

    def unlink(self, pid: Pid) -> None:
        """Remove the link to ``pid``."""
        self._node.unlink(self.pid, pid)

    def monitor(self, target: Pid | tuple[str, str]) -> Reference:
        """Monitor a process; ``('DOWN', ref, 'process', target, Reason)`` arrives here."""
        return self._node.monitor(self.pid, target)

    def demonitor(self, ref: Reference) -> None:
        """Stop a monitor made with :meth:`monitor`."""
        self._node.demonitor(self.pid, ref)

    def close(self, reason: Any = "normal") -> None:
        """Close the mailbox: unregister it and signal its links and monitors."""
        if self._closed:
            return
        self._closed = True
        self._node._mailbox_closed(self, Atom(reason) if type(reason) is str else reason)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
