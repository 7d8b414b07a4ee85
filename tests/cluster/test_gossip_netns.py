"""Gossip between "hosts": network namespaces on a bridge, one node process in each.

The Erlang node has no libcluster: a few lines of Erlang below send and hear heartbeats in
the documented format, as libcluster's Gossip strategy would with its default options.
Every node uses net_ticktime 2 s, so a cut link shows as nodedown within seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from conftest import COOKIE
from support.erlang import ErlPeer
from support.gossip_node import NodeProcess
from support.netns import NetnsLab, require_netns

netns = pytest.mark.netns

TICK = 2  # net_ticktime on every node, Erlang too
FAST = {"heartbeat_interval_min": 100, "heartbeat_interval_max": 1000}

# libcluster's Gossip, defaults (233.252.1.32:45892, TTL 1, no multicast_if), in Erlang.
ERL_GOSSIP = """
Gossip = fun() ->
    {ok, S} = gen_udp:open(45892, [binary, {active, true}, {ip, {0,0,0,0}}, {reuseaddr, true},
        {broadcast, true}, {multicast_loop, true}, {multicast_ttl, 1},
        {add_membership, {{233,252,1,32}, {0,0,0,0}}}]),
    Packet = <<"heartbeat::", (term_to_binary(#{node => node()}))/binary>>,
    Loop = fun L() ->
        receive
            tick ->
                gen_udp:send(S, {233,252,1,32}, 45892, Packet),
                erlang:send_after(200 + rand:uniform(300), self(), tick),
                L();
            {udp, S, _, _, <<"heartbeat::", B/binary>>} ->
                case catch binary_to_term(B) of
                    #{node := N} when is_atom(N), N =/= node() ->
                        spawn(fun() -> net_kernel:connect_node(N) end);
                    _ -> ok
                end,
                L();
            _ -> L()
        end
    end,
    self() ! tick,
    Loop()
end,
register(gossip, spawn(Gossip))
"""


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    require_netns()
    lab = NetnsLab.create(3)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
async def procs() -> AsyncIterator[list[Any]]:
    """Node processes and erl peers started by the test; all stopped after."""
    started: list[Any] = []
    yield started
    for proc in reversed(started):
        await proc.stop()


async def start_nodes(
    lab: NetnsLab, procs: list[Any], options: dict[str, Any], **kw: Any
) -> list[NodeProcess]:
    nodes = await asyncio.gather(
        *(
            NodeProcess.start(
                f"n{i}@{lab.ip4(i)}",
                COOKIE,
                options,
                prefix=lab.prefix(i),
                net_ticktime=TICK,
                **kw,
            )
            for i in (1, 2, 3)
        )
    )
    procs.extend(nodes)
    return nodes


async def erl_connected(peer: ErlPeer) -> set[str]:
    text = await peer.eval("nodes(connected)")
    return {name.strip("'") for name in text.strip("[]").split(",") if name}


async def wait_erl(peer: ErlPeer, condition: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition(await erl_connected(peer)):
        if loop.time() > deadline:
            raise AssertionError(f"erl: timed out waiting for {what}: {await erl_connected(peer)}")
        await asyncio.sleep(0.1)


@netns
@pytest.mark.interop
async def test_mesh_with_erlang_partition_and_heal(lab: NetnsLab, procs: list[Any]) -> None:
    """Three hosts, a Python node on each and an Erlang node beside the first: gossip
    forms the full mesh; cutting host 3's link gives nodedown on both sides within
    net_ticktime; restoring it heals the cluster with no action."""
    nodes = await start_nodes(lab, procs, FAST)  # through the cluster runner
    erl = await lab.erl_peer(
        1,
        f"e@{lab.ip4(1)}",
        COOKIE,
        ["-kernel", "net_ticktime", str(TICK), "-start_epmd", "false"],
    )
    procs.append(erl)
    await erl.eval(ERL_GOSSIP)
    python_names = {n.name for n in nodes}
    everyone = python_names | {erl.name}
    for node in nodes:
        await node.wait_up(everyone - {node.name}, 20)
    await wait_erl(erl, lambda c: python_names <= c, 10, "the Python nodes")

    cut = nodes[2]
    lab.link_down(3)
    await cut.wait_down(everyone - {cut.name}, 5 * TICK + 5)
    for node in nodes[:2]:
        await node.wait_down({cut.name}, 5 * TICK + 5)
    await wait_erl(erl, lambda c: cut.name not in c, 5 * TICK + 5, "nodedown of n3")
    assert nodes[0].name in await erl_connected(erl)  # the rest stays connected

    lab.link_up(3)
    for node in nodes:
        await node.wait_up(everyone - {node.name}, 20)
    await wait_erl(erl, lambda c: python_names <= c, 10, "n3 back")


@netns
async def test_ipv6_multicast_across_hosts(lab: NetnsLab, procs: list[Any]) -> None:
    """IPv6 link-scope multicast (ff12::) between hosts; the interface given by name, by
    address and by index on the three nodes."""
    index3 = int(lab.sh(3, "cat /sys/class/net/eth0/ifindex"))
    interfaces = {1: "eth0", 2: lab.ip6(2), 3: index3}
    nodes = []
    for i, interface in interfaces.items():
        options = {
            **FAST,
            "multicast_addr": "ff12::4e4d:6d65:7368",
            "if_addr": "::",
            "multicast_if": interface,
        }
        node = await NodeProcess.start(
            f"n{i}@{lab.ip4(i)}", COOKIE, options, prefix=lab.prefix(i), direct=True
        )
        procs.append(node)
        nodes.append(node)
    for node in nodes:
        await node.wait_up({n.name for n in nodes} - {node.name}, 20)


@netns
async def test_broadcast_only_across_hosts(lab: NetnsLab, procs: list[Any]) -> None:
    """broadcast_only sends to the subnet's broadcast address, no multicast at all."""
    options = {**FAST, "broadcast_only": True, "multicast_addr": lab.broadcast4}
    nodes = await start_nodes(lab, procs, options)
    for node in nodes:
        await node.wait_up({n.name for n in nodes} - {node.name}, 20)


@netns
async def test_authenticated_clusters_on_one_network_never_mix(
    lab: NetnsLab, procs: list[Any]
) -> None:
    """Two labels on one segment (same key): two clusters, no node of one in the other."""
    key = "shared-key-0123456789abcdef-0123456789"
    nodes = []
    for i, label in ((1, "blue"), (2, "blue"), (3, "red")):
        options = {**FAST, "auth_keys": [key], "cluster_label": label}
        node = await NodeProcess.start(f"n{i}@{lab.ip4(i)}", COOKIE, options, prefix=lab.prefix(i))
        procs.append(node)
        nodes.append(node)
    await nodes[0].wait_up({nodes[1].name}, 20)
    await nodes[1].wait_up({nodes[0].name}, 20)
    for node in (nodes[0], nodes[2]):  # each has heard the other cluster, and dropped it
        await node.wait(lambda n=node: heard_other_label(n), 20, "a wrong-label drop")
    assert nodes[2].up == set() and nodes[2].name not in nodes[0].up | nodes[1].up


def heard_other_label(node: NodeProcess) -> bool:
    return any("another cluster label" in line for line in node.errors)


@pytest.mark.parametrize("ci", ["", "true"])
def test_missing_privileges_skip_locally_and_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    """Without root the namespace tests skip, except under CI, where they fail."""
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected, match="root"):
        require_netns()
