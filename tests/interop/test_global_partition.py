"""A partition made with nftables, then healed: global's name tables agree again.

Two `erl` nodes run in network namespaces (hosts 1 and 2 of a :class:`NetnsLab`); two
visible Python nodes run in this process, on the bridge's address. Host 2 is cut off
with nftables; each side registers names (one of them on both sides); the partition
heals and one Python node reconnects to e2: connect_all merges the cluster and the clash
is resolved as Erlang resolves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from conftest import COOKIE
from nodemesh import Node
from nodemesh.runtime.config import NodeConfig
from support.erlang import ErlPeer
from support.net import free_port
from support.netns import NetnsLab, clear_filters, drop_all, require_netns, require_nft
from support.netns_partition import join_bridge

pytestmark = [pytest.mark.interop, pytest.mark.netns]

TICK = 2  # net_ticktime everywhere: the cut shows as nodedown within a few seconds
BOUND = 20.0  # seconds for the cluster to notice the cut, and to merge after the heal


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    require_netns()
    require_nft()
    lab = NetnsLab.create(2)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
async def cluster(lab: NetnsLab) -> AsyncIterator[tuple[list[ErlPeer], list[Node]]]:
    """e1, e2 in hosts 1 and 2; py1, py2 here; all four meshed and synced."""
    address = join_bridge(lab)
    port = free_port()
    ticks = ["-kernel", "net_ticktime", str(TICK)]
    erls: list[ErlPeer] = []
    pys: list[Node] = []
    try:
        for i in (1, 2):
            erl = await lab.erl_peer(i, f"e{i}@{lab.ip4(i)}", COOKIE, ticks, epmd_port=port)
            erls.append(erl)
        config = NodeConfig(hidden=False, net_ticktime=TICK, epmd_port=port)
        for alive in ("py1", "py2"):
            node = Node(f"{alive}@{address}", COOKIE, config=config)
            await node.start()
            pys.append(node)
        e1, e2 = erls
        assert await e1.eval(f"net_kernel:connect_node('{e2.name}')") == "true"
        for py in pys:
            assert await py.connect(e1.name)
        await _until_meshed(erls, pys)
        yield erls, pys
    finally:
        for py in pys:
            await py.aclose()
        for erl in erls:
            await erl.stop()


async def _until(check: Any) -> None:
    """Re-check a condition on the peers (each check awaits them) until it holds."""
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.1)


async def _erl_sees(erl: ErlPeer, names: set[str]) -> bool:
    return set(map(str, await erl.eval_term("nodes()"))) == names


async def _until_meshed(erls: list[ErlPeer], pys: list[Node]) -> None:
    """Every node sees the three others and global:sync() returns everywhere."""
    names = {e.name for e in erls} | {p.name for p in pys}
    async with asyncio.timeout(BOUND):
        for erl in erls:
            await _until(lambda erl=erl: _erl_sees(erl, names - {erl.name}))
            assert await erl.eval("global:sync()", timeout=BOUND) == "ok"
        for py in pys:
            await _until(lambda py=py: set(py.nodes()) == names - {py.name})
            await py.global_sync()


async def _table(erl: ErlPeer) -> list[tuple[str, str]]:
    rows = await erl.eval_term(
        "[{N, node(global:whereis_name(N))} || N <- lists:sort(global:registered_names())]"
    )
    return [(str(name), str(node)) for name, node in rows]


def _py_table(py: Node) -> list[tuple[str, str]]:
    rows = []
    for name in sorted(py.global_names()):
        pid = py.global_whereis(name)
        assert pid is not None
        rows.append((str(name), str(pid.node)))
    return rows


async def test_partition_and_heal_leave_names_consistent(
    lab: NetnsLab, cluster: tuple[list[ErlPeer], list[Node]]
) -> None:
    """Names registered on each side of a partition are everywhere after the heal, the
    name registered on both sides is resolved once (the smaller node's pid wins, the
    other is killed), and all four name tables are equal."""
    (e1, e2), (py1, py2) = cluster
    drop_all(lab, 2)
    async with asyncio.timeout(BOUND):
        await _until(lambda: e2.name not in py1.nodes() + py2.nodes())
        await _until(lambda: _erl_sees(e2, set()))  # its shell is a pipe: still ours
    a_box, contested_box = py1.mailbox(), py2.mailbox()
    assert await py1.global_register("side_a", a_box.pid)
    assert await py2.global_register("contested", contested_box.pid)
    spawn = "spawn(fun() -> receive _ -> ok end end)"
    assert await e2.eval(f"global:register_name(side_b, {spawn})") == "yes"
    assert await e2.eval(f"global:register_name(contested, {spawn})") == "yes"
    clear_filters(lab, 2)

    assert await py1.connect(e2.name)  # the heal: what libcluster or an operator does
    await _until_meshed([e1, e2], [py1, py2])
    signal: Any = await contested_box.receive(BOUND)
    assert signal[0] == "EXIT" and signal[2] == "kill"  # 'e2@…' < 'py2@…': e2's pid won
    expected = [("contested", e2.name), ("side_a", py1.name), ("side_b", e2.name)]
    for erl in (e1, e2):
        assert await _table(erl) == expected
    for py in (py1, py2):
        assert _py_table(py) == expected
