"""TLS distribution, as Erlang's ``-proto_dist inet_tls``: settings and SSL contexts.

What OTP 25's ``ssl/src/inet_tls_dist.erl`` does, and nodemesh does alike:

- EPMD stays plain TCP; only the distribution port speaks TLS.
- TLS starts right after the TCP connect (``ssl:connect`` / ``ssl:handshake`` on the
  accepted socket) and the distribution handshake runs inside it.
- The socket is ``{packet, 4}`` from the start: the handshake messages carry 4-byte
  lengths, not the 2-byte ones of plain TCP (``dist.handshake``'s ``prefix_width=4``).
- The client passes ``{server_name_indication, Host}``, the host part of the node name,
  so a client that verifies checks the server's certificate against that name.
- Options come from ``-ssl_dist_optfile`` with ``server_``/``client_`` prefixes:
  ``certfile``, ``keyfile``, ``cacertfile``, ``verify``, ``fail_if_no_peer_cert``.
  Unless ``versions`` is set, ``dist_defaults/1`` limits both sides to TLS 1.2.

A node with :class:`TlsConfig` speaks only TLS on its distribution port and dials only
with TLS: a plain-TCP peer fails the TLS handshake and is refused (and logged).
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass

from nodemesh.errors import ConfigError

__all__ = [
    "TlsConfig",
    "TlsContexts",
    "describe_tls_failure",
    "tls_config_from",
    "tls_dial_lost",
]

log = logging.getLogger("nodemesh.node")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Certificates for TLS distribution (Erlang's ``ssl_dist_optfile`` names).

    ``certfile``: this node's certificate chain (PEM), used as server and as client;
    ``keyfile``: its private key (None: in ``certfile``); ``cafile``: the CA bundle peers'
    certificates must chain to (None: the system's). ``verify`` (default True) is
    ``verify_peer`` on both sides, and the server requires a client certificate
    (``fail_if_no_peer_cert``); False accepts any certificate (tests only: it gives up
    authentication). ``check_server_name``: the client checks that the server's
    certificate names the host of the node it dials (a DNS or IP subjectAltName).
    """

    certfile: str
    keyfile: str | None = None
    cafile: str | None = None
    verify: bool = True
    check_server_name: bool = True

    def __post_init__(self) -> None:
        for name in ("certfile", "keyfile", "cafile"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"TLS {name} must be a file path, got {value!r}")
        if self.certfile is None:
            raise ConfigError("TLS needs a certfile: this node's certificate")

    def server_context(self) -> ssl.SSLContext:
        """A fresh server context (files read now). Raises ConfigError naming the file."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._load(ctx, ssl.Purpose.CLIENT_AUTH)
        # verify_peer + fail_if_no_peer_cert: a client without a certificate is refused.
        ctx.verify_mode = ssl.CERT_REQUIRED if self.verify else ssl.CERT_NONE
        # No TLS 1.3 session tickets: distribution connections are long-lived and never
        # resumed, and the tickets the server sends after the handshake stalled a Python
        # client's first read by ~45 ms (connection set-up 60 -> 15 ms, bench/tls.py).
        ctx.num_tickets = 0
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A fresh client context (files read now). Raises ConfigError naming the file."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._load(ctx, ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = self.verify and self.check_server_name
        ctx.verify_mode = ssl.CERT_REQUIRED if self.verify else ssl.CERT_NONE
        return ctx

    def _load(self, ctx: ssl.SSLContext, purpose: ssl.Purpose) -> None:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # what Erlang's dist_defaults speaks
        try:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load TLS certfile {self.certfile}"
                f"{f' with keyfile {self.keyfile}' if self.keyfile else ''}: {_reason(exc)}"
            ) from exc
        if not self.verify:
            return
        try:
            if self.cafile is None:
                ctx.load_default_certs(purpose)
            else:
                ctx.load_verify_locations(cafile=self.cafile)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load TLS cafile {self.cafile}: {_reason(exc)}") from exc

    def files(self) -> tuple[str, ...]:
        """The files this configuration reads."""
        return tuple(f for f in (self.certfile, self.keyfile, self.cafile) if f is not None)


ENV_CERTFILE = "NODEMESH_TLS_CERTFILE"
ENV_KEYFILE = "NODEMESH_TLS_KEYFILE"
ENV_CAFILE = "NODEMESH_TLS_CAFILE"


def tls_config_from(
    certfile: str | None,
    keyfile: str | None,
    cafile: str | None,
    environ: dict[str, str] | os._Environ[str] | None = None,
) -> TlsConfig | None:
    """A TlsConfig from explicit paths, else ``$NODEMESH_TLS_CERTFILE``, ``..._KEYFILE``,
    ``..._CAFILE``; None when no certfile is given (plain TCP). Raises ConfigError when
    a keyfile or cafile comes without a certfile."""
    env = os.environ if environ is None else environ
    certfile = certfile or env.get(ENV_CERTFILE) or None
    keyfile = keyfile or env.get(ENV_KEYFILE) or None
    cafile = cafile or env.get(ENV_CAFILE) or None
    if certfile is None:
        if keyfile or cafile:
            raise ConfigError(
                f"a TLS keyfile or cafile without a certfile: give --tls-certfile "
                f"(or ${ENV_CERTFILE}) too"
            )
        return None
    return TlsConfig(certfile=certfile, keyfile=keyfile, cafile=cafile)


class TlsContexts:
    """The node's SSL contexts, rebuilt when a certificate file changes.

    Each new connection asks for a context; when a file's contents changed since the
    last build, the contexts are rebuilt first, so rotated
    certificates (a Kubernetes Secret update swaps the mounted files) apply to new
    connections without a restart; established ones keep theirs. A rebuild that fails
    (say the key is updated but not yet the certificate) logs one warning and keeps the
    previous contexts until the files load again.
    """

    def __init__(self, config: TlsConfig) -> None:
        self.config = config
        self._stamp = self._stamps()
        self._broken: tuple[bytes | None, ...] | None = None
        self._server = config.server_context()  # ConfigError at node start: fail early
        self._client = config.client_context()

    def server(self) -> ssl.SSLContext:
        """The context for accepted connections."""
        self._refresh()
        return self._server

    def client(self) -> ssl.SSLContext:
        """The context for connections we dial."""
        self._refresh()
        return self._client

    def _stamps(self) -> tuple[bytes | None, ...]:
        # The contents, not the modification times: those tick in coarse steps (a few
        # ms), so a file rewritten in place right after a read could look unchanged.
        # Three small files per new connection cost little beside its TLS handshake.
        stamps: list[bytes | None] = []
        for path in self.config.files():
            try:
                with open(path, "rb") as f:
                    stamps.append(f.read())
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _refresh(self) -> None:
        stamp = self._stamps()
        if stamp == self._stamp or stamp == self._broken:
            return
        try:
            server, client = self.config.server_context(), self.config.client_context()
        except ConfigError as exc:
            self._broken = stamp  # one warning per broken state, not one per connection
            log.warning("TLS files changed but do not load (%s); keeping the previous ones", exc)
            return
        self._stamp, self._server, self._client = stamp, server, client
        log.info("TLS certificate files changed: new connections use them")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return _readable(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _readable(reason: str) -> str:
    """``TLSV1_ALERT_UNKNOWN_CA`` -> ``unknown ca``."""
    for prefix in ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"):
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
    return reason.lower().replace("_", " ")


# Alerts a peer sends when it does not accept the certificate we showed it.
_CERT_ALERTS = frozenset(
    {
        "BAD_CERTIFICATE",
        "UNKNOWN_CA",
        "CERTIFICATE_EXPIRED",
        "CERTIFICATE_REVOKED",
        "CERTIFICATE_UNKNOWN",
        "UNSUPPORTED_CERTIFICATE",
        "CERTIFICATE_REQUIRED",
        "ACCESS_DENIED",
        "DECRYPT_ERROR",
    }
)
# What OpenSSL says when the peer's first bytes are no TLS record.
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"})


def describe_tls_failure(exc: BaseException, *, peer: str, we_dialed: bool) -> str:
    """One sentence saying which side rejected whom in a failed TLS handshake.

    ``peer`` names the other side (a node name, or ``address:port`` for an accepted
    socket); ``we_dialed`` tells whether we were the TLS client.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or _reason(exc)
        return f"we rejected the certificate of {peer}: {why}"
    reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else ""
    alert = reason.split("ALERT_", 1)[1] if "ALERT_" in reason else ""
    if alert in _CERT_ALERTS:
        return f"{peer} rejected our certificate (TLS alert: {_readable(reason)})"
    if alert:
        return f"{peer} ended the TLS handshake (TLS alert: {_readable(reason)})"
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return f"{peer} sent no client certificate; this node requires one (verify_peer)"
    if reason in _NOT_TLS:
        if we_dialed:
            return f"{peer} did not answer in TLS: it runs plain TCP distribution"
        return f"{peer} does not speak TLS (plain TCP distribution?); this node requires TLS"
    if isinstance(exc, TimeoutError):
        return f"the TLS handshake with {peer} did not complete in time"
    if (
        isinstance(exc, ssl.SSLEOFError | ConnectionError)
        or reason == "UNEXPECTED_EOF_WHILE_READING"
    ):
        side = "our certificate or our TLS settings" if we_dialed else "our certificate"
        return (
            f"{peer} closed the connection during the TLS handshake: it probably rejected "
            f"{side}, or does not speak TLS; its log says which"
        )
    return f"TLS handshake with {peer} failed: {_reason(exc)}"


def tls_dial_lost(exc: BaseException | None, *, peer: str, before_answer: bool) -> str | None:
    """Why a TLS connection we dialed closed during the distribution handshake, when
    TLS explains it (None otherwise). Over TLS 1.3 a server that rejects our certificate
    says so after our side of the TLS handshake is done: with an alert (OpenSSL peers,
    Erlang) or by closing before answering our name (asyncio peers send no alert)."""
    if isinstance(exc, ssl.SSLError):
        return describe_tls_failure(exc, peer=peer, we_dialed=True)
    if before_answer:
        return (
            f"{peer} closed the TLS connection before answering our name: it most likely "
            "rejected our certificate; its log says why"
        )
    return None
