"""Seed 001 without a load balancer: node kinds "a" and "b" that call each other by role.

Every node serves one GenServer and advertises it in the role of its kind, with a little
metadata. Every ``--interval`` seconds it calls *some* member of the other kind with
``Roles.call_any``: the calls go round the live members, skip nodes that left, and are
retried once on another member when a node dies mid-call. No Service, no HTTP, no
connection-pool tricks: the cluster knows its members. Docs: docs/seed-001.md.

    python examples/seed001/app.py --kind a --name a-0@127.0.0.1 --cookie secret
    python examples/seed001/app.py --kind b --name b-0@127.0.0.1 --cookie secret

Nodes find each other with the topologies of the environment (``NODEMESH_STRATEGY=...``,
as in deploy/kubernetes/seed001/), else through this host's EPMD (``local_epmd``). In
Kubernetes the kind and name come from ``SEED001_KIND`` and ``seed001@$NODEMESH_HOST``
(the pod's stable DNS name), the distribution port from ``NODEMESH_DIST_PORT`` and the
health port (``/healthz``, ``/readyz``) from ``NODEMESH_HEALTH_PORT``, as the container
image sets them. Each answered call prints one line::

    a-0@127.0.0.1 call 3 -> b-1@127.0.0.1 (zone z1)

and a call that failed even after its retry prints ``... failed: <why>``. SIGINT or
SIGTERM stops the node (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from typing import Any

from nodemesh import Atom, Caller, GenServer, Node, NodeConfig, NodemeshError
from nodemesh.cluster import Cluster, topologies_from_env
from nodemesh.health.server import HealthConfig, HealthServer
from nodemesh.services import Roles

OTHER = {"a": "b", "b": "a"}


class Worker(GenServer):
    """The service of one node: answers ``{work, N}`` with ``{done, N, ThisNode}``. It
    is idempotent (the same request gives the same answer), as call_any's retry wants."""

    def handle_call(self, request: Any, caller: Caller) -> Any:
        assert self.node is not None
        match request:
            case (Atom("work"), int(n)):
                return (Atom("done"), n, self.node.atom)
            case _:
                return (Atom("error"), Atom("unknown_request"))


async def call_the_others(node: Node, roles: Roles, kind: str, interval: float) -> None:
    """Call a member of the other kind every ``interval`` seconds and print the answer."""
    other = OTHER[kind]
    await roles.wait_for_members(other)  # until the cluster has formed
    n = 0
    while True:
        n += 1
        try:
            reply = await roles.call_any(other, (Atom("work"), n), timeout=5.0)
        except NodemeshError as exc:
            print(f"{node.name} -> role {other} failed: {exc!r}", flush=True)
        else:
            by = reply[2]
            zone = next((m.metadata.get("zone") for m in roles.members(other) if m.node == by), "?")
            print(f"{node.name} call {n} -> {by} (zone {zone})", flush=True)
        await asyncio.sleep(interval)


async def main(args: argparse.Namespace) -> None:
    topologies = topologies_from_env() or {
        "this_host": {"strategy": "local_epmd", "config": {"polling_interval": 500}}
    }
    config = NodeConfig(port=args.port)
    async with Node(args.name, args.cookie, config=config) as node, Roles(node) as roles:
        await roles.serve(args.kind, Worker(), metadata={"kind": args.kind, "zone": args.zone})
        print(f"{node.name} serving role {args.kind!r}", flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        cluster = Cluster(node, topologies)
        async with cluster, contextlib.AsyncExitStack() as stack:
            if args.health_port is not None:  # /healthz and /readyz for Kubernetes probes
                health = HealthConfig(port=args.health_port, ready_min_peers=0)
                await stack.enter_async_context(HealthServer(node, cluster, health))
            async with asyncio.TaskGroup() as group:
                caller = group.create_task(call_the_others(node, roles, args.kind, args.interval))
                await stop.wait()
                caller.cancel()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    host = env.get("NODEMESH_HOST")
    parser = argparse.ArgumentParser(description="seed 001: a and b nodes calling each other")
    parser.add_argument("--kind", choices=sorted(OTHER), default=env.get("SEED001_KIND"))
    parser.add_argument("--name", default=env.get("NODEMESH_NAME") or (host and f"seed001@{host}"))
    parser.add_argument("--cookie", default=None, help="default: $NODEMESH_COOKIE")
    parser.add_argument("--zone", default=env.get("SEED001_ZONE", "local"))
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between calls")
    parser.add_argument("--port", type=int, default=int(env.get("NODEMESH_DIST_PORT", "0")))
    health = env.get("NODEMESH_HEALTH_PORT")
    parser.add_argument("--health-port", type=int, default=int(health) if health else None)
    args = parser.parse_args(argv)
    if args.kind is None or args.name is None:
        parser.error("give --kind and --name (or SEED001_KIND and NODEMESH_HOST)")
    return args


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parse()))
