"""Checks of this node's own name and cookie, and of long vs short names across nodes.

Erlang connects two nodes only when both use long names (``erl -name``: the host is an
FQDN or an IP address) or both use short ones (``erl -sname``: no dot). A peer connects
to the host part of our name as it resolves it; a name whose host does not resolve, or
resolves to a loopback or foreign address, is the commonest reason nodes "do not see"
each other in containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

from nodemesh.cookie import COOKIE_ENV, resolve_cookie
from nodemesh.dist.names import NodeName, is_ip_literal, parse_node_name
from nodemesh.doctor.result import CheckResult
from nodemesh.errors import ConfigError, NodeNameError

__all__ = [
    "check_cookie_source",
    "check_name_kinds",
    "check_own_name",
    "is_local_address",
    "kind_of",
]

_USE_IP = "use an address peers can reach, e.g. --name app@$POD_IP (the container's IP)"


def kind_of(name: NodeName) -> str:
    """``"long"`` or ``"short"``."""
    return "long" if name.is_long else "short"


def is_local_address(address: str) -> bool:
    """Whether ``address`` belongs to this host (a socket can be bound to it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address.partition("%")[0], 0))
    except OSError:
        return False
    return True


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:
        return False


async def _resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to here (OSError when it does not)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen[str(info[4][0])] = None
    return list(seen)


async def check_own_name(
    name: str, *, environ: Mapping[str, str] | None = None
) -> tuple[NodeName | None, list[CheckResult]]:
    """Check this node's name: syntax, long or short, and that its host is this host.

    Returns the parsed name (None when malformed) and the findings.
    """
    env = os.environ if environ is None else environ
    check = "node name"
    try:
        parsed = parse_node_name(name)
    except NodeNameError as exc:
        return None, [CheckResult.fail(check, str(exc), "give --name as alive@host")]
    host, kind = parsed.host, kind_of(parsed)
    if host == "localhost" or host.startswith("localhost."):
        result = CheckResult.warn(
            check,
            f"{name} is a {kind} name on localhost: only nodes on this machine can reach it",
            _USE_IP,
        )
        return parsed, [result]
    if is_ip_literal(host):
        return parsed, [_check_ip_host(parsed, env)]
    try:
        addresses = await _resolve(host)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return parsed, [
            CheckResult.fail(
                check,
                f"{name}: the host {host} does not resolve here ({reason}); peers must "
                "resolve it to reach this node",
                "use an IP address (app@$POD_IP), or make the name resolve (DNS, "
                "/etc/hosts, a StatefulSet's headless service)",
            )
        ]
    return parsed, [_check_resolved(parsed, addresses)]


def _check_ip_host(parsed: NodeName, env: Mapping[str, str]) -> CheckResult:
    check, host = "node name", parsed.host
    pod_ip = env.get("POD_IP", "").strip()
    if _is_loopback(host):
        return CheckResult.warn(
            check, f"{parsed} uses a loopback address: only this machine can reach it", _USE_IP
        )
    if pod_ip and pod_ip != host:
        return CheckResult.fail(
            check,
            f"{parsed} does not use this pod's IP $POD_IP={pod_ip}",
            f"name the node app@{pod_ip}: peers connect to the address in its name",
        )
    if not is_local_address(host):
        return CheckResult.fail(
            check,
            f"{host} is not an address of this host: peers would connect to another machine",
            "use one of this host's addresses (`hostname -I` lists them), e.g. app@$POD_IP",
        )
    return CheckResult.ok(check, f"{parsed} is a long name; {host} is an address of this host")


def _check_resolved(parsed: NodeName, addresses: list[str]) -> CheckResult:
    check, host, kind = "node name", parsed.host, kind_of(parsed)
    shown = ", ".join(addresses[:4])
    if all(_is_loopback(a) for a in addresses):
        if not parsed.is_long:
            return CheckResult.ok(
                check, f"{parsed} is a short name; {host} is {shown} here (this machine only)"
            )
        return CheckResult.warn(
            check,
            f"{host} resolves to {shown} here, a loopback address: other hosts must resolve "
            "it to an address they can reach",
            "check `getent hosts " + host + "` on a peer, or use an IP (app@$POD_IP)",
        )
    if not any(is_local_address(a) for a in addresses):
        return CheckResult.warn(
            check,
            f"{host} resolves to {shown}, none of which is an address of this host",
            "point the name at this host, or use one of its addresses (app@$POD_IP)",
        )
    return CheckResult.ok(check, f"{parsed} is a {kind} name; {host} resolves to {shown}")


def check_name_kinds(own: NodeName, others: Iterable[str], source: str) -> CheckResult | None:
    """FAIL when any of ``others`` (node names from ``source``) is long and ours short, or
    the reverse: Erlang never connects those. None when there is nothing to compare."""
    names: list[NodeName] = []
    for text in others:
        with contextlib.suppress(NodeNameError):
            names.append(parse_node_name(text))
    if not names:
        return None
    check = f"long/short names ({source})"
    kind = kind_of(own)
    odd = [str(n) for n in names if n.is_long != own.is_long]
    if not odd:
        return CheckResult.ok(check, f"this node and {len(names)} node(s) all use {kind} names")
    other = "short" if own.is_long else "long"
    shown = ", ".join(odd[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
    fix = (
        "use long names everywhere: --name app@<IP or FQDN> (erl -name)"
        if other == "long"
        else "use short names everywhere (--sname, erl -sname), or long names on every node"
    )
    return CheckResult.fail(
        check,
        f"this node ({own}) has a {kind} name but {shown} use {other} names: Erlang never "
        "connects a short-name node with a long-name node",
        fix,
    )


def check_cookie_source(
    explicit: str | None, environ: Mapping[str, str] | None = None
) -> CheckResult:
    """Where the cookie comes from (never what it is), or why it cannot be read."""
    env = os.environ if environ is None else environ
    check = "cookie"
    if explicit is not None:
        source = "--cookie"
    elif env.get(COOKIE_ENV) is not None:
        source = f"${COOKIE_ENV}"
    else:
        home = Path(env.get("HOME") or Path.home())
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        files = [home / ".erlang.cookie", config / "erlang" / ".erlang.cookie"]
        found = next((f for f in files if f.exists()), None)
        if found is None:  # resolve_cookie would create one: a doctor changes nothing
            return CheckResult.warn(
                check,
                f"no cookie: neither --cookie, ${COOKIE_ENV} nor {files[0]}; a node would "
                "create that file with a random cookie no peer shares",
                f"give every node the same cookie: ${COOKIE_ENV} (from a Secret) or --cookie",
            )
        source = str(found)
    try:
        cookie = resolve_cookie(explicit, environ=env)
    except ConfigError as exc:
        return CheckResult.fail(
            check, str(exc), f"set ${COOKIE_ENV} (from a Secret) or fix the cookie file"
        )
    return CheckResult.ok(check, f"from {source}, {len(cookie)} character(s) (not shown)")
