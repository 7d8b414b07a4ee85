"""CPU time and memory of one DNS discovery round with 1,000 records (not a test).

A real dnsmasq on 127.0.0.1 serves 1,000 A records for one name (and 1,000 SRV records
for another); each strategy's ``discover()`` is timed over many rounds. 1,000 A records
do not fit in a UDP answer (dnsmasq sends about 75 of them with TC set at our 1232-byte
EDNS size), so every round is a UDP query, a truncated answer, and the same query over
TCP (about 16 KB); dnspython parses both. The "UDP only" row puts a forwarder that
refuses TCP in front: the round fails with a DiscoveryError (the runner keeps its last
list), and what is timed is the failing round.

Per row: wall time per round (median and 95th percentile), CPU time of this process per
round (dnsmasq's own CPU is not counted), and the peak of Python allocations during one
round (tracemalloc), plus the process's RSS at the end. Goal: under 50 ms per round.

    python bench/discovery_dns.py [--records 1000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from nodemesh.cluster import Topology
from nodemesh.cluster.strategy import PollingStrategy
from nodemesh.errors import DiscoveryError
from support.dns import Dnsmasq, DnsProxy, StubContext, require_dnsmasq

NAME = "myapp-headless.default.svc.cluster.local"
SRV = "myapp.default.svc.cluster.local"


def make(strategy: str, nameserver: str, resolv_conf: str, **options: Any) -> PollingStrategy:
    topology = Topology.create(
        "bench", strategy, {"nameservers": [nameserver], "resolv_conf": resolv_conf, **options}
    )
    instance = topology.strategy_class(topology.options)
    assert isinstance(instance, PollingStrategy)
    instance.bind(StubContext())
    return instance


async def discover(strategy: PollingStrategy) -> frozenset[str]:
    """One round; a failed lookup (the UDP-only row) counts as a round that found nothing."""
    try:
        return frozenset(await strategy.discover())
    except DiscoveryError:
        return frozenset()


async def measure(strategy: PollingStrategy, rounds: int, expect: int) -> dict[str, float]:
    for _ in range(5):  # warm up: imports, first resolv.conf read, caches
        found = await discover(strategy)
    assert len(found) >= expect, f"expected {expect} names, got {len(found)}"
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        await discover(strategy)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    tracemalloc.start()
    await discover(strategy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    walls.sort()
    return {
        "median": statistics.median(walls) * 1000,
        "p95": walls[int(len(walls) * 0.95) - 1] * 1000,
        "cpu": statistics.fmean(cpus) * 1000,
        "peak": peak / 1024,
        "found": float(len(found)),
    }


async def main(records: int, rounds: int) -> None:
    require_dnsmasq()
    with tempfile.TemporaryDirectory(prefix="nm-bench-dns-") as tmp:
        directory = Path(tmp)
        resolv_conf = directory / "resolv.conf"
        resolv_conf.write_text("search default.svc.cluster.local svc.cluster.local\n")
        ips = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(1, records + 1)]
        targets = [f"myapp-{i}.myapp.default.svc.cluster.local" for i in range(records)]
        async with Dnsmasq(directory) as server:
            await server.set_hosts({NAME: ips})
            await server.set_srv({SRV: targets})
            proxy = DnsProxy(("127.0.0.1", server.port))
            await proxy.start(tcp=False)
            ns, rc = server.nameserver, str(resolv_conf)
            basics = {"application_name": "app"}
            rows = {
                "kubernetes_dns (A, UDP+TCP)": make(
                    "kubernetes_dns", ns, rc, service="myapp-headless", **basics
                ),
                "dns_poll (A+AAAA, UDP+TCP)": make(
                    "dns_poll", ns, rc, query=NAME, node_basename="app"
                ),
                "kubernetes_dnssrv (SRV, UDP+TCP)": make(
                    "kubernetes_dnssrv", ns, rc, service="myapp", namespace="default", **basics
                ),
                "kubernetes_dns (A, UDP only: fails)": make(
                    "kubernetes_dns", proxy.nameserver, rc, service="myapp-headless", **basics
                ),
            }
            print(f"{records} records, {rounds} rounds each; load average {os.getloadavg()}")
            header = (
                f"{'round':42} {'median ms':>10} {'p95 ms':>8} {'CPU ms':>8} "
                f"{'peak KiB':>9} {'names':>6}"
            )
            print(header)
            print("-" * len(header))
            for label, strategy in rows.items():
                expect = 0 if "fails" in label else records
                r = await measure(strategy, rounds, expect)
                print(
                    f"{label:42} {r['median']:10.2f} {r['p95']:8.2f} {r['cpu']:8.2f} "
                    f"{r['peak']:9.0f} {int(r['found']):6}"
                )
            await proxy.aclose()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"max RSS of this process: {rss:.1f} MiB; load average {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.rounds))
