"""GenServer call benchmark: calls between Python, Erlang and Elixir beside HTTP JSON.

    python bench/gen_server.py [--calls N] [--concurrency C] [--repeat R] [--quick]

One run measures, client and server each in its own OS process on 127.0.0.1, the same
call: request ``{get, <<"user:42">>}``, which the server returns as its reply:

* Elixir → Python (``GenServer.call`` in a module compiled by ``elixir -e``), Erlang →
  Python (``gen_server:call``), Python → Erlang, Python → Python (``await node.call``),
  Erlang → Erlang, against a Python :class:`nodemesh.GenServer` or a compiled Erlang
  gen_server (``gen_bench.erl`` beside this file);
* an HTTP JSON call between two local aiohttp services (what seed 001 did): POST
  ``{"request": ["get", "user:42"]}``, answered with ``{"reply": [...]}``, with
  keep-alive (one pooled connection reused), and with a new connection per call (seed
  001 turned connection reuse off so its load balancer would spread calls).

For each: N sequential calls after a warm-up (calls/s, median and p99 latency), then N
calls from C concurrent callers (calls/s), and the CPU time each side spent per call over
the whole client run (the client's own count; the server's from ``/proc``, 10 ms ticks),
which a loaded machine disturbs far less than wall-clock figures. It prints a Markdown table that
docs/benchmarks.md records, and the Python → Python ratios issue 9 sets goals for. The
Python processes (nodemesh's and aiohttp's alike) run on the event loop nodemesh's
command line uses: uvloop where it is installed (``nodemesh[speed]``), else asyncio's
(``NODEMESH_EVENT_LOOP=asyncio`` picks asyncio's). Rows whose tools (``erl``/``erlc``,
``elixir``) are missing are skipped. Reuses bench/dist.py's process plumbing (``Proc``,
``Bench``) and EPMD.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from dist import HERE, HOST, Bench, BenchError, compile_erlang, free_port, machine, start_epmd
from nodemesh import Atom, Caller, GenServer, Node, NodeConfig
from nodemesh._build import implementation
from nodemesh._loop import event_loop_name
from nodemesh._loop import run as run_loop

SELF_GEN = str(HERE / "gen_server.py")
REQUEST = (Atom("get"), b"user:42")
WARM = 500
TIMEOUT = 60.0


# -- Python roles (each runs in its own process) --------------------------------------------
class Echo(GenServer):
    """Replies with the request, as gen_bench.erl's server does."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def py_server(args: argparse.Namespace) -> None:
    config = NodeConfig(epmd_port=args.epmd_port, listen_address=HOST)
    async with Node(args.name, args.cookie, config=config) as node:
        await node.start_server(Echo(), name="kv")
        print("ready", flush=True)
        await asyncio.Event().wait()  # until the orchestrator kills us


async def py_client(args: argparse.Namespace) -> dict[str, Any]:
    config = NodeConfig(epmd_port=args.epmd_port, listen_address=HOST)
    async with Node(args.name, args.cookie, config=config) as node:
        dest = ("kv", args.peer)

        async def one() -> None:
            await node.call(dest, REQUEST, timeout=TIMEOUT)

        return await measure(one, args.count, args.concurrency)


async def http_server(args: argparse.Namespace) -> None:
    from aiohttp import web

    async def call(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"reply": body["request"]})

    app = web.Application()
    app.router.add_post("/call", call)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, args.port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def http_client(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    url = f"http://{HOST}:{args.port}/call"
    payload = {"request": ["get", "user:42"]}
    connector = aiohttp.TCPConnector(force_close=args.no_reuse, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.post(url, json=payload) as response:
                await response.json()

        return await measure(one, args.count, args.concurrency)


async def measure(one: Any, count: int, concurrency: int) -> dict[str, Any]:
    """Warm up, time ``count`` sequential calls, then ``count`` from ``concurrency``
    callers at once."""
    print("ready", flush=True)
    cpu = time.process_time_ns()
    for _ in range(WARM):
        await one()
    rtts = []
    for _ in range(count):
        start = time.perf_counter_ns()
        await one()
        rtts.append(time.perf_counter_ns() - start)
    each = count // concurrency

    async def caller() -> None:
        for _ in range(each):
            await one()

    start = time.perf_counter_ns()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(caller())
    elapsed = time.perf_counter_ns() - start
    return {
        "rtt_ns": rtts,
        "conc_calls": each * concurrency,
        "conc_elapsed_ns": elapsed,
        "calls": WARM + count + each * concurrency,
        "cpu_ns": time.process_time_ns() - cpu,
    }


def run_role(args: argparse.Namespace) -> None:
    if args.role in ("py-server", "http-server"):
        run_loop(py_server(args) if args.role == "py-server" else http_server(args))
        return
    client = py_client if args.role == "py-client" else http_client
    print("result", json.dumps(run_loop(client(args))), flush=True)


# -- the orchestrator -------------------------------------------------------------------------
ELIXIR_CLIENT = """
defmodule GenBench do
  def timed(dest, req) do
    t0 = System.monotonic_time(:nanosecond)
    ^req = GenServer.call(dest, req)
    System.monotonic_time(:nanosecond) - t0
  end

  def run(peer, n, c) do
    dest = {:kv, peer}
    req = {:get, "user:42"}
    IO.puts("ready")
    {cpu0, _} = :erlang.statistics(:runtime)
    for _ <- 1..WARM, do: GenServer.call(dest, req)
    rtts = for _ <- 1..n, do: timed(dest, req)
    each = div(n, c)
    t0 = System.monotonic_time(:nanosecond)
    tasks = for _ <- 1..c, do: Task.async(fn -> for _ <- 1..each, do: GenServer.call(dest, req) end)
    Enum.each(tasks, &Task.await(&1, :infinity))
    elapsed = System.monotonic_time(:nanosecond) - t0
    {cpu1, _} = :erlang.statistics(:runtime)
    IO.puts("result {\\"rtt_ns\\":[#{Enum.join(rtts, ",")}],\\"conc_calls\\":#{each * c}," <>
            "\\"conc_elapsed_ns\\":#{elapsed},\\"calls\\":#{WARM + n + each * c}," <>
            "\\"cpu_ns\\":#{(cpu1 - cpu0) * 1_000_000}}")
  end
end
""".replace("WARM", str(WARM))


@dataclass
class Run(Bench):
    """bench/dist.py's :class:`Bench` (EPMD, cookie, processes) with this run's roles."""

    calls: int = 5000
    concurrency: int = 16
    servers: dict[str, tuple[str, int]] = field(default_factory=dict)  # kind: name, OS pid

    def python(self, role: str, **extra: Any) -> list[str]:
        argv = [sys.executable, SELF_GEN, "--role", role]
        argv += ["--cookie", self.cookie, "--epmd-port", str(self.epmd_port)]
        argv += ["--count", str(self.calls), "--concurrency", str(self.concurrency)]
        for key, value in extra.items():
            if value is True:
                argv.append(f"--{key}")
            elif value is not False:
                argv += [f"--{key}", str(value)]
        return argv

    def erlang(self, name: str, *role: str) -> list[str]:
        assert self.erl_dir is not None
        argv = ["erl", "-noshell", "-name", name, "-setcookie", self.cookie, "-pa", self.erl_dir]
        argv += ["-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-start_epmd", "false"]
        return [*argv, "-run", "gen_bench", "main", *role]

    async def server(self, kind: str) -> tuple[str, int]:
        """Start (once) a Python or Erlang gen_server; return its node name and OS pid."""
        if kind not in self.servers:
            name = self.name(f"{kind}srv")
            argv = self.python("py-server", name=name) if kind == "py" else []
            argv = argv or self.erlang(name, "server")
            proc = await self.spawn(f"{kind} server", argv, self.env)
            await proc.ready()
            self.servers[kind] = name, proc.proc.pid
        return self.servers[kind]

    async def call_row(self, src: str, dst: str) -> dict[str, Any]:
        """One client's result, with the CPU its server spent meanwhile."""
        name, pid = await self.server(dst)
        before = cpu_ns(pid)
        result = await self.client(src, name)
        result["server_cpu_ns"] = cpu_ns(pid) - before
        return result

    @property
    def env(self) -> dict[str, str]:
        return {"ERL_EPMD_PORT": str(self.epmd_port)}

    async def client(self, kind: str, peer: str) -> dict[str, Any]:
        name = self.name(f"{kind}cli")
        if kind == "py":
            argv = self.python("py-client", name=name, peer=peer)
        elif kind == "erl":
            argv = self.erlang(name, "client", peer, str(self.calls), str(self.concurrency))
        else:
            script = f'{ELIXIR_CLIENT}\nGenBench.run(:"{peer}", {self.calls}, {self.concurrency})'
            argv = ["elixir", "--name", name, "--cookie", self.cookie, "-e", script]
            argv += ["--erl", "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"]
        proc = await self.spawn(f"{kind} client", argv, self.env)
        return await proc.result()

    async def http(self, *, reuse: bool) -> dict[str, Any]:
        port = free_port()
        server = await self.spawn("http server", self.python("http-server", port=port))
        await server.ready()
        client = await self.spawn(
            "http client", self.python("http-client", port=port, **{"no-reuse": not reuse})
        )
        before = cpu_ns(server.proc.pid)
        result = await client.result()
        result["server_cpu_ns"] = cpu_ns(server.proc.pid) - before
        await server.kill()
        return result


def cpu_ns(pid: int) -> int:
    """CPU time (user + system, every thread) of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    label: str
    rtt: list[int]
    conc: list[float]  # calls/s with C callers, one per run
    client_cpu: list[float]  # µs of CPU per call, one per run
    server_cpu: list[float]

    @classmethod
    def of(cls, label: str, result: dict[str, Any]) -> Row:
        conc = result["conc_calls"] / result["conc_elapsed_ns"] * 1e9
        calls = result["calls"]
        client, server = result["cpu_ns"] / calls / 1e3, result["server_cpu_ns"] / calls / 1e3
        return cls(label, result["rtt_ns"], [conc], [client], [server])


KIND = {"py": "Python", "erl": "Erlang", "ex": "Elixir"}
PAIRS = [("ex", "py"), ("erl", "py"), ("py", "erl"), ("py", "py"), ("erl", "erl")]


async def run_once(args: argparse.Namespace) -> list[Row]:
    epmd = await start_epmd()
    erl_dir = compile_erlang("gen_bench.erl")
    run = Run(epmd.port, erl_dir, calls=args.calls, concurrency=args.concurrency)
    rows = []
    try:
        for src, dst in PAIRS:
            if "erl" in (src, dst) and erl_dir is None:
                continue
            if src == "ex" and shutil.which("elixir") is None:
                print("elixir not found: skipping the Elixir row", file=sys.stderr)
                continue
            result = await run.call_row(src, dst)
            rows.append(Row.of(f"{KIND[src]} → {KIND[dst]} (gen_server call)", result))
        rows.append(Row.of("HTTP JSON, aiohttp → aiohttp, keep-alive", await run.http(reuse=True)))
        rows.append(
            Row.of(
                "HTTP JSON, aiohttp → aiohttp, new connection per call (seed 001)",
                await run.http(reuse=False),
            )
        )
    finally:
        await run.aclose()
        await epmd.aclose()
        if erl_dir:
            shutil.rmtree(erl_dir, ignore_errors=True)
    return rows


def table(runs: list[list[Row]], concurrency: int) -> str:
    lines = [
        "| call (client → server) | sequential calls/s | median µs | p99 µs "
        f"| calls/s, {concurrency} callers (runs' range) | CPU µs/call: client | server |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for same in zip(*runs, strict=True):
        rtts = [t for row in same for t in row.rtt]
        conc = [c for row in same for c in row.conc]
        median = statistics.median(rtts)
        p99 = statistics.quantiles(rtts, n=100, method="inclusive")[98]
        rate = 1e9 / statistics.mean(rtts)
        spread = f" ({min(conc):,.0f} to {max(conc):,.0f})" if len(conc) > 1 else ""
        client = statistics.median(c for row in same for c in row.client_cpu)
        server = statistics.median(c for row in same for c in row.server_cpu)
        lines.append(
            f"| {same[0].label} | {rate:,.0f} | {median / 1e3:.0f} | {p99 / 1e3:.0f} "
            f"| {statistics.median(conc):,.0f}{spread} | {client:.0f} | {server:.0f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="timed calls per row")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent callers")
    parser.add_argument("--repeat", type=int, default=3, help="whole runs, pooled")
    parser.add_argument("--quick", action="store_true", help="1,000 calls, one run")
    role = parser.add_argument_group("one side of a measurement (used by the run itself)")
    role.add_argument("--role", choices=["py-server", "py-client", "http-server", "http-client"])
    role.add_argument("--name", default="")
    role.add_argument("--cookie", default="")
    role.add_argument("--epmd-port", type=int, default=0)
    role.add_argument("--peer", default="")
    role.add_argument("--port", type=int, default=0)
    role.add_argument("--count", type=int, default=0)
    role.add_argument("--no-reuse", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.repeat = 1000, 1
    return args


def main() -> None:
    args = parse_args()
    if args.role:
        run_role(args)
        return
    started, load = time.monotonic(), os.getloadavg()[0]
    runs = []
    for _ in range(args.repeat):
        try:
            runs.append(asyncio.run(run_once(args)))
        except BenchError as exc:
            sys.exit(f"benchmark failed: {exc}")
    print(f"{machine()}; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(
        f"{args.calls:,} sequential calls and {args.calls:,} from {args.concurrency} callers "
        f"per row, {args.repeat} run(s) in {time.monotonic() - started:.0f} s\n"
    )
    print(table(runs, args.concurrency))
    print(goals(runs))


def goals(runs: list[list[Row]]) -> str:
    """Python → Python against HTTP and Erlang → Erlang in this run (issue 9's goals:
    at least 10 times the HTTP call rate, latency at most 3 times Erlang's), with the build and
    event loop the Python processes ran."""
    build = f"nodemesh {implementation()}, {event_loop_name()} event loop"
    pooled: dict[str, tuple[float, float, float]] = {}  # label: mean, median, 16-caller rate
    for same in zip(*runs, strict=True):
        rtts = [t for row in same for t in row.rtt]
        conc = statistics.median(c for row in same for c in row.conc)
        pooled[same[0].label] = statistics.mean(rtts), statistics.median(rtts), conc
    py = pooled.get("Python → Python (gen_server call)")
    erl = pooled.get("Erlang → Erlang (gen_server call)")
    if py is None:
        return f"\n{build}: no Python → Python row"
    lines = [f"\n{build}; Python → Python:"]
    for label, name in (("keep-alive", "HTTP keep-alive"), ("seed 001", "seed 001's HTTP")):
        http = next((v for k, v in pooled.items() if k.startswith("HTTP") and label in k), None)
        if http is not None:
            lines.append(
                f"- {http[0] / py[0]:.1f} times {name} sequential call rate, "
                f"{py[2] / http[2]:.1f} times with the concurrent callers (goal ≥ 10)"
            )
    if erl is not None:
        lines.append(f"- median latency {py[1] / erl[1]:.1f} times Erlang → Erlang's (goal ≤ 3)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
