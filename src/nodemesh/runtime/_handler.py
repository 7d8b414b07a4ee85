"""Mailboxes served by a function on arrival, with no hop through a task.

What a process that only reacts to messages needs (Phoenix.PubSub's adapter worker: a
``forward_to_local`` in, local subscribers fed, nothing awaited): delivering calls the
function at once, in the dispatcher, instead of queueing the message for a task that
the event loop must wake. That saves a hop through the loop per message; the function
must be quick and must not block, as it runs on the receive path of the connection.
:class:`HandlerMailbox` has no task at all; :class:`ServerMailbox` (a GenServer's) keeps
its task for what cannot be served at once (coroutine callbacks, system messages, stop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nodemesh.runtime.mailbox import Mailbox

__all__ = ["HandlerMailbox", "ServerMailbox"]

log = logging.getLogger("nodemesh.node")


class HandlerMailbox(Mailbox):
    """A mailbox whose messages go to ``handle(message)`` on delivery; never queued.

    An exception from ``handle`` is logged and the message dropped: the connection that
    brought it, and the node, carry on.
    """

    __slots__ = ("_handle",)

    def __init__(self, *args: Any, handle: Callable[[Any], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handle = handle

    def deliver(self, message: Any) -> bool:
        """Call the handler now; never at a bound, so always False."""
        if self._closed:
            return False
        self._delivered += 1
        try:
            self._handle(message)
        except Exception:
            log.exception("the handler of %s failed on a message", self.name or self.pid)
        return False


class ServerMailbox(Mailbox):
    """A GenServer's mailbox: a message that arrives while the server's task waits on an
    empty queue is offered to ``serve`` (:meth:`ServerProcess.serve_now`) at once, in the
    dispatcher, instead of waking the task: one trip through the event loop fewer per
    call. ``serve`` returns None when it handled the message (a plain-function callback),
    else what the task must take instead (the message itself, or what is left of it).

    Order holds: only an idle server (its task parked in ``receive`` on an empty queue)
    is served here, and a message the callback sends to its own mailbox waits until the
    callback returns, as in Erlang.
    """

    __slots__ = ("_held", "_serve", "_serving")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._serve: Callable[[Any], Any] | None = None
        self._serving = False
        self._held: list[Any] = []

    def serve_with(self, serve: Callable[[Any], Any]) -> None:
        """Offer each message that finds the server idle to ``serve``."""
        self._serve = serve

    def deliver(self, message: Any) -> bool:
        """Serve ``message`` now when the server is idle, else queue it as a
        :class:`Mailbox` does; returns what :meth:`Mailbox.deliver` returns."""
        if self._serving:  # sent by the callback being served: handled after it
            self._held.append(message)
            return False
        waiters = self._waiters
        if self._serve is None or self._messages or not waiters or waiters[0].done():
            return super().deliver(message)
        if self._closed:
            return False
        self._serving = True
        try:
            rest = self._serve(message)
        finally:
            self._serving = False
        full = False
        if rest is None:
            self._delivered += 1
        else:
            full = super().deliver(rest)
        if self._held:
            held, self._held = self._held, []
            for later in held:
                full = self.deliver(later) or full
        return full
