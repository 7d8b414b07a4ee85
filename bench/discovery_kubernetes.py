"""CPU time and memory of one Kubernetes discovery round with 1,000 endpoints (not a test).

The API is the suite's fake kube-apiserver (tests/support/kube_api.py: real JSON shapes,
HTTPS with a CA the strategy verifies, bearer token checked), run in a child process so
that its CPU time is not counted. It holds 1,000 ready pods behind one Service, as v1
Endpoints (one object, 1,000 addresses), as discovery.k8s.io/v1 EndpointSlices (ten of
100, the controller's default size) and as Pods. For each lookup the bench runs rounds of
``KubernetesStrategy.discover()`` with the watch off, so that each round is what
libcluster does every 5 s: read the token, one HTTPS list request, parse, name 1,000
nodes. It reports per round: wall and CPU time (this process only; first round apart,
as it opens the TLS connection), and the peak Python memory allocated (tracemalloc, in
a separate round since tracing slows everything). Then, with the watch on, the cost of a
round answered from the watched view and of applying one watch event (a slice of 100).

    python bench/discovery_kubernetes.py [--endpoints 1000] [--rounds 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nodemesh.cluster.kubernetes.api import WatchEvent
from nodemesh.cluster.strategies.kubernetes import (
    KubernetesOptions,
    KubernetesStrategy,
)
from support.kube_api import (
    Address,
    FakeKubeApi,
    endpoint_slice,
    endpoints,
    pod,
    slice_endpoint,
)

NS = "prod"
GOAL_MS = 50.0

# -- the server (child process) --------------------------------------------------------------


def objects(count: int) -> dict[str, list[dict[str, Any]]]:
    ips = [f"10.{48 + i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(count)]
    names = [f"app-{i}" for i in range(count)]
    slices = [
        endpoint_slice(
            f"app-{n:05d}",
            NS,
            "app",
            [
                slice_endpoint(ip, name, NS)
                for ip, name in zip(ips[n : n + 100], names[n : n + 100], strict=True)
            ],
        )
        for n in range(0, count, 100)
    ]
    return {
        "endpoints": [
            endpoints("app", NS, [Address(ip, n) for ip, n in zip(ips, names, strict=True)])
        ],
        "endpointslices": slices,
        "pods": [pod(n, NS, ip) for ip, n in zip(ips, names, strict=True)],
    }


async def serve(directory: Path, count: int) -> None:
    api = FakeKubeApi(directory, namespace=NS)
    for resource, items in objects(count).items():
        api.put(resource, *items)
    await api.start()
    api.service_account()
    print(json.dumps({"url": api.url}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await api.aclose()


# -- the client (this process) ---------------------------------------------------------------


def strategy(url: str, directory: Path, lookup: str, watch: bool = False) -> KubernetesStrategy:
    return KubernetesStrategy(
        KubernetesOptions(
            kubernetes_node_basename="app",
            kubernetes_selector="app=app",
            kubernetes_ip_lookup_mode=lookup,  # type: ignore[arg-type]
            kubernetes_master=url,
            kubernetes_service_account_path=str(directory / "serviceaccount"),
            kubernetes_watch=watch,
        )
    )


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


async def measure(
    url: str, directory: Path, lookup: str, rounds: int, count: int
) -> dict[str, Any]:
    s = strategy(url, directory, lookup)
    try:
        first_wall, first_cpu = await timed(s.discover)
        assert len(await s.discover()) == count, "every endpoint is a node"
        walls, cpus = [], []
        for _ in range(rounds):
            wall, cpu = await timed(s.discover)
            walls.append(wall)
            cpus.append(cpu)
        tracemalloc.start()
        await s.discover()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await s.aclose()
    walls.sort()
    return {
        "lookup": lookup,
        "first_wall": first_wall,
        "first_cpu": first_cpu,
        "wall": statistics.median(walls),
        "wall_p95": walls[int(len(walls) * 0.95) - 1],
        "cpu": statistics.median(cpus),
        "peak_kib": peak / 1024,
    }


async def watched(url: str, directory: Path, count: int) -> tuple[float, float]:
    """µs per round answered from the view; ms to apply one 100-endpoint slice event."""
    s = strategy(url, directory, "endpointslices", watch=True)
    try:
        await s.discover()
        async with asyncio.TaskGroup() as tg:  # the watch beside the rounds, as the runner
            watch = tg.create_task(s.watch())
            try:
                return await _watched_costs(s)
            finally:
                watch.cancel()
    finally:
        await s.aclose()


async def _watched_costs(s: KubernetesStrategy) -> tuple[float, float]:
    async with asyncio.timeout(10):
        while not s.watching:  # noqa: ASYNC110 (a property; it opens within milliseconds)
            await asyncio.sleep(0.01)
    n = 20_000
    cpu = time.process_time()
    for _ in range(n):
        await s.discover()
    per_round = (time.process_time() - cpu) / n * 1e6
    entries = [slice_endpoint(f"10.99.0.{i}", f"new-{i}", NS) for i in range(100)]
    event = WatchEvent("MODIFIED", endpoint_slice("app-00000", NS, "app", entries))
    cpu = time.process_time()
    for _ in range(50):
        s._apply(event, NS)
        s._update_names()
    per_event = (time.process_time() - cpu) / 50 * 1000
    return per_round, per_event


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(Path(args.serve), args.endpoints)
        return
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            tmp,
            "--endpoints",
            str(args.endpoints),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            url = json.loads(await child.stdout.readline())["url"]
            rows = [
                await measure(url, Path(tmp), lookup, args.rounds, args.endpoints)
                for lookup in ("endpoints", "endpointslices", "pods")
            ]
            per_round, per_event = await watched(url, Path(tmp), args.endpoints)
        finally:
            child.stdin.close()
            async with asyncio.timeout(10):
                await child.wait()
    print(f"\none discovery round, {args.endpoints} ready endpoints, {args.rounds} rounds each")
    print(
        f"{'lookup':<16}{'wall ms':>9}{'p95':>8}{'CPU ms':>9}{'peak KiB':>10}"
        f"{'1st wall':>10}{'1st CPU':>9}  goal < {GOAL_MS:g} ms"
    )
    for r in rows:
        ok = "ok" if r["wall"] < GOAL_MS else "OVER"
        print(
            f"{r['lookup']:<16}{r['wall']:>9.1f}{r['wall_p95']:>8.1f}{r['cpu']:>9.1f}"
            f"{r['peak_kib']:>10.0f}{r['first_wall']:>10.1f}{r['first_cpu']:>9.1f}  {ok}"
        )
    print(
        f"\nwatching: a round from the view {per_round:.1f} µs CPU; "
        f"one MODIFIED slice of 100 endpoints applied and renamed {per_event:.2f} ms CPU"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
