"""Checks over the network: EPMD here and on a peer's host, the peer's distribution port,
and a real distribution handshake to find out whether the cookies agree.

The handshake is the sans-I/O :class:`~nodemesh.dist.handshake.Initiator` over one TCP
connection, under a throw-away node name (never the running node's: the peer would take
it for a reconnect and drop the real connection). Nothing is registered with EPMD.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl

from nodemesh.dist import handshake
from nodemesh.dist.flags import default_flags
from nodemesh.dist.names import NodeName, parse_node_name
from nodemesh.doctor.result import CheckResult
from nodemesh.doctor.tls import open_tls
from nodemesh.epmd.client import names_response, port_please
from nodemesh.errors import (
    CookieMismatchError,
    HandshakeError,
    NetworkError,
    NodemeshError,
    NodeNameError,
    ProtocolError,
)
from nodemesh.runtime.tls import TlsConfig, describe_tls_failure

__all__ = ["check_local_epmd", "handshake_with", "probe_name", "probe_peer"]

_EPMD_FIX = (
    "open TCP port {port} to {host} (firewall, security group, NetworkPolicy, a Docker "
    "network both containers are on) and make sure a node or epmd runs there"
)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def check_local_epmd(alive: str | None, epmd_port: int, timeout: float) -> CheckResult:
    """Whether an EPMD answers on this host, and what it has registered."""
    where = _where("127.0.0.1", epmd_port)
    check = f"EPMD {where}"
    try:
        reply = await names_response("127.0.0.1", epmd_port=epmd_port, timeout=timeout)
    except NodemeshError as exc:
        return CheckResult.warn(
            check,
            f"no EPMD here ({exc}); `nodemesh run` starts an embedded one, but Erlang nodes "
            "on this host need epmd",
            "nothing to do for nodemesh nodes; for erl: `epmd -daemon`",
        )
    registered = dict(reply.nodes)
    listing = ", ".join(f"{n} (port {p})" for n, p in sorted(registered.items())) or "no nodes"
    if alive is not None and alive in registered:
        detail = f"answers; {alive} is registered on port {registered[alive]}; all: {listing}"
    else:
        detail = f"answers; registered: {listing}"
    return CheckResult.ok(check, detail)


def probe_name(own: NodeName | None, peer: NodeName, pid: int | None = None) -> str:
    """A throw-away name of the peer's kind (long or short) on our host, for the probe."""
    alive = f"nodemesh_doctor_{os.getpid() if pid is None else pid}"
    if own is not None and own.is_long == peer.is_long:
        return f"{alive}@{own.host}"
    return f"{alive}@{'127.0.0.1' if peer.is_long else 'localhost'}"


async def probe_peer(
    peer: str,
    *,
    own: NodeName | None,
    cookie: str | None,
    epmd_port: int,
    timeout: float,
    tls: TlsConfig | None = None,
) -> list[CheckResult]:
    """Follow the path a connection to ``peer`` takes: resolve its host, ask its EPMD for
    the port, connect to the port (in TLS with ``tls``), then shake hands with our
    cookie."""
    try:
        name = parse_node_name(peer)
    except NodeNameError as exc:
        return [CheckResult.fail(f"peer {peer}", str(exc), "give the peer as alive@host")]
    host = name.host
    try:
        await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError as exc:
        return [
            CheckResult.fail(
                f"host of {peer}",
                f"{host} does not resolve here ({exc.strerror or exc})",
                "name peers by IP (app@10.0.0.5) or make their host names resolve here",
            )
        ]
    try:
        info = await port_please(host, name.alive, epmd_port=epmd_port, timeout=timeout)
    except NodemeshError as exc:
        return [
            CheckResult.fail(
                f"EPMD of {peer}", str(exc), _EPMD_FIX.format(port=epmd_port, host=host)
            )
        ]
    if info is None:
        registered = await _registered(host, epmd_port, timeout)
        return [
            CheckResult.fail(
                f"EPMD of {peer}",
                f"EPMD at {_where(host, epmd_port)} knows no node named {name.alive!r} "
                f"(registered: {registered})",
                "start the node, or fix the name: the part before @ must match exactly",
            )
        ]
    results = [
        CheckResult.ok(f"EPMD of {peer}", f"{name.alive} listens on port {info.port}"),
    ]
    check = f"distribution port of {peer}"
    try:
        async with asyncio.timeout(timeout):
            if tls is None:
                reader, writer = await asyncio.open_connection(host, info.port)
            else:  # straight into TLS, as a node dials: a bare TCP probe would be logged
                opened = await open_tls(host, info.port, peer, tls, timeout)
                if isinstance(opened, CheckResult):
                    results += [CheckResult.ok(check, f"{_where(host, info.port)} answers"), opened]
                    return results
                reader, writer = opened
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        results.append(
            CheckResult.fail(
                check,
                f"EPMD says port {info.port}, but connecting to {_where(host, info.port)} "
                f"failed: {reason}",
                f"open TCP port {info.port} too; fix the distribution port so it can be "
                "opened (nodemesh run --port, erl -kernel inet_dist_listen_min/max)",
            )
        )
        return results
    results.append(CheckResult.ok(check, f"{_where(host, info.port)} accepts connections"))
    if tls is not None:
        results.append(CheckResult.ok(f"TLS with {peer}", "we accept its certificate"))
    if cookie is None:
        results.append(CheckResult.warn(f"cookie with {peer}", "not checked: no cookie"))
        writer.close()
        return results
    width = 2 if tls is None else 4
    results.append(await _cookie_check(reader, writer, own, name, cookie, timeout, width))
    return results


async def _registered(host: str, epmd_port: int, timeout: float) -> str:
    try:
        reply = await names_response(host, epmd_port=epmd_port, timeout=timeout)
    except NodemeshError:
        return "unknown"
    return ", ".join(n for n, _ in reply.nodes) or "none"


async def _cookie_check(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    own: NodeName | None,
    peer: NodeName,
    cookie: str,
    timeout: float,
    prefix_width: int = 2,
) -> CheckResult:
    check = f"cookie with {peer}"
    try:
        established = await handshake_with(
            reader, writer, probe_name(own, peer), cookie, str(peer), timeout, prefix_width
        )
    except CookieMismatchError as exc:
        return CheckResult.fail(
            check,
            f"cookies differ: {exc}",
            "give both nodes the same cookie: $NODEMESH_COOKIE or --cookie (nodemesh), "
            "-setcookie or ~/.erlang.cookie (Erlang), one Kubernetes Secret for all pods",
        )
    except TimeoutError:
        return CheckResult.fail(
            check,
            f"the handshake did not finish within {timeout:g} s",
            "check that the port is an Erlang distribution port and not behind a proxy",
        )
    except (HandshakeError, ProtocolError, NetworkError) as exc:
        return CheckResult.fail(
            check, f"handshake failed: {exc}", "see the peer's log for why it refused"
        )
    return CheckResult.ok(
        check, f"handshake completed: the cookies agree ({established.peer_name})"
    )


async def handshake_with(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    own_name: str,
    cookie: str,
    peer: str,
    timeout: float,
    prefix_width: int = 2,
) -> handshake.Established:
    """Run the initiator's side of the handshake on an open connection, then close it
    (``prefix_width`` 4 inside TLS).

    Raises CookieMismatchError, HandshakeError (refused, or another node answered),
    ProtocolError, NetworkError, or TimeoutError after ``timeout`` seconds.
    """
    creation = secrets.randbelow(0xFFFF_FFFE) + 1
    hs = handshake.Initiator(
        own_name, cookie, default_flags(), creation, expected_peer=peer, prefix_width=prefix_width
    )
    try:
        async with asyncio.timeout(timeout):
            writer.write(hs.data_to_send())
            while True:
                try:
                    data = await reader.read(4096)
                except ssl.SSLError as exc:  # TLS 1.3: the server's verdict on our certificate
                    text = describe_tls_failure(exc, peer=peer, we_dialed=True)
                    raise NetworkError(text) from exc
                except OSError as exc:
                    raise NetworkError(f"connection to {peer} failed: {exc}") from exc
                if not data:
                    if prefix_width == 4 and hs.state is handshake.HandshakeState.AWAIT_STATUS:
                        raise HandshakeError(  # TLS 1.3: the verdict on our certificate
                            f"{peer} closed the TLS connection before answering our name: it "
                            "most likely rejected our certificate; its log says why"
                        )
                    hs.connection_lost()  # raises what closing here means
                    raise HandshakeError(f"{peer} closed the connection")
                hs.receive_data(data)
                event = _pump(hs, writer)
                if isinstance(event, handshake.Established):
                    return event
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _pump(hs: handshake.Initiator, writer: asyncio.StreamWriter) -> handshake.Event | None:
    while True:
        event = hs.next_event()
        out = hs.data_to_send()
        if out:
            writer.write(out)
        if event is handshake.NEED_DATA:
            return None
        if isinstance(event, handshake.AliveQuery):
            hs.answer_alive(False)  # never disturb a real connection of that name
            raise HandshakeError("the peer already has a connection from our probe's name")
        if isinstance(event, handshake.Superseded):
            raise HandshakeError("the peer is connecting to our probe's name at the same time")
        if isinstance(event, handshake.Established):
            return event
