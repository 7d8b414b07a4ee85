"""Several "hosts" on one machine: network namespaces on a bridge, for multicast tests.

:class:`NetnsLab` creates N namespaces, each with an ``eth0`` (a veth pair whose other end
is a port of a private bridge), addresses ``10.77.0.<i>/24`` and ``fd77::<i>/64``
(``i`` = 1..N), ``lo`` up, and a route for IPv4 multicast (``224.0.0.0/4 dev eth0``; the
kernel adds IPv6's ``ff00::/8`` itself). Names carry this process's pid and a random tag,
so parallel runs never collide: the 10.77.0.0/24 addresses exist only inside each lab's
own namespaces, and the bridge has no address. :meth:`NetnsLab.close` kills whatever still
runs in the namespaces and deletes them and the bridge; it also runs at exit, and labs left
by runs that died are swept when the next one starts.

Needs root and ``ip`` (iproute2): :func:`require_netns` skips without them, except under
CI (``CI=true``), where it fails.

For the chaos suite (docs/reliability.md): :meth:`NetnsLab.link_down` / ``link_up``,
:meth:`NetnsLab.start_epmd`, ``erl_peer(distributed=False)``, and nftables faults inside
a host's namespace — :func:`drop_random` (packet loss), :func:`drop_all` (a stalled
link), :func:`clear_filters` — since this kernel has no netem.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence

import pytest

from support.erlang import ErlPeer, beam_dir, require_erlang
from support.tools import require_command

SUBNET4 = "10.77.0"
SUBNET6 = "fd77::"
_STALE = re.compile(r"nmt-(\d+)-")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def require_netns() -> None:
    """Skip unless network namespaces can be made here (root, iproute2); fail under CI."""

    def unusable(reason: str) -> None:
        if os.environ.get("CI"):
            pytest.fail(f"network namespace tests cannot run under CI: {reason}")
        pytest.skip(reason)

    if os.geteuid() != 0:
        unusable("needs root to create network namespaces")
    if shutil.which("ip") is None:
        unusable("the ip command is missing (apt-get install iproute2)")
    probe = f"nmt-{os.getpid()}-probe"
    made = _ip("netns", "add", probe, check=False)
    _ip("netns", "del", probe, check=False)
    if made.returncode != 0:
        unusable(f"ip netns add failed: {made.stderr.strip()}")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def sweep_stale() -> None:
    """Delete namespaces and bridges left by test runs whose process is gone."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split(" ", 1)[0]
        match = _STALE.match(name)
        if match and not _alive(int(match.group(1))):
            _kill_and_delete(name)
    listing = _ip("-j", "link", "show", "type", "bridge", check=False).stdout or "[]"
    for link in json.loads(listing):
        match = _STALE.match(link.get("ifalias", "") + "-")
        if match and not _alive(int(match.group(1))):
            _ip("link", "del", link["ifname"], check=False)


def _kill_and_delete(namespace: str) -> None:
    for _ in range(3):
        pids = _ip("netns", "pids", namespace, check=False).stdout.split()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", namespace, check=False)


class NetnsLab:
    """N namespaces on a bridge; host ``i`` (1-based) is ``10.77.0.<i>`` / ``fd77::<i>``."""

    def __init__(self, count: int) -> None:
        tag = secrets.token_hex(3)
        self.count = count
        self.namespaces = [f"nmt-{os.getpid()}-{tag}-{i}" for i in range(1, count + 1)]
        self.bridge = f"nm{tag}b"
        self.host_ends = [f"nm{tag}h{i}" for i in range(1, count + 1)]
        self._closed = False

    @classmethod
    def create(cls, count: int) -> NetnsLab:
        """Build the lab (cleaning up after itself if any step fails)."""
        sweep_stale()
        lab = cls(count)
        atexit.register(lab.close)
        try:
            lab._setup()
        except BaseException:
            lab.close()
            raise
        return lab

    def _setup(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge", "mcast_snooping", "0")
        _ip("link", "set", self.bridge, "alias", f"nmt-{os.getpid()}")
        _ip("link", "set", self.bridge, "up")
        for i, (ns, host) in enumerate(zip(self.namespaces, self.host_ends, strict=True), 1):
            _ip("netns", "add", ns)
            # no duplicate address detection: addresses usable at once (no procps needed)
            for conf in ("all", "default"):
                self.sh(i, f"echo 0 > /proc/sys/net/ipv6/conf/{conf}/accept_dad")
            _ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", host, "master", self.bridge)
            _ip("link", "set", host, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{self.ip4(i)}/24", "brd", "+", "dev", "eth0")
            _ip("-n", ns, "-6", "addr", "add", f"{self.ip6(i)}/64", "dev", "eth0", "nodad")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")

    def close(self) -> None:
        """Kill every process left in the namespaces; delete them and the bridge."""
        if self._closed:
            return
        self._closed = True
        for ns in self.namespaces:
            _kill_and_delete(ns)
        _ip("link", "del", self.bridge, check=False)
        atexit.unregister(self.close)

    def ip4(self, i: int) -> str:
        return f"{SUBNET4}.{i}"

    def ip6(self, i: int) -> str:
        return f"{SUBNET6}{i}"

    @property
    def broadcast4(self) -> str:
        return f"{SUBNET4}.255"

    def prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program inside host ``i``'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[i - 1]]

    def sh(self, i: int, command: str) -> str:
        """Run a shell command in host ``i``'s namespace; its stdout."""
        proc = subprocess.run(
            [*self.prefix(i), "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{command!r} in {self.namespaces[i - 1]}: {proc.stderr.strip()}")
        return proc.stdout

    def start_epmd(self, i: int) -> None:
        """Run a real ``epmd`` daemon in host ``i`` (if none runs) and wait until it answers."""
        self.sh(i, "epmd -daemon")
        for _ in range(100):
            if self.sh(i, "epmd -names >/dev/null 2>&1 && echo up || true").strip() == "up":
                return
        raise RuntimeError(f"epmd did not start in {self.namespaces[i - 1]}")

    def link_down(self, i: int) -> None:
        """Cut host ``i`` off: its bridge port goes down (its eth0 loses carrier but keeps
        its addresses and routes, as a pulled cable would)."""
        _ip("link", "set", self.host_ends[i - 1], "down")

    def link_up(self, i: int) -> None:
        _ip("link", "set", self.host_ends[i - 1], "up")

    async def erl_peer(
        self,
        i: int,
        name: str,
        cookie: str,
        extra_args: Sequence[str] = (),
        timeout: float = 30,
        *,
        distributed: bool = True,
        epmd_port: int | None = None,
    ) -> ErlPeer:
        """A real ``erl`` (see :class:`support.erlang.ErlPeer`) inside host ``i``.
        ``distributed=False`` starts it without ``-name``: the test starts distribution
        itself (``net_kernel:start/2``), once the node is ready for peers. ``epmd_port``:
        its EPMD (its own, in that namespace) listens there, the port every node of the
        test uses, instead of 4369."""
        erl = require_erlang()
        named = ["-name", name] if distributed else []
        env = [] if epmd_port is None else ["env", f"ERL_EPMD_PORT={epmd_port}"]
        args = [*self.prefix(i), *env, erl, "-noshell", *named, "-setcookie", cookie]
        args += ["-pa", str(beam_dir()), *extra_args, "-s", "nm_peer", "main"]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=64 * 1024 * 1024,
        )
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()
        if not line.startswith("ready "):
            proc.kill()
            rest = await asyncio.wait_for(proc.stdout.read(4000), 5)
            raise RuntimeError(f"erl did not start in {self.namespaces[i - 1]}: {line} {rest!r}")
        return ErlPeer(proc, line.split(" ", 1)[1])


# --- packet filters (nftables) inside a namespace, for the chaos suite ------------------
# The kernel here has no netem (see ../shared/TESTING.md): loss and stalls are nftables
# rules on the namespace's eth0, in a table of their own so that one command removes them.
# Loopback stays untouched: a node keeps talking to its own EPMD.
FILTER_TABLE = "nmchaos"


def require_nft() -> None:
    """Skip unless ``nft`` is installed; fail under CI."""
    require_command("nft", "nftables")


def _filter_rules(rule: str) -> str:
    """A table dropping what ``rule`` matches, both ways on eth0."""
    return (
        f"table inet {FILTER_TABLE} {{\n"
        f"  chain in {{ type filter hook input priority 0; policy accept;"
        f' iifname "eth0" {rule}; }}\n'
        f"  chain out {{ type filter hook output priority 0; policy accept;"
        f' oifname "eth0" {rule}; }}\n'
        "}\n"
    )


def _nft(lab: NetnsLab, i: int, script: str) -> None:
    proc = subprocess.run(
        [*lab.prefix(i), "nft", "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nft in {lab.namespaces[i - 1]}: {proc.stderr.strip()}\n{script}")


def drop_random(lab: NetnsLab, i: int, percent: int) -> None:
    """Host ``i`` loses ``percent`` % of its packets, at random, in and out."""
    if not 0 < percent < 100:
        raise ValueError(f"percent must be 1..99, got {percent}")
    _nft(lab, i, _filter_rules(f"numgen random mod 100 < {percent} drop"))


def drop_all(lab: NetnsLab, i: int) -> None:
    """Stall host ``i``'s link: every packet in and out is dropped (the link stays up, so
    TCP keeps retransmitting into the void, unlike :meth:`NetnsLab.link_down`)."""
    _nft(lab, i, _filter_rules("drop"))


def clear_filters(lab: NetnsLab, i: int) -> None:
    """Remove what :func:`drop_random` / :func:`drop_all` installed (if anything)."""
    _nft(lab, i, f"table inet {FILTER_TABLE}\ndelete table inet {FILTER_TABLE}\n")
