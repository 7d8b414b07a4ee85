"""``nodemesh demo`` as a person runs it: what it prints, and one sentence when it cannot
start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from nodemesh.demo.config import node_alive
from support.browser import DemoProcess
from support.gossip_node import free_udp_port
from support.net import free_port


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ERL_EPMD_PORT": str(free_port())}
    return subprocess.run(
        [sys.executable, "-m", "nodemesh.cli", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_a_port_in_use_is_one_sentence_and_exit_1() -> None:
    """A page port already taken: exit 1, one line naming the port and the way out."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_demo(f"--port={port}", "--nodes=1", f"--gossip-port={free_udp_port()}")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"nodemesh demo: port {port} on 127.0.0.1 is in use (another demo?): stop what uses "
        f"it or start on other ports, e.g. nodemesh demo --port {port + 100}"
    ]


def test_a_bad_node_count_is_one_sentence() -> None:
    """--nodes 0: exit 1 with the allowed range, before anything starts."""
    result = run_demo("--nodes=0")
    assert (result.returncode, result.stderr) == (
        1,
        "nodemesh demo: the demo runs 1 to 20 nodes, not 0\n",
    )


def open_page_socket(port: int) -> socket.socket:
    """A page's WebSocket (the upgrade, by hand) that then never reads nor answers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def test_it_prints_each_page_and_stops_on_ctrl_c() -> None:
    """The URLs and node names, one per line; on SIGINT, exit 0 with "stopped" at once,
    even with a page open that does not answer the WebSocket's close handshake."""
    port = free_port()
    env = {"ERL_EPMD_PORT": str(free_port())}
    demo = DemoProcess(f"--port={port}", "--nodes=1", f"--gossip-port={free_udp_port()}", env=env)
    try:
        demo.wait_line("Ctrl-C")
        assert demo.seen[:2] == [
            "nodemesh demo: 1 node on room:lobby. Open its page:",
            f"  http://127.0.0.1:{port}/   {node_alive(port)}@127.0.0.1",
        ]
        with open_page_socket(port):
            assert demo.interrupt(timeout=4) == 0  # the close handshake waits 1 s at most
        assert demo.wait_line("stopped") == "nodemesh demo: stopped"
    finally:
        demo.close()
