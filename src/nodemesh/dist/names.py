"""Node names: ``alive@host``, checked the way Erlang/OTP 25 checks them.

What ``erl`` accepts, tried on OTP 25.2 (``net_kernel:create_name/3`` and
``inet_tcp_dist:splitnode/3``):

- the alive part matches ``[0-9A-Za-z_-]+`` (``erl -name a.b@x.y``: "Invalid node name!");
- the host part is non-empty and made of the characters ``!`` .. ``ÿ`` (no spaces, no
  control characters); a second ``@`` is refused ("invalid node name: a@b@c.d");
- the whole name is an atom, so at most 255 characters; names travel as Latin-1 bytes;
- short names (``-sname``) refuse a host with a dot ("Can't set short node name!");
  ``-sname a@::1`` is accepted, since an IPv6 literal has no dot;
- long names (``-name``): ``erl -name a@localhost`` starts, but no long-names node can
  connect to it ("System running to use fully qualified hostnames ** Hostname localhost is
  illegal"), so we require what a connection needs: a dot or an IP literal. IPv6 literals
  (``a@::1``) are accepted; Erlang can use them with ``-proto_dist inet6_tcp``.

:func:`parse_node_name` is pure; the host a node picks for itself is found by
:func:`nodemesh.runtime._hostname.default_host`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from nodemesh.errors import NodeNameError

__all__ = ["MAX_NODE_NAME_LENGTH", "NodeName", "is_ip_literal", "parse_node_name"]

#: An Erlang atom holds at most 255 characters, and a node name is an atom.
MAX_NODE_NAME_LENGTH = 255

_ALIVE = re.compile(r"[0-9A-Za-z_-]+", re.ASCII)
_HOST = re.compile(r"[!-\xff]+")  # net_kernel:validate_hostname/1: "^[!-ÿ]*$"
_EXAMPLES = "e.g. 'app@localhost' (short) or 'app@app.example.com' / 'app@10.0.0.5' (long)"


@dataclass(frozen=True)
class NodeName:
    """A syntactically valid node name; ``str()`` gives ``"alive@host"``."""

    alive: str
    host: str

    def __str__(self) -> str:
        return f"{self.alive}@{self.host}"

    @property
    def is_long(self) -> bool:
        """Whether this is a long name (the host has a dot or is an IP literal)."""
        return _is_long_host(self.host)


def parse_node_name(text: str, *, longnames: bool | None = None) -> NodeName:
    """Check ``text`` against Erlang's node name rules and split it.

    ``longnames=True`` demands a host with a dot or an IP literal (``erl -name``),
    ``longnames=False`` refuses a host with a dot (``erl -sname``), and ``None`` accepts
    either. Raises :class:`~nodemesh.errors.NodeNameError` saying what is wrong.
    """
    if not isinstance(text, str):
        raise NodeNameError(f"a node name must be a str, not {type(text).__name__}")
    alive, at, host = text.partition("@")
    if not at:
        raise NodeNameError(f"node name {text!r} has no '@': write it as 'alive@host', {_EXAMPLES}")
    if len(text) > MAX_NODE_NAME_LENGTH:
        raise NodeNameError(
            f"node name {text[:40]!r}... is {len(text)} characters long; Erlang allows at "
            f"most {MAX_NODE_NAME_LENGTH} (a node name is an atom)"
        )
    if not _ALIVE.fullmatch(alive):
        what = "is empty" if not alive else "may only contain letters, digits, '_' and '-'"
        raise NodeNameError(f"in node name {text!r} the part before '@' {what}; {_EXAMPLES}")
    if not host:
        raise NodeNameError(f"node name {text!r} has no host after '@'; {_EXAMPLES}")
    if "@" in host:
        raise NodeNameError(f"node name {text!r} has more than one '@'; {_EXAMPLES}")
    if not _HOST.fullmatch(host):
        raise NodeNameError(
            f"the host of node name {text!r} contains a space, a control character or a "
            f"character beyond Latin-1; {_EXAMPLES}"
        )
    if longnames is True and not _is_long_host(host):
        raise NodeNameError(
            f"{text!r} is not a long name: with long names (erl -name) the host must be "
            f"fully qualified (contain a dot) or an IP address, e.g. '{alive}@{host}.example.com' "
            f"or '{alive}@127.0.0.1'"
        )
    if longnames is False and "." in host:
        raise NodeNameError(
            f"{text!r} is not a short name: with short names (erl -sname) the host must not "
            f"contain a dot, e.g. '{alive}@{host.split('.', 1)[0]}'"
        )
    return NodeName(alive, host)


def _is_long_host(host: str) -> bool:
    return "." in host or is_ip_literal(host)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
