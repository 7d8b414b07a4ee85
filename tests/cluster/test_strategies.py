"""LocalEpmd and ErlangHosts against our embedded EPMD, and the .hosts.erlang reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.helpers import FAST, next_event
from conftest import NodeFactory
from nodemesh.cluster import Cluster, DiscoveryFailed, NodeJoined, Topology
from nodemesh.cluster._hosts_file import find_hosts_file, parse_hosts, read_hosts_file
from nodemesh.errors import DiscoveryError
from support.net import wait_for


async def test_local_epmd_connects_every_local_node(make_node: NodeFactory) -> None:
    """LocalEpmd connects name@<own host> for each name our EPMD knows, and later ones."""
    a, b = await make_node("a"), await make_node("b")
    topology = Topology.create("local", "local_epmd", {"polling_interval": 100})
    async with Cluster(a, [topology], config=FAST) as cluster:
        events = cluster.events()
        await wait_for(lambda: a.nodes() == [b.name])
        c = await make_node("c")  # registers after the first round
        joined = await next_event(events, lambda e: isinstance(e, NodeJoined) and e.node == c.name)
    assert joined == NodeJoined(c.name, "local", "discovered")
    assert set(a.nodes()) == {b.name, c.name}


@pytest.fixture
def hosts_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty working directory and home directory for .hosts.erlang tests."""
    cwd, home = tmp_path / "work", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    return cwd, home


async def test_erlang_hosts_connects_nodes_on_listed_hosts(
    make_node: NodeFactory, hosts_dirs: tuple[Path, Path]
) -> None:
    """ErlangHosts reads .hosts.erlang in the working directory and asks each host's EPMD."""
    cwd, _ = hosts_dirs
    (cwd / ".hosts.erlang").write_text("% our hosts\n'127.0.0.1'.\n'nowhere.invalid'.\n")
    a, b, c = await make_node("a"), await make_node("b"), await make_node("c")
    topology = Topology.create("hosts", "erlang_hosts")
    async with Cluster(a, [topology], config=FAST):
        await wait_for(lambda: set(a.nodes()) == {b.name, c.name})


async def test_erlang_hosts_falls_back_to_home_then_fails_softly(
    make_node: NodeFactory, hosts_dirs: tuple[Path, Path]
) -> None:
    """Without a file in cwd the home one is used; with neither, discovery fails and
    retries, and creating the file then makes it work."""
    cwd, home = hosts_dirs
    assert find_hosts_file() is None
    a, b = await make_node("a"), await make_node("b")
    async with Cluster(a, [Topology.create("hosts", "erlang_hosts")], config=FAST) as cluster:
        events = cluster.events()
        failed = await next_event(events, lambda e: isinstance(e, DiscoveryFailed))
        assert "no .hosts.erlang" in failed.error  # type: ignore[union-attr]
        (home / ".hosts.erlang").write_text("'127.0.0.1'.\n")
        await wait_for(lambda: a.nodes() == [b.name])
    (cwd / ".hosts.erlang").write_text("'elsewhere'.\n")
    assert find_hosts_file() == cwd / ".hosts.erlang"


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("'a.example.com'.\n'b'.\n", ["a.example.com", "b"]),
        ('% comment\n  plainatom .  % trailing\n"str.host".', ["plainatom", "str.host"]),
        ("'10.0.0.1'.\n'::1'.\n", ["10.0.0.1", "::1"]),
        ("'it\\'s'.", ["it's"]),
        ("", []),
        ("% only a comment\n", []),
    ],
)
def test_hosts_file_accepts_host_terms(text: str, hosts: list[str]) -> None:
    """Quoted atoms, plain atoms and strings ended by a dot are host names."""
    assert parse_hosts(text) == hosts


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("'a.example.com'\n", 2, "expected '.'"),
        ("'a'.\n{b, c}.\n", 2, "expected a host name"),
        ("'a'.\n'unterminated.\n", 2, "expected a host name"),
        ("Var.\n", 1, "expected a host name"),
        ("'a'.b.", 1, "expected '.'"),  # a full stop is a dot then space, % or the end
        ("'a'.'b'.", 1, "expected '.'"),
        ("'has space'.", 1, "not a host name"),
        ("'tab\\there'.", 1, "not a host name"),
        ("123.", 1, "expected a host name"),
        ('os:cmd("rm -rf /").', 1, "expected '.'"),
    ],
)
def test_hosts_file_refuses_anything_else(text: str, line: int, what: str) -> None:
    """Anything but a host term is a DiscoveryError naming the line; nothing is evaluated."""
    with pytest.raises(DiscoveryError, match=f"line {line}: .*{what}"):
        parse_hosts(text)


def test_hosts_file_reading_errors(tmp_path: Path) -> None:
    """Unreadable, oversized or non-UTF-8 files are DiscoveryErrors naming the file."""
    with pytest.raises(DiscoveryError, match="cannot read"):
        read_hosts_file(tmp_path / "missing")
    big = tmp_path / "big"
    big.write_bytes(b"'a'.\n" * 300_000)
    with pytest.raises(DiscoveryError, match="larger than"):
        read_hosts_file(big)
    latin = tmp_path / "latin"
    latin.write_bytes(b"'caf\xe9'.\n")
    with pytest.raises(DiscoveryError, match="not UTF-8"):
        read_hosts_file(latin)
