"""TLS distribution between Python nodes: mutual TLS, who rejected whom, plain refused."""

from __future__ import annotations

import logging
import shutil
import ssl
from pathlib import Path

import pytest

from conftest import NodeFactory
from nodemesh import ConfigError, Node, NodeConfig, TlsConfig
from nodemesh.runtime.tls import TlsContexts, describe_tls_failure, tls_config_from
from support.certs import Pair, Pki, make_pki
from support.net import wait_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, node certificates, another CA, an expired and a wrongly named certificate."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls(pair: Pair, cafile: str) -> TlsConfig:
    return TlsConfig(certfile=pair.certfile, keyfile=pair.keyfile, cafile=cafile)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def logged(caplog: pytest.LogCaptureFixture, *parts: str) -> bool:
    return any(all(p in line for p in parts) for line in warnings(caplog))


async def test_mutual_tls_ping_and_messages_both_ways(make_node: NodeFactory, pki: Pki) -> None:
    """Two TLS nodes connect, ping and exchange messages in both directions over TLS."""
    a = await make_node("a", tls=tls(pki.node_a, pki.cafile))
    b = await make_node("b", tls=tls(pki.node_b, pki.cafile))
    inbox_a, inbox_b = a.register("inbox"), b.register("inbox")
    assert await a.ping_result(b.name) is None
    await a.send(("inbox", b.name), ("hello", inbox_a.pid))
    text, sender = await inbox_b.receive(timeout=5)
    assert text == b"hello"
    await b.send(sender, "back")
    assert await inbox_a.receive(timeout=5) == b"back"
    assert a.nodes() == [b.name] and b.nodes() == [a.name]


async def test_server_certificate_from_an_unknown_ca_is_rejected_by_the_client(
    make_node: NodeFactory, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """The dialing node rejects a server certificate its CA did not sign, and says so."""
    caplog.set_level(logging.WARNING, logger="nodemesh")
    a = await make_node("a", tls=tls(pki.node_a, pki.cafile))
    x = await make_node("x", tls=tls(pki.other_node, pki.other_cafile))
    reason = await a.ping_result(x.name, timeout=5)
    assert reason is not None and "we rejected the certificate of x@127.0.0.1" in reason
    assert logged(caplog, "TLS connection to x@127.0.0.1 failed", "we rejected the certificate")
    assert a.nodes() == [] and x.nodes() == []


async def test_client_certificate_from_an_unknown_ca_is_rejected_by_the_server(
    make_node: NodeFactory, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """A server refuses a client certificate its CA did not sign; both sides log who
    rejected whom (over TLS 1.3 the client learns it after its own handshake)."""
    caplog.set_level(logging.WARNING, logger="nodemesh")
    b = await make_node("b", tls=tls(pki.node_b, pki.cafile))
    # Trusts b's CA, but shows a certificate from another one.
    x = await make_node("x", tls=tls(pki.other_node, pki.cafile))
    reason = await x.ping_result(b.name, timeout=5)
    assert reason is not None and "rejected our certificate" in reason
    await wait_for(lambda: logged(caplog, "TLS connection from", "we rejected the certificate"))
    assert b.nodes() == []


@pytest.mark.parametrize(
    ("which", "complaint"),
    [("expired", "certificate has expired"), ("wrong_name", "mismatch")],
)
async def test_expired_or_misnamed_server_certificate_is_rejected(
    make_node: NodeFactory, pki: Pki, which: str, complaint: str
) -> None:
    """The client refuses an expired server certificate, and one naming another host."""
    a = await make_node("a", tls=tls(pki.node_a, pki.cafile))
    bad = await make_node("bad", tls=tls(getattr(pki, which), pki.cafile))
    reason = await a.ping_result(bad.name, timeout=5)
    assert reason is not None
    assert "we rejected the certificate of bad@127.0.0.1" in reason and complaint in reason


async def test_tls_node_refuses_plain_tcp_and_keeps_its_connections(
    make_node: NodeFactory, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """A TLS node refuses a plain-TCP peer in one log line, keeps its TLS peers, and a
    TLS node cannot dial a plain one either."""
    caplog.set_level(logging.WARNING, logger="nodemesh")
    a = await make_node("a", tls=tls(pki.node_a, pki.cafile))
    b = await make_node("b", tls=tls(pki.node_b, pki.cafile))
    plain = await make_node("plain")
    assert await a.ping(b.name)
    reason = await plain.ping_result(a.name, timeout=5)
    assert reason is not None and "TLS" in reason
    await wait_for(lambda: logged(caplog, "does not speak TLS", "this node requires TLS"))
    assert await a.ping_result(plain.name, timeout=5) is not None
    assert a.nodes() == [b.name] and plain.nodes() == []
    assert await a.ping(b.name)


async def test_rotated_certificate_files_apply_to_new_connections(
    make_node: NodeFactory, pki: Pki, tmp_path: Path
) -> None:
    """Replacing the certificate files (as a Secret update does) takes effect for the
    next connection, without restarting the node."""
    certfile, keyfile = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.expired.certfile, certfile)
    shutil.copy(pki.expired.keyfile, keyfile)
    a = await make_node("a", tls=tls(pki.node_a, pki.cafile))
    b = await make_node("b", tls=TlsConfig(str(certfile), str(keyfile), pki.cafile))
    reason = await a.ping_result(b.name, timeout=5)
    assert reason is not None and "expired" in reason
    # The way kubelet swaps a Secret: new files, then an atomic rename.
    for src, dst in ((pki.node_b.certfile, certfile), (pki.node_b.keyfile, keyfile)):
        shutil.copy(src, tmp_path / "new")
        (tmp_path / "new").rename(dst)
    a2 = await make_node("a2", tls=tls(pki.node_a, pki.cafile))  # no retry delay
    assert await a2.ping_result(b.name, timeout=5) is None


async def test_unreadable_certificate_fails_start_naming_the_file(pki: Pki, tmp_path: Path) -> None:
    """Node.start() raises ConfigError naming a missing certfile or a key that does not
    match the certificate."""
    missing = TlsConfig(str(tmp_path / "none.crt"), pki.node_a.keyfile, pki.cafile)
    with pytest.raises(ConfigError, match=r"none\.crt"):
        await Node("a@127.0.0.1", "c", config=NodeConfig(tls=missing)).start()
    mismatched = TlsConfig(pki.node_a.certfile, pki.node_b.keyfile, pki.cafile)
    with pytest.raises(ConfigError, match=r"node-a\.crt"):
        TlsContexts(mismatched)


def test_tls_config_from_options_and_environment(pki: Pki) -> None:
    """Explicit paths win over NODEMESH_TLS_*; no certfile means plain TCP; a cafile
    without a certfile is a ConfigError."""
    env = {"NODEMESH_TLS_CERTFILE": "/e.crt", "NODEMESH_TLS_CAFILE": "/ca.pem"}
    assert tls_config_from(None, None, None, env) == TlsConfig("/e.crt", None, "/ca.pem")
    assert tls_config_from("/x.crt", "/x.key", None, env) == TlsConfig(
        "/x.crt", "/x.key", "/ca.pem"
    )
    assert tls_config_from(None, None, None, {}) is None
    with pytest.raises(ConfigError, match="without a certfile"):
        tls_config_from(None, None, "/ca.pem", {})
    with pytest.raises(ConfigError, match="tls must be a TlsConfig"):
        NodeConfig(tls="cert.pem")  # type: ignore[arg-type]


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason  # type: ignore[misc]
    return exc


@pytest.mark.parametrize(
    ("exc", "dialed", "expected"),
    [
        (
            _ssl_error("TLSV1_ALERT_UNKNOWN_CA"),
            True,
            "p rejected our certificate (TLS alert: unknown ca)",
        ),
        (_ssl_error("SSLV3_ALERT_CERTIFICATE_EXPIRED"), False, "p rejected our certificate"),
        (_ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED"), True, "p rejected our certificate"),
        (_ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE"), True, "p ended the TLS handshake"),
        (_ssl_error("PEER_DID_NOT_RETURN_A_CERTIFICATE"), False, "p sent no client certificate"),
        (_ssl_error("WRONG_VERSION_NUMBER"), False, "p does not speak TLS"),
        (_ssl_error("WRONG_VERSION_NUMBER"), True, "p did not answer in TLS"),
        (ConnectionResetError(), True, "p closed the connection during the TLS handshake"),
    ],
)
def test_describe_tls_failure_names_who_rejected_whom(
    exc: BaseException, dialed: bool, expected: str
) -> None:
    """Each OpenSSL failure becomes a sentence saying which side refused which."""
    assert expected in describe_tls_failure(exc, peer="p", we_dialed=dialed)


def test_half_rotated_files_keep_the_previous_contexts(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate replaced before its key (files caught mid-rotation) logs one
    warning and keeps the contexts that loaded; once both match, new ones are built."""
    certfile, keyfile = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.node_a.certfile, certfile)
    shutil.copy(pki.node_a.keyfile, keyfile)
    contexts = TlsContexts(TlsConfig(str(certfile), str(keyfile), pki.cafile))
    before = contexts.server()
    shutil.copy(pki.node_b.certfile, certfile)
    with caplog.at_level(logging.WARNING, logger="nodemesh"):
        assert contexts.server() is before
        assert contexts.client() is not None  # the same broken files: no second warning
    assert len([line for line in warnings(caplog) if "do not load" in line]) == 1
    shutil.copy(pki.node_b.keyfile, keyfile)
    assert contexts.server() is not before


async def test_a_burst_over_tls_arrives_whole_and_in_order(
    make_node: NodeFactory, pki: Pki
) -> None:
    """Frames written in one loop iteration share TLS records: a burst of small and
    large messages sent without yielding arrives complete and in order."""
    a = await make_node("a", tls=tls(pki.node_a, pki.cafile))
    b = await make_node("b", tls=tls(pki.node_b, pki.cafile))
    inbox = b.register("inbox")
    assert await a.ping(b.name)
    big = b"y" * 200_000
    for i in range(3000):
        await a.send(("inbox", b.name), (i, big if i % 500 == 0 else b"x"))
    for i in range(3000):
        n, body = await inbox.receive(timeout=10)
        assert n == i and body == (big if i % 500 == 0 else b"x")
