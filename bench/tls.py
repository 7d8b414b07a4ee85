"""TLS distribution benchmark: what TLS costs, for nodemesh and for Erlang's inet_tls.

    python bench/tls.py [--messages N] [--roundtrips M] [--repeat R] [--quick]

One run measures, with bench/dist.py's roles and method (each sender and receiver in
its own OS process on 127.0.0.1, one-way throughput counted by the receiver, round
trips after a warm-up), every path over plain TCP and over TLS:

* python → python, python → erlang, erlang → python, erlang → erlang (``erl
  -proto_dist inet_tcp`` beside ``erl -proto_dist inet_tls -ssl_dist_optfile F``);
* connection setup: a fresh Python node dialing a Python node until ``pong`` (EPMD
  lookup, TCP, the TLS handshake when on, the distribution handshake, one round trip).

Every node has the same certificate (ECDSA P-256, made at start with ``cryptography``,
signed by a throwaway CA), mutual TLS with verify_peer, as docs/tls.md sets it up.
Erlang speaks TLS 1.2 (``inet_tls_dist``'s default), Python pairs TLS 1.3.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dist import (
    HOST,
    NODE_ROLES,
    Bench,
    BenchError,
    Proc,
    Row,
    compile_erlang,
    machine,
    merge_rows,
    node_row,
    row_lines,
    start_epmd,
)
from nodemesh import Node, NodeConfig, TlsConfig

SELF = str(Path(__file__).resolve())


# -- certificates ----------------------------------------------------------------------------
def make_certificates(directory: Path) -> None:
    """``ca.crt``, and ``node.crt``/``node.key`` for 127.0.0.1 (as an IP and a DNS name:
    OTP 25 checks the host as a DNS name), server and client use; ``dist.conf`` for erl."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    node_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench node")])
    san = [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address(HOST))]
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        _builder(node_name, ca_name, key, now)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca.public_bytes(pem))
    (directory / "node.crt").write_bytes(cert.public_bytes(pem))
    (directory / "node.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files = f'{{certfile, "{directory}/node.crt"}}, {{keyfile, "{directory}/node.key"}}, '
    files += f'{{cacertfile, "{directory}/ca.crt"}}, {{verify, verify_peer}}'
    (directory / "dist.conf").write_text(
        f"[{{server, [{files}, {{fail_if_no_peer_cert, true}}]}},\n {{client, [{files}]}}].\n"
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, now: Any
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def tls_config(directory: str) -> TlsConfig:
    return TlsConfig(f"{directory}/node.crt", f"{directory}/node.key", f"{directory}/ca.crt")


# -- one side of a measurement ---------------------------------------------------------------
async def run_node_role(args: argparse.Namespace) -> None:
    """bench/dist.py's node role, over TLS when ``--tls-dir`` is given."""
    tls = tls_config(args.tls_dir) if args.tls_dir else None
    config = NodeConfig(epmd_port=args.epmd_port, listen_address=HOST, tls=tls)
    async with Node(args.name, args.cookie, config=config) as node:
        result = await NODE_ROLES[args.role](node, args)
        print("result", json.dumps(result), flush=True)


class TlsBench(Bench):
    """bench/dist.py's Bench, whose nodes speak TLS when ``tls_dir`` is set."""

    tls_dir: str = ""

    async def node(self, kind: str, role: str, peer: str = "", count: int = 0) -> tuple[Proc, str]:
        name = self.name(role)
        if kind == "py":
            argv = [sys.executable, SELF, "--role", role, "--name", name]
            argv += ["--cookie", self.cookie, "--epmd-port", str(self.epmd_port)]
            argv += ["--peer", peer, "--count", str(count), "--tls-dir", self.tls_dir]
            return await self.spawn(f"python {role}", argv), name
        assert self.erl_dir is not None
        argv = ["erl", "-noshell", "-name", name, "-setcookie", self.cookie, "-pa", self.erl_dir]
        argv += ["-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-start_epmd", "false"]
        if self.tls_dir:
            argv += ["-proto_dist", "inet_tls", "-ssl_dist_optfile", f"{self.tls_dir}/dist.conf"]
        argv += ["-run", "dist_bench", "main", role, *([peer, str(count)] if peer else [])]
        env = {"ERL_EPMD_PORT": str(self.epmd_port)}
        return await self.spawn(f"erlang {role}", argv, env), name


async def connect_times(bench: TlsBench, connects: int) -> list[int]:
    """Nanoseconds from a fresh node's start of dialing to ``pong``, ``connects`` times."""
    target, name = await bench.node("py", "idle")
    await target.ready()
    tls = tls_config(bench.tls_dir) if bench.tls_dir else None
    times = []
    for i in range(connects):
        # A fresh node each time: nothing is cached from an earlier connection.
        config = NodeConfig(epmd_port=bench.epmd_port, listen_address=HOST, tls=tls)
        async with Node(f"dialer{i}@{HOST}", bench.cookie, config=config) as node:
            start = time.perf_counter_ns()
            if not await node.ping(name):
                raise BenchError(f"dialer {i} could not reach {name}")
            times.append(time.perf_counter_ns() - start)
    await target.kill()
    return times


# -- the run ---------------------------------------------------------------------------------
async def run_all(args: argparse.Namespace, certs: str) -> tuple[list[Row], dict[str, list[int]]]:
    warm = min(500, max(args.roundtrips // 10, 10))
    epmd = await start_epmd()
    erl_dir = compile_erlang()
    kinds = ["py", "erl"] if erl_dir else ["py"]
    rows: list[Row] = []
    setup: dict[str, list[int]] = {}
    bench = TlsBench(epmd.port, erl_dir)
    try:
        for src in kinds:
            for dst in kinds:
                for tls_dir, how in (("", "TCP"), (certs, "TLS")):
                    bench.tls_dir = tls_dir
                    row = await node_row(bench, src, dst, args.messages, args.roundtrips, warm)
                    row.label = f"{row.label}, {how}"
                    rows.append(row)
        for tls_dir, how in (("", "TCP"), (certs, "TLS")):
            bench.tls_dir = tls_dir
            setup[how] = await connect_times(bench, args.connects)
    finally:
        await bench.aclose()
        await epmd.aclose()
        if erl_dir:
            shutil.rmtree(erl_dir, ignore_errors=True)
    return rows, setup


def table(rows: list[Row], setup: dict[str, list[int]]) -> str:
    lines = [
        "| path (sender → receiver), transport | one-way msg/s (runs' range) "
        "| round trip median µs | round trip p99 µs |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += row_lines(rows)
    lines += [
        "",
        "| connection setup, python → python | median ms | p90 ms |",
        "| --- | ---: | ---: |",
    ]
    for how, times in setup.items():
        p90 = statistics.quantiles(times, n=10, method="inclusive")[8]
        lines.append(f"| {how} | {statistics.median(times) / 1e6:.1f} | {p90 / 1e6:.1f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="one-way messages")
    parser.add_argument("--roundtrips", type=int, default=5_000, help="timed round trips")
    parser.add_argument("--connects", type=int, default=30, help="timed connection set-ups")
    parser.add_argument("--repeat", type=int, default=3, help="whole runs; rates: median")
    parser.add_argument("--quick", action="store_true", help="20,000 messages, 1,000 round trips")
    role = parser.add_argument_group("one side of a measurement (used by the run itself)")
    role.add_argument("--role", choices=list(NODE_ROLES))
    role.add_argument("--name", default="")
    role.add_argument("--cookie", default="")
    role.add_argument("--epmd-port", type=int, default=0)
    role.add_argument("--peer", default="")
    role.add_argument("--count", type=int, default=0)
    role.add_argument("--tls-dir", default="")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.roundtrips, args.connects = 20_000, 1_000, 10
    return args


def main() -> None:
    args = parse_args()
    if args.role:
        asyncio.run(run_node_role(args))
        return
    started = time.monotonic()
    load = os.getloadavg()[0]
    certs = tempfile.mkdtemp(prefix="nodemesh_tls_bench_")
    runs, setups = [], []
    try:
        make_certificates(Path(certs))
        for _ in range(args.repeat):
            rows, setup = asyncio.run(run_all(args, certs))
            runs.append(rows)
            setups.append(setup)
    except BenchError as exc:
        sys.exit(f"benchmark failed: {exc}")
    finally:
        shutil.rmtree(certs, ignore_errors=True)
    pooled = {how: [t for s in setups for t in s[how]] for how in setups[0]}
    print(f"{machine()}; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(
        f"{args.messages:,} messages one way, {args.roundtrips:,} round trips, "
        f"{args.connects} connection set-ups, {args.repeat} run(s) in "
        f"{time.monotonic() - started:.0f} s\n"
    )
    print(table(merge_rows(runs), pooled))


if __name__ == "__main__":
    main()
