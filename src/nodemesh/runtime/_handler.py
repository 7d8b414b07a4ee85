"""A registered name served by a function on arrival, with no queue and no task.

What a process that only reacts to messages needs (Phoenix.PubSub's adapter worker: a
``forward_to_local`` in, local subscribers fed, nothing awaited): delivering calls the
function at once, in the dispatcher, instead of queueing the message for a task that
the event loop must wake. That saves a hop through the loop per message; the function
must be quick and must not block, as it runs on the receive path of the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nodemesh.runtime.mailbox import Mailbox

__all__ = ["HandlerMailbox"]

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
