"""Doctor's TLS checks: the certificate files, and TLS to a running TLS node."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh import TlsConfig
from nodemesh.dist.names import parse_node_name
from nodemesh.doctor.network import probe_peer
from nodemesh.doctor.result import CheckResult, Status
from nodemesh.doctor.tls import check_tls_files
from support.certs import Pair, Pki, make_ca, make_node_cert, make_pki

OWN = parse_node_name("doctor@127.0.0.1")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Test certificates: a CA, node certificates, another CA, bad certificates."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls(pair: Pair, cafile: str, keyfile: str | None = None) -> TlsConfig:
    return TlsConfig(pair.certfile, keyfile or pair.keyfile, cafile)


def failed(results: list[CheckResult]) -> list[str]:
    return [f"{r.check}: {r.detail}" for r in results if r.status is not Status.PASS]


def test_good_certificate_passes_every_check(pki: Pki) -> None:
    """A certificate from the CA, naming the host, with its key: all PASS."""
    results = check_tls_files(tls(pki.node_a, pki.cafile), OWN)
    assert failed(results) == [] and len(results) == 5


@pytest.mark.parametrize(
    ("which", "cafile", "keyfile", "complaint"),
    [
        ("expired", "cafile", None, "expired on"),
        ("wrong_name", "cafile", None, "does not name 127.0.0.1"),
        ("node_a", "other_cafile", None, "a peer trusting the cafile rejects it"),
        ("node_a", "cafile", "node_b", "the key does not belong to the certificate"),
    ],
)
def test_bad_certificates_fail_with_the_reason(
    pki: Pki, which: str, cafile: str, keyfile: str | None, complaint: str
) -> None:
    """Expired, misnamed, unknown to the cafile, or paired with another key: a FAIL
    line that says which."""
    key = getattr(pki, keyfile).keyfile if keyfile else None
    results = check_tls_files(tls(getattr(pki, which), getattr(pki, cafile), key), OWN)
    fails = [f"{r.detail}" for r in results if r.status is Status.FAIL]
    assert any(complaint in line for line in fails), fails


def test_ip_only_name_and_near_expiry_are_warnings(tmp_path: Path) -> None:
    """An IP named only as an IP address (OTP 25 peers check it as a DNS name) and a
    certificate expiring within 30 days are warnings."""
    ca = make_ca(tmp_path, "ca")
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=5)
    pair = make_node_cert(tmp_path, "n", ca, not_after=soon, ip_as_dns=False)
    results = check_tls_files(TlsConfig(pair.certfile, pair.keyfile, str(ca.path)), OWN)
    warned = [r for r in results if r.status is Status.WARN]
    assert any("expires in 4 days" in r.detail for r in warned), warned
    assert any("as an IP address only" in r.detail and "DNS:127.0.0.1" in r.fix for r in warned)
    assert not [r for r in results if r.status is Status.FAIL]


async def test_probe_peer_in_tls_says_who_rejected_whom(
    make_node: NodeFactory, epmd_port: int, pki: Pki
) -> None:
    """Probing a TLS node: TLS and cookie PASS with the right CA; with another CA the
    TLS line FAILs saying we rejected its certificate."""
    node = await make_node("tlsnode", tls=tls(pki.node_b, pki.cafile))
    good = await probe_peer(
        node.name,
        own=OWN,
        cookie=COOKIE,
        epmd_port=epmd_port,
        timeout=5,
        tls=tls(pki.node_a, pki.cafile),
    )
    assert failed(good) == []
    assert any(r.check == f"TLS with {node.name}" for r in good)
    bad = await probe_peer(
        node.name,
        own=OWN,
        cookie=COOKIE,
        epmd_port=epmd_port,
        timeout=5,
        tls=tls(pki.other_node, pki.other_cafile),
    )
    assert f"we rejected the certificate of {node.name}" in bad[-1].detail
    assert bad[-1].status is Status.FAIL
    refused = await probe_peer(
        node.name,
        own=OWN,
        cookie=COOKIE,
        epmd_port=epmd_port,
        timeout=5,
        tls=tls(pki.other_node, pki.cafile),
    )
    assert refused[-1].status is Status.FAIL and "rejected our certificate" in refused[-1].detail
