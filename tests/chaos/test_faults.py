"""The chaos schedule (pure) and the nftables fault helpers (in namespaces)."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Iterator

import pytest

from chaos.faults import KINDS, plan
from support.netns import (
    NetnsLab,
    clear_filters,
    drop_all,
    drop_random,
    require_netns,
    require_nft,
)

pytestmark = pytest.mark.chaos

TARGETS = ["p2", "p3", "e5"]


def test_one_seed_gives_one_schedule() -> None:
    """A seed replays exactly: same kinds, targets, durations and loss rates."""
    assert plan(random.Random(7), 12, TARGETS) == plan(random.Random(7), 12, TARGETS)
    assert plan(random.Random(7), 12, TARGETS) != plan(random.Random(8), 12, TARGETS)


@pytest.mark.parametrize("seed", range(20))
def test_every_kind_comes_in_the_first_rounds(seed: int) -> None:
    """Five rounds hold every kind of fault; a round never hits one node twice."""
    schedule = plan(random.Random(seed), 5, TARGETS)
    assert {faults[0].kind for faults in schedule} == set(KINDS)
    for faults in schedule:
        assert len({f.target for f in faults}) == len(faults) <= 2
        assert all(f.target in TARGETS and 0 < f.hold <= 5 for f in faults)


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    require_netns()
    require_nft()
    lab = NetnsLab.create(2)
    try:
        yield lab
    finally:
        lab.close()


# Sends COUNT datagrams from host 1 to host 2; host 2 prints how many arrived.
COUNT = 400
RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999)); s.settimeout(1.0); print("ready", flush=True); n = 0
try:
    while True: s.recv(64); n += 1
except TimeoutError: print(n, flush=True)
"""
SENDER = f"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range({COUNT}):
    try: s.sendto(b"x", ("10.77.0.2", 9999))
    except PermissionError: pass  # dropped on the way out: nftables answers EPERM
    time.sleep(0.0005)
"""


async def datagrams_through(lab: NetnsLab) -> int:
    """How many of COUNT datagrams from host 1 reach host 2."""
    receiver = await asyncio.create_subprocess_exec(
        *lab.prefix(2), sys.executable, "-c", RECEIVER, stdout=asyncio.subprocess.PIPE
    )
    assert receiver.stdout is not None
    try:
        assert (await asyncio.wait_for(receiver.stdout.readline(), 10)).strip() == b"ready"
        sender = await asyncio.create_subprocess_exec(*lab.prefix(1), sys.executable, "-c", SENDER)
        assert await asyncio.wait_for(sender.wait(), 20) == 0
        return int(await asyncio.wait_for(receiver.stdout.readline(), 10))
    finally:
        if receiver.returncode is None:
            receiver.kill()
        await receiver.wait()


@pytest.mark.netns
async def test_nftables_loss_and_stall_apply_and_clear(lab: NetnsLab) -> None:
    """drop_random(30) loses about 30 % of host 1's packets, drop_all every one, and
    clear_filters restores the link (datagrams counted across the bridge)."""
    assert await datagrams_through(lab) == COUNT
    drop_random(lab, 1, 30)
    assert 200 <= await datagrams_through(lab) <= 360  # 280 expected; sd ~9
    clear_filters(lab, 1)
    drop_all(lab, 1)
    assert await datagrams_through(lab) == 0
    clear_filters(lab, 1)
    clear_filters(lab, 1)  # nothing installed: a no-op
    assert await datagrams_through(lab) == COUNT
