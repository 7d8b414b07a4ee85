"""A small one-for-one supervisor for Python processes (OTP ``supervisor``'s core idea).

The supervisor is itself a process that traps exits. It starts each child linked to it;
when a child exits, it restarts that child alone, following the child's ``restart``:

* ``"permanent"``: always restarted;
* ``"transient"``: restarted unless it ended ``normal``, ``shutdown`` or ``{shutdown, _}``;
* ``"temporary"``: never restarted.

More than ``max_restarts`` restarts within ``max_seconds`` means something is wrong that
restarting does not fix: the supervisor gives up and exits with ``shutdown`` — as
``supervisor.erl``'s restart intensity does — and, since its children are linked to it
and do not trap exits, they end with it. An exit signal to the supervisor (its own link,
``node.exit(pid, shutdown)``) ends it and its children the same way.

Only one-for-one and local children: a supervision tree of Erlang's depth, start
arguments changing on restart, or ordered shutdown with timeouts are left to OTP.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from nodemesh.errors import ConfigError, ProcessExit
from nodemesh.term.types import Atom, Pid

if TYPE_CHECKING:
    from nodemesh.runtime._spawn import ProcessFn
    from nodemesh.runtime.mailbox import Mailbox
    from nodemesh.runtime.node import Node

__all__ = ["ChildSpec", "Supervisor"]

log = logging.getLogger("nodemesh.supervisor")

EXIT, NORMAL, SHUTDOWN = Atom("EXIT"), Atom("normal"), Atom("shutdown")
Restart = Literal["permanent", "transient", "temporary"]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One child: ``fn(mailbox, *args)`` started as a process, restarted per ``restart``."""

    fn: ProcessFn
    args: tuple[Any, ...] = ()
    restart: Restart = "permanent"

    def __post_init__(self) -> None:
        if self.restart not in ("permanent", "transient", "temporary"):
            raise ConfigError(
                f"restart must be permanent, transient or temporary: {self.restart!r}"
            )

    def wants_restart(self, reason: Any) -> bool:
        """Whether an exit with ``reason`` restarts this child."""
        if self.restart == "permanent":
            return True
        if self.restart == "temporary":
            return False
        clean = reason in (NORMAL, SHUTDOWN) or (
            type(reason) is tuple and len(reason) == 2 and reason[0] == SHUTDOWN
        )
        return not clean


class Supervisor:
    """Start with ``pid = Supervisor(children, max_restarts=3, max_seconds=5).start(node)``.

    :attr:`children` maps each running child's pid to its spec; :attr:`restarts` counts
    restarts so far. Raises :class:`ConfigError` for a negative intensity.
    """

    def __init__(
        self, children: list[ChildSpec], *, max_restarts: int = 3, max_seconds: float = 5.0
    ) -> None:
        if max_restarts < 0 or max_seconds <= 0:
            raise ConfigError("max_restarts must be >= 0 and max_seconds > 0")
        self.specs = list(children)
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.children: dict[Pid, ChildSpec] = {}
        self.restarts = 0
        self._recent: deque[float] = deque()

    def start(self, node: Node, *, link: Pid | None = None) -> Pid:
        """Spawn the supervisor on ``node`` (linked to ``link`` if given); return its pid.
        Raises :class:`NodeDownError` if the node is not running."""
        return node.spawn(self._run, node, link=link, trap_exit=True)

    async def _run(self, mailbox: Mailbox, node: Node) -> None:
        for spec in self.specs:
            self._start_child(node, mailbox.pid, spec)
        async for message in mailbox:
            if type(message) is tuple and len(message) == 3 and message[0] == EXIT:
                self._on_exit(node, mailbox.pid, message[1], message[2])

    def _on_exit(self, node: Node, me: Pid, pid: Any, reason: Any) -> None:
        spec = self.children.pop(pid, None)
        if spec is None:  # our own link's partner went away: end, as supervisor.erl does
            raise ProcessExit(reason)
        if not spec.wants_restart(reason):
            return
        now = time.monotonic()
        self._recent.append(now)
        while self._recent and now - self._recent[0] > self.max_seconds:
            self._recent.popleft()
        if len(self._recent) > self.max_restarts:
            log.warning("supervisor %s: restart intensity reached, shutting down", me)
            raise ProcessExit(SHUTDOWN)
        self.restarts += 1
        log.info("supervisor %s: child %s exited (%r), restarting", me, pid, reason)
        self._start_child(node, me, spec)

    def _start_child(self, node: Node, me: Pid, spec: ChildSpec) -> None:
        pid = node.spawn(spec.fn, *spec.args, link=me)
        self.children[pid] = spec
