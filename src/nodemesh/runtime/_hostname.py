"""The host part a node picks for its own name when none is given (asks the OS)."""

from __future__ import annotations

import socket

from nodemesh.dist.names import is_ip_literal

__all__ = ["default_host"]


def default_host(longnames: bool) -> str:
    """The host part Erlang would pick for ``erl -sname x`` / ``erl -name x``.

    Short names use the first label of the OS host name (``inet_db:gethostname()``).
    For long names Erlang appends the resolver's domain (``inet_db:res_option(domain)``,
    from resolv.conf or the FQDN) and refuses to start without one. We take the FQDN when
    it has a dot; otherwise, instead of failing, the address the host name resolves to,
    and as a last resort ``127.0.0.1`` (good for one machine only).
    """
    hostname = socket.gethostname()
    if not longnames:
        return hostname.split(".", 1)[0] or "localhost"
    fqdn = socket.getfqdn(hostname)
    if "." in fqdn and not is_ip_literal(fqdn):
        return fqdn
    try:
        address = socket.gethostbyname(hostname)
    except OSError:
        return "127.0.0.1"
    return address
