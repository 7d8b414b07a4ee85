"""global's locker (``loop_the_locker`` and friends in global.erl, vsn 6+).

When two nodes connect, each one's locker takes the lock ``{global, sort([LockerA,
LockerB])}`` on every node of its own partition, the other side's node included when it
starts first (``select_node``), and the two lockers tell each other through their
``global_name_server`` (``{lock_set, Pid, true, Known, Tag}``). Once both have it,
the server exchanges names; when that is over it sends ``Cancel`` and the locker
releases the lock (the boss, ``max(Nodes)``, last).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nodemesh.errors import MailboxClosedError
from nodemesh.runtime._global_proc import TIMEOUT, Proc
from nodemesh.runtime._global_state import lock_id
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime._global import GlobalServer

__all__ = ["Cancel", "Him", "Locker"]

log = logging.getLogger("nodemesh.global")
LOCK_SET, SET_LOCK, DEL_LOCK = Atom("lock_set"), Atom("set_lock"), Atom("del_lock")


@dataclass(frozen=True, slots=True)
class Him:
    """``#him{}``: a node connecting to us, its locker, version and both tags."""

    node: str
    locker: Pid
    vsn: int
    my_tag: int
    his_tag: Any


@dataclass(frozen=True, slots=True)
class Cancel:
    """``{cancel, Node, Tag, Fun}`` from the server; ``then`` runs before unlocking."""

    node: str
    tag: Any
    then: Callable[[], None] | None = None


class LockClient:
    """Takes and gives back locks on ``global_name_server``s as one pid (``set_lock``,
    ``del_lock``); the locker and the registrar are both one."""

    def __init__(self, proc: Proc, server: GlobalServer) -> None:
        self.proc, self.server = proc, server

    @property
    def me(self) -> str:
        return self.server.state.node

    def known(self) -> list[str]:
        return list(self.server.state.known)

    async def set_lock(self, lock: Any, nodes: list[str]) -> bool:
        """``set_lock_on_nodes/2``: all or nothing; partial grants are given back."""
        if not nodes:
            return True
        state = self.server.state
        if len(nodes) > 1 and self.me in nodes and not state.can_set_lock(lock):
            return False
        replies = await self.proc.multi_call(nodes, (SET_LOCK, lock))
        if all(r is True for r in replies.values()):
            return True
        granted = [n for n, r in replies.items() if r is True]
        await self.del_lock(lock, granted)
        return False

    async def del_lock(self, lock: Any, nodes: list[str]) -> None:
        if nodes:
            await self.proc.multi_call(nodes, (DEL_LOCK, lock))

    async def delete_global_lock(self, lock: Any, nodes: list[str]) -> None:
        """``delete_global_lock/2``: the boss is unlocked last."""
        nodes = list(dict.fromkeys(nodes))
        boss = max(nodes)
        await self.del_lock(lock, [n for n in nodes if n != boss])
        await self.del_lock(lock, [boss])


class Locker(LockClient):
    """The locker process: one coroutine over a :class:`Proc`."""

    def __init__(self, proc: Proc, server: GlobalServer) -> None:
        super().__init__(proc, server)
        self.hims: list[Him] = []
        self.just_synced = False

    async def run(self) -> None:
        """Run until the node closes the locker's mailbox."""
        with contextlib.suppress(MailboxClosedError):
            await self._loop()

    async def _loop(self) -> None:
        """``loop_the_locker/1``: handle messages; when idle with nodes waiting, try."""
        while True:
            message = await self.proc.receive(lambda m: True, self._timeout())
            self.just_synced = False
            if message is TIMEOUT:
                if not self.server.state.global_lock_set():
                    await self._select_node()
            elif type(message) is Him:
                self.hims.append(message)
            elif type(message) is Cancel:
                self._remove(message.node, message.tag)
                if message.then is not None:
                    message.then()
            elif _is_lock_set(message) and message[2] is True:
                await self._spontaneous(message)

    def _timeout(self) -> float | None:
        if not self.hims:
            return None
        if self.just_synced:
            return 0.0
        known = self.known()
        # As global.erl: long enough that another node of the partition can finish.
        return 0.2 if not known else min(1.0 + 0.1 * len(known), 3.0)

    def _find(self, node: str) -> Him | None:
        return next((h for h in self.hims if h.node == node), None)

    def _remove(self, node: str, tag: Any) -> None:
        self.hims = [h for h in self.hims if not (h.node == node and h.my_tag == tag)]

    async def _spontaneous(self, message: tuple[Any, ...]) -> None:
        """The other locker holds the lock on both sides but ours: lock our partition."""
        pid: Pid = message[1]
        him = self._find(str(pid.node))
        if him is None or (len(message) == 5 and message[4] != him.my_tag):
            self._send_lock_set(False, pid, 5, 0)
            return
        lock = lock_id(self.proc.pid, pid)
        is_set = await self._lock_nodes_safely(lock, [])
        self._send_lock_set(is_set, pid, him.vsn, him.his_tag)
        if is_set:
            await self._hold(him, lock, [self.me, *self.known()])

    async def _select_node(self) -> None:
        """``select_node/1``: pick a waiting node and lock both partitions for it."""
        known = set(self.known())
        self.hims = [h for h in self.hims if h.node not in known]  # exclude_known/2
        if not self.hims:
            return
        him = random.choice(self.hims)
        lock = lock_id(self.proc.pid, him.locker)
        if not await self._lock_nodes_safely(lock, [him.node]):
            return
        held = [self.me, him.node, *self.known()]
        self._send_lock_set(True, him.locker, him.vsn, him.his_tag)
        answer = await self.proc.receive(lambda m: self._answer(m, him), None)
        if type(answer) is Cancel:
            if answer.then is not None:
                answer.then()
            await self.delete_global_lock(lock, held)
            self._remove(him.node, him.my_tag)
        elif answer[2] is True:
            await self._hold(him, lock, held)
        else:
            await self.delete_global_lock(lock, held)

    def _answer(self, message: Any, him: Him) -> bool:
        """``lock_is_set/5``'s receive: his answer with our tag, or a cancel."""
        if type(message) is Cancel:
            return message.node == him.node and message.tag == him.my_tag
        if not _is_lock_set(message) or str(message[1].node) != him.node:
            return False
        return len(message) == 4 or message[4] == him.my_tag

    async def _hold(self, him: Him, lock: Any, held: list[str]) -> None:
        """Both sides hold the lock: tell the server, keep it until it cancels."""
        self.server.lock_is_set(him.node, him.my_tag, lock)
        cancel = await self.proc.receive(
            lambda m: type(m) is Cancel and m.node == him.node and m.tag == him.my_tag, None
        )
        if cancel.then is not None:
            cancel.then()  # new_nodes goes out before the lock is released
        await self.delete_global_lock(lock, held)
        self._remove(him.node, him.my_tag)
        self.just_synced = True

    def _send_lock_set(self, is_set: bool, his: Pid, vsn: int, his_tag: Any) -> None:
        known = [Atom(n) for n in self.known()]
        message: tuple[Any, ...] = (LOCK_SET, self.proc.pid, is_set, known)
        if vsn >= 8:
            message = (*message, his_tag)
        self.proc.cast(str(his.node), message)

    async def _lock_nodes_safely(self, lock: Any, extra: list[str]) -> bool:
        """The boss first, then us and ``extra``, then the rest of the partition."""
        state = self.server.state
        boss = max([self.me, *self.known()])
        if boss != self.me and not state.can_set_lock(lock):
            return False
        if not await self.set_lock(lock, [boss]):
            return False
        second = [n for n in [self.me, *extra] if n != boss]
        if not await self.set_lock(lock, second):
            await self.del_lock(lock, [boss])
            return False
        rest = [n for n in self.known() if n != boss]
        if not await self.set_lock(lock, rest):
            await self.del_lock(lock, [boss, *second])
            return False
        return True


def _is_lock_set(message: Any) -> bool:
    return (
        type(message) is tuple
        and len(message) in (4, 5)
        and message[0] == LOCK_SET
        and type(message[1]) is Pid
    )
