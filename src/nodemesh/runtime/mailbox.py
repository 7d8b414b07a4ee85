"""Mailboxes: the Python side's processes.

A mailbox has a real pid that Erlang can send to, link to and monitor. Messages are
queued in arrival order; per sender that is the order they were sent, as Erlang
guarantees. Exit signals and monitor notifications arrive as ordinary messages, the way
an Erlang process that traps exits sees them: ``('EXIT', Pid, Reason)`` and
``('DOWN', Ref, 'process', PidOrName, Reason)`` (first elements are atoms).

Theory of operation. Receivers that find the queue empty wait in ``_waiters``, oldest
first; :meth:`Mailbox.deliver` hands a message straight to the oldest live waiter, so a
message never sits queued while a receiver sleeps, and concurrent receivers are served in
the order they started waiting. A waiter that times out or is cancelled after a message
was handed to it puts that message back at the front and passes it on: nothing is lost.

Bounds (``max_queued``) never drop a message. :meth:`~Mailbox.deliver` always queues and
returns True once the queue is at its bound; the caller then stops delivering until the
queue has drained to half the bound (:meth:`~Mailbox.call_when_drained`): a connection
pauses reading, so TCP pushes back on the sending node, and a local ``await node.send``
waits (:meth:`~Mailbox.wait_room`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nodemesh.errors import ConfigError, MailboxClosedError, ReceiveTimeoutError
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime.node import Node

__all__ = ["Mailbox", "MailboxStatistics"]

PYTHON_EXCEPTION = Atom("python_exception")
EXIT = Atom("EXIT")


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A snapshot of one mailbox, from :meth:`Mailbox.statistics`.

    ``peak_queued`` is the longest the queue has been; ``senders_waiting`` counts local
    senders waiting for room and connections paused until this mailbox drains.
    """

    queued: int
    max_queued: int | None
    peak_queued: int
    delivered: int
    receivers_waiting: int
    senders_waiting: int
    closed: bool


class Mailbox:
    """A queue of messages addressed to one pid (and maybe a registered name).

    Create mailboxes with :meth:`Node.mailbox` or :meth:`Node.register`; the node passes
    ``on_close``, called once with the mailbox and the exit reason when it closes.
    ``async with`` closes the mailbox on the way out (reason ``normal``, ``shutdown``
    when cancelled, ``(python_exception, Type, Message)`` when an exception escapes).
    """

    __slots__ = (
        "_closed",
        "_delivered",
        "_max",
        "_messages",
        "_node",
        "_on_close",
        "_on_room",
        "_peak",
        "_waiters",
        "name",
        "pid",
    )

    def __init__(
        self,
        node: Node,
        pid: Pid,
        name: Atom | None = None,
        *,
        on_close: Callable[[Mailbox, Any], None],
        max_queued: int | None = None,
    ) -> None:
        if max_queued is not None and (type(max_queued) is not int or max_queued < 1):
            raise ConfigError(f"max_queued must be a positive integer or None, got {max_queued!r}")
        self._node = node
        self.pid = pid
        self.name = name
        self._on_close = on_close
        self._max = max_queued
        self._messages: deque[Any] = deque()
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._on_room: list[Callable[[], None]] = []
        self._closed = False
        self._delivered = 0
        self._peak = 0

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        return f"<Mailbox {self.pid}{label} queued={len(self._messages)}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the node stopped)."""
        return self._closed

    @property
    def max_queued(self) -> int | None:
        """The bound on queued messages, or None (unbounded, Erlang's default)."""
        return self._max

    @property
    def full(self) -> bool:
        """True while an open mailbox holds ``max_queued`` messages or more."""
        return self._max is not None and len(self._messages) >= self._max and not self._closed

    def __len__(self) -> int:
        return len(self._messages)

    # -- delivering ----------------------------------------------------------------------
    def deliver(self, message: Any) -> bool:
        """Queue ``message`` (called by the node; never blocks, never drops).

        Returns True when the mailbox is now at its bound: the caller should deliver
        nothing more until :meth:`call_when_drained` calls back. A closed mailbox ignores
        the message, as a dead Erlang process does, and returns False.
        """
        if self._closed:
            return False
        self._delivered += 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # done: cancelled, its receiver is leaving
                waiter.set_result(message)
                return False
        messages = self._messages
        messages.append(message)
        queued = len(messages)
        if queued > self._peak:
            self._peak = queued
        bound = self._max
        return bound is not None and queued >= bound

    def exit_signal(self, sender: Pid, reason: Any, *, link: bool = True) -> bool:
        """An exit signal from ``sender`` (``link``: a linked process exited; else
        ``exit/2``). Mailboxes trap exits: it becomes the message ``('EXIT', sender,
        reason)``. Returns what :meth:`deliver` returns."""
        return self.deliver((EXIT, sender, reason))

    def call_when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once, when the queue has drained to half its bound or the
        mailbox closed; at once if the mailbox is not full."""
        if self.full:
            self._on_room.append(callback)
        else:
            callback()

    def cancel_drained_callback(self, callback: Callable[[], None]) -> None:
        """Forget a callback given to :meth:`call_when_drained` (no-op if it ran)."""
        with contextlib.suppress(ValueError):
            self._on_room.remove(callback)

    async def wait_room(self) -> None:
        """Wait while the mailbox is full: return once it drained to half its bound or
        closed (at once when it is unbounded or not full)."""
        while self.full:
            room = asyncio.get_running_loop().create_future()

            def wake(room: asyncio.Future[None] = room) -> None:
                if not room.done():
                    room.set_result(None)

            self._on_room.append(wake)
            try:
                await room
            finally:
                self.cancel_drained_callback(wake)

    # -- receiving -----------------------------------------------------------------------
    def receive_nowait(self) -> Any:
        """Take the oldest message. Raises :class:`asyncio.QueueEmpty` if there is none,
        :class:`MailboxClosedError` if there is none and the mailbox is closed."""
        if self._messages:
            return self._take()
        if self._closed:
            raise MailboxClosedError(f"mailbox {self.pid} is closed")
        raise asyncio.QueueEmpty

    async def receive(self, timeout: float | None = None) -> Any:
        """Take the oldest message, waiting up to ``timeout`` seconds (None: forever).

        Messages queued before the mailbox closed are still returned. Raises
        :class:`ReceiveTimeoutError` when nothing arrives in time and
        :class:`MailboxClosedError` once the mailbox is closed and empty.
        """
        if self._messages:
            return self._take()
        if self._closed:
            raise MailboxClosedError(f"mailbox {self.pid} is closed")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            if timeout is None:  # no timeout scope to enter and leave: most receives
                return await waiter
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException as exc:
            self._abandon(waiter)
            if isinstance(exc, TimeoutError):
                raise ReceiveTimeoutError(f"no message within {timeout} s") from None
            raise

    def __aiter__(self) -> Mailbox:
        return self

    async def __anext__(self) -> Any:
        """Receive messages until the mailbox is closed and empty."""
        try:
            return await self.receive()
        except MailboxClosedError:
            raise StopAsyncIteration from None

    def _take(self) -> Any:
        message = self._messages.popleft()
        if self._on_room and len(self._messages) <= (self._max or 0) // 2:
            self._room()
        return message

    def _abandon(self, waiter: asyncio.Future[Any]) -> None:
        """A receiver leaves without its message (timeout, cancel, close)."""
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        if not waiter.done():
            waiter.cancel()
        elif not waiter.cancelled() and waiter.exception() is None:
            # Handed over but never taken: it is still the oldest message.
            self._messages.appendleft(waiter.result())
            while self._messages and self._waiters:
                other = self._waiters.popleft()
                if not other.done():
                    other.set_result(self._messages.popleft())

    def _room(self) -> None:
        callbacks, self._on_room = self._on_room, []
        for callback in callbacks:
            callback()

    # -- acting as a process -------------------------------------------------------------
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

    def statistics(self) -> MailboxStatistics:
        """A frozen snapshot of the queue and who waits on it."""
        return MailboxStatistics(
            queued=len(self._messages),
            max_queued=self._max,
            peak_queued=self._peak,
            delivered=self._delivered,
            receivers_waiting=sum(1 for w in self._waiters if not w.done()),
            senders_waiting=len(self._on_room),
            closed=self._closed,
        )

    # -- closing -------------------------------------------------------------------------
    def close(self, reason: Any = "normal") -> None:
        """Close the mailbox: unregister it and signal its links and monitors with
        ``reason``. Waiting receivers get :class:`MailboxClosedError`; messages already
        queued can still be received; paused senders resume (their messages are dropped,
        as messages to a dead Erlang process are)."""
        if self._closed:
            return
        self._closed = True
        self._on_close(self, Atom(reason) if type(reason) is str else reason)
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(MailboxClosedError(f"mailbox {self.pid} is closed"))
        self._room()

    async def __aenter__(self) -> Mailbox:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(_exit_reason(e))


def _exit_reason(exc: BaseException | None) -> Any:
    """The Erlang exit reason for a mailbox whose ``async with`` block ended with ``exc``."""
    if exc is None:
        return Atom("normal")
    if isinstance(exc, asyncio.CancelledError):
        return Atom("shutdown")
    return (PYTHON_EXCEPTION, type(exc).__name__, str(exc))
