"""Gossip bytes against real Erlang/OTP: what we send decodes in ``erl``, and heartbeats an
Erlang node builds and sends with ``gen_udp`` (plain and with libcluster's secret) make a
Python node connect to it. The Erlang side is written from the documented format."""

from __future__ import annotations

import base64
import os

import pytest

from conftest import COOKIE, NodeFactory
from nodemesh.cluster.gossip.wire import SecretCodec, decode_heartbeat, encode_heartbeat
from nodemesh.cluster.strategies.gossip import GossipOptions, GossipStrategy
from support.erlang import ErlPeer, erl_eval, require_erlang
from support.gossip_node import NodeContext, free_udp_port, running
from support.net import wait_for

pytestmark = pytest.mark.interop

NAMES = ["myapp@10.0.0.1", "a@b", "node_1-x@host.example.com", "app@h\u00f6st.example", "n@::1"]

# libcluster's decrypt, pad and unpad (AES-256-CBC, SHA-256 key, PKCS#7) in Erlang.
ERL_SECRET = """
Key = crypto:hash(sha256, Secret),
Pad = fun(Bin) ->
    N = 16 - (byte_size(Bin) rem 16),
    <<Bin/binary, (binary:copy(<<N>>, N))/binary>>
end,
Encrypt = fun(Plain) ->
    IV = crypto:strong_rand_bytes(16),
    <<IV/binary, (crypto:crypto_one_time(aes_256_cbc, Key, IV, Pad(Plain), true))/binary>>
end,
Decrypt = fun(<<IV:16/binary, C/binary>>) ->
    P = crypto:crypto_one_time(aes_256_cbc, Key, IV, C, false),
    N = binary:last(P), binary:part(P, 0, byte_size(P) - N)
end,
"""


def require_crypto() -> None:
    """Erlang's crypto application (Debian: erlang-crypto) is needed for the secret."""
    out = erl_eval('io:format("~p", [code:which(crypto)]).')
    if "non_existing" in out:
        if os.environ.get("CI"):
            pytest.fail("erlang-crypto is not installed: .ci/run must install it")
        pytest.skip("erlang-crypto is not installed")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def erl_atom(name: str) -> str:
    """An Erlang expression for the atom ``name`` (Latin-1 safe)."""
    return f'binary_to_atom(base64:decode(<<"{b64(name.encode("utf-8"))}">>), utf8)'


@pytest.mark.parametrize("name", NAMES)
def test_python_heartbeat_decodes_in_erlang(name: str) -> None:
    """binary_to_term of what follows ``heartbeat::`` is exactly #{node => Name}."""
    packet = encode_heartbeat(name)
    out = erl_eval(
        f'P = base64:decode(<<"{b64(packet)}">>), <<"heartbeat::", B/binary>> = P, '
        f'T = binary_to_term(B), io:format("~w", [T =:= #{{node => {erl_atom(name)}}}]).'
    )
    assert out.strip() == "true"


def test_heartbeat_with_a_port_matches_libclusters_pattern_in_erlang() -> None:
    """Our heartbeat with a port is #{node => N, dist_port => P} in Erlang, and the map
    pattern libcluster's Gossip matches (%{node: n} when is_atom(n)) still matches it;
    OTP's term_to_binary of that map gives our bytes (OTP 25)."""
    packet = encode_heartbeat("py@10.0.0.2", 45678)
    out = erl_eval(
        f'P = base64:decode(<<"{b64(packet)}">>), <<"heartbeat::", B/binary>> = P, '
        "T = binary_to_term(B), "
        "io:format(\"~w ~w ~s~n\", [T =:= #{node => 'py@10.0.0.2', dist_port => 45678}, "
        "case T of #{node := N} when is_atom(N) -> N; _ -> nomatch end, "
        "base64:encode(term_to_binary(T))])."
    )
    exact, matched, again = out.split()
    assert (exact, matched) == ("true", "'py@10.0.0.2'")
    otp = int(erl_eval('io:format("~s", [erlang:system_info(otp_release)]).'))
    if otp <= 25:
        assert b"heartbeat::" + base64.b64decode(again) == packet


def test_erlang_heartbeat_is_byte_identical() -> None:
    """OTP's own term_to_binary gives the same bytes as ours (OTP 25: ATOM_EXT)."""
    exprs = ", ".join(
        f'io:format("~s~n", [base64:encode(<<"heartbeat::", '
        f"(term_to_binary(#{{node => {erl_atom(n)}}}))/binary>>)])"
        for n in NAMES
    )
    otp = int(erl_eval('io:format("~s", [erlang:system_info(otp_release)]).'))
    lines = erl_eval(exprs + ".").split()
    for name, line in zip(NAMES, lines, strict=True):
        packet = base64.b64decode(line)
        assert decode_heartbeat(packet) == name
        if otp <= 25:  # OTP 26 writes SMALL_ATOM_UTF8 instead; both decode above
            assert packet == encode_heartbeat(name)


def test_secret_packets_cross_both_ways() -> None:
    """Our secret packet decrypts in Erlang as libcluster does; Erlang's decrypts here."""
    require_crypto()
    ours = SecretCodec("somepassword").encode("py@10.0.0.2", 0)
    out = erl_eval(
        'Secret = <<"somepassword">>, '
        + ERL_SECRET
        + f'<<"heartbeat::", B/binary>> = Decrypt(base64:decode(<<"{b64(ours)}">>)), '
        + "io:format(\"~w~n\", [binary_to_term(B) =:= #{node => 'py@10.0.0.2'}]), "
        + 'io:format("~s~n", [base64:encode(Encrypt(<<"heartbeat::", '
        + "(term_to_binary(#{node => 'erl@10.0.0.3'}))/binary>>))])."
    )
    verdict, theirs = out.split()
    assert verdict == "true"
    assert SecretCodec("somepassword").decode(base64.b64decode(theirs), 0) == "erl@10.0.0.3"


@pytest.fixture
def erl_env(epmd_port: int) -> dict[str, str]:
    require_erlang()
    return {"ERL_EPMD_PORT": str(epmd_port)}


@pytest.mark.parametrize("secret", [None, "somepassword"])
async def test_erlang_heartbeat_over_udp_makes_python_connect(
    make_node: NodeFactory, erl_env: dict[str, str], secret: str | None
) -> None:
    """A distributed erl sends one heartbeat with gen_udp (built in Erlang, plain or with
    the secret) to the group; the Python node connects to it."""
    if secret:
        require_crypto()
    node = await make_node("py")  # starts this test's EPMD, which erl then uses
    port = free_udp_port()
    options = GossipOptions(
        port=port,
        multicast_if="127.0.0.1",
        secret=secret,
        heartbeat_interval_min=60_000,
        heartbeat_interval_max=60_000,
    )
    peer = await ErlPeer.start("erlgossip@127.0.0.1", COOKIE, env=erl_env)
    try:
        async with running(GossipStrategy(options), NodeContext(node)):
            build = '<<"heartbeat::", (term_to_binary(#{node => node()}))/binary>>'
            if secret:
                build = f'Secret = <<"{secret}">>, {ERL_SECRET} Encrypt({build})'
            await peer.eval(
                f"Packet = begin {build} end, "
                "{ok, S} = gen_udp:open(0, [binary, {multicast_if, {127,0,0,1}}]), "
                f"ok = gen_udp:send(S, {{233,252,1,32}}, {port}, Packet), gen_udp:close(S)"
            )
            await wait_for(lambda: peer.name in node.nodes(), 10, "python connecting to erl")
            assert await peer.eval(f"lists:member('{node.name}', nodes(connected))") == "true"
    finally:
        await peer.stop()


async def test_erlang_heartbeat_with_a_port_connects_without_epmd(
    make_node: NodeFactory, erl_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Erlang heartbeat carrying dist_port (its real distribution port, from its own
    net_kernel) makes the Python node connect there without asking EPMD."""
    from nodemesh.runtime import _transport

    node = await make_node("py")
    port = free_udp_port()
    options = GossipOptions(
        port=port,
        multicast_if="127.0.0.1",
        heartbeat_interval_min=60_000,
        heartbeat_interval_max=60_000,
    )
    asked: list[str] = []

    async def no_epmd(host: str, alive: str, **kwargs: object) -> None:
        asked.append(alive)

    peer = await ErlPeer.start("erlgossip@127.0.0.1", COOKIE, env=erl_env)
    monkeypatch.setattr(_transport, "port_please", no_epmd)  # EPMD "knows nobody" now
    try:
        async with running(GossipStrategy(options), NodeContext(node)):
            await peer.eval(
                '{port, P, _} = erl_epmd:port_please("erlgossip", {127,0,0,1}), '
                'Packet = <<"heartbeat::", '
                "(term_to_binary(#{node => node(), dist_port => P}))/binary>>, "
                "{ok, S} = gen_udp:open(0, [binary, {multicast_if, {127,0,0,1}}]), "
                f"ok = gen_udp:send(S, {{233,252,1,32}}, {port}, Packet), gen_udp:close(S)"
            )
            await wait_for(lambda: peer.name in node.nodes(), 10, "python connecting to erl")
        assert asked == []
    finally:
        await peer.stop()
