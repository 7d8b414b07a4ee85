"""Node names: what Erlang's erl and dist_util accept, and our messages."""

from __future__ import annotations

import re

import pytest

from nodemesh.dist.names import NodeName, parse_node_name
from nodemesh.errors import ConfigError, NodeNameError
from nodemesh.runtime._hostname import default_host

# Each accepted/refused case was tried with `erl -name` / `erl -sname` on OTP 25.2, or
# follows inet_tcp_dist:splitnode/3 (the check made when connecting).
VALID = [
    ("a@localhost", None, NodeName("a", "localhost")),
    ("a@localhost", False, NodeName("a", "localhost")),  # erl -sname a@localhost
    ("app_1-x@host", False, NodeName("app_1-x", "host")),
    ("A9@x.y", True, NodeName("A9", "x.y")),  # erl -name a@x.y
    ("a@127.0.0.1", True, NodeName("a", "127.0.0.1")),  # erl -name a@127.0.0.1
    ("a@::1", True, NodeName("a", "::1")),  # erl -name a@::1 (inet6_tcp can reach it)
    ("a@::1", False, NodeName("a", "::1")),  # erl -sname a@::1 starts: no dot
    ("a@h\xe9te.example", True, NodeName("a", "h\xe9te.example")),  # host chars ! .. ÿ
    ("a@x.y", None, NodeName("a", "x.y")),
    ("a" * 200 + "@" + "h" * 54, None, NodeName("a" * 200, "h" * 54)),  # 255 characters
]

INVALID = [
    ("nohost", None, "no '@'"),
    ("", None, "no '@'"),
    ("@host", None, "is empty"),
    ("a@", None, "no host"),
    ("a.b@x.y", True, "letters, digits"),  # erl -name a.b@x.y: Invalid node name!
    ("\xe9@x.y", True, "letters, digits"),  # erl -name é@x.y: Invalid node name!
    ("a b@h", None, "letters, digits"),
    ("a@b@c.d", None, "more than one '@'"),  # erl: invalid node name: a@b@c.d
    ("a@h st", None, "space"),
    ("a@h\tx", None, "control character"),
    ("a@h\u0100", None, "beyond Latin-1"),
    ("a@x.y", False, "not a short name"),  # erl -sname a@x.y: Can't set short node name!
    ("a@127.0.0.1", False, "not a short name"),
    ("a@localhost", True, "not a long name"),  # splitnode: Hostname localhost is illegal
    ("a" * 200 + "@" + "h" * 55, None, "at most 255"),
]


@pytest.mark.parametrize(("text", "longnames", "expected"), VALID)
def test_valid_names_parse(text: str, longnames: bool | None, expected: NodeName) -> None:
    """Names Erlang accepts parse into their alive and host parts and print back."""
    name = parse_node_name(text, longnames=longnames)
    assert name == expected
    assert str(name) == text


@pytest.mark.parametrize(("text", "longnames", "fragment"), INVALID)
def test_invalid_names_are_refused_with_a_reason(
    text: str, longnames: bool | None, fragment: str
) -> None:
    """Names Erlang refuses raise NodeNameError saying what is wrong."""
    with pytest.raises(NodeNameError, match=fragment):
        parse_node_name(text, longnames=longnames)


def test_errors_show_a_good_example() -> None:
    """The message suggests what a correct name looks like."""
    with pytest.raises(NodeNameError, match=re.escape("e.g. 'a@x.example.com'")):
        parse_node_name("a@x", longnames=True)
    with pytest.raises(NodeNameError, match=re.escape("e.g. 'a@x'")):
        parse_node_name("a@x.example.com", longnames=False)


def test_node_name_error_is_a_config_error() -> None:
    """NodeNameError is a ConfigError (and so a ValueError)."""
    with pytest.raises(ConfigError):
        parse_node_name("bad")


def test_non_str_is_refused() -> None:
    """A non-str name raises NodeNameError, not a TypeError from inside."""
    with pytest.raises(NodeNameError, match="must be a str"):
        parse_node_name(b"a@b")  # type: ignore[arg-type]


def test_is_long_tells_long_from_short() -> None:
    """is_long is true for a dotted host or an IP literal."""
    assert parse_node_name("a@x.y").is_long
    assert parse_node_name("a@::1").is_long
    assert not parse_node_name("a@x").is_long


def test_default_host_short_has_no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The short default host is the first label of the OS host name."""
    monkeypatch.setattr("socket.gethostname", lambda: "box.corp.example")
    assert default_host(longnames=False) == "box"


def test_default_host_long_prefers_the_fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The long default host is the FQDN when it has a dot."""
    monkeypatch.setattr("socket.gethostname", lambda: "box")
    monkeypatch.setattr("socket.getfqdn", lambda name="": "box.corp.example")
    assert default_host(longnames=True) == "box.corp.example"


def test_default_host_long_falls_back_to_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a domain, the long default host is the address the host name resolves to."""

    def unresolvable(name: str) -> str:
        raise OSError("no such host")

    monkeypatch.setattr("socket.gethostname", lambda: "box")
    monkeypatch.setattr("socket.getfqdn", lambda name="": "box")
    monkeypatch.setattr("socket.gethostbyname", lambda name: "10.1.2.3")
    assert default_host(longnames=True) == "10.1.2.3"
    monkeypatch.setattr("socket.gethostbyname", unresolvable)
    assert default_host(longnames=True) == "127.0.0.1"


def test_default_hosts_make_valid_names() -> None:
    """On this machine, the default hosts form names that parse in their mode."""
    parse_node_name(f"x@{default_host(longnames=False)}", longnames=False)
    parse_node_name(f"x@{default_host(longnames=True)}", longnames=True)
