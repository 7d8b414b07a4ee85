"""The chat demo in real headless Chromium: two pages on two nodes of one ``nodemesh demo``
process; a message typed on one appears on the other, and the node list follows nodes
that stop and start (from a page) and a demo process that exits (Ctrl-C)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support.browser import DemoProcess, chromium
from support.gossip_node import free_udp_port
from support.net import free_port

TIMEOUT = 20.0


@dataclass
class Demo:
    proc: DemoProcess
    urls: list[str]
    names: list[str]


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports on 127.0.0.1."""
    for _ in range(50):
        base = free_port()
        socks: list[socket.socket] = []
        try:
            for port in range(base, min(base + count, 65536)):
                socks.append(socket.socket())
                socks[-1].bind(("127.0.0.1", port))
            if len(socks) == count:
                return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError(f"no {count} consecutive free ports")


@pytest.fixture(scope="module")
def demo_env() -> dict[str, str]:
    """Private EPMD, gossip port and cookie: nothing else on this machine joins."""
    return {
        "ERL_EPMD_PORT": str(free_port()),
        "GOSSIP": str(free_udp_port()),
        "COOKIE": f"demo-test-{uuid.uuid4().hex[:8]}",
    }


def demo_args(env: dict[str, str], nodes: int, port: int) -> list[str]:
    return [
        f"--nodes={nodes}",
        f"--port={port}",
        f"--gossip-port={env['GOSSIP']}",
        f"--cookie={env['COOKIE']}",
    ]


@pytest.fixture(scope="module")
def demo(demo_env: dict[str, str]) -> Iterator[Demo]:
    """``nodemesh demo --nodes 2``; yields the process, its page URLs and node names."""
    base = free_ports(3)  # the third is for the second process of the last test
    proc = DemoProcess(*demo_args(demo_env, 2, base), env=demo_env)
    try:
        proc.wait_line("Ctrl-C", TIMEOUT)
        urls, names = pages_of(proc)
        assert urls == [f"http://127.0.0.1:{base}/", f"http://127.0.0.1:{base + 1}/"]
        yield Demo(proc, urls, names)
    finally:
        proc.close()


def pages_of(proc: DemoProcess) -> tuple[list[str], list[str]]:
    """The URLs and node names the demo printed ("  http://127.0.0.1:4000/   amber@...")."""
    rows = [line.split() for line in proc.seen if line.startswith("  http://")]
    return [row[0] for row in rows], [row[1] for row in rows]


@pytest.fixture(scope="module")
def pages(demo: Demo) -> Iterator[tuple[Any, Any]]:
    """Two browsers (two people), one on each node's page."""
    with chromium() as first, chromium() as second:
        first.get(demo.urls[0])
        second.get(demo.urls[1])
        yield first, second


def wait(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.05).until(
        lambda d: condition(d), message=f"waiting for {what}"
    )


def collect(driver: Any, selector: str, what: str) -> list[str]:
    """``what`` (a JavaScript expression of ``e``) for each element matching ``selector``."""
    script = f"return [...document.querySelectorAll({selector!r})].map(e => {what})"
    found: list[str] = driver.execute_script(script)
    return found


def node_list(driver: Any) -> list[str]:
    """The node names the page lists as in the room (their PubSub known), in order."""
    return collect(driver, "#nodes li[data-room='true']", "e.dataset.node")


def people(driver: Any) -> list[str]:
    """The people the page lists, as "NAME NODE"."""
    return collect(driver, "#people li[data-person]", "e.dataset.person")


def texts(driver: Any) -> list[str]:
    """The texts of the chat messages shown."""
    return collect(driver, "#messages .message .text", "e.textContent")


def test_each_page_names_its_node_and_lists_both(pages: tuple[Any, Any], demo: Demo) -> None:
    """Each page shows its own node first and the other node in the live list."""
    first, second = pages
    amber, birch = demo.names
    wait(first, lambda d: node_list(d) == [amber, birch], "the first page's list")
    wait(second, lambda d: node_list(d) == [birch, amber], "the second page's list")
    assert first.find_element("id", "self").text == amber
    assert second.find_element("id", "self").text == birch


def test_a_message_typed_on_one_node_appears_on_the_other(
    pages: tuple[Any, Any], demo: Demo
) -> None:
    """Typed and sent on amber's page, the message shows on birch's page with its author,
    and on amber's own page once (local delivery, no duplicate); birch's page lists the
    author among the people online, on amber."""
    first, second = pages
    wait(first, lambda d: len(node_list(d)) == 2, "both nodes on amber's page")
    name = first.find_element("id", "author")
    name.clear()
    name.send_keys("Ada Lovelace\t")
    text = f"hello from amber {uuid.uuid4().hex[:6]}"
    first.find_element("id", "text").send_keys(text + "\n")
    wait(second, lambda d: text in texts(d), "the message on birch's page")
    assert "Ada Lovelace" in collect(second, "#messages .author", "e.textContent")
    wait(second, lambda d: f"Ada Lovelace {demo.names[0]}" in people(d), "Ada among the people")
    wait(first, lambda d: text in texts(d), "the message on amber's own page")
    assert texts(first).count(text) == 1 and texts(second).count(text) == 1


def test_the_list_follows_a_node_stopped_and_started_from_its_page(
    pages: tuple[Any, Any], demo: Demo
) -> None:
    """Stop birch from its page: amber's list drops it and birch's page says stopped;
    start it again: gossip brings it back on both pages."""
    first, second = pages
    amber, birch = demo.names
    wait(first, lambda d: len(node_list(d)) == 2, "both nodes on amber's page")
    second.find_element("id", "stop").click()
    wait(first, lambda d: node_list(d) == [amber], "birch gone from amber's list")
    wait(second, lambda d: d.find_element("id", "status").text == "stopped", "birch stopped")
    assert not second.find_element("id", "text").is_enabled()
    second.find_element("id", "start").click()
    wait(first, lambda d: node_list(d) == [amber, birch], "birch back on amber's list")
    wait(second, lambda d: node_list(d) == [birch, amber], "birch running and seeing amber")


def test_the_list_follows_a_demo_process_that_exits(
    pages: tuple[Any, Any], demo: Demo, demo_env: dict[str, str]
) -> None:
    """A second ``nodemesh demo --nodes 1`` joins by gossip (cedar, on the next port);
    after its Ctrl-C (exit 0) amber's page lists amber and birch only."""
    first, _ = pages
    third_port = int(demo.urls[1].rsplit(":", 1)[1].strip("/")) + 1
    other = DemoProcess(*demo_args(demo_env, 1, third_port), env=demo_env)
    try:
        other.wait_line("Ctrl-C", TIMEOUT)
        [cedar] = pages_of(other)[1]
        wait(first, lambda d: cedar in node_list(d), f"{cedar} on amber's list")
        assert other.interrupt() == 0
        wait(first, lambda d: cedar not in node_list(d), f"{cedar} gone from amber's list")
        assert node_list(first) == demo.names
    finally:
        other.close()
