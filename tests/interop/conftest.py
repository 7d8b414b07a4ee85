"""Fixtures of the interop tests: a real epmd and a real Erlang node registered with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from conftest import COOKIE
from support.erlang import ErlPeer, running_epmd


@pytest.fixture
def epmd_port() -> Iterator[int]:
    """A real epmd on a private port (overrides the embedded-EPMD fixture)."""
    with running_epmd() as port:
        yield port


@pytest.fixture
async def erl(epmd_port: int) -> AsyncIterator[ErlPeer]:
    """A real Erlang node registered with this test's epmd."""
    peer = await ErlPeer.start("erl1@127.0.0.1", COOKIE, env={"ERL_EPMD_PORT": str(epmd_port)})
    yield peer
    await peer.stop()
