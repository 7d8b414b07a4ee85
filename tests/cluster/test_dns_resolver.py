"""The DNS strategies' resolver (dnspython's, configured) against a real dnsmasq, and the
product logic around it: nameserver options, Erlang's address printing."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import dns.flags
import dns.message
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodemesh.cluster.dns import Nameserver, Resolver, erlang_ntoa, parse_nameserver
from nodemesh.errors import ConfigError, DiscoveryError
from support.dns import Dnsmasq, DnsProxy, require_dnsmasq
from support.net import free_port

POD_RESOLV_CONF = """\
# what a pod in namespace "default" gets from the kubelet
nameserver 10.96.0.10
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
"""
WEB = "web.default.svc.cluster.local"
BIG = "big.default.svc.cluster.local"


@pytest.fixture
async def dnsmasq(tmp_path: Path) -> AsyncIterator[Dnsmasq]:
    """A real dnsmasq on a free loopback port, with an alias ``alias.example`` -> web."""
    async with Dnsmasq(
        tmp_path, executable=require_dnsmasq(), cnames={"alias.example": WEB}
    ) as server:
        await server.set_hosts({WEB: ["10.0.0.1", "10.0.0.2", "fd00::1"]})
        yield server


@pytest.fixture
def pod_resolv_conf(tmp_path: Path) -> str:
    path = tmp_path / "resolv.conf"
    path.write_text(POD_RESOLV_CONF)
    return str(path)


async def test_search_domains_and_ndots_as_in_a_pod(dnsmasq: Dnsmasq, pod_resolv_conf: str) -> None:
    """A short name is found through resolv.conf's search list, as inside a pod."""
    resolver = Resolver([dnsmasq.nameserver], timeout=2, resolv_conf=pod_resolv_conf)
    for name in ("web", "web.default", f"{WEB}."):
        found = await resolver.addresses(name, "inet")
        assert found.name == f"{WEB}." and sorted(found.records) == ["10.0.0.1", "10.0.0.2"]
        assert found.server == dnsmasq.nameserver


async def test_names_are_tried_in_the_c_library_order(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """Fewer dots than ndots: search domains first; at least ndots: the name first."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("search ns.svc.cluster.local cluster.local\noptions ndots:2\n")
    resolver = Resolver([dnsmasq.nameserver], timeout=2, resolv_conf=str(conf))
    with pytest.raises(DiscoveryError, match=r"NXDOMAIN for x\.ns\.svc\.cluster\.local\., "):
        await resolver.lookup("x", "A")
    with pytest.raises(DiscoveryError, match=r"NXDOMAIN for a\.b\.c\., a\.b\.c\.ns\."):
        await resolver.lookup("a.b.c", "A")
    with pytest.raises(DiscoveryError, match=r"NXDOMAIN for a\.b\. A from"):
        await resolver.lookup("a.b.", "A")


async def test_address_families(dnsmasq: Dnsmasq) -> None:
    """inet asks A, inet6 AAAA, any both; auto asks AAAA only when there is no A."""
    resolver = Resolver([dnsmasq.nameserver], timeout=2)
    await dnsmasq.set_hosts({WEB: ["10.0.0.1", "fd00::1"], "v6.example": ["fd00::2"]})
    got = {
        family: sorted((await resolver.addresses(WEB, family)).records)
        for family in ("inet", "inet6", "any", "auto")
    }
    assert got == {
        "inet": ["10.0.0.1"],
        "inet6": ["fd00::1"],
        "any": ["10.0.0.1", "fd00::1"],
        "auto": ["10.0.0.1"],
    }
    assert (await resolver.addresses("v6.example", "auto")).records == ("fd00::2",)


async def test_cname_is_followed(dnsmasq: Dnsmasq) -> None:
    """A CNAME leads to its target's records, reported under the canonical name."""
    found = await Resolver([dnsmasq.nameserver]).addresses("alias.example.", "any")
    assert found.name == f"{WEB}." and sorted(found.records) == ["10.0.0.1", "10.0.0.2", "fd00::1"]


async def test_nxdomain_names_the_name_and_server(dnsmasq: Dnsmasq, pod_resolv_conf: str) -> None:
    """A name that does not exist is a DiscoveryError naming each name tried and the server."""
    resolver = Resolver([dnsmasq.nameserver], timeout=2, resolv_conf=pod_resolv_conf)
    with pytest.raises(DiscoveryError) as info:
        await resolver.addresses("nope", "any")
    assert str(info.value) == (
        "no such DNS name: nope (NXDOMAIN for nope.default.svc.cluster.local., "
        f"nope.svc.cluster.local., nope.cluster.local., nope. A from {dnsmasq.nameserver})"
    )


async def test_no_records_of_the_type_is_an_error(dnsmasq: Dnsmasq) -> None:
    """A name without records of the family asked for is a DiscoveryError saying which."""
    await dnsmasq.set_hosts({WEB: ["10.0.0.1"]})
    resolver = Resolver([dnsmasq.nameserver])
    with pytest.raises(DiscoveryError, match=rf"^{WEB}\. has no AAAA records \(asked 127"):
        await resolver.addresses(WEB, "inet6")
    with pytest.raises(DiscoveryError, match=rf"^{WEB}\. has no SRV records"):
        await resolver.srv_targets(WEB)


async def test_silent_server_times_out_and_the_next_one_answers(dnsmasq: Dnsmasq) -> None:
    """A server that never answers is a timeout naming it; a second server is then asked."""
    silent = DnsProxy(("127.0.0.1", dnsmasq.port), silent=True)
    await silent.start(tcp=False)
    try:
        with pytest.raises(DiscoveryError) as info:
            await Resolver([silent.nameserver], timeout=0.2).addresses(WEB, "inet")
        assert str(info.value) == (
            f"DNS lookup of {WEB} A failed: no answer within 0.2 s ({silent.nameserver}: timed out)"
        )
        found = await Resolver([silent.nameserver, dnsmasq.nameserver], timeout=0.2).addresses(
            WEB, "inet"
        )
        assert found.server == dnsmasq.nameserver and len(found.records) == 2
    finally:
        await silent.aclose()


class _Impostor(asyncio.DatagramProtocol):
    """Answers each query twice: with another ID, then with its ID but another question."""

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        other = dns.message.make_query("other.example.", "A")
        other.flags |= dns.flags.QR
        other.id = query.id ^ 1
        self.transport.sendto(other.to_wire(), addr)
        other.id = query.id
        self.transport.sendto(other.to_wire(), addr)


async def test_answers_must_match_the_query() -> None:
    """Datagrams with another ID or for another question are ignored: the lookup times out."""
    port = free_port()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        _Impostor, local_addr=("127.0.0.1", port)
    )
    try:
        with pytest.raises(DiscoveryError) as info:
            await Resolver([f"127.0.0.1:{port}"], timeout=0.3).addresses(WEB, "inet")
    finally:
        transport.close()
    assert str(info.value) == (
        f"DNS lookup of {WEB} A failed: no answer within 0.3 s (127.0.0.1:{port}: timed out)"
    )


async def test_stopped_server_is_a_discovery_error(dnsmasq: Dnsmasq) -> None:
    """When the DNS server is down the lookup fails with a DiscoveryError naming it."""
    await dnsmasq.stop()
    with pytest.raises(DiscoveryError, match=rf"{WEB} A failed: .*{dnsmasq.nameserver}: "):
        await Resolver([dnsmasq.nameserver], timeout=0.3).addresses(WEB, "inet")


async def test_large_answer_is_retried_over_tcp(dnsmasq: Dnsmasq) -> None:
    """1,000 A records do not fit in UDP: the truncated answer is asked again over TCP."""
    ips = [f"10.1.{i // 256}.{i % 256}" for i in range(1000)]
    await dnsmasq.set_hosts({BIG: ips})
    found = await Resolver([dnsmasq.nameserver]).addresses(BIG, "inet")
    assert sorted(found.records) == sorted(ips)


async def test_truncated_answer_fails_when_tcp_fails(dnsmasq: Dnsmasq) -> None:
    """Behind a UDP-only path a truncated answer cannot be completed: the lookup fails,
    naming the name, the type and the server, and no partial list comes back."""
    ips = [f"10.1.{i // 256}.{i % 256}" for i in range(300)]
    await dnsmasq.set_hosts({BIG: ips})
    proxy = DnsProxy(("127.0.0.1", dnsmasq.port))
    await proxy.start(tcp=False)
    try:
        with pytest.raises(DiscoveryError) as info:
            await Resolver([proxy.nameserver], timeout=2).addresses(BIG, "inet")
    finally:
        await proxy.aclose()
    assert str(info.value).startswith(
        f"DNS lookup of {BIG} A failed: {proxy.nameserver}: truncated answer; "
        f"{proxy.nameserver} over TCP: "
    )


async def test_no_nameserver_anywhere(tmp_path: Path) -> None:
    """Without nameservers in resolv.conf or the options the error says what to set."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example.com\n")
    with pytest.raises(DiscoveryError, match="lists none; set the option 'nameservers'"):
        await Resolver(resolv_conf=str(conf)).addresses("web", "any")


async def test_resolv_conf_lines(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """resolv.conf's nameserver (with a port given through the option), search (the last
    line wins over domain) and ndots are used; comments and unknown options are ignored."""
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "domain old.example\nnameserver 10.96.0.10 # comment\n"
        "search nope.example default.svc.cluster.local\noptions rotate ndots:3 timeout:1\n"
    )
    found = await Resolver([dnsmasq.nameserver], timeout=2, resolv_conf=str(conf)).lookup(
        "web", "A"
    )
    assert found.name == f"{WEB}." and len(found.records) == 2


async def test_missing_resolv_conf_with_nameservers(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """Without resolv.conf the option's nameservers are asked, names taken as given."""
    resolver = Resolver([dnsmasq.nameserver], timeout=2, resolv_conf=str(tmp_path / "missing"))
    assert len((await resolver.addresses(WEB, "inet")).records) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.96.0.10", Nameserver("10.96.0.10", 53)),
        ("127.0.0.1:5353", Nameserver("127.0.0.1", 5353)),
        ("fd00::10", Nameserver("fd00::10", 53)),
        ("[fd00::10]:5353", Nameserver("fd00::10", 5353)),
    ],
)
def test_parse_nameserver(text: str, expected: Nameserver) -> None:
    """A nameserver is an IP address with an optional port, IPv6 in brackets."""
    assert parse_nameserver(text) == expected
    assert str(expected) in (text, f"{text}:53", f"[{text}]:53")


@pytest.mark.parametrize("text", ["dns.example", "10.0.0.1:0", "10.0.0.1:x", "[fd00::1]5353"])
def test_parse_nameserver_refuses(text: str) -> None:
    """Host names, bad ports and malformed brackets are ConfigErrors."""
    with pytest.raises(ConfigError, match="nameserver"):
        parse_nameserver(text)


@pytest.mark.parametrize(
    ("address", "erlang"),
    [  # inet_parse:ntoa/1 on OTP 25.2
        ("10.48.33.136", "10.48.33.136"),
        ("FD00:0:0:0:0:0:0:1", "fd00::1"),
        ("::1", "::1"),
        ("::", "::"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::ffff:0:0", "::ffff:0.0.0.0"),
        ("::1.2.3.4", "::1.2.3.4"),
        ("::2", "::0.0.0.2"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("1:0:0:2:3:0:0:4", "1::2:3:0:0:4"),
        ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
        ("0:0:0:0:ffff:0:0:1", "::ffff:0:0:1"),
    ],
)
def test_erlang_ntoa(address: str, erlang: str) -> None:
    """Addresses print as Erlang's inet_parse:ntoa/1 prints them (so names match)."""
    assert erlang_ntoa(address) == erlang


@given(st.integers(0, 2**128 - 1))
def test_erlang_ntoa_is_rfc5952_outside_the_ipv4_forms(value: int) -> None:
    """Except for the IPv4-compatible and -mapped forms, the text is RFC 5952's."""
    ip = ipaddress.IPv6Address(value)
    if value >> 32 not in (0, 0xFFFF):
        assert erlang_ntoa(str(ip)) == ip.compressed
    assert ipaddress.ip_address(erlang_ntoa(str(ip))) == ip
