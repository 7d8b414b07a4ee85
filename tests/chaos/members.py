"""The nodes of the chaos cluster: a Python node process or an ``erl``, one per namespace.

Both kinds answer the same questions (connected nodes, traffic on/off, what was received,
nodedowns seen) and take the same faults (kill -9 and restart, SIGSTOP/SIGCONT), so the
test drives them alike. Python nodes run ``support/chaos_node.py``; Erlang nodes run
``nm_peer`` with ``nm_chaos`` loaded (see ``support/nm_chaos.erl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodemesh.term import Atom
from support.erlang import ErlPeer, require_erlang
from support.netns import NetnsLab

SUPPORT = Path(__file__).resolve().parent.parent / "support"
SRC = SUPPORT.parent.parent / "src"
_CHAOS_BEAM: Path | None = None

# A tally of one sender incarnation at one receiver: count, first, last, not increasing
# (duplicates and reorderings), gaps (jumps forward: messages lost).
Tally = tuple[int, int, int, int, int]


def chaos_beam_dir() -> Path:
    """Compile nm_chaos.erl once per session; the directory of its .beam."""
    global _CHAOS_BEAM
    if _CHAOS_BEAM is None:
        require_erlang()
        out = Path(tempfile.mkdtemp(prefix="nm_chaos_"))
        source = SUPPORT / "nm_chaos.erl"
        subprocess.run(["erlc", "-o", str(out), str(source)], check=True, timeout=60)
        _CHAOS_BEAM = out
    return _CHAOS_BEAM


@dataclass
class Settings:
    """What every node of one run shares."""

    lab: NetnsLab
    cookie: str
    names: list[str]
    ticktime: int
    py_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """What a node received, per (sender, incarnation, epoch), and its nodedowns per peer."""

    tallies: dict[tuple[str, int, int], Tally]
    downs: dict[str, int]


@dataclass
class Sent:
    """What a node sent: per peer, per epoch (connection), the first and last number; and
    per peer the epoch up when traffic stopped (None: not connected)."""

    spans: dict[str, dict[int, tuple[int, int]]]
    current: dict[str, int | None]
    dialled: dict[int, bool] = field(default_factory=dict)  # Python senders: who dialled


class Member:
    """One node of the cluster, on host ``host`` of the lab; ``restarts`` counts kills."""

    kind = ""

    def __init__(self, settings: Settings, host: int, name: str) -> None:
        self.settings = settings
        self.host = host
        self.name = name
        self.incarnation = 0
        self.restarts = 0
        self.frozen = False
        self.dead = False

    @property
    def pid(self) -> int:
        raise NotImplementedError

    async def start(self, *, traffic: bool = False) -> None:
        raise NotImplementedError

    async def nodes(self) -> set[str]:
        raise NotImplementedError

    async def traffic(self, on: bool) -> Sent | None:
        """Start or stop sending; stopping answers what was sent."""
        raise NotImplementedError

    async def report(self) -> Report:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def kill(self) -> None:
        """kill -9, and reap it."""
        self.dead = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        await self.close()

    async def restart(self) -> None:
        self.restarts += 1
        await self.start(traffic=True)
        self.dead = False

    def freeze(self) -> None:
        self.frozen = True
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.frozen = False


class PyMember(Member):
    """A Python node process (``support/chaos_node.py``) driven over stdin/stdout."""

    kind = "python"

    def __init__(self, settings: Settings, host: int, name: str) -> None:
        super().__init__(settings, host, name)
        self.proc: asyncio.subprocess.Process | None = None
        self.errors: list[str] = []
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._next = 0
        self._readers: list[asyncio.Task[None]] = []
        self.verdicts = {"fast detector": 0, "net_ticktime": 0}  # why it dropped peers

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # `ip netns exec` execs the command: this is python itself

    async def start(self, *, traffic: bool = False) -> None:
        s = self.settings
        config = {"net_ticktime": s.ticktime, "connect_timeout": 3.0, **s.py_config}
        args = [*s.lab.prefix(self.host), sys.executable, str(SUPPORT / "chaos_node.py")]
        args += ["--name", self.name, "--cookie", s.cookie, "--peers", json.dumps(s.names)]
        args += ["--config", json.dumps(config), *(["--traffic"] if traffic else [])]
        path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies = {"started": started}
        self._readers = [asyncio.create_task(self._follow()), asyncio.create_task(self._stderr())]
        try:
            self.incarnation = int(await asyncio.wait_for(started, 30))
        except TimeoutError:
            raise AssertionError(f"{self.name} did not start: {self.errors[-20:]}") from None

    async def _follow(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            kind, _, rest = raw.decode(errors="replace").strip().partition(" ")
            if kind == "started":
                self._resolve("started", rest.split()[1])
            elif kind == "reply":
                ident, _, text = rest.partition(" ")
                self._resolve(ident, json.loads(text))
        for future in self._replies.values():  # exited: nobody will answer
            if not future.done():
                future.set_exception(RuntimeError(f"{self.name} exited: {self.errors[-20:]}"))

    def _resolve(self, ident: str, value: Any) -> None:
        future = self._replies.pop(ident, None)
        if future is not None and not future.done():
            future.set_result(value)

    async def _stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.errors.append(line)
            del self.errors[:-200]
            for cause in self.verdicts:
                self.verdicts[cause] += cause in line

    async def ask(self, command: str, timeout: float = 10.0) -> Any:
        assert self.proc is not None and self.proc.stdin is not None
        self._next += 1
        ident = str(self._next)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        self.proc.stdin.write(f"{ident} {command}\n".encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def nodes(self) -> set[str]:
        return set(await self.ask("nodes"))

    async def traffic(self, on: bool) -> Sent | None:
        answer = await self.ask("traffic-on" if on else "traffic-off")
        if answer is True:
            return None
        spans = {
            peer: {epoch: (first, last) for epoch, (first, last) in by_epoch}
            for peer, by_epoch in answer["sent"].items()
        }
        dialled = {int(epoch): flag for epoch, flag in answer["dialled"].items()}
        return Sent(spans, dict(answer["current"]), dialled)

    async def report(self) -> Report:
        answer = await self.ask("report")
        tallies = {(s, inc, epoch): tuple(t) for s, inc, epoch, *t in answer["received"]}
        return Report(tallies, dict(answer["downs"]))

    async def stats(self) -> dict[str, int]:
        return dict(await self.ask("stats"))

    async def close(self) -> None:
        """Close stdin (it exits), kill it if it does not, and reap it."""
        if self.proc is None:
            return
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


class ErlMember(Member):
    """A real ``erl`` running nm_chaos, with its own ``epmd`` in its namespace. It starts
    distribution only once its receiver is registered (see nm_chaos:start/4)."""

    kind = "erlang"

    def __init__(self, settings: Settings, host: int, name: str) -> None:
        super().__init__(settings, host, name)
        self.peer: ErlPeer | None = None

    @property
    def pid(self) -> int:
        assert self.peer is not None
        return self.peer.proc.pid  # ip netns exec, erl and erlexec all exec: beam.smp

    async def start(self, *, traffic: bool = False) -> None:
        s = self.settings
        extra = ["-pa", str(chaos_beam_dir()), "-kernel", "net_ticktime", str(s.ticktime)]
        # Two visible Erlang nodes only: global's partition prevention has nothing to do.
        extra += ["-kernel", "net_setuptime", "3"]
        extra += ["-kernel", "prevent_overlapping_partitions", "false"]
        s.lab.start_epmd(self.host)  # it outlives the node, as on a real host
        self.peer = await s.lab.erl_peer(self.host, self.name, s.cookie, extra, distributed=False)
        names = "[" + ",".join(f"'{n}'" for n in s.names) + "]"
        call = f"nm_chaos:start('{self.name}', '{s.cookie}', {names}, {str(traffic).lower()})"
        self.incarnation = int(await self.peer.eval(call))

    async def nodes(self) -> set[str]:
        assert self.peer is not None
        return {str(n) for n in await self.peer.eval_term("nodes(connected)", timeout=10)}

    async def traffic(self, on: bool) -> Sent | None:
        assert self.peer is not None
        answer = await self.peer.eval_term(f"nm_chaos:traffic({str(on).lower()})")
        if answer is True:
            return None
        spans, current = answer
        return Sent(
            {str(peer): dict(by_epoch) for peer, by_epoch in spans.items()},
            {str(peer): current.get(Atom(peer)) for peer in self.settings.names},
        )

    async def report(self) -> Report:
        assert self.peer is not None
        tallies, downs = await self.peer.eval_term("nm_chaos:report()")
        return Report(
            {(str(s), inc, epoch): tuple(t) for (s, inc, epoch), t in tallies.items()},
            {str(k): v for k, v in downs.items()},
        )

    async def close(self) -> None:
        if self.peer is not None:
            await self.peer.stop()
