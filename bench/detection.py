"""How long a full mesh of N nodes takes to notice a failed node (not a test).

N nodes (16 by default), each its own OS process in its own network namespace on a bridge
(``tests/support/netns.py``; needs root), form a full mesh. Then one node, the victim, is

* **killed** (``kill -9``: its kernel closes its sockets, so peers see the TCP reset),
* **frozen** (``SIGSTOP``: its sockets stay open and silent, like a stuck VM or GC pause),
* **cut off** (its bridge port taken down: packets vanish, nothing is reset),

and every other node reports when it saw ``nodedown`` for it (wall clock, one machine).
The fault comes a random time (up to one tick interval) after the mesh formed, so its
phase against the polls that give verdicts varies (``--seed`` replays it).
The latency is that time minus the time of the fault, over the N - 1 observers.

Systems: nodemesh with the default (Erlang's rule, ``net_ticktime`` 60) and the fast
failure detector (``NodeConfig(failure_detector="fast")``), and real ``erl`` nodes with
Erlang's default ``net_ticktime`` (60) and a short one. Rows with ``net_ticktime`` 60 take
about a minute per fault and run once; the others run ``--repeat`` times.

    sudo python bench/detection.py [--nodes 16] [--repeat 3] [--short-ticktime 2]
                                   [--skip-slow] [--systems fast erl-short ...]

Systems (``--systems``): default, fast, default-short (nodemesh with Erlang's rule at the
short ticktime), erl, erl-short.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

PORT = 4370  # every nodemesh node listens here (EPMD-less), one address per namespace
COOKIE = "detection-bench"
FAULTS = ("kill", "freeze", "link-down")
KEYS = ("default", "fast", "default-short", "erl", "erl-short")  # --systems, in row order

# -- the child: one nodemesh node ------------------------------------------------------------


async def child(name: str, peers: list[str], expected: int, detector: str, ticktime: float) -> None:
    """Run a node; on "go" connect to ``peers`` and wait for ``expected`` connections (all
    watched fast with the fast detector); then print "down NODE TIME REASON" lines."""
    from nodemesh import Node, NodeConfig, NodeDown

    # Warnings (a fast verdict says "silent for") go to stderr, which the bench passes on.
    logging.basicConfig(level=logging.WARNING, format=f"{name} %(levelname)s %(message)s")
    config = NodeConfig(use_epmd=False, port=PORT, failure_detector=detector, net_ticktime=ticktime)
    async with Node(name, COOKIE, config=config) as node:
        events = node.events()
        say("ready")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await asyncio.gather(*(node.connect(peer) for peer in peers))
        while len(node.nodes()) < expected or (  # noqa: ASYNC110 - polled, no event
            detector == "fast" and node.statistics().fast_watched_peers < expected
        ):
            await asyncio.sleep(0.05)
        say(f"connected {len(node.nodes())}")
        async for event in events:
            if isinstance(event, NodeDown):
                say(f"down {event.node} {time.time():.6f} {event.reason}")


def say(line: str) -> None:
    print(line, flush=True)


ERLANG_CHILD = """
Peers = [{peers}], Expected = {expected},
net_kernel:monitor_nodes(true, [nodedown_reason]),
io:format("ready~n"),
_ = io:get_line(""),
[net_adm:ping(P) || P <- Peers],
Wait = fun W() -> case length(nodes()) >= Expected of
    true -> ok; false -> timer:sleep(50), W() end end,
Wait(),
io:format("connected ~p~n", [length(nodes())]),
Loop = fun L() -> receive
    {{nodedown, N, Info}} ->
        io:format("down ~s ~.6f ~p~n", [N, os:system_time(microsecond) / 1.0e6,
                                          proplists:get_value(nodedown_reason, Info)]),
        L();
    _ -> L() end end,
Loop().
"""

# -- the parent ------------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    label: str
    kind: str  # "python" or "erl"
    detector: str  # for python: "erlang" or "fast"
    ticktime: int

    @property
    def interval(self) -> float:
        """Seconds between the polls that give verdicts."""
        return 0.1 if self.detector == "fast" else self.ticktime / 4

    @property
    def slow(self) -> bool:
        return self.ticktime >= 10


class Member:
    """One node process of the mesh and the lines it printed."""

    def __init__(self, index: int, name: str, proc: asyncio.subprocess.Process) -> None:
        self.index, self.name, self.proc = index, name, proc
        self.others = 0  # nodedowns of nodes other than the victim (false positives)

    async def line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not raw:
                raise RuntimeError(f"{self.name} exited")
            text = raw.decode(errors="replace").strip()
            if text.split(" ", 1)[0] in ("ready", "connected", "down"):
                return text

    async def expect(self, word: str, timeout: float) -> str:
        text = await self.line(timeout)
        if not text.startswith(word):
            raise RuntimeError(f"{self.name}: expected {word!r}, got {text!r}")
        return text


async def start_member(lab: object, system: System, i: int, names: list[str]) -> Member:
    from support.netns import NetnsLab

    assert isinstance(lab, NetnsLab)
    name = names[i - 1]
    higher = names[i:]  # each node dials those after it: one dial per pair
    if system.kind == "python":
        args = [sys.executable, __file__, "--child", name, str(len(names) - 1)]
        args += [system.detector, str(system.ticktime), *higher]
    else:
        code = ERLANG_CHILD.format(
            peers=", ".join(f"'{n}'" for n in higher), expected=len(names) - 1
        )
        args = ["erl", "-noshell", "-name", name, "-setcookie", COOKIE]
        args += ["-kernel", "net_ticktime", str(system.ticktime), "-eval", " ".join(code.split())]
    proc = await asyncio.create_subprocess_exec(
        *lab.prefix(i), *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    member = Member(i, name, proc)
    await member.expect("ready", 60)
    return member


async def one_run(lab: object, system: System, fault: str, count: int) -> tuple[list[float], int]:
    """Form the mesh, fail the last node; the N - 1 detection latencies and how many
    nodedowns of other nodes were seen meanwhile."""
    from support.netns import NetnsLab

    assert isinstance(lab, NetnsLab)
    names = [f"b{i}@{lab.ip4(i)}" for i in range(1, count + 1)]
    members = await asyncio.gather(
        *(start_member(lab, system, i, names) for i in range(1, count + 1))
    )
    victim, observers = members[-1], members[:-1]
    try:
        for member in members:
            assert member.proc.stdin is not None
            member.proc.stdin.write(b"go\n")
        await asyncio.gather(*(m.expect("connected", 120) for m in members))
        faults: dict[str, Callable[[], None]] = {
            "kill": lambda: victim.proc.send_signal(signal.SIGKILL),
            "freeze": lambda: victim.proc.send_signal(signal.SIGSTOP),
            "link-down": lambda: lab.link_down(victim.index),
        }
        # Verdicts come at tick-interval polls: fault at a random phase of the interval,
        # not always just after the mesh formed (which would give one extreme each time).
        await asyncio.sleep(random.uniform(0, system.interval))
        at = time.time()
        faults[fault]()
        budget = 3 * system.ticktime + 30
        seen = await asyncio.gather(*(down_of(m, victim.name, budget) for m in observers))
        return [when - at for when in seen], sum(m.others for m in observers)
    finally:
        for member in members:
            if member.proc.returncode is None:
                member.proc.send_signal(signal.SIGCONT)
                member.proc.kill()
            await member.proc.wait()
        if fault == "link-down":
            lab.link_up(victim.index)


async def down_of(member: Member, victim: str, timeout: float) -> float:
    """When ``member`` reported ``victim`` down; another node reported down before it is
    a false positive, counted in ``member.others``."""
    deadline = time.monotonic() + timeout
    while True:
        text = await member.line(max(0.1, deadline - time.monotonic()))
        parts = text.split()
        if parts[0] == "down" and parts[1].strip("'") == victim:
            return float(parts[2])
        if parts[0] == "down":
            member.others += 1


def row(system: System, fault: str, latencies: list[float], runs: int, others: int) -> str:
    ms = sorted(x * 1000 for x in latencies)
    median = statistics.median(ms)
    cells = f"{ms[0]:,.0f} | {median:,.0f} | {ms[-1]:,.0f} | {others}"
    return f"| {system.label} | {fault} | {runs} | {cells} |"


async def main(args: argparse.Namespace) -> None:
    from support.netns import NetnsLab  # fails loudly without root: a bench is no test

    short = args.short_ticktime
    systems = [
        System("nodemesh, default (Erlang's rule, net_ticktime 60)", "python", "erlang", 60),
        System("nodemesh, fast profile (net_ticktime 60 behind it)", "python", "fast", 60),
        System(f"nodemesh, Erlang's rule, net_ticktime {short}", "python", "erlang", short),
        System("erl, net_ticktime 60 (default)", "erl", "", 60),
        System(f"erl, net_ticktime {short}", "erl", "", short),
    ]
    if args.systems:
        systems = [systems[KEYS.index(key)] for key in args.systems]
    if args.skip_slow:
        systems = [s for s in systems if not s.slow or s.detector == "fast"]
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    random.seed(seed)
    print(f"seed {seed} (--seed {seed} replays the fault phases)", flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    lab = NetnsLab.create(args.nodes)
    print("| system | fault | runs | min ms | median ms | max ms | other nodedowns |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    try:
        for system in systems:
            runs = 1 if system.slow and system.detector != "fast" else args.repeat
            for fault in FAULTS:
                latencies: list[float] = []
                others = 0
                for _ in range(runs):
                    seen, wrong = await one_run(lab, system, fault, args.nodes)
                    latencies += seen
                    others += wrong
                print(row(system, fault, latencies, runs, others), flush=True)
    finally:
        lab.close()
    print(f"load average after: {os.getloadavg()}", flush=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--short-ticktime", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="for the fault phases")
    parser.add_argument("--skip-slow", action="store_true", help="no net_ticktime 60 rows")
    parser.add_argument("--systems", nargs="*", choices=tuple(KEYS))
    return parser.parse_args()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, expected, detector, ticktime, *peers = sys.argv[2:]
        asyncio.run(child(name, peers, int(expected), detector, float(ticktime)))
    else:
        asyncio.run(main(parse()))
