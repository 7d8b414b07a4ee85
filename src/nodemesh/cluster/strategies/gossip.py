"""Gossip: UDP multicast (or broadcast) heartbeats, wire-compatible with libcluster 3.5.

Each node sends a heartbeat naming itself when it starts and then after a uniform random
1-5000 ms, as libcluster does; whoever hears one connects to its sender unless the
topology's list_nodes already has it. To converge fast, a node that hears a newcomer (a
sender not connected, or not heard from within ``liveness_timeout``) answers at once with
its own heartbeat, at most one answer per ``reply_interval``, instead of leaving the
newcomer to wait up to 5 s for the next round. The answer is multicast too: with
SO_REUSEPORT, a unicast datagram to a shared port reaches only one of the host's nodes.

Datagrams that do not decode are counted and dropped with at most one log line per reason
per ``drop_log_interval``; nothing is kept per bogus sender. The wire format lives in
:mod:`nodemesh.cluster.gossip.wire`, the options in :mod:`nodemesh.cluster.gossip.options`,
the socket set-up in :mod:`nodemesh.cluster.gossip.sockets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections import Counter
from typing import Any, cast

from nodemesh.cluster.gossip.options import GossipOptions, make_codec
from nodemesh.cluster.gossip.sockets import answer_group, open_gossip_socket, set_membership
from nodemesh.cluster.gossip.tracking import GossipStatistics, Liveness, RateLimitedLog
from nodemesh.cluster.gossip.wire import GossipError
from nodemesh.cluster.strategy import Strategy, StrategyContext
from nodemesh.errors import NetworkError

__all__ = ["GossipOptions", "GossipStatistics", "GossipStrategy", "make_codec"]

_DRAIN = 63  # more datagrams read per wake-up, at most
_RECV_SIZE = 65536  # a whole UDP datagram: larger than max_packet_size is "oversized"


class GossipStrategy(Strategy):
    """libcluster's ``Cluster.Strategy.Gossip`` for nodemesh (``strategy = "gossip"``)."""

    name = "gossip"
    Options = GossipOptions

    def __init__(self, options: GossipOptions | None = None) -> None:
        super().__init__(options if options is not None else GossipOptions())
        self.options: GossipOptions
        self._codec = make_codec(self.options)
        self._liveness = Liveness(
            self.options.max_tracked_nodes, self.options.liveness_timeout / 1000
        )
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._random = random.Random()

    async def run(self, ctx: StrategyContext) -> None:
        """Send and hear heartbeats until cancelled. Raises :class:`NetworkError` when the
        socket cannot be opened or fails (the runner restarts the strategy with backoff)."""
        o = self.options
        opened = open_gossip_socket(
            port=o.port,
            if_addr=o.if_addr,
            multicast_addr=o.multicast_addr,
            multicast_ttl=o.multicast_ttl,
            multicast_if=o.multicast_if,
            broadcast_only=o.broadcast_only,
        )
        session = _Session(self, ctx, opened.destination, opened.sock)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: session, sock=opened.sock)
        except BaseException:
            opened.sock.close()
            raise
        mode = "authenticated" if o.auth_keys else "secret" if o.secret else "plain"
        ctx.log.info("gossip (%s) to %s port %d", mode, opened.destination[0], o.port)
        async with asyncio.TaskGroup() as attempts:  # the session's connect attempts
            session.attempts = attempts
            session.hear_answers()
            try:
                lost = await session.heartbeat_until_lost()
                session.cancel_attempts()
            finally:
                # Before the group ends: no datagram, hence no new attempt, after this.
                session.attempts = None
                transport.close()
                session.close()
        # Raised out here, not in the group, so the runner logs the NetworkError itself
        # rather than an ExceptionGroup around it.
        raise NetworkError(f"the gossip socket failed: {lost!r}")

    def peers(self) -> dict[str, float]:
        """Seconds since each tracked node's last heartbeat (liveness)."""
        return self._liveness.ages(time.monotonic())

    def alive(self) -> set[str]:
        """The nodes whose heartbeat arrived within ``liveness_timeout``."""
        return self._liveness.alive(time.monotonic())

    def statistics(self) -> GossipStatistics:
        """A snapshot of the counters since this strategy was created."""
        c = self._counts
        return GossipStatistics(
            heartbeats_sent=c["sent"],
            replies_sent=c["replies"],
            bytes_sent=c["bytes_sent"],
            datagrams_received=c["received"],
            bytes_received=c["bytes_received"],
            heartbeats_accepted=c["accepted"],
            dropped=dict(self._dropped),
            errors=dict(self._errors),
            tracked_nodes=len(self._liveness),
        )


class _Session(asyncio.DatagramProtocol):
    """One run of the strategy: the socket's callbacks, replies and connection attempts."""

    def __init__(
        self, strategy: GossipStrategy, ctx: StrategyContext, dest: Any, sock: socket.socket
    ) -> None:
        self.s = strategy
        self.sock = sock
        self.o = strategy.options
        self.ctx = ctx
        self.dest = dest
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.lost = asyncio.Event()
        self.lost_because: Exception | None = None
        self.limited = RateLimitedLog(self.o.drop_log_interval / 1000)
        self.attempts: asyncio.TaskGroup | None = None  # set by GossipStrategy.run
        self.connecting: dict[str, asyncio.Task[None]] = {}
        self.waiting: dict[str, None] = {}  # beyond max_concurrent_connects, in order
        self.deferred: dict[str, asyncio.TimerHandle] = {}  # see connect_later
        self.last_reply = float("-inf")
        self.reply_timer: asyncio.TimerHandle | None = None
        self.reply_to: set[Any] = set()  # destinations of the answer being prepared
        self.answers: Any = None  # where answers to nodemesh newcomers go (hear_answers)
        self.leave_timer: asyncio.TimerHandle | None = None

    # -- sending -------------------------------------------------------------------------
    async def heartbeat_until_lost(self) -> Exception | None:
        """Heartbeat after each random delay until the socket is lost; why it was."""
        while not self.lost.is_set():
            self.send()
            delay = self.s._random.randint(
                self.o.heartbeat_interval_min, self.o.heartbeat_interval_max
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay / 1000):
                    await self.lost.wait()
        return self.lost_because

    def send(self, reply: bool = False, dest: Any = None) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        packet = self.s._codec.encode(self.ctx.node_name, time.time(), self.ctx.dist_port)
        self.transport.sendto(packet, self.dest if dest is None else dest)
        self.s._counts.update(sent=1, bytes_sent=len(packet), replies=int(reply))

    def hear_answers(self) -> None:
        """Join the answer group for our first ``heartbeat_interval_max``: nodemesh nodes
        answer a nodemesh newcomer there, so that the answers of N nodes to a newcomer
        wake the newcomer (and other newcomers), not all N. A missed answer costs at
        most ``connect_defer``: the answering node then connects itself."""
        if self.o.broadcast_only or self.o.connect_defer == 0:
            return
        group = answer_group(self.o.multicast_addr)
        try:
            set_membership(self.sock, group, self.o.multicast_if, join=True)
        except OSError as exc:  # answers then come to the gossip group, as libcluster's
            self.ctx.log.debug("cannot join the answer group %s: %s", group, exc)
        else:
            window = self.o.heartbeat_interval_max / 1000
            self.leave_timer = self.loop.call_later(window, self._leave_answers, group)
        self.answers = (group, *self.dest[1:])  # answer there even if we could not join

    def _leave_answers(self, group: str) -> None:
        self.leave_timer = None
        with contextlib.suppress(OSError):
            set_membership(self.sock, group, self.o.multicast_if, join=False)

    def answer_newcomer(self, nodemesh: bool = False) -> None:
        """Heartbeat now, or at the end of the current ``reply_interval`` (one answer then
        serves every newcomer heard meanwhile: it is multicast), to the answer group for
        a nodemesh newcomer, to the gossip group for others (libcluster hears only it)."""
        self.reply_to.add(self.answers if nodemesh and self.answers else self.dest)
        if self.reply_timer is not None:
            return
        wait = self.last_reply + self.o.reply_interval / 1000 - self.loop.time()
        if wait <= 0:
            self._reply()
        else:
            self.reply_timer = self.loop.call_later(wait, self._reply)

    def _reply(self) -> None:
        self.reply_timer = None
        self.last_reply = self.loop.time()
        for dest in self.reply_to:
            self.send(reply=True, dest=dest)
        self.reply_to.clear()

    # -- receiving -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.is_set():
            self.lost_because = exc
            self.lost.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors and failed sends (a link that is down): the socket stays usable.
        self._problem("socket", f"gossip socket error: {exc}")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._handle(data, addr)
        # The selector loop reads one datagram per wake-up; while N nodes join, each
        # hears a burst of N answers, so read what else is queued now (a bounded number,
        # so that a flood cannot hold up the loop). uvloop reads in batches already.
        for _ in range(_DRAIN):
            try:
                data, addr = self.sock.recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            self._handle(data, addr)

    def _handle(self, data: bytes, addr: Any) -> None:
        self.s._counts.update(received=1, bytes_received=len(data))
        try:
            beat = self.s._codec.read(data, time.time())
        except GossipError as exc:
            self._drop(exc.kind, f"dropped a gossip datagram from {addr[0]}: {exc}")
            return
        except Exception as exc:  # a bug; the strategy must keep listening anyway
            self._problem("bug", f"unexpected error decoding a gossip datagram: {exc!r}")
            return
        node = beat.node
        if node == self.ctx.node_name:
            return
        self.s._counts["accepted"] += 1
        if beat.dist_port is not None:  # a nodemesh sender: no EPMD lookup to reach it
            self.ctx.hint_port(node, beat.dist_port)
        self._heard(node, nodemesh=beat.dist_port is not None)

    def _heard(self, node: str, *, nodemesh: bool) -> None:
        """Answer and connect to ``node``. A ``nodemesh`` sender (its heartbeat has a port)
        connects to whoever it hears, so one of the pair is enough: the greater name, whose
        connection wins Erlang's tie-break anyway. We connect to a smaller one at once
        without answering; to a greater one only if it has not connected to us within
        ``connect_defer``, and we answer it, so that it hears us."""
        now = time.monotonic()
        new = self.s._liveness.heard(node, now)
        connected = self._connected(node)
        one_dials = nodemesh and self.o.connect_defer > 0
        we_dial = not one_dials or node < self.ctx.node_name
        # Answer when new, or not connected, but the latter at most once per
        # heartbeat_interval_max: nodes still connecting would otherwise answer each
        # other every reply_interval, a storm that grows with N and with connect time.
        again = self.o.heartbeat_interval_max / 1000
        answer = (new or not connected) and not (one_dials and we_dial)
        if answer and self.s._liveness.answer_due(node, now, again, new=new):
            self.answer_newcomer(nodemesh=one_dials)
        if connected:
            return
        if we_dial:
            self.connect(node)
        else:
            self.connect_later(node)

    def _connected(self, node: str) -> bool:
        try:
            return node in self.ctx.list_nodes()
        except Exception as exc:  # a user's list_nodes hook: assume not connected
            self._problem("list_nodes", f"the list_nodes hook failed: {exc!r}")
            return False

    def _drop(self, kind: str, message: str) -> None:
        self.s._dropped[kind] += 1
        self.limited.warning(self.ctx.log, kind, self.loop.time(), "%s", message)

    def _problem(self, kind: str, message: str) -> None:
        self.s._errors[kind] += 1
        self.limited.warning(self.ctx.log, kind, self.loop.time(), "%s", message)

    # -- connecting ----------------------------------------------------------------------
    def connect(self, node: str) -> None:
        """Ask the topology to connect (it skips connected nodes), without holding up the
        socket: attempts run as tasks, one per node, at most ``max_concurrent_connects``
        (the next ones wait their turn)."""
        if node in self.connecting or self.attempts is None:
            return  # (no group: heard before run() opened it; the next heartbeat will do)
        if len(self.connecting) >= self.o.max_concurrent_connects:
            if len(self.waiting) < self.o.max_tracked_nodes:
                self.waiting[node] = None
            return
        task = self.attempts.create_task(self._connect(node))
        self.connecting[node] = task
        task.add_done_callback(lambda _: self._attempt_done(node))

    def _attempt_done(self, node: str) -> None:
        self.connecting.pop(node, None)
        while self.waiting and len(self.connecting) < self.o.max_concurrent_connects:
            waiting = next(iter(self.waiting))
            del self.waiting[waiting]
            if not self._connected(waiting):
                self.connect(waiting)

    def connect_later(self, node: str) -> None:
        """Connect to ``node`` after ``connect_defer`` unless it has connected to us."""
        if node in self.deferred or node in self.connecting:
            return
        if len(self.deferred) >= self.o.max_tracked_nodes:
            self.connect(node)
            return
        self.ctx.expect(node)
        delay = self.o.connect_defer / 1000
        self.deferred[node] = self.loop.call_later(delay, self._deferred_due, node)

    def _deferred_due(self, node: str) -> None:
        del self.deferred[node]
        if not self._connected(node):
            self.connect(node)

    async def _connect(self, node: str) -> None:
        try:
            await self.ctx.connect_nodes(frozenset((node,)))
        except Exception as exc:  # a user's connect hook may raise: keep gossiping
            self._problem("connect", f"connecting to {node} failed: {exc!r}")

    def cancel_attempts(self) -> None:
        self.waiting.clear()
        for task in list(self.connecting.values()):
            task.cancel()

    def close(self) -> None:
        if self.reply_timer is not None:
            self.reply_timer.cancel()
        if self.leave_timer is not None:  # the socket is closed: that leaves the group
            self.leave_timer.cancel()
        for handle in self.deferred.values():
            handle.cancel()
        self.deferred.clear()
