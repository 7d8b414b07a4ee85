"""Keeping a node registered with its host's EPMD for the node's whole life.

On a host with no ``epmd`` the first nodemesh node embeds one (:func:`ensure_epmd`) and
the others register with it. When that process dies every other node sees its
registration connection close; each then runs ``ensure_epmd`` again (one wins the bind,
the rest use the winner's) and registers again. Like ``erl_epmd``, the node keeps the
creation of its first registration: pids and refs already handed out must stay valid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from nodemesh.epmd.client import Registration, check_alive_name, default_epmd_port, register
from nodemesh.epmd.server import EpmdServer, EpmdServerConfig, ensure_epmd
from nodemesh.errors import ConfigError, EpmdError, NetworkError, ProtocolError

log = logging.getLogger("nodemesh.epmd")


@dataclass(frozen=True, slots=True)
class KeeperConfig:
    """Timings of an :class:`EpmdKeeper`; raises ConfigError when out of range."""

    timeout: float = 5.0  # for each EPMD request
    backoff_initial: float = 0.05  # first pause after a failed re-registration
    backoff_max: float = 2.0  # erl_epmd retries every 2 s
    listen: str | Sequence[str] | None = None  # where an embedded EPMD listens (None: any)
    server: EpmdServerConfig = field(default_factory=EpmdServerConfig)

    def __post_init__(self) -> None:
        if not 0 < self.backoff_initial <= self.backoff_max or not self.timeout > 0:
            raise ConfigError("need timeout > 0 and 0 < backoff_initial <= backoff_max")


class EpmdKeeper:
    """Registers node ``name`` (listening on ``port``) and re-registers whenever EPMD dies.

    The constructor raises NodeNameError or ConfigError for a bad name or port.
    ``await start()`` registers once, starting an embedded EPMD if none answers, and
    raises as :func:`~nodemesh.epmd.client.register` does (a taken name: EpmdNameInUseError).
    After that a background task re-registers with backoff until ``aclose()``.
    """

    def __init__(
        self,
        name: str,
        port: int,
        *,
        hidden: bool = True,
        epmd_port: int | None = None,
        config: KeeperConfig | None = None,
    ) -> None:
        if not 0 < port < 65536:
            raise ConfigError(f"distribution port {port} is not a TCP port number")
        self.name = check_alive_name(name)
        self.port = port
        self.hidden = hidden
        self.epmd_port = default_epmd_port() if epmd_port is None else epmd_port
        self.config = config or KeeperConfig()
        self._creation: int | None = None
        self._registration: Registration | None = None
        self._servers: list[EpmdServer] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._registered = asyncio.Event()

    @property
    def creation(self) -> int:
        """The creation of the first registration, kept for the node's lifetime."""
        if self._creation is None:
            raise ConfigError("EpmdKeeper.creation is known only after start()")
        return self._creation

    @property
    def registration(self) -> Registration | None:
        """The current registration (None while re-registering)."""
        reg = self._registration
        return reg if reg is not None and not reg.closed else None

    @property
    def servers(self) -> list[EpmdServer]:
        """Embedded EPMDs this keeper started that still run (it closes them on aclose)."""
        return [s for s in self._servers if not s.closed]

    async def start(self, task_group: asyncio.TaskGroup | None = None) -> int:
        """Register for the first time; return the creation.

        Then re-registers in the background until ``aclose()``: as a task of
        ``task_group`` when given (the owner's group, so its end stops this too), else as
        a task the keeper owns and ``aclose()`` cancels and awaits.
        """
        if self._creation is not None:
            raise ConfigError("an EpmdKeeper starts only once")
        try:
            reg = await self._register()
        except BaseException:
            await self._close_servers()  # a node that failed to start owns no EPMD
            raise
        self._creation = reg.creation
        spawn = task_group.create_task if task_group else asyncio.get_running_loop().create_task
        self._task = spawn(self._run(reg))
        return reg.creation

    async def wait_registered(self) -> Registration:
        """Return the current registration, waiting for a re-registration if needed.

        Raises EpmdError once the keeper is closed.
        """
        while (reg := self.registration) is None:
            if self._closing:
                raise EpmdError(f"the EPMD keeper of {self.name!r} is closed")
            self._registered.clear()
            await self._registered.wait()
        return reg

    async def aclose(self) -> None:
        """Unregister, stop re-registering, and close the EPMDs this keeper started."""
        self._closing = True
        self._registered.set()  # wake wait_registered() to raise
        if self._task is not None:
            await _cancel_and_wait(self._task)
        if self._registration is not None:
            await self._registration.aclose()
        await self._close_servers()

    async def _close_servers(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            await server.aclose()

    async def _register(self) -> Registration:
        server = await ensure_epmd(
            self.epmd_port, host=self.config.listen, config=self.config.server
        )
        if server is not None:
            self._servers.append(server)
            log.info("%s started an embedded EPMD on port %d", self.name, server.port)
        reg = await register(
            self.name,
            self.port,
            hidden=self.hidden,
            epmd_port=self.epmd_port,
            timeout=self.config.timeout,
        )
        self._registration = reg
        self._registered.set()
        return reg

    async def _run(self, reg: Registration) -> None:
        while not self._closing:
            await reg.wait_closed()
            if self._closing:
                return
            log.warning("EPMD dropped the registration of %s; registering again", self.name)
            reg = await self._register_with_backoff()

    async def _register_with_backoff(self) -> Registration:
        delay = self.config.backoff_initial
        while True:
            try:
                return await self._register()
            except (NetworkError, ProtocolError) as exc:
                log.warning("cannot register %s with EPMD yet (%s); retrying", self.name, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.backoff_max)


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end; a cancellation of our caller while it
    waits still propagates (only the task's own CancelledError is absorbed). A caller
    already being cancelled when it came here (``async with Node`` left by a cancel)
    goes on with its cleanup: counting its cancellations before tells the two apart."""
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > before:
            raise
