"""TLS distribution against a real ``erl -proto_dist inet_tls -ssl_dist_optfile FILE``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import Atom, TlsConfig
from support.certs import Pair, Pki, erl_optfile, make_pki
from support.erlang import ErlPeer
from support.net import wait_for

pytestmark = pytest.mark.interop

ErlFactory = Callable[..., Coroutine[Any, Any, ErlPeer]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Test certificates: a CA, node certificates, another CA, bad certificates."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tls_erl(epmd_port: int, tmp_path: Path, pki: Pki) -> AsyncIterator[ErlFactory]:
    """Start ``erl`` nodes with TLS distribution (or plain, ``tls=False``)."""
    peers: list[ErlPeer] = []

    async def start(
        *,
        server: Pair | None = None,
        client: Pair | None = None,
        cafile: str = "",
        tls: bool = True,
    ) -> ErlPeer:
        args: tuple[str, ...] = ()
        if tls:
            server = server or pki.node_b
            optfile = erl_optfile(
                tmp_path / f"dist{len(peers)}.conf", server, client, cafile or pki.cafile
            )
            args = ("-proto_dist", "inet_tls", "-ssl_dist_optfile", optfile)
        peer = await ErlPeer.start(
            f"erl{len(peers)}@127.0.0.1",
            COOKIE,
            env={"ERL_EPMD_PORT": str(epmd_port)},
            extra_args=args,
        )
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        if peer.proc.stdin is not None:
            peer.proc.stdin.close()  # closes our end of the pipe now, not at collection
        await peer.stop()


def tls(pair: Pair, cafile: str) -> TlsConfig:
    return TlsConfig(certfile=pair.certfile, keyfile=pair.keyfile, cafile=cafile)


def logged(caplog: pytest.LogCaptureFixture, *parts: str) -> bool:
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return any(all(p in line for p in parts) for line in lines)


async def test_ping_and_messages_both_ways_over_tls(
    make_node: NodeFactory, tls_erl: ErlFactory, pki: Pki
) -> None:
    """Python and erl -proto_dist inet_tls ping and message each other both ways over
    mutual TLS, and Erlang's net_kernel reports the connection's protocol as tls."""
    erl = await tls_erl(client=pki.node_b)
    py = await make_node("py", tls=tls(pki.node_a, pki.cafile))
    inbox = py.register("inbox")
    assert await py.ping_result(erl.name, timeout=10) is None
    info = (
        f"element(4, proplists:get_value(address, element(2, net_kernel:node_info('{py.name}'))))"
    )
    assert await erl.eval(info) == "tls"
    await py.send(("nm_peer", erl.name), (inbox.pid, "from python"))
    got = await erl.eval(
        'receive {From, <<"from python">>} -> From ! {ok, self()}, yes after 5000 -> no end'
    )
    assert got == "yes"
    tag, erl_pid = await inbox.receive(timeout=5)
    assert tag == Atom("ok") and erl_pid.node == erl.name
    await py.disconnect(erl.name)
    await wait_for(lambda: not py.nodes(), what="disconnected")
    assert await erl.eval(f"net_adm:ping('{py.name}')") == "pong"
    await erl.eval(f"{{inbox, '{py.name}'}} ! <<\"from erlang\">>")
    assert await inbox.receive(timeout=5) == b"from erlang"


async def test_erlang_rejects_python_certificate_from_an_unknown_ca(
    make_node: NodeFactory, tls_erl: ErlFactory, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """erl trusting another CA refuses Python's certificate both ways; Python's log says
    that erl rejected our certificate."""
    caplog.set_level(logging.WARNING, logger="nodemesh")
    erl = await tls_erl(client=pki.other_node, server=pki.other_node, cafile=pki.other_cafile)
    py = await make_node("py", tls=tls(pki.node_a, pki.other_cafile))
    reason = await py.ping_result(erl.name, timeout=10)
    assert reason is not None and f"{erl.name} rejected our certificate" in reason
    assert logged(caplog, f"TLS connection to {erl.name} failed", "rejected our certificate")
    assert await erl.eval(f"net_adm:ping('{py.name}')") == "pang"
    await wait_for(lambda: logged(caplog, "TLS connection from", "rejected our certificate"))


async def test_python_rejects_erlang_certificate_from_an_unknown_ca(
    make_node: NodeFactory,
    tls_erl: ErlFactory,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Python trusting another CA refuses erl's certificate as client and as server,
    and logs that it did."""
    caplog.set_level(logging.WARNING, logger="nodemesh")
    # erl accepts Python's certificate, but not the reverse.
    erl = await tls_erl(client=pki.node_b, cafile=pki.both_cafile)
    py = await make_node("py", tls=tls(pki.other_node, pki.other_cafile))
    reason = await py.ping_result(erl.name, timeout=10)
    assert reason is not None and f"we rejected the certificate of {erl.name}" in reason
    assert await erl.eval(f"net_adm:ping('{py.name}')") == "pang"
    await wait_for(lambda: logged(caplog, "TLS connection from", "we rejected the certificate"))
    assert py.nodes() == []


async def test_erlang_without_client_certificate_is_refused(
    make_node: NodeFactory, tls_erl: ErlFactory, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """An erl that dials without a client certificate is refused by Python (verify_peer,
    fail_if_no_peer_cert), which logs that the peer sent none."""
    caplog.set_level(logging.WARNING, logger="nodemesh")
    erl = await tls_erl(client=None)
    py = await make_node("py", tls=tls(pki.node_a, pki.cafile))
    assert await erl.eval(f"net_adm:ping('{py.name}')") == "pang"
    await wait_for(lambda: logged(caplog, "sent no client certificate"))
    assert py.nodes() == []
    assert await py.ping_result(erl.name, timeout=10) is None  # the other way round is fine


async def test_plain_tcp_refused_both_ways(
    make_node: NodeFactory, tls_erl: ErlFactory, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """A TLS Python node refuses a plain erl and says so; a TLS erl refuses a plain
    Python node, whose error mentions TLS; a plain Python node names a TLS dialer."""
    caplog.set_level(logging.WARNING, logger="nodemesh")
    plain_erl = await tls_erl(tls=False)
    tls_py = await make_node("tlspy", tls=tls(pki.node_a, pki.cafile))
    assert await plain_erl.eval(f"net_adm:ping('{tls_py.name}')") == "pang"
    await wait_for(lambda: logged(caplog, "does not speak TLS", "this node requires TLS"))
    tls_erl_node = await tls_erl(client=pki.node_b)
    plain_py = await make_node("plainpy")
    reason = await plain_py.ping_result(tls_erl_node.name, timeout=10)
    assert reason is not None and "TLS" in reason
    assert await tls_erl_node.eval(f"net_adm:ping('{plain_py.name}')") == "pang"
    await wait_for(lambda: logged(caplog, "the peer speaks TLS", "give this node a TlsConfig"))


async def test_large_messages_span_many_tls_records(
    make_node: NodeFactory, tls_erl: ErlFactory, pki: Pki
) -> None:
    """A 3 MB message (many 16 KB TLS records) crosses intact both ways."""
    erl = await tls_erl(client=pki.node_b)
    py = await make_node("py", tls=tls(pki.node_a, pki.cafile))
    inbox = py.register("inbox")
    big = bytes(range(256)) * (3 * 4096)
    await py.send(("nm_peer", erl.name), (inbox.pid, big))
    echo = (
        "receive {From, Bin} -> From ! {erlang:md5(Bin), Bin}, byte_size(Bin) after 5000 -> 0 end"
    )
    assert await erl.eval(echo) == str(len(big))
    digest, back = await inbox.receive(timeout=10)
    assert back == big and digest == hashlib.md5(big).digest()
