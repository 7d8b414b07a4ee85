"""A mailbox with Erlang's selective receive, and ``gen_server:multi_call`` from it.

global's locker and registrar call ``global_name_server`` on many nodes and wait for
the answers while other messages keep arriving; what does not match the current wait
stays queued in order, as in an Erlang ``receive``. The caller's pid matters: a
``global_name_server`` monitors the pid that holds a lock, so a lock taken from a
throw-away mailbox would vanish with it. These processes live as long as the node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from nodemesh.errors import MailboxClosedError, NodemeshError
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime._connections import ConnectionTable
    from nodemesh.runtime._processes import ProcessTable
    from nodemesh.runtime._services import Services
    from nodemesh.runtime._tasks import TaskHost
    from nodemesh.runtime.config import NodeConfig
    from nodemesh.runtime.mailbox import Mailbox

__all__ = ["TIMEOUT", "Host", "NodeParts", "Proc"]


class Host(Protocol):
    """What global needs of the node (``Node`` has it; runtime parts never import it)."""

    name: str
    atom: Atom
    config: NodeConfig
    creation: int
    services: Services

    def register(self, name: str, *, max_queued: int | None = None) -> Mailbox: ...
    def mailbox(self, *, max_queued: int | None = None) -> Mailbox: ...
    def monitor(self, watcher: Pid, target: Pid | tuple[str, str]) -> Reference: ...
    def demonitor(self, watcher: Pid, ref: Reference) -> None: ...
    def send_nowait(self, dest: Any, message: Any, *, sender: Pid | None = None) -> None: ...
    def is_connected(self, node: str) -> bool: ...
    async def connect(self, node: str) -> bool: ...
    async def disconnect(self, node: str) -> bool: ...
    async def rpc(
        self, node: str, module: str, function: str, args: Any = (), *, timeout: float | None = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class NodeParts:
    """The node's tables global works on directly, handed over by the node when it
    starts global (rather than reached through the node's private attributes): tasks
    that live as long as the node, local processes, and connections (to write exit
    signals the way ``exit/2`` does)."""

    tasks: TaskHost
    processes: ProcessTable
    connections: ConnectionTable


GEN_CALL, DOWN = Atom("$gen_call"), Atom("DOWN")
GNS = "global_name_server"
TIMEOUT = object()  # what receive() returns when nothing matched in time
LocalCall = Callable[[Pid, Any], Any]  # the local global_name_server's handle_call


class Proc:
    """A permanent mailbox of the node read by one coroutine."""

    def __init__(self, node: Host, mailbox: Mailbox, local: LocalCall) -> None:
        self.node, self.mailbox, self._local = node, mailbox, local
        self.pid = mailbox.pid
        self._saved: list[Any] = []

    async def receive(self, match: Callable[[Any], bool], timeout: float | None) -> Any:
        """The first message ``match`` accepts (earlier ones stay queued), or TIMEOUT.
        Raises :class:`MailboxClosedError` when the node stops."""
        for i, message in enumerate(self._saved):
            if match(message):
                return self._saved.pop(i)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.mailbox.receive()
                    if match(message):
                        return message
                    self._saved.append(message)
        except TimeoutError:
            return TIMEOUT

    def flush(self) -> None:
        """Drop what is queued: late answers of calls that timed out, stray messages
        (for a process whose only reads are its calls' answers: the registrar)."""
        self._saved.clear()
        while len(self.mailbox):
            self.mailbox.receive_nowait()

    async def multi_call(self, nodes: list[str], request: Any) -> dict[str, Any]:
        """``gen_server:multi_call(Nodes, global_name_server, Request)``: the replies by
        node; nodes that are down or go down are left out (its BadNodes)."""
        node = self.node
        waiting: dict[Any, str] = {}
        replies: dict[str, Any] = {}
        for peer in nodes:
            if peer == node.name:
                replies[peer] = self._local(self.pid, request)
                continue
            if not node.is_connected(peer):
                await node.connect(peer)  # Erlang's sends connect on demand; else DOWN
            ref = node.monitor(self.pid, (GNS, peer))
            waiting[ref] = peer
            call = (GEN_CALL, (self.pid, ref), request)
            with contextlib.suppress(NodemeshError):  # else the monitor's DOWN is queued
                node.send_nowait((GNS, peer), call, sender=self.pid)
        limit = node.config.net_ticktime + node.config.connect_timeout
        while waiting:
            message = await self.receive(lambda m: _answers(m, waiting), limit)
            if message is TIMEOUT:
                break
            peer = waiting.pop(message[1] if message[0] == DOWN else message[0])
            if message[0] != DOWN:
                node.demonitor(self.pid, message[0])
                replies[peer] = message[1]
        for ref in waiting:  # timed out: forget the calls and any late DOWN
            node.demonitor(self.pid, ref)
        return replies

    def cast(self, peer: str, message: Any) -> None:
        """``gen_server:cast({global_name_server, Peer}, Message)`` (from this pid)."""
        send(self.node, self.pid, peer, (Atom("$gen_cast"), message))


def send(node: Host, sender: Pid, peer: str, message: Any) -> None:
    """A message to ``global_name_server`` on ``peer``; dropped if not connected, as
    ``gns_volatile_send`` drops it (``noconnect``)."""
    try:
        node.send_nowait((GNS, peer), message, sender=sender)
    except NodemeshError:
        pass
    except MailboxClosedError:  # pragma: no cover - a local send while closing
        pass


def _answers(message: Any, waiting: dict[Any, str]) -> bool:
    if type(message) is not tuple:
        return False
    if len(message) == 2:
        return _hashable(message[0]) and message[0] in waiting
    return len(message) == 5 and message[0] == DOWN and message[1] in waiting


def _hashable(term: Any) -> bool:
    try:
        hash(term)
    except TypeError:
        return False
    return True
