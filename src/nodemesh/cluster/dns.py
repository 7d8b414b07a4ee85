"""DNS lookups for the DNS strategies, through dnspython's stub resolver.

Theory of operation
-------------------
libcluster asks Erlang's ``inet_res``, which follows ``/etc/resolv.conf``. So does this
module: it configures :class:`dns.asyncresolver.Resolver` from resolv.conf and turns its
answers into text and its failures into :class:`~nodemesh.errors.DiscoveryError`. Parsing
DNS messages from the network is dnspython's job, not ours; what is ours is reading the
answer the way libcluster reads it (addresses printed by Erlang's rules, SRV targets
without the final dot) and failing so that the cluster keeps what it has.

- **Configuration**: resolv.conf's ``search``/``domain``, ``ndots`` and ``nameserver``
  lines, read once, in a thread, on the first lookup. The ``nameservers`` given to
  :class:`Resolver` (``"127.0.0.1:5353"``) replace resolv.conf's; its search list still
  applies. ``timeout`` bounds one query to one server; a lookup gives up after
  ``timeout`` times the number of servers (dnspython's ``lifetime``).
- **Names are tried as the C library tries them** (dnspython's search, resolv.conf(5)): a
  name with a trailing dot as is; otherwise with each search domain appended, and as
  given — first when it has at least ``ndots`` dots, last otherwise. In a Kubernetes pod
  (``ndots:5``) ``myapp-headless`` is found as ``myapp-headless.<ns>.svc.cluster.local``.
  NXDOMAIN moves on to the next name; an answer without records of the type asked
  (NODATA) ends the search. CNAMEs are followed.
- **Transport** (dnspython): UDP with EDNS0 (1232-byte payload, the DNS flag day size)
  to each nameserver in turn; a truncated answer (TC) is asked again over TCP (RFC 7766).
  Datagrams that do not answer the query (another ID or question) are ignored.
- **Failures** are a :class:`~nodemesh.errors.DiscoveryError` naming the name, the
  record type and the server(s): NXDOMAIN for every name tried, no records, a timeout, a
  refused or unreachable server, a malformed answer — and a truncated answer whose TCP
  retry fails (a firewall that lets only UDP port 53 through). A partial answer is never
  used: the cluster runner keeps its last good list on a DiscoveryError, so it prunes
  nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from nodemesh.errors import ConfigError, DiscoveryError

__all__ = [
    "DEFAULT_RESOLV_CONF",
    "Family",
    "Lookup",
    "Nameserver",
    "Resolver",
    "erlang_ntoa",
    "parse_nameserver",
]

#: Which address records to ask for: A, AAAA, both, or AAAA only when there is no A.
Family = Literal["inet", "inet6", "any", "auto"]

DEFAULT_RESOLV_CONF = "/etc/resolv.conf"
_EDNS_PAYLOAD = 1232  # DNS flag day 2020: no IP fragmentation on any usual path


@dataclass(frozen=True, slots=True)
class Nameserver:
    """A DNS server's address and port."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_nameserver(text: str) -> Nameserver:
    """``"10.0.0.10"``, ``"10.0.0.10:5353"``, ``"fd00::10"`` or ``"[fd00::10]:5353"``.

    Raises :class:`ConfigError` for anything that is not an IP address with an optional
    port (a nameserver is asked by address, as in resolv.conf).
    """
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"nameserver {text!r}: write an IPv6 address as [addr]:port")
            port = rest[1:]
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ConfigError(
            f"nameserver {text!r} must be an IP address with an optional port, "
            "e.g. '10.96.0.10', '127.0.0.1:5353' or '[fd00::10]:53'"
        ) from None
    if not 1 <= number <= 65535:
        raise ConfigError(f"nameserver {text!r}: port must be 1..65535")
    return Nameserver(host, number)


def erlang_ntoa(address: str | bytes) -> str:
    """An IP address (text, or 4 or 16 bytes) as Erlang's ``inet_parse:ntoa/1`` prints it.

    IPv6 is compressed as in RFC 5952, except that Erlang prints IPv4-compatible
    (``::1.2.3.4``) and IPv4-mapped (``::ffff:1.2.3.4``) addresses with a dotted tail
    (checked against OTP 25 on random addresses).
    """
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return str(ip)
    packed = ip.packed
    if packed[:10] == bytes(10) and packed[10:12] == b"\xff\xff":
        return f"::ffff:{ipaddress.IPv4Address(packed[12:])}"
    if packed[:12] == bytes(12) and int(ip) > 1:
        return f"::{ipaddress.IPv4Address(packed[12:])}"
    return ip.compressed


@dataclass(frozen=True, slots=True)
class Lookup:
    """An answered lookup: ``records`` as text (addresses in Erlang's form, SRV targets
    without the final dot), the absolute ``name`` that had them (after CNAMEs) and the
    ``server`` that answered."""

    name: str
    records: tuple[str, ...]
    server: str


class Resolver:
    """resolv.conf's search rules, UDP then TCP, CNAMEs followed (dnspython's resolver).

    ``nameservers`` replace resolv.conf's ``nameserver`` lines (``"127.0.0.1:5353"``);
    its ``search`` and ``ndots`` still apply. ``timeout`` (seconds) bounds each query
    to one server. resolv.conf is read on the first lookup, in a thread.
    """

    def __init__(
        self,
        nameservers: Iterable[str] = (),
        *,
        timeout: float = 5.0,
        resolv_conf: str = DEFAULT_RESOLV_CONF,
    ) -> None:
        self._explicit = tuple(parse_nameserver(s) for s in nameservers)
        self.timeout = timeout
        self.resolv_conf = resolv_conf
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._servers = ""

    async def addresses(self, name: str, family: Family) -> Lookup:
        """The IP addresses of ``name`` (A and/or AAAA records, see :data:`Family`).

        Raises :class:`DiscoveryError` when the lookup fails or finds no address.
        """
        first = "AAAA" if family == "inet6" else "A"
        found = await self.lookup(name, first)
        if family == "any" or (family == "auto" and not found.records):
            more = await self.lookup(found.name, "AAAA")  # the name the search settled on
            found = Lookup(found.name, found.records + more.records, found.server)
        if not found.records:
            kinds = {"inet": "A", "inet6": "AAAA"}.get(family, "A or AAAA")
            raise DiscoveryError(f"{found.name} has no {kinds} records (asked {found.server})")
        return found

    async def srv_targets(self, name: str) -> Lookup:
        """The targets of ``name``'s SRV records, without the final dot; targets ``.``
        ("no service", RFC 2782) are left out.

        Raises :class:`DiscoveryError` when the lookup fails or finds no SRV record.
        """
        found = await self.lookup(name, "SRV")
        if not found.records:
            raise DiscoveryError(f"{found.name} has no SRV records (asked {found.server})")
        return found

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        """The records of type ``rdtype`` for ``name`` after the search list and CNAMEs;
        empty when the name exists without such records.

        Raises :class:`DiscoveryError` when the lookup fails (see the module's docstring).
        """
        resolver = await self._configured()
        try:
            answer = await resolver.resolve(name, rdtype, search=True, raise_on_no_answer=False)
        except dns.exception.DNSException as exc:
            raise self._failure(name, rdtype, exc) from exc
        server = str(Nameserver(answer.nameserver or "?", answer.port or 53))
        return Lookup(answer.canonical_name.to_text(), _values(answer), server)

    async def _configured(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            self._resolver = await asyncio.to_thread(self._configure)
        return self._resolver

    def _configure(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        try:
            resolver.read_resolv_conf(self.resolv_conf)
        except dns.resolver.NoResolverConfiguration:
            pass  # no file, or no nameserver line: what was read (search, ndots) applies
        except (ValueError, dns.exception.DNSException) as exc:
            raise DiscoveryError(f"cannot use {self.resolv_conf}: {exc}") from exc
        if self._explicit:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in self._explicit
            ]
        if not resolver.nameservers:
            raise DiscoveryError(
                f"no nameserver to ask: {self.resolv_conf} lists none; set the option 'nameservers'"
            )
        resolver.use_edns(0, 0, _EDNS_PAYLOAD)
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout * len(resolver.nameservers)
        self._servers = ", ".join(_server_text(ns) for ns in resolver.nameservers)
        return resolver

    def _failure(self, name: str, rdtype: str, exc: dns.exception.DNSException) -> DiscoveryError:
        """What went wrong, with the name, record type and servers."""
        if isinstance(exc, dns.resolver.NXDOMAIN):
            tried = ", ".join(qname.to_text() for qname in exc.kwargs["qnames"])
            return DiscoveryError(
                f"no such DNS name: {name} (NXDOMAIN for {tried} {rdtype} from {self._servers})"
            )
        head = f"DNS lookup of {name} {rdtype} failed"
        if isinstance(exc, dns.resolver.LifetimeTimeout):
            why = _errors(exc.kwargs["errors"]) or f"{self._servers}: no answer"
            lifetime = self._resolver.lifetime if self._resolver else self.timeout
            return DiscoveryError(f"{head}: no answer within {lifetime:g} s ({why})")
        if isinstance(exc, dns.resolver.NoNameservers):
            return DiscoveryError(f"{head}: {_errors(exc.kwargs['errors'])}")
        return DiscoveryError(f"{head} (asked {self._servers}): {exc}")


def _values(answer: dns.resolver.Answer) -> tuple[str, ...]:
    if answer.rrset is None:
        return ()
    if answer.rdtype == dns.rdatatype.A:
        return tuple(rdata.address for rdata in answer.rrset)  # already dotted-quad
    if answer.rdtype == dns.rdatatype.AAAA:
        return tuple(erlang_ntoa(rdata.address) for rdata in answer.rrset)
    # inet_res gives SRV targets without the final dot; "." means "no service" (RFC 2782).
    return tuple(
        rdata.target.to_text(omit_final_dot=True)
        for rdata in answer.rrset
        if rdata.target != dns.name.root
    )


def _server_text(server: str | dns.nameserver.Nameserver) -> str:
    if isinstance(server, str):  # dnspython turns text into Do53Nameserver; just in case
        return server
    return str(Nameserver(server.answer_nameserver(), server.answer_port()))


def _errors(errors: list[tuple[str, bool, int, object, object]]) -> str:
    """dnspython's per-attempt errors as ``server [over TCP]: what``, repeats merged."""
    texts: list[str] = []
    for server, tcp, port, error, _ in errors:
        address = server.split(":", 1)[-1].rsplit("@", 1)[0]  # "Do53:10.0.0.1@53"
        text = f"{Nameserver(address, port)}{' over TCP' if tcp else ''}: {_describe(error)}"
        if text not in texts:
            texts.append(text)
    return "; ".join(texts)


def _describe(error: object) -> str:
    if isinstance(error, dns.message.Truncated):
        return "truncated answer"
    if isinstance(error, dns.exception.Timeout):
        return "timed out"
    if isinstance(error, OSError) and (error.errno or error.strerror):
        # asyncio's "Connect call failed (...)" hides the reason the errno names
        return os.strerror(error.errno) if error.errno else str(error.strerror)
    if isinstance(error, dns.exception.FormError):
        return f"malformed answer: {error}"
    if isinstance(error, str):
        return f"answered {error}"  # an rcode: SERVFAIL, REFUSED, ...
    return str(error) or type(error).__name__
