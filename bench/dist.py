"""Distribution benchmark: nodemesh nodes side by side with Erlang and Redis pub/sub.

    python bench/dist.py [--messages N] [--roundtrips M] [--repeat R] [--quick]

One run measures, each sender and receiver in its own OS process on 127.0.0.1:

* one-way throughput: the sender sends ``{chat, <<"room:lobby">>, <<"hello from a
  node">>, 12345}`` N times to the receiver's registered process as fast as it can, then
  ``{stop, From}``; the receiver times from the first message to the stop marker and
  counts, so a sender that merely fills a buffer gains nothing;
* round trip: the same message ping-ponged M times (after a warm-up), median and p99;
* for python→python, python→erlang, erlang→python and erlang→erlang, and for the same
  bytes (nodemesh's term encoding) through Redis pub/sub with redis-py;
* the resident memory (VmRSS) of an idle nodemesh node, a bare Python, an idle ``erl``.

It prints a Markdown table; docs/benchmarks.md records it. The Erlang rows need ``erl``
and ``erlc`` (the roles are in dist_bench.erl beside this file), the Redis rows
``redis-server`` and the ``bench`` extra (redis, hiredis); missing ones are skipped.

The same file is every Python process of the run: ``--role`` runs one side. Each role
prints ``ready`` once it can be reached and ends with one ``result {JSON}`` line. Node
roles start with a hello: ``{hello, From}`` to the receiver's ``bench``, answered ``go``;
they end with ``{stop, From}``, answered ``{done, Count}`` once everything arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodemesh import Atom, Pid
from nodemesh._build import implementation
from nodemesh._loop import event_loop_name
from nodemesh._loop import run as run_loop
from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.node import Node
from nodemesh.term import decode, encode

HERE = Path(__file__).resolve().parent
SELF = str(HERE / Path(__file__).name)
HOST = "127.0.0.1"
CHAT = (Atom("chat"), b"room:lobby", b"hello from a node", 12345)
HELLO, GO, STOP, DONE = Atom("hello"), Atom("go"), Atom("stop"), Atom("done")
TIMEOUT = 60.0  # any single wait inside a role; the orchestrator has its own limits
READY_TIMEOUT = 30.0
RESULT_TIMEOUT = 180.0
REDIS_STOP = b"stop"
PIPELINE = 100  # publishes per redis-py pipeline in the pipelined row


# -- Python node roles (each runs in its own process) -------------------------------------
def _ready() -> None:
    print("ready", flush=True)


async def _serve(node: Node, name: str = "bench") -> tuple[Any, Pid]:
    """Register ``name``, say ready, wait for the hello and answer it."""
    inbox = node.register(name)
    _ready()
    hello = await inbox.receive(TIMEOUT)
    peer: Pid = hello[1]
    await node.send(peer, GO)
    return inbox, peer


async def _client(node: Node, peer: str) -> tuple[tuple[str, str], Any]:
    """Connect to ``peer``'s ``bench`` process with a hello; return (dest, own mailbox)."""
    box = node.mailbox()
    dest = ("bench", peer)
    await node.send(dest, (HELLO, box.pid))
    if await box.receive(TIMEOUT) != GO:
        raise RuntimeError("the receiver did not answer the hello with go")
    _ready()
    return dest, box


async def py_recv(node: Node, args: argparse.Namespace) -> dict[str, Any]:
    """Count messages from the first one to the stop marker."""
    inbox, _ = await _serve(node)
    receive = inbox.receive
    await receive(TIMEOUT)
    start = time.perf_counter_ns()
    count = 1
    while True:
        msg = await receive(TIMEOUT)
        if msg[0] == STOP:
            break
        count += 1
    elapsed = time.perf_counter_ns() - start
    await node.send(msg[1], (DONE, count))
    return {"count": count, "elapsed_ns": elapsed}


async def py_echo(node: Node, args: argparse.Namespace) -> dict[str, Any]:
    """Send every message back to the pid that said hello."""
    inbox, peer = await _serve(node)
    while True:
        msg = await inbox.receive(TIMEOUT)
        if msg[0] == STOP:
            break
        await node.send(peer, msg)
    await node.send(msg[1], (DONE, 0))
    return {}


async def py_send(node: Node, args: argparse.Namespace) -> dict[str, Any]:
    """Send ``--count`` messages with ``await node.send`` (it waits when the socket's
    buffer is past its high-water mark), then the stop marker; wait for the receiver."""
    dest, box = await _client(node, args.peer)
    send = node.send
    start = time.perf_counter_ns()
    for _ in range(args.count):
        await send(dest, CHAT)
    elapsed = time.perf_counter_ns() - start
    await send(dest, (STOP, box.pid))
    await box.receive(RESULT_TIMEOUT)
    return {"sent": args.count, "elapsed_ns": elapsed}


async def py_ping(node: Node, args: argparse.Namespace) -> dict[str, Any]:
    """Time ``--count`` round trips of the message through the peer's echo."""
    dest, box = await _client(node, args.peer)
    rtts = []
    for _ in range(args.count):
        start = time.perf_counter_ns()
        await node.send(dest, CHAT)
        await box.receive(TIMEOUT)
        rtts.append(time.perf_counter_ns() - start)
    await node.send(dest, (STOP, box.pid))
    await box.receive(TIMEOUT)
    return {"rtt_ns": rtts}


async def py_idle(node: Node, args: argparse.Namespace) -> dict[str, Any]:
    """Start, register a name, and wait (the orchestrator reads VmRSS, then kills us)."""
    node.register("bench")
    _ready()
    await asyncio.Event().wait()
    return {}


NODE_ROLES: dict[str, Callable[[Node, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "recv": py_recv,
    "echo": py_echo,
    "send": py_send,
    "ping": py_ping,
    "idle": py_idle,
}


async def run_node_role(args: argparse.Namespace) -> None:
    config = NodeConfig(epmd_port=args.epmd_port, listen_address=HOST)
    async with Node(args.name, args.cookie, config=config) as node:
        result = await NODE_ROLES[args.role](node, args)
        print("result", json.dumps(result), flush=True)


# -- Redis pub/sub roles (redis-py, synchronous: its fastest client) ----------------------
def _redis(args: argparse.Namespace) -> Any:
    import redis  # the bench extra; only the Redis roles need it

    return redis.Redis(host=HOST, port=args.redis_port)


def _subscribe(client: Any, channel: str) -> Iterator[bytes]:
    """The payloads published on ``channel``, once Redis has confirmed the subscription."""
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    msg = pubsub.get_message(timeout=TIMEOUT)
    if msg is None or msg["type"] != "subscribe":
        raise RuntimeError(f"Redis did not confirm the subscription to {channel}: {msg}")
    # redis-py may confirm the same subscription twice (it resubscribes on connect).
    return (msg["data"] for msg in pubsub.listen() if msg["type"] == "message")


def redis_recv(args: argparse.Namespace) -> dict[str, Any]:
    """Decode and count published messages from the first to the stop marker."""
    messages = _subscribe(_redis(args), "bench")
    _ready()
    decode(next(messages))
    start = time.perf_counter_ns()
    count = 1
    for data in messages:
        if data == REDIS_STOP:
            break
        decode(data)
        count += 1
    return {"count": count, "elapsed_ns": time.perf_counter_ns() - start}


def redis_send(args: argparse.Namespace) -> dict[str, Any]:
    """PUBLISH each message (one request and reply each), or pipelined with ``--batch``."""
    client = _redis(args)
    _ready()
    start = time.perf_counter_ns()
    if args.batch > 1:
        pipe = client.pipeline(transaction=False)
        for i in range(1, args.count + 1):
            pipe.publish("bench", encode(CHAT))
            if i % args.batch == 0 or i == args.count:
                pipe.execute()
    else:
        publish = client.publish
        for _ in range(args.count):
            publish("bench", encode(CHAT))
    elapsed = time.perf_counter_ns() - start
    client.publish("bench", REDIS_STOP)
    return {"sent": args.count, "elapsed_ns": elapsed}


def redis_echo(args: argparse.Namespace) -> dict[str, Any]:
    """Decode each message on ``ping`` and publish it again, encoded, on ``pong``."""
    client = _redis(args)
    messages = _subscribe(client, "ping")
    _ready()
    for data in messages:
        if data == REDIS_STOP:
            break
        client.publish("pong", encode(decode(data)))
    return {}


def redis_ping(args: argparse.Namespace) -> dict[str, Any]:
    client = _redis(args)
    replies = _subscribe(client, "pong")
    _ready()
    rtts = []
    for _ in range(args.count):
        start = time.perf_counter_ns()
        client.publish("ping", encode(CHAT))
        decode(next(replies))
        rtts.append(time.perf_counter_ns() - start)
    client.publish("ping", REDIS_STOP)
    return {"rtt_ns": rtts}


REDIS_ROLES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "redis-recv": redis_recv,
    "redis-send": redis_send,
    "redis-echo": redis_echo,
    "redis-ping": redis_ping,
}


# -- the orchestrator ------------------------------------------------------------------------
class BenchError(Exception):
    """A role failed or did not answer in time."""


class Proc:
    """A role's process: waits for its ``ready`` and ``result`` lines."""

    def __init__(self, label: str, proc: asyncio.subprocess.Process) -> None:
        self.label = label
        self.proc = proc
        self._ready = asyncio.Event()
        self._result: dict[str, Any] | None = None
        self._stderr: deque[str] = deque(maxlen=20)
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line == "ready":
                self._ready.set()
            elif line.startswith("result "):
                self._result = json.loads(line[len("result ") :])

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def _failure(self, what: str) -> BenchError:
        tail = "\n  ".join(self._stderr) or "(nothing on stderr)"
        return BenchError(f"{self.label}: {what}\n  {tail}")

    async def ready(self) -> None:
        waiter = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self.proc.wait())
        await asyncio.wait({waiter, exited}, timeout=READY_TIMEOUT, return_when="FIRST_COMPLETED")
        waiter.cancel()
        exited.cancel()
        if not self._ready.is_set():
            await self.kill()
            raise self._failure("not ready")

    async def result(self) -> dict[str, Any]:
        try:
            await asyncio.wait_for(self.proc.wait(), RESULT_TIMEOUT)
            await asyncio.gather(*self._tasks)
        except TimeoutError:
            await self.kill()
            raise self._failure(f"no result within {RESULT_TIMEOUT} s") from None
        if self._result is None:
            raise self._failure(f"exited ({self.proc.returncode}) without a result")
        return self._result

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        for task in self._tasks:
            task.cancel()


@dataclass
class Bench:
    """What a run shares: the EPMD, the cookie, Erlang's compiled roles, every process."""

    epmd_port: int
    erl_dir: str | None
    redis_port: int | None = None
    cookie: str = field(default_factory=lambda: secrets.token_hex(12))
    procs: list[Proc] = field(default_factory=list)
    serial: int = 0

    def name(self, role: str) -> str:
        self.serial += 1
        return f"{role}{self.serial}@{HOST}"

    async def spawn(self, label: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
            limit=16 * 1024 * 1024,  # a pinger's result line holds every round trip
        )
        self.procs.append(Proc(label, proc))
        return self.procs[-1]

    async def node(self, kind: str, role: str, peer: str = "", count: int = 0) -> tuple[Proc, str]:
        """Start a ``py`` or ``erl`` node playing ``role``; return it and its node name."""
        name = self.name(role)
        if kind == "py":
            argv = [sys.executable, SELF, "--role", role]
            argv += ["--name", name, "--cookie", self.cookie, "--epmd-port", str(self.epmd_port)]
            argv += ["--peer", peer, "--count", str(count)]
            return await self.spawn(f"python {role}", argv), name
        assert self.erl_dir is not None
        argv = ["erl", "-noshell", "-name", name, "-setcookie", self.cookie, "-pa", self.erl_dir]
        # Loopback only, and never a daemon EPMD of its own: ours serves the run.
        argv += ["-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-start_epmd", "false"]
        argv += ["-run", "dist_bench", "main", role, *([peer, str(count)] if peer else [])]
        env = {"ERL_EPMD_PORT": str(self.epmd_port)}
        return await self.spawn(f"erlang {role}", argv, env), name

    async def redis_role(self, role: str, count: int = 0, batch: int = 1) -> Proc:
        argv = [sys.executable, SELF, "--role", role]
        argv += ["--redis-port", str(self.redis_port), "--count", str(count)]
        return await self.spawn(role, [*argv, "--batch", str(batch)])

    async def aclose(self) -> None:
        for proc in self.procs:
            await proc.kill()


@dataclass
class Row:
    label: str
    rate: float | None = None
    rtt: list[int] | None = None
    rates: list[float] = field(default_factory=list)  # every run's, once merged


async def pair(
    receiver: Proc, sender: Callable[[], Awaitable[Proc]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait for the receiver, start the sender, return both results."""
    await receiver.ready()
    other = await sender()
    return await receiver.result(), await other.result()


async def node_row(bench: Bench, src: str, dst: str, messages: int, trips: int, warm: int) -> Row:
    """One-way rate and round trips from a ``src`` node to a ``dst`` node."""
    recv, name = await bench.node(dst, "recv")
    got, _ = await pair(recv, lambda: _first(bench.node(src, "send", name, messages)))
    if got["count"] != messages:
        raise BenchError(f"{src}→{dst}: {got['count']} of {messages} messages arrived")
    echo, name = await bench.node(dst, "echo")
    _, pinged = await pair(echo, lambda: _first(bench.node(src, "ping", name, trips + warm)))
    label = f"{_KIND[src]} → {_KIND[dst]}"
    return Row(label, got["count"] / got["elapsed_ns"] * 1e9, pinged["rtt_ns"][warm:])


async def _first(started: Awaitable[tuple[Proc, str]]) -> Proc:
    return (await started)[0]


async def redis_rows(bench: Bench, messages: int, trips: int, warm: int) -> list[Row]:
    rows = []
    for batch, label in (
        (1, "redis-py pub/sub"),
        (PIPELINE, f"redis-py pub/sub, publish pipelined in {PIPELINE}s"),
    ):
        recv = await bench.redis_role("redis-recv")
        got, _ = await pair(recv, lambda b=batch: bench.redis_role("redis-send", messages, b))
        if got["count"] != messages:
            raise BenchError(f"{label}: {got['count']} of {messages} messages arrived")
        rows.append(Row(label, got["count"] / got["elapsed_ns"] * 1e9))
    echo = await bench.redis_role("redis-echo")
    _, pinged = await pair(echo, lambda: bench.redis_role("redis-ping", trips + warm))
    rows[0].rtt = pinged["rtt_ns"][warm:]
    return rows


_KIND = {"py": "python", "erl": "erlang"}


# -- memory ------------------------------------------------------------------------------------
def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


async def memory_rows(bench: Bench) -> list[tuple[str, float]]:
    """VmRSS of idle processes, each once it said ready (and a moment to settle)."""
    idle: list[tuple[str, Proc]] = []
    node, _ = await bench.node("py", "idle")
    idle.append(("nodemesh node, idle (python)", node))
    bare = [
        sys.executable,
        "-c",
        "import asyncio; print('ready', flush=True); asyncio.run(asyncio.Event().wait())",
    ]
    idle.append(("python + asyncio, no node", await bench.spawn("python", bare)))
    if bench.erl_dir is not None:
        erl, _ = await bench.node("erl", "idle")
        idle.append(("erl node, idle (beam.smp)", erl))
    rows = []
    for label, proc in idle:
        await proc.ready()
        await asyncio.sleep(0.5)  # let start-up garbage be collected and pages settle
        rows.append((label, vm_rss_kib(proc.proc.pid) / 1024))
        await proc.kill()
    return rows


# -- the run -----------------------------------------------------------------------------------
async def start_epmd() -> Any:
    """nodemesh's own EPMD on a free loopback port, for every node of the run. It must be
    up before any ``erl`` starts, or ``erl`` would spawn a daemon EPMD that outlives us."""
    from nodemesh.epmd.server import EpmdServer

    server = EpmdServer()
    await server.start(0, HOST)
    return server


def compile_erlang(source: str = "dist_bench.erl") -> str | None:
    """Compile ``source`` (in bench/) into a temporary directory; None when Erlang is
    missing."""
    if shutil.which("erl") is None or shutil.which("erlc") is None:
        print("erl/erlc not found: skipping the Erlang rows", file=sys.stderr)
        return None
    out = tempfile.mkdtemp(prefix="nodemesh_bench_")
    subprocess.run(["erlc", "-o", out, str(HERE / source)], check=True, timeout=120)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[int | None]:
    """A throwaway redis-server on a free loopback port (None if Redis is unavailable)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        print("redis-py missing (pip install '.[bench]'): skipping Redis", file=sys.stderr)
        yield None
        return
    if shutil.which("redis-server") is None:
        print("redis-server not found: skipping the Redis rows", file=sys.stderr)
        yield None
        return
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    # A subscriber may lag the publisher by all N messages: no output-buffer cut-off.
    argv += ["--client-output-buffer-limit", "pubsub 0 0 0"]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
    try:
        await _wait_redis(port)
        yield port
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _wait_redis(port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"PING\r\n")
            answer = await reader.readline()
            writer.close()
            if answer.startswith(b"+PONG"):
                return
        await asyncio.sleep(0.05)
    raise BenchError(f"redis-server did not answer on port {port}")


async def run_all(args: argparse.Namespace) -> tuple[list[Row], list[tuple[str, float]]]:
    warm = min(500, max(args.roundtrips // 10, 10))
    epmd = await start_epmd()
    erl_dir = compile_erlang()
    bench = Bench(epmd.port, erl_dir)
    kinds = ["py", "erl"] if erl_dir else ["py"]
    rows: list[Row] = []
    try:
        for src in kinds:
            for dst in kinds:
                rows.append(await node_row(bench, src, dst, args.messages, args.roundtrips, warm))
        async with redis_server() as port:
            if port is not None:
                bench.redis_port = port
                rows += await redis_rows(bench, args.messages, args.roundtrips, warm)
        memory = await memory_rows(bench)
    finally:
        await bench.aclose()
        await epmd.aclose()
        if erl_dir:
            shutil.rmtree(erl_dir, ignore_errors=True)
    return rows, memory


def merge_rows(runs: list[list[Row]]) -> list[Row]:
    """Repeats of a row: the median rate, and every round trip pooled."""
    merged = []
    for same in zip(*runs, strict=True):
        rates = [row.rate for row in same if row.rate is not None]
        rtts = [t for row in same for t in row.rtt or []]
        rate = statistics.median(rates) if rates else None
        merged.append(Row(same[0].label, rate, rtts or None, rates))
    return merged


def row_lines(rows: list[Row]) -> list[str]:
    """One table line per row: label, rate (and the runs' range), round trip median and
    p99 in µs ("n/a" where a row has none); bench/tls.py prints its rows with it too."""
    lines = []
    for row in rows:
        rate = f"{row.rate:,.0f}" if row.rate is not None else "n/a"
        if len(row.rates) > 1:
            rate += f" ({min(row.rates):,.0f} to {max(row.rates):,.0f})"
        if row.rtt:
            cuts = statistics.quantiles(row.rtt, n=100, method="inclusive")
            median, p99 = f"{statistics.median(row.rtt) / 1e3:.0f}", f"{cuts[98] / 1e3:.0f}"
        else:
            median = p99 = "n/a"
        lines.append(f"| {row.label} | {rate} | {median} | {p99} |")
    return lines


def table(rows: list[Row], memory: list[tuple[str, float]]) -> str:
    lines = [
        "| path (sender → receiver) | one-way msg/s (runs' range) "
        "| round trip median µs | round trip p99 µs |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += row_lines(rows)
    lines += ["", "| idle process | VmRSS MB |", "| --- | ---: |"]
    lines += [f"| {label} | {mb:.1f} |" for label, mb in memory]
    return "\n".join(lines)


def machine() -> str:
    otp = "none"
    if shutil.which("erl"):
        expr = 'io:format("~s", [erlang:system_info(otp_release)]), halt().'
        otp = subprocess.run(
            ["erl", "-noshell", "-eval", expr],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, OTP {otp}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="one-way messages")
    parser.add_argument("--roundtrips", type=int, default=5_000, help="timed round trips")
    parser.add_argument(
        "--repeat", type=int, default=3, help="whole runs; rates and memory: their median"
    )
    parser.add_argument("--quick", action="store_true", help="20,000 messages, 1,000 round trips")
    role = parser.add_argument_group("one side of a measurement (used by the run itself)")
    role.add_argument("--role", choices=[*NODE_ROLES, *REDIS_ROLES])
    role.add_argument("--name", default="")
    role.add_argument("--cookie", default="")
    role.add_argument("--epmd-port", type=int, default=0)
    role.add_argument("--redis-port", type=int, default=0)
    role.add_argument("--peer", default="")
    role.add_argument("--count", type=int, default=0)
    role.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.roundtrips = 20_000, 1_000
    return args


def main() -> None:
    args = parse_args()
    if args.role in REDIS_ROLES:
        print("result", json.dumps(REDIS_ROLES[args.role](args)), flush=True)
        return
    if args.role:
        run_loop(run_node_role(args))  # uvloop if installed (NODEMESH_EVENT_LOOP)
        return
    started = time.monotonic()
    load = os.getloadavg()[0]
    runs, memories = [], []
    for _ in range(args.repeat):
        try:
            rows, memory = asyncio.run(run_all(args))
        except BenchError as exc:
            sys.exit(f"benchmark failed: {exc}")
        runs.append(rows)
        memories.append(memory)
    memory = [
        (same[0][0], statistics.median(mb for _, mb in same))
        for same in zip(*memories, strict=True)
    ]
    print(f"{machine()}; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(
        f"{args.messages:,} messages one way, {args.roundtrips:,} round trips, "
        f"{args.repeat} run(s) in {time.monotonic() - started:.0f} s\n"
    )
    rows = merge_rows(runs)
    print(table(rows, memory))
    print(ratio(rows))


def ratio(rows: list[Row]) -> str:
    """python → python against erlang → erlang of this run (issue 11's goal: one way at
    least 0.5, round trip at most 3 times), with the build and event loop in use."""
    by_label = {row.label: row for row in rows}
    py, erl = by_label.get("python → python"), by_label.get("erlang → erlang")
    build = f"nodemesh {implementation()}, {event_loop_name()} event loop"
    if py is None or erl is None or not (py.rate and erl.rate and py.rtt and erl.rtt):
        return f"\n{build}: no python → python and erlang → erlang rows to compare"
    rtt = statistics.median(py.rtt) / statistics.median(erl.rtt)
    return (
        f"\n{build}: python → python / erlang → erlang one way {py.rate / erl.rate:.2f} "
        f"(goal ≥ 0.5), round trip {rtt:.1f} times Erlang's (goal ≤ 3)"
    )


if __name__ == "__main__":
    main()
