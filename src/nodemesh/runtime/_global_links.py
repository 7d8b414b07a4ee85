"""The connections global makes and drops: connect_all and overlapping partitions.

``sync_others/1`` of global.erl connects to every node the other partition brought and
casts ``{in_sync, Node, true}`` to each; OTP 25's "prevent overlapping partitions"
(protocol vsn 7+) reports a lost connection to every known node, which then drops its
own connection to the lost node, so that no node stays in two partitions.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from typing import TYPE_CHECKING, Any

from nodemesh.runtime._global_state import NodeDown
from nodemesh.term.types import Atom

if TYPE_CHECKING:
    from nodemesh.runtime._global import GlobalServer

__all__ = ["Links"]

log = logging.getLogger("nodemesh.global")

LOST_CONNECTION, REMOVE_CONNECTION = Atom("lost_connection"), Atom("remove_connection")
MAX_LOST = 1024  # lost_connection entries kept (Erlang expires them after an hour)


class Links:
    """connect_all's dials and lost_connection bookkeeping for one server."""

    def __init__(self, server: GlobalServer) -> None:
        self.server = server
        self.node = server.node
        self.state = server.state
        self._ops = itertools.count(1)
        # {lost_connection, ...} names this incarnation by an extended creation.
        self._creation_ext = random.getrandbits(48) + self.node.creation
        self._lost: dict[tuple[Any, Any], tuple[Any, Any]] = {}

    # -- connect_all ---------------------------------------------------------------------
    def sync_others(self, nodes: list[str]) -> None:
        """``sync_others/1``: connect to each, then cast ``in_sync``."""
        for peer in nodes:
            self.server.names.parts.tasks.spawn(self._sync_other(peer))

    async def _sync_other(self, peer: str) -> None:
        if await self._meet(peer):
            self.server.cast(peer, (Atom("in_sync"), self.node.atom, True))
        else:
            log.warning("'global' at %s failed to connect to %s", self.node.name, peer)
            self.server.mailbox.deliver(NodeDown(peer))

    async def _meet(self, peer: str) -> bool:
        """Connect to ``peer``. Its own sync_other dials us at the same moment, and one
        of two crossing dials loses: then wait for the other one (it is connect_all's
        passive connect), and dial once more after the failed-dial delay."""
        node = self.node
        if await node.connect(peer) or node.is_connected(peer):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(node.config.connect_retry_delay, 0.5)
        while loop.time() < deadline:
            await asyncio.sleep(0.1)  # the crossing dial completes or fails on its own
            if node.is_connected(peer):
                return True
        return await node.connect(peer) or node.is_connected(peer)

    # -- prevent overlapping partitions (vsn 7+) -----------------------------------------
    def inform_connection_loss(self, node: str) -> None:
        msg = (LOST_CONNECTION, self.node.atom, self._creation_ext, next(self._ops), Atom(node))
        self._multicast(msg, node)

    def _multicast(self, message: Any, skip: str) -> None:
        for peer, vsn in [*self.state.known.items(), *self.state.pending.items()]:
            if peer != skip and vsn >= 7:
                self.server.send(peer, message)

    def lost_connection(self, msg: tuple[Any, ...]) -> None:
        """``{lost_connection, A, XCreA, OpIdA, B}``: A lost B; we drop B too (or A, if
        we are B) so that partitions do not overlap, as OTP 25 does by default."""
        _, a, xcre, op, b = msg
        if type(a) is not Atom or type(b) is not Atom or type(op) is not int:
            log.info("global: ignoring malformed %.200r", msg)
            return
        key = (a, b)
        seen = self._lost.get(key)
        if seen is not None and seen[0] == xcre and type(seen[1]) is int and op <= seen[1]:
            return
        self._multicast(msg, str(a))
        if len(self._lost) >= MAX_LOST:
            self._lost.pop(next(iter(self._lost)))
        self._lost[key] = (xcre, op)
        rm = str(a) if str(b) == self.state.node else str(b)
        if rm in self.state.known or rm in self.state.pending:
            log.warning("'global' at %s disconnects %s to prevent overlapping partitions",
                        self.state.node, rm)  # fmt: skip
            self.server.send(rm, (REMOVE_CONNECTION, self.node.atom))
            self.server.handle_nodedown(rm, "remove_connection")

    def remove_connection(self, node: str) -> None:
        if node in self.state.known or node in self.state.pending:
            self.server.names.parts.tasks.spawn(self.node.disconnect(node))
            self.server.handle_nodedown(node, "remove_connection")
