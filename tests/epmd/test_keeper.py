"""EpmdKeeper: registering for a node's lifetime, across the death of the host's EPMD."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from epmd.helpers import free_port, start_real_epmd, stop_process, wait_until
from nodemesh.epmd.client import names
from nodemesh.epmd.keeper import EpmdKeeper, KeeperConfig
from nodemesh.errors import (
    ConfigError,
    EpmdError,
    EpmdNameInUseError,
    NodeNameError,
    RemoteProtocolError,
)

FAST = KeeperConfig(listen="127.0.0.1", backoff_initial=0.01, backoff_max=0.1)
MakeKeeper = Callable[[str, int, int], EpmdKeeper]


@pytest.fixture
async def keepers() -> AsyncIterator[MakeKeeper]:
    """Makes keepers with fast retries on loopback; closes them all after the test."""
    made: list[EpmdKeeper] = []

    def make(name: str, port: int, epmd_port: int) -> EpmdKeeper:
        keeper = EpmdKeeper(name, port, epmd_port=epmd_port, config=FAST)
        made.append(keeper)
        return keeper

    yield make
    for keeper in reversed(made):
        await keeper.aclose()


async def names_are(epmd_port: int, expected: list[tuple[str, int]]) -> bool:
    """Whether the EPMD on epmd_port holds exactly ``expected`` (in any order)."""
    try:
        held = await names("127.0.0.1", epmd_port=epmd_port, timeout=1.0)
    except (EpmdError, RemoteProtocolError):
        return False
    return sorted(held) == sorted(expected)


async def test_first_keeper_embeds_an_epmd_the_second_uses_it(keepers: MakeKeeper) -> None:
    """With no EPMD the first keeper starts one; the next registers with it."""
    port = free_port()
    a, b = keepers("a", 40001, port), keepers("b", 40002, port)
    assert await a.start() == a.creation != 0
    assert len(a.servers) == 1
    await b.start()
    assert b.servers == []
    assert await names_are(port, [("a", 40001), ("b", 40002)])


async def test_handover_when_the_embedding_epmd_dies(keepers: MakeKeeper) -> None:
    """Closing the first keeper's EPMD: a new one starts and both register again."""
    port = free_port()
    a, b = keepers("a", 40001, port), keepers("b", 40002, port)
    creations = (await a.start(), await b.start())
    [old] = a.servers
    await old.aclose()  # as if the process embedding the EPMD had died

    await wait_until(lambda: names_are(port, [("a", 40001), ("b", 40002)]), what="handover")
    assert (a.creation, b.creation) == creations  # kept for the node's lifetime
    new_servers = a.servers + b.servers
    assert len(new_servers) == 1
    assert new_servers[0] is not old
    assert (await a.wait_registered()).creation != 0


async def test_reregistration_runs_in_the_owners_task_group(keepers: MakeKeeper) -> None:
    """start(task_group) re-registers inside the caller's TaskGroup; aclose() ends it."""
    port = free_port()
    async with asyncio.TaskGroup() as group:
        a = keepers("a", 40001, port)
        await a.start(group)
        [server] = a.servers
        await server.aclose()  # the embedded EPMD dies: the group's task registers again
        await wait_until(lambda: names_are(port, [("a", 40001)]), what="re-registration")
        await a.aclose()
    assert a.registration is None


async def test_aclose_unregisters_and_stops_its_epmd(keepers: MakeKeeper) -> None:
    """aclose() ends the registration and the embedded EPMD the keeper started."""
    port = free_port()
    a = keepers("a", 40001, port)
    await a.start()
    [server] = a.servers
    registration = await a.wait_registered()
    await a.aclose()
    assert registration.closed
    assert server.closed
    with pytest.raises(EpmdError, match="closed"):
        await a.wait_registered()


async def test_aclose_finishes_in_a_task_that_is_being_cancelled(keepers: MakeKeeper) -> None:
    """Closed from the cleanup of a cancelled task (``async with Node`` left by a cancel),
    aclose() still unregisters and stops its EPMD instead of re-raising halfway."""
    a = keepers("a", 40001, free_port())
    await a.start()
    [server] = a.servers
    registration = await a.wait_registered()

    async def owner() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await a.aclose()

    task = asyncio.create_task(owner())
    await asyncio.sleep(0)  # let it start waiting
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registration.closed and server.closed


async def test_taken_name_fails_start(keepers: MakeKeeper) -> None:
    """start() raises EpmdNameInUseError when another live node holds the name."""
    port = free_port()
    await keepers("a", 40001, port).start()
    with pytest.raises(EpmdNameInUseError, match=r"'a'.*already registered"):
        await keepers("a", 40002, port).start()


def test_keeper_arguments_are_validated() -> None:
    """Bad names, ports and backoffs fail at construction, before any EPMD starts."""
    with pytest.raises(NodeNameError):
        EpmdKeeper("a@host", 1, epmd_port=1)
    with pytest.raises(ConfigError):
        EpmdKeeper("a", 0, epmd_port=1)
    with pytest.raises(ConfigError):
        KeeperConfig(backoff_initial=1.0, backoff_max=0.5)
    with pytest.raises(ConfigError, match="only after start"):
        _ = EpmdKeeper("a", 1, epmd_port=1).creation


async def test_failed_start_closes_the_epmd_it_started(
    keepers: MakeKeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the first registration fails, the embedded EPMD started for it is closed."""

    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise EpmdError("refused")

    monkeypatch.setattr("nodemesh.epmd.keeper.register", refuse)
    port = free_port()
    with pytest.raises(EpmdError, match="refused"):
        await keepers("a", 40001, port).start()
    assert not await names_are(port, [])


@pytest.mark.interop
async def test_real_epmd_is_used_and_replaced_when_it_dies(keepers: MakeKeeper) -> None:
    """A running `epmd` is used; when it dies the keeper embeds one and registers again."""
    port = free_port()
    proc = await start_real_epmd(port)
    try:
        a = keepers("a", 40001, port)
        creation = await a.start()
        assert a.servers == []
        proc.kill()
        await proc.wait()
        await wait_until(lambda: names_are(port, [("a", 40001)]), what="re-registration")
        assert len(a.servers) == 1
        assert a.creation == creation
    finally:
        await stop_process(proc)


async def test_wait_registered_waits_through_a_handover(keepers: MakeKeeper) -> None:
    """wait_registered() returns a new, open registration after the EPMD changed."""
    port = free_port()
    a, b = keepers("a", 40001, port), keepers("b", 40002, port)
    await a.start()
    await b.start()
    before = await b.wait_registered()
    await a.servers[0].aclose()
    async with asyncio.timeout(10):
        await before.wait_closed()
        after = await b.wait_registered()
    assert after is not before
    assert not after.closed
