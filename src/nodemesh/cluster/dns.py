"""DNS lookups for the DNS strategies: a small stub resolver.

Theory of operation
-------------------
libcluster asks Erlang's ``inet_res``, which follows ``/etc/resolv.conf``. So does this
resolver. It uses dnspython for names and to build queries, and its own transport and
answer reader (:mod:`nodemesh.cluster.dns_wire`): it must see a truncated answer that
dnspython's resolver would only retry or drop, and a round with 1,000 records must cost
well under 50 ms, which dnspython's message parser alone exceeds.

- **Names are tried as the C library tries them** (resolv.conf(5)): a name with a
  trailing dot as is; otherwise with each ``search`` domain appended, and as given —
  first when it has at least ``ndots`` dots, last otherwise. In a Kubernetes pod
  (``ndots:5``) ``myapp-headless`` is found as ``myapp-headless.<ns>.svc.cluster.local``.
  NXDOMAIN moves on to the next candidate; an answer without records of the type asked
  (NODATA) ends the search, as in dnspython.
- **Transport**: UDP with EDNS0 (1232-byte payload, the DNS flag day size) to each
  nameserver in order until one answers NOERROR or NXDOMAIN. A truncated answer (TC) is
  asked again over TCP (RFC 7766). If TCP fails too — a firewall that lets only UDP port
  53 through — the truncated answer's records are returned with ``truncated=True``; the
  strategies connect them but prune nothing unless ``prune_on_truncated`` is set. An
  answer must carry the query's ID and question; other datagrams are ignored.
- **CNAMEs** are followed inside the answer and, when the server left out the target's
  records, by asking for the target (at most 8 hops).
- **Failures** are :class:`~nodemesh.errors.DiscoveryError` naming the name, the record
  type and the server: NXDOMAIN for every candidate, no records, a timeout, a refused or
  unreachable server, a malformed answer. The cluster runner then keeps its last good list.

IP addresses are printed as Erlang's ``inet_parse:ntoa/1`` prints them (libcluster builds
node names with it), so ``app@<ip>`` names equal libcluster's for the same answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from nodemesh.cluster.dns_wire import SRV, Reply, WireError, erlang_ntoa, parse_response
from nodemesh.errors import ConfigError, DiscoveryError

__all__ = [
    "DEFAULT_RESOLV_CONF",
    "Family",
    "Lookup",
    "Nameserver",
    "ResolvConf",
    "Resolver",
    "candidates",
    "erlang_ntoa",
    "parse_nameserver",
    "read_resolv_conf",
]

#: Which address records to ask for: A, AAAA, both, or AAAA only when there is no A.
Family = Literal["inet", "inet6", "any", "auto"]

DEFAULT_RESOLV_CONF = "/etc/resolv.conf"
_EDNS_PAYLOAD = 1232  # DNS flag day 2020: no IP fragmentation on any usual path
_MAX_CNAME_HOPS = 8
_NOERROR, _NXDOMAIN = 0, 3
_RCODES = {1: "FORMERR", 2: "SERVFAIL", 4: "NOTIMP", 5: "REFUSED"}


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


@dataclass(frozen=True, slots=True)
class ResolvConf:
    """What the resolver takes from resolv.conf(5)."""

    nameservers: tuple[Nameserver, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1


def read_resolv_conf(path: str) -> ResolvConf:
    """Parse ``nameserver``, ``search``/``domain`` (the last one wins) and ``ndots``.

    A missing file gives the C library's defaults without nameservers; other lines and
    malformed values are ignored, as the C library ignores them.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return ResolvConf()
    except OSError as exc:
        raise DiscoveryError(f"cannot read {path}: {exc.strerror}") from exc
    servers: list[Nameserver] = []
    search: tuple[str, ...] = ()
    ndots = 1
    for line in lines:
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        key, values = words[0], words[1:]
        if key == "nameserver":
            try:
                servers.append(parse_nameserver(values[0].split("%", 1)[0]))
            except ConfigError:
                continue
        elif key in ("search", "domain"):
            search = tuple(values)
        elif key == "options":
            for option in values:
                if option.startswith("ndots:") and option[6:].isdigit():
                    ndots = min(int(option[6:]), 15)  # glibc caps it at 15
    return ResolvConf(tuple(servers), search, ndots)


def candidates(name: str, search: Iterable[str], ndots: int) -> list[dns.name.Name]:
    """The absolute names to try for ``name``, in the C library's order."""
    qname = dns.name.from_text(name, origin=None)
    if qname.is_absolute():
        return [qname]
    as_given = qname.concatenate(dns.name.root)
    expanded = [qname.concatenate(dns.name.from_text(domain)) for domain in search]
    dots = len(qname.labels) - 1
    return [as_given, *expanded] if dots >= ndots else [*expanded, as_given]


@dataclass(frozen=True, slots=True)
class Lookup:
    """An answered lookup: ``records`` as text (addresses in Erlang's form, SRV targets
    without the final dot), the absolute ``name`` that had them, the ``server`` that
    answered, and whether the answer was ``truncated`` (TC set and TCP failed)."""

    name: str
    records: tuple[str, ...]
    server: str
    truncated: bool = False


class Resolver:
    """A stub resolver: resolv.conf's search rules, UDP then TCP, CNAMEs followed.

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
        self._conf: ResolvConf | None = None

    async def config(self) -> ResolvConf:
        """The configuration in use (resolv.conf, with the explicit nameservers)."""
        if self._conf is None:
            conf = await asyncio.to_thread(read_resolv_conf, self.resolv_conf)
            servers = self._explicit or conf.nameservers
            self._conf = ResolvConf(servers, conf.search, conf.ndots)
        return self._conf

    async def addresses(self, name: str, family: Family) -> Lookup:
        """The IP addresses of ``name`` (A and/or AAAA records, see :data:`Family`).

        Raises :class:`DiscoveryError` when the lookup fails or finds no address.
        """
        first = "AAAA" if family == "inet6" else "A"
        found = await self.lookup(name, first)
        if family == "any" or (family == "auto" and not found.records):
            more = await self.lookup(found.name, "AAAA")  # the name the search settled on
            found = Lookup(
                found.name,
                found.records + more.records,
                found.server,
                found.truncated or more.truncated,
            )
        if not found.records:
            kinds = {"inet": "A", "inet6": "AAAA"}.get(family, "A or AAAA")
            raise DiscoveryError(f"{found.name} has no {kinds} records (asked {found.server})")
        return found

    async def srv_targets(self, name: str) -> Lookup:
        """The targets of ``name``'s SRV records, without the final dot.

        Raises :class:`DiscoveryError` when the lookup fails or finds no SRV record.
        """
        found = await self.lookup(name, "SRV")
        if not found.records:
            raise DiscoveryError(f"{found.name} has no SRV records (asked {found.server})")
        return found

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        """The records of type ``rdtype`` for ``name`` after the search list and CNAMEs;
        empty when the name exists without such records. Raises DiscoveryError."""
        conf = await self.config()
        if not conf.nameservers:
            raise DiscoveryError(
                f"no nameserver to ask for {name}: {self.resolv_conf} lists none; "
                "set the option 'nameservers'"
            )
        try:
            tries = candidates(name, conf.search, conf.ndots)
        except dns.exception.DNSException as exc:
            raise DiscoveryError(f"{name!r} is not a valid DNS name: {exc}") from exc
        missing: list[str] = []
        for qname in tries:
            found, server = await self._chase(qname, dns.rdatatype.from_text(rdtype), conf)
            if found is not None:
                return found
            missing.append(f"{qname} from {server}")
        raise DiscoveryError(f"no such DNS name: {name} (NXDOMAIN for {', '.join(missing)})")

    async def _chase(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, conf: ResolvConf
    ) -> tuple[Lookup | None, Nameserver]:
        """Ask for ``qname``, following CNAMEs across answers; None for NXDOMAIN, with
        the server that answered."""
        for _ in range(_MAX_CNAME_HOPS):
            reply, server = await self._ask(qname, rdtype, conf.nameservers)
            if reply.rcode == _NXDOMAIN:
                return None, server
            asked = qname.to_text().lower()
            try:
                canonical, values = reply.chase(asked, rdtype)
            except WireError as exc:
                raise DiscoveryError(
                    f"bad answer from {server} for {qname} {rdtype.name}: {exc}"
                ) from exc
            if values or canonical == asked or reply.truncated:
                found = _values(values, rdtype)
                return Lookup(canonical, found, str(server), reply.truncated), server
            qname = dns.name.from_text(canonical)  # a CNAME whose target was left out
        raise DiscoveryError(f"more than {_MAX_CNAME_HOPS} CNAMEs from {qname} {rdtype.name}")

    async def _ask(
        self,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        servers: tuple[Nameserver, ...],
    ) -> tuple[Reply, Nameserver]:
        """The first NOERROR or NXDOMAIN answer from ``servers``, tried in order."""
        failures: list[str] = []
        for server in servers:
            try:
                reply = await self._exchange(qname, rdtype, server)
            except TimeoutError:
                failures.append(f"{server} timed out after {self.timeout:g} s")
                continue
            except (OSError, EOFError, WireError) as exc:
                failures.append(f"{server} failed: {_describe(exc)}")
                continue
            if reply.rcode in (_NOERROR, _NXDOMAIN):
                return reply, server
            failures.append(f"{server} answered {_RCODES.get(reply.rcode, reply.rcode)}")
        raise DiscoveryError(f"DNS lookup of {qname} {rdtype.name} failed: {'; '.join(failures)}")

    async def _exchange(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, server: Nameserver
    ) -> Reply:
        """One query over UDP, and over TCP if the answer is truncated. Raises
        TimeoutError, OSError, EOFError or WireError."""
        query = dns.message.make_query(qname, rdtype, use_edns=0, payload=_EDNS_PAYLOAD)
        wire, question = query.to_wire(), (qname.to_text().lower(), int(rdtype), 1)
        async with asyncio.timeout(self.timeout):
            reply = _check(parse_response(await _udp(wire, server)), query.id, question)
        if not reply.truncated:
            return reply
        try:
            async with asyncio.timeout(self.timeout):
                return _check(parse_response(await _tcp(wire, server)), query.id, question)
        except (TimeoutError, OSError, EOFError, WireError):
            return reply  # keep the truncated UDP answer; the caller knows it is partial


def _check(reply: Reply, ident: int, question: tuple[str, int, int]) -> Reply:
    if reply.ident != ident or reply.question != question:
        raise WireError(f"the answer is for another question: {reply.question}")
    return reply


async def _udp(query: bytes, server: Nameserver) -> bytes:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Datagrams(query[:2], answer), remote_addr=(server.host, server.port)
    )
    try:
        transport.sendto(query)
        return await answer
    finally:
        transport.close()


class _Datagrams(asyncio.DatagramProtocol):
    """Takes the first datagram with the query's ID (others are ignored)."""

    def __init__(self, ident: bytes, answer: asyncio.Future[bytes]) -> None:
        self.ident = ident
        self.answer = answer

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        if data[:2] == self.ident and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():  # e.g. ICMP port unreachable: connection refused
            self.answer.set_exception(exc)


async def _tcp(query: bytes, server: Nameserver) -> bytes:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(struct.pack("!H", len(query)) + query)  # RFC 1035 4.2.2 framing
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(length)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _values(values: list[str], rdtype: int) -> tuple[str, ...]:
    if rdtype != SRV:
        return tuple(values)
    # inet_res gives targets without the final dot; "." means "no service" (RFC 2782).
    return tuple(target[:-1] for target in values if target != ".")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, WireError):
        return f"malformed answer: {exc}"
    return str(exc) or type(exc).__name__
