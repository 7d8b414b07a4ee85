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
calls from C concurrent callers (calls/s). It prints a Markdown table that
docs/benchmarks.md records. Rows whose tools (``erl``/``erlc``, ``elixir``) are missing
are skipped. Reuses bench/dist.py's process plumbing (``Proc``, ``Bench``) and EPMD.
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
    return {"rtt_ns": rtts, "conc_calls": each * concurrency, "conc_elapsed_ns": elapsed}


def run_role(args: argparse.Namespace) -> None:
    if args.role in ("py-server", "http-server"):
        asyncio.run(py_server(args) if args.role == "py-server" else http_server(args))
        return
    client = py_client if args.role == "py-client" else http_client
    print("result", json.dumps(asyncio.run(client(args))), flush=True)


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
    for _ <- 1..WARM, do: GenServer.call(dest, req)
    rtts = for _ <- 1..n, do: timed(dest, req)
    each = div(n, c)
    t0 = System.monotonic_time(:nanosecond)
    tasks = for _ <- 1..c, do: Task.async(fn -> for _ <- 1..each, do: GenServer.call(dest, req) end)
    Enum.each(tasks, &Task.await(&1, :infinity))
    elapsed = System.monotonic_time(:nanosecond) - t0
    IO.puts("result {\\"rtt_ns\\":[#{Enum.join(rtts, ",")}],\\"conc_calls\\":#{each * c}," <>
            "\\"conc_elapsed_ns\\":#{elapsed}}")
  end
end
""".replace("WARM", str(WARM))


@dataclass
class Run(Bench):
    """bench/dist.py's :class:`Bench` (EPMD, cookie, processes) with this run's roles."""

    calls: int = 5000
    concurrency: int = 16
    servers: dict[str, str] = field(default_factory=dict)

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

    async def server(self, kind: str) -> str:
        """Start (once) a Python or Erlang gen_server; return its node name."""
        if kind not in self.servers:
            name = self.name(f"{kind}srv")
            argv = self.python("py-server", name=name) if kind == "py" else []
            argv = argv or self.erlang(name, "server")
            proc = await self.spawn(f"{kind} server", argv, self.env)
            await proc.ready()
            self.servers[kind] = name
        return self.servers[kind]

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
        result = await client.result()
        await server.kill()
        return result


@dataclass
class Row:
    label: str
    rtt: list[int]
    conc: list[float]  # calls/s with C callers, one per run

    @classmethod
    def of(cls, label: str, result: dict[str, Any]) -> Row:
        conc = result["conc_calls"] / result["conc_elapsed_ns"] * 1e9
        return cls(label, result["rtt_ns"], [conc])


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
            result = await run.client(src, await run.server(dst))
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
        f"| calls/s, {concurrency} callers (runs' range) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for same in zip(*runs, strict=True):
        rtts = [t for row in same for t in row.rtt]
        conc = [c for row in same for c in row.conc]
        median = statistics.median(rtts)
        p99 = statistics.quantiles(rtts, n=100, method="inclusive")[98]
        rate = 1e9 / statistics.mean(rtts)
        spread = f" ({min(conc):,.0f} to {max(conc):,.0f})" if len(conc) > 1 else ""
        lines.append(
            f"| {same[0].label} | {rate:,.0f} | {median / 1e3:.0f} | {p99 / 1e3:.0f} "
            f"| {statistics.median(conc):,.0f}{spread} |"
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


if __name__ == "__main__":
    main()
