"""Fixtures for the EPMD tests: a real ``epmd`` and our embedded server on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from epmd.helpers import free_port, start_real_epmd, stop_process
from nodemesh.epmd.server import EpmdServer, EpmdServerConfig


@pytest.fixture
async def real_epmd() -> AsyncIterator[int]:
    """A real `epmd` on a free loopback port; yields the port."""
    port = free_port()
    proc = await start_real_epmd(port)
    try:
        yield port
    finally:
        await stop_process(proc)


@pytest.fixture
async def server() -> AsyncIterator[EpmdServer]:
    """Our embedded EPMD on a free loopback port."""
    srv = EpmdServer(EpmdServerConfig(request_timeout=5.0))
    await srv.start(0, "127.0.0.1")
    try:
        yield srv
    finally:
        await srv.aclose()
