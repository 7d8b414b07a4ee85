"""A real DNS server for tests: dnsmasq on a loopback address, records set by the test.

Address records (A, AAAA) live in an ``--addn-hosts`` file: :meth:`Dnsmasq.set_hosts`
rewrites it and sends SIGHUP, on which dnsmasq clears its cache and re-reads every
``--addn-hosts`` file (dnsmasq(8), "NOTES"). SIGHUP does not re-read options, so SRV and
CNAME records (``--srv-host``, ``--cname``) change by restarting the process on the same
port: :meth:`Dnsmasq.set_srv`. Either way the call returns once dnsmasq serves the new
records (it is asked over TCP until the answers match), so tests never sleep.

``--local=/#/`` makes dnsmasq answer NXDOMAIN for names it does not know (with no
upstream server it would answer REFUSED) and NODATA for a known name without records of
the type asked; ``--local-ttl`` is 0, so nothing is cached by clients.

:func:`require_dnsmasq` skips a test where dnsmasq is missing, and fails it under CI
(``CI=true``), where ``scripts/test`` installs ``dnsmasq-base``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import TracebackType

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from support.net import free_port

#: name -> IP addresses (A for IPv4, AAAA for IPv6)
Hosts = Mapping[str, Sequence[str]]
#: name -> SRV targets (served with port 0, priority 10, weight 50, as CoreDNS does)
Srv = Mapping[str, Sequence[str]]


def require_dnsmasq() -> str:
    """The path of dnsmasq; skip the test where it is absent, fail under CI."""
    path = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None
    )
    if path is None:
        import pytest

        if os.environ.get("CI"):
            pytest.fail("dnsmasq is not installed: scripts/test must install dnsmasq-base")
        pytest.skip("dnsmasq is not installed (apt-get install dnsmasq-base)")
    return path


class Dnsmasq:
    """One dnsmasq process on ``address``:``port`` (a free port on 127.0.0.1 by default)."""

    def __init__(
        self,
        directory: Path,
        *,
        executable: str = "dnsmasq",
        address: str = "127.0.0.1",
        port: int | None = None,
        cnames: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.executable = executable
        self.address = address
        self.port = port or free_port()
        self.cnames = dict(cnames or {})
        self.hosts: dict[str, list[str]] = {}
        self.srv: dict[str, list[str]] = {}
        self.hosts_file = directory / "addn-hosts"
        self.log_file = directory / "dnsmasq.log"
        self._proc: asyncio.subprocess.Process | None = None
        self._log: int | None = None

    @property
    def nameserver(self) -> str:
        """This server for the strategies' ``nameservers`` option."""
        return f"{self.address}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # -- records ------------------------------------------------------------------------
    async def set_hosts(self, hosts: Hosts) -> None:
        """Serve exactly these address records (SIGHUP), once dnsmasq answers with them."""
        before = set(self.hosts)
        self.hosts = {name: list(ips) for name, ips in hosts.items()}
        self._write_hosts()
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGHUP)
            await self._wait_served(before | set(self.hosts))

    async def set_srv(self, srv: Srv) -> None:
        """Serve exactly these SRV records: dnsmasq is restarted on the same port."""
        before = set(self.srv)
        self.srv = {name: list(targets) for name, targets in srv.items()}
        if self.running:
            await self.stop()
            await self.start()
            await self._wait_served(before | set(self.srv))

    # -- process ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start dnsmasq and return once it answers."""
        self._write_hosts()
        self._log = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._proc = await asyncio.create_subprocess_exec(
            self.executable,
            *self._arguments(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        await self._wait_served(set(self.hosts) | set(self.srv))

    async def stop(self) -> None:
        """Terminate dnsmasq (a resolver outage) and wait until it has exited."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            os.close(self._log)
            self._log = None

    async def __aenter__(self) -> Dnsmasq:
        await self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _arguments(self) -> list[str]:
        args = [
            "--no-daemon",
            "--conf-file=/dev/null",
            f"--pid-file={self.directory / 'dnsmasq.pid'}",
            f"--port={self.port}",
            f"--listen-address={self.address}",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            f"--addn-hosts={self.hosts_file}",
            "--local=/#/",
            "--local-ttl=0",
            "--log-facility=-",
        ]
        if os.geteuid() == 0:
            args.append("--user=root")  # stay able to read the test's private directory
        for name, targets in self.srv.items():
            args += [f"--srv-host={name},{target},0,10,50" for target in targets]
        args += [f"--cname={alias},{target}" for alias, target in self.cnames.items()]
        return args

    def _write_hosts(self) -> None:
        lines = [f"{ip} {name}" for name, ips in self.hosts.items() for ip in ips]
        tmp = self.hosts_file.with_suffix(".tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines))
        tmp.replace(self.hosts_file)

    # -- waiting until the records are served ----------------------------------------------
    async def _wait_served(self, names: Iterable[str], timeout: float = 10.0) -> None:
        names = sorted(names) or ["ready.invalid"]
        async with asyncio.timeout(timeout):
            while True:
                if not self.running:
                    raise RuntimeError(f"dnsmasq exited: {self.log_file.read_text()[-2000:]}")
                try:
                    if all([await self._serves(name) for name in names]):
                        return
                except (OSError, EOFError, dns.exception.DNSException):
                    pass  # not listening yet
                await asyncio.sleep(0.02)

    async def _serves(self, name: str) -> bool:
        expected_ips = sorted(self.hosts.get(name, []))
        expected_srv = sorted(t.rstrip(".") for t in self.srv.get(name, []))
        got_ips = sorted(await self._ask(name, "A") + await self._ask(name, "AAAA"))
        got_srv = sorted(t.rstrip(".") for t in await self._ask(name, "SRV"))
        return (got_ips, got_srv) == (sorted(_normal(ip) for ip in expected_ips), expected_srv)

    async def _ask(self, name: str, rdtype: str) -> list[str]:
        query = dns.message.make_query(name, rdtype)
        response = await dns.asyncquery.tcp(query, self.address, 2.0, self.port)
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise dns.exception.DNSException(dns.rcode.to_text(response.rcode()))
        wanted = dns.rdatatype.from_text(rdtype)
        return [
            _normal(rdata.to_text().split()[-1]) if rdtype == "SRV" else _normal(rdata.to_text())
            for rrset in response.answer
            if rrset.rdtype == wanted
            for rdata in rrset
        ]


def _normal(text: str) -> str:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(text).compressed
    return text


class DnsProxy:
    """A forwarder on 127.0.0.1:``port`` to a DNS server, over UDP and, while ``tcp`` is
    true, TCP: with TCP off, a truncated answer cannot be retried over TCP (the client's
    connection is refused), as behind a firewall that lets only UDP port 53 through.
    With ``silent`` set it swallows UDP queries instead (a server that never answers)."""

    def __init__(self, upstream: tuple[str, int], *, silent: bool = False) -> None:
        self.upstream = upstream
        self.silent = silent
        self.port = free_port()
        self.queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, *, tcp: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Forward(self), local_addr=("127.0.0.1", self.port)
        )
        await self.set_tcp(tcp)

    async def set_tcp(self, on: bool) -> None:
        """Accept TCP queries (forwarded) or refuse them."""
        if on and self._tcp is None:
            self._tcp = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
        elif not on and self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None

    async def aclose(self) -> None:
        await self.set_tcp(False)
        if self._udp is not None:
            self._udp.close()
        for task in list(self._tasks):
            task.cancel()

    def _forward_udp(self, data: bytes, client: tuple[str, int]) -> None:
        self.queries += 1
        if self.silent:
            return
        task = asyncio.create_task(self._relay_udp(data, client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay_udp(self, data: bytes, client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Reply(answer), remote_addr=self.upstream
        )
        try:
            transport.sendto(data)
            async with asyncio.timeout(5):
                reply = await answer
            if self._udp is not None:
                self._udp.sendto(reply, client)
        finally:
            transport.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


class _Forward(asyncio.DatagramProtocol):
    def __init__(self, proxy: DnsProxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.proxy._forward_udp(data, addr)


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, answer: asyncio.Future[bytes]) -> None:
        self.answer = answer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)


class StubContext:
    """Enough of a StrategyContext to call a polling strategy's ``discover`` directly."""

    def __init__(self, node_name: str = "app@127.0.0.1") -> None:
        self.topology = "test"
        self.node_name = node_name
        self.epmd_port = 4369
        self.log = logging.LoggerAdapter(logging.getLogger("test.dns"), {})

    def list_nodes(self) -> list[str]:
        return []

    async def connect_nodes(self, nodes: AbstractSet[str]) -> None:
        return None

    async def disconnect_nodes(self, nodes: AbstractSet[str]) -> None:
        return None


# -- a StatefulSet's pods, run in a private mount namespace by test_dns_statefulset.py ------
async def statefulset_pods(pods: Sequence[str], port: int, cookie: str) -> None:
    """Run node ``app@<pod>`` for each pod name, at the address the system resolver gives
    for it; the first runs Kubernetes.DNSSRV with its default options (resolv.conf) and
    prints its joins and leaves, one per line. Ends when stdin closes."""
    import socket
    import sys

    from cluster.helpers import FAST
    from nodemesh.cluster import Cluster, NodeJoined, NodeLeft, Topology
    from nodemesh.runtime.config import NodeConfig
    from nodemesh.runtime.node import Node

    loop = asyncio.get_running_loop()
    nodes: list[Node] = []
    for pod in pods:
        info = await loop.getaddrinfo(pod, port, type=socket.SOCK_STREAM)
        config = NodeConfig(use_epmd=False, port=port, listen_address=str(info[0][4][0]))
        nodes.append(Node(f"app@{pod}", cookie, config=config))
        await nodes[-1].start()
    options = {"service": "web", "namespace": "default", "application_name": "app"}
    topology = Topology.create("sts", "kubernetes_dnssrv", {**options, "polling_interval": 50})
    try:
        async with Cluster(nodes[0], [topology], config=FAST) as cluster:
            events = cluster.events()

            async def report() -> None:
                async for event in events:
                    if isinstance(event, NodeJoined | NodeLeft):
                        print(type(event).__name__, event.node, event.reason, flush=True)

            printer = asyncio.create_task(report())
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.read)  # until the test closes our stdin
            printer.cancel()
    finally:
        for node in reversed(nodes):
            await node.aclose()


if __name__ == "__main__":
    import sys

    _, _command, _port, _pods, _cookie = sys.argv
    asyncio.run(statefulset_pods(_pods.split(","), int(_port), _cookie))
