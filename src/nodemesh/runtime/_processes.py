"""Who lives on this node: pids, references, mailboxes, registered names, and the
links and monitors between them and processes anywhere.

:class:`ProcessTable` is bookkeeping only: it never sends. What must be said when a
mailbox closes is returned to the caller (the node), which knows the connections.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from nodemesh.errors import NameTakenError
from nodemesh.runtime._signals import Monitor, SignalTable
from nodemesh.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from nodemesh.runtime.mailbox import Mailbox

__all__ = ["ProcessTable"]

MAX_PID_ID = 0x7FFF_FFFF  # erl_ext_dist NEW_PID_EXT: ID is 32 bits; we stay positive


class ProcessTable:
    """The mailboxes of the node ``node`` by pid and by registered name.

    ``reserved`` names (net_kernel, rex) are answered by the node itself: they exist
    for :meth:`exists` and cannot be registered.
    """

    def __init__(self, node: str, *, reserved: frozenset[str] = frozenset()) -> None:
        self.node = node
        self.atom = Atom(node)
        self.creation = 0  # set once EPMD (or the EPMD-less start) gave one
        self.reserved = reserved
        self.mailboxes: dict[Pid, Mailbox] = {}
        self.names: dict[str, Mailbox] = {}
        self.signals = SignalTable()
        self._next_id = 1
        self._next_ref = 1
        self._next_unlink_id = 1

    def __len__(self) -> int:
        return len(self.mailboxes)

    # -- identifiers -------------------------------------------------------------------
    def new_pid(self) -> Pid:
        """A pid of this node not handed out recently (ids wrap after 2**31 - 1)."""
        ident = self._next_id
        self._next_id = ident + 1 if ident < MAX_PID_ID else 1
        return Pid(self.atom, ident, 0, self.creation)

    def make_ref(self) -> Reference:
        """A new reference, unique on this node's incarnation."""
        n = self._next_ref
        self._next_ref += 1
        ids = (n & 0x3FFFF, (n >> 18) & 0xFFFFFFFF, secrets.randbits(32))
        return Reference(self.atom, self.creation, ids)

    def unlink_id(self) -> int:
        """A new UNLINK_ID request id (``erl_dist_protocol``: unique per connection)."""
        n = self._next_unlink_id
        self._next_unlink_id += 1
        return n

    # -- mailboxes ---------------------------------------------------------------------
    def add(self, mailbox: Mailbox) -> None:
        """Make ``mailbox`` reachable at its pid."""
        self.mailboxes[mailbox.pid] = mailbox

    def register(self, name: str, mailbox: Mailbox) -> None:
        """Make ``mailbox`` reachable as ``name`` too.

        Raises :class:`NameTakenError` if ``name`` is registered or reserved.
        """
        if name in self.names or name in self.reserved:
            raise NameTakenError(f"the name {name!r} is already registered on {self.node}")
        mailbox.name = Atom(name)
        self.names[name] = mailbox

    def remove(self, mailbox: Mailbox, reason: Any) -> tuple[set[Pid], list[Monitor]]:
        """Forget a closed mailbox; return its linked pids and the monitors of it,
        which the caller tells with ``reason``."""
        self.mailboxes.pop(mailbox.pid, None)
        if mailbox.name is not None and self.names.get(mailbox.name) is mailbox:
            del self.names[mailbox.name]
        links = self.signals.take_links(mailbox.pid)
        monitors = self.signals.take_monitors_of(self.node, mailbox.pid, mailbox.name)
        return links, monitors

    def get(self, pid: Pid) -> Mailbox | None:
        """The mailbox at ``pid``, or None."""
        return self.mailboxes.get(pid)

    def whereis(self, name: str) -> Mailbox | None:
        """The mailbox registered as ``name``, or None."""
        return self.names.get(name)

    def exists(self, proc: Pid | Atom) -> bool:
        """True if ``proc`` (a pid, or a registered or reserved name) is alive here."""
        if type(proc) is Pid:
            return proc in self.mailboxes
        return proc in self.names or proc in self.reserved

    def exit_signal(self, target: Pid, sender: Pid, reason: Any, *, link: bool = True) -> bool:
        """Give a local ``target`` an exit signal (a mailbox gets it as a message, a
        process may die of it); dropped if nobody is there. True when the mailbox is now
        at its bound, as :meth:`Mailbox.deliver` says."""
        mailbox = self.mailboxes.get(target)
        return mailbox is not None and mailbox.exit_signal(sender, reason, link=link)

    def deliver(self, dest: Pid | str, message: Any) -> None:
        """Queue ``message`` for a local pid or name; dropped if nobody is there, as
        Erlang drops it."""
        mailbox = self.mailboxes.get(dest) if isinstance(dest, Pid) else self.names.get(dest)
        if mailbox is not None:
            mailbox.deliver(message)
