"""Doctor checks for TLS distribution: the certificate files, and TLS to a peer.

The files are read with ``cryptography`` for what a person needs to be told (expiry,
names, key, usage); the chain is checked by OpenSSL itself, in memory: the node's own
certificate is shown to a client context that trusts ``cafile``, as a peer would see it.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from nodemesh.dist.names import NodeName
from nodemesh.doctor.result import CheckResult
from nodemesh.errors import ConfigError
from nodemesh.runtime.tls import TlsConfig, describe_tls_failure

__all__ = ["check_tls_files", "open_tls"]

EXPIRY_WARNING = datetime.timedelta(days=30)
_FIX_FILES = "see docs/tls.md, 'Making the certificates'"


def check_tls_files(
    tls: TlsConfig, own: NodeName | None, now: datetime.datetime | None = None
) -> list[CheckResult]:
    """Check this node's certificate: readable, key matches, valid now, names the host
    of ``own``, usable as server and client, chains to ``cafile``."""
    now = now or datetime.datetime.now(datetime.UTC)
    check = f"TLS certificate {tls.certfile}"
    try:
        with open(tls.certfile, "rb") as f:
            chain = x509.load_pem_x509_certificates(f.read())
    except (OSError, ValueError) as exc:
        return [CheckResult.fail(check, f"cannot read it: {exc}", _FIX_FILES)]
    cert = chain[0]
    results = [_key(tls, cert), _validity(check, cert, now)]
    if own is not None:
        results.append(_names(check, cert, own.host))
    results.append(_usage(check, cert))
    results.append(_chain(tls, own))
    return results


def _key(tls: TlsConfig, cert: x509.Certificate) -> CheckResult:
    path = tls.keyfile or tls.certfile
    check = f"TLS key {path}"
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        return CheckResult.fail(check, f"cannot read a private key: {exc}", _FIX_FILES)
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        return CheckResult.fail(
            check,
            "the key does not belong to the certificate",
            "pair each certificate with its key",
        )
    return CheckResult.ok(check, "matches the certificate")


def _validity(check: str, cert: x509.Certificate, now: datetime.datetime) -> CheckResult:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    renew = "issue a new certificate and rotate it (docs/tls.md, 'Rotating')"
    if now < start:
        return CheckResult.fail(check, f"not valid before {start:%Y-%m-%d %H:%M} UTC", renew)
    if now > end:
        return CheckResult.fail(
            check, f"expired on {end:%Y-%m-%d %H:%M} UTC: peers reject it", renew
        )
    left = end - now
    if left < EXPIRY_WARNING:
        return CheckResult.warn(check, f"expires in {left.days} days ({end:%Y-%m-%d})", renew)
    return CheckResult.ok(check, f"valid until {end:%Y-%m-%d} ({left.days} days)")


def _names(check: str, cert: x509.Certificate, host: str) -> CheckResult:
    """Peers dialing us check our certificate against the host of our node name."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return CheckResult.fail(
            check, "has no subjectAltName: peers cannot match it to our host", _FIX_FILES
        )
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if any(_dns_match(pattern, host) for pattern in dns):
            return CheckResult.ok(check, f"names {host}")
        return CheckResult.fail(
            check, f"does not name {host} (DNS names: {', '.join(dns) or 'none'})", _FIX_FILES
        )
    if host in ips and host in dns:
        return CheckResult.ok(check, f"names {host} (as an IP and as a DNS name)")
    if host in ips:
        # ssl_certificate:verify_hostname in OTP 25 checks the SNI string as a dns_id.
        return CheckResult.warn(
            check,
            f"names {host} as an IP address only: Erlang (OTP 25) peers check it as a DNS name",
            f"add DNS:{host} to the subjectAltName too",
        )
    return CheckResult.fail(
        check, f"does not name {host} (IP addresses: {', '.join(ips) or 'none'})", _FIX_FILES
    )


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        return "." in host and host.split(".", 1)[1] == pattern[2:]
    return pattern == host


def _usage(check: str, cert: x509.Certificate) -> CheckResult:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return CheckResult.ok(check, "no extended key usage: usable as server and client")
    missing = [
        what
        for what, oid in (
            ("serverAuth", ExtendedKeyUsageOID.SERVER_AUTH),
            ("clientAuth", ExtendedKeyUsageOID.CLIENT_AUTH),
        )
        if oid not in usage
    ]
    if missing:
        return CheckResult.fail(
            check,
            f"extended key usage lacks {' and '.join(missing)}: every node is a TLS server "
            "and a TLS client",
            "issue it with extendedKeyUsage = serverAuth, clientAuth",
        )
    return CheckResult.ok(check, "usable as server and client")


def _chain(tls: TlsConfig, own: NodeName | None) -> CheckResult:
    """Show our certificate to a client that trusts ``cafile``, in memory."""
    check = f"TLS chain to {tls.cafile or 'the system CAs'}"
    try:
        server, client = tls.server_context(), tls.client_context()
    except ConfigError as exc:
        return CheckResult.fail(check, str(exc), _FIX_FILES)
    client.check_hostname = False  # names are checked above, with a clearer message
    error = _memory_handshake(server, client, own.host if own is not None else None)
    if error is not None:
        return CheckResult.fail(
            check,
            describe_tls_failure(error, peer="this node", we_dialed=True).replace(
                "we rejected the certificate of this node", "a peer trusting the cafile rejects it"
            ),
            "give every node a certificate signed by a CA in every node's cafile",
        )
    return CheckResult.ok(check, "a peer trusting the cafile accepts this certificate")


def _memory_handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, host: str | None
) -> ssl.SSLError | None:
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_hostname=host)
    done = {"s": False, "c": False}
    for _ in range(20):
        for name, obj, out, peer_in in (("c", c, c_out, s_in), ("s", s, s_out, c_in)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as exc:
                    return exc
            peer_in.write(out.read())
        if done["s"] and done["c"]:
            return None
    return ssl.SSLError("the in-memory TLS handshake did not finish")


async def open_tls(
    host: str, port: int, peer: str, tls: TlsConfig, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | CheckResult:
    """Open TLS to ``peer``'s distribution port as a node would; a CheckResult saying
    who rejected whom if the TLS handshake fails. Raises OSError when the TCP connect
    itself fails, and TimeoutError after ``timeout`` seconds."""
    check = f"TLS with {peer}"
    try:
        ctx = tls.client_context()
    except ConfigError as exc:
        return CheckResult.fail(check, str(exc), _FIX_FILES)
    try:
        return await asyncio.open_connection(
            host, port, ssl=ctx, server_hostname=host, ssl_handshake_timeout=timeout
        )
    except (ssl.SSLError, ConnectionResetError) as exc:
        return CheckResult.fail(
            check,
            describe_tls_failure(exc, peer=peer, we_dialed=True),
            "both nodes need certificates signed by a CA the other trusts, naming their "
            "hosts; the peer's log says why it refused, if it did",
        )
