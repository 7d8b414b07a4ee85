"""Fixtures shared by the whole suite."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

from nodemesh.runtime.config import NodeConfig
from nodemesh.runtime.node import Node
from support.net import free_port

# One cookie per test process: every suite names its peers alike (erl1@127.0.0.1 and so
# on), and suites running side by side on one machine (a developer's two builds, several
# worktrees) must not reach each other's nodes; a stray connection then fails on the
# cookie, loudly, instead of carrying a message to another run's node. The process id,
# not a random value: test modules import this module again (`from conftest import
# COOKIE`) beside pytest's own copy, and both must agree.
COOKIE = f"nodemesh-test-{os.getpid()}"

NodeFactory = Callable[..., Coroutine[Any, Any, Node]]
AppNode = Callable[[str], Coroutine[Any, Any, Node]]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo what a command run in-process did to logging (``nodemesh -v`` sets levels on
    nodemesh's loggers and replaces the root handlers), so later tests' caplog sees every
    record again."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if name.startswith("nodemesh") and isinstance(logger, logging.Logger)
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("nodemesh") and isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


@pytest.fixture
def epmd_port() -> int:
    """A private EPMD port for this test: the first node starts an embedded EPMD there."""
    return free_port()


@pytest.fixture
async def make_node(epmd_port: int) -> AsyncIterator[NodeFactory]:
    """Start nodes on 127.0.0.1 that share this test's private EPMD; all stopped after."""
    nodes: list[Node] = []

    async def factory(alive: str, *, cookie: str = COOKIE, **config: Any) -> Node:
        config.setdefault("epmd_port", epmd_port)
        config.setdefault("net_ticktime", 60.0)
        node = Node(f"{alive}@127.0.0.1", cookie, config=NodeConfig(**config))
        await node.start()
        nodes.append(node)
        return node

    yield factory
    for node in reversed(nodes):
        await node.aclose()


@pytest.fixture
async def app_node() -> AsyncIterator[AppNode]:
    """Start ``app@<address>`` nodes (e.g. ``app@127.0.0.3``), EPMD-less on one shared
    port, each listening only on its own loopback address: several nodes with one alive
    name, as the DNS and Kubernetes strategies name them (``basename@<ip>``), reachable
    exactly at their names. All stopped after the test."""
    port = free_port()
    nodes: list[Node] = []

    async def factory(address: str) -> Node:
        config = NodeConfig(use_epmd=False, port=port, listen_address=address)
        node = Node(f"app@{address}", COOKIE, config=config)
        await node.start()
        nodes.append(node)
        return node

    yield factory
    for node in reversed(nodes):
        await node.aclose()
