"""Test certificates made at test time with ``cryptography``: CAs, node certificates.

Run as a script (``python tests/support/certs.py DIR``) it writes them to DIR.

``make_pki(directory)`` writes a CA, two node certificates it signs (subjectAltName
127.0.0.1 and localhost, usable as server and client), a second unrelated CA with a
node certificate of its own, an expired node certificate and one naming another host.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Pair", "Pki", "erl_optfile", "make_ca", "make_node_cert", "make_pki"]

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path


@dataclass(frozen=True)
class Pair:
    """A node certificate and its key (PEM files)."""

    certfile: str
    keyfile: str


@dataclass(frozen=True)
class Pki:
    cafile: str
    node_a: Pair
    node_b: Pair
    other_cafile: str  # a CA that signed none of the above
    both_cafile: str  # both CAs in one bundle
    other_node: Pair  # signed by the other CA
    expired: Pair  # signed by the CA, expired yesterday
    wrong_name: Pair  # signed by the CA, names only otherhost.example


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(directory: Path, name: str) -> Issuer:
    """A self-signed CA, written to ``<name>.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issuer(cert, key, path)


def make_node_cert(
    directory: Path,
    name: str,
    issuer: Issuer,
    *,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    ip_as_dns: bool = True,
) -> Pair:
    """A certificate for a node (server and client use), signed by ``issuer``;
    ``ip_as_dns=False`` names IP hosts as IP addresses only."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        # An IP as a dNSName too: OTP 25's inet_tls_dist client checks the host of the
        # node name as a dns_id only (ssl_certificate:verify_hostname), Python as an IP.
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
        else:
            if ip_as_dns:
                names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 90 * DAY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    certfile = directory / f"{name}.crt"
    keyfile = directory / f"{name}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyfile.chmod(0o600)
    return Pair(str(certfile), str(keyfile))


def make_pki(directory: Path) -> Pki:
    """Every certificate the TLS tests use, written under ``directory``."""
    ca = make_ca(directory, "ca")
    other = make_ca(directory, "other-ca")
    both = directory / "both-cas.pem"
    both.write_bytes(ca.path.read_bytes() + other.path.read_bytes())
    return Pki(
        cafile=str(ca.path),
        both_cafile=str(both),
        node_a=make_node_cert(directory, "node-a", ca),
        node_b=make_node_cert(directory, "node-b", ca),
        other_cafile=str(other.path),
        other_node=make_node_cert(directory, "other-node", other),
        expired=make_node_cert(
            directory, "expired", ca, not_before=NOW - 30 * DAY, not_after=NOW - DAY
        ),
        wrong_name=make_node_cert(directory, "wrong-name", ca, hosts=("otherhost.example",)),
    )


def erl_optfile(
    path: Path, server: Pair, client: Pair | None, cafile: str, *, verify: bool = True
) -> str:
    """Write an ``-ssl_dist_optfile`` for ``erl -proto_dist inet_tls``: ``server`` as the
    certificate it accepts with, ``client`` as the one it dials with (None: none),
    ``cafile`` trusted; with ``verify``, verify_peer both ways and fail_if_no_peer_cert."""

    def opts(role: str, pair: Pair | None) -> str:
        items = [f'{{cacertfile, "{cafile}"}}']
        if pair is not None:
            items += [f'{{certfile, "{pair.certfile}"}}', f'{{keyfile, "{pair.keyfile}"}}']
        items.append("{verify, verify_peer}" if verify else "{verify, verify_none}")
        if role == "server" and verify:
            items.append("{fail_if_no_peer_cert, true}")
        return f"{{{role}, [{', '.join(items)}]}}"

    path.write_text(f"[{opts('server', server)},\n {opts('client', client)}].\n")
    return str(path)


if __name__ == "__main__":
    import sys

    print(make_pki(Path(sys.argv[1])))
