"""The order of the doctor's checks, each reported as soon as it is done."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from nodemesh.cluster.topology import Topology
from nodemesh.dist.names import NodeName
from nodemesh.doctor.names import check_cookie_source, check_name_kinds, check_own_name
from nodemesh.doctor.network import check_local_epmd, probe_peer
from nodemesh.doctor.result import CheckResult
from nodemesh.doctor.strategies import check_topology, naming_of
from nodemesh.doctor.tls import check_tls_files
from nodemesh.errors import ConfigError
from nodemesh.runtime.tls import TlsConfig

__all__ = ["DoctorOptions", "diagnose"]


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    """What to check. ``name``: this node's name (as ``nodemesh run --name``);
    ``peers``: nodes to reach (else up to ``probe_discovered`` found by discovery);
    ``config_error``: why the topologies could not be loaded, if they could not;
    ``timeout``: seconds per network step; ``wait``: seconds to listen to gossip;
    ``tls``: the node's TLS settings (its certificates are checked, peers probed in TLS)."""

    name: str
    cookie: str | None = None
    peers: Sequence[str] = ()
    topologies: Sequence[Topology] = ()
    config_error: str | None = None
    epmd_port: int = 4369
    timeout: float = 3.0
    wait: float | None = None
    probe_discovered: int = 3
    environ: Mapping[str, str] | None = None
    tls: TlsConfig | None = None  # TLS distribution: check the files, probe peers in TLS


async def diagnose(opts: DoctorOptions) -> AsyncIterator[CheckResult]:
    """Run every check, yielding each result when it is known."""
    env = os.environ if opts.environ is None else opts.environ
    own, results = await check_own_name(opts.name, environ=env)
    for result in results:
        yield result
    cookie_result = check_cookie_source(opts.cookie, env)
    yield cookie_result
    cookie = _cookie(opts.cookie, env) if cookie_result.status.value == "PASS" else None
    alive = own.alive if own is not None else None
    yield await check_local_epmd(alive, opts.epmd_port, opts.timeout)
    if opts.tls is not None:
        for result in check_tls_files(opts.tls, own):
            yield result
    if opts.config_error is not None:
        yield CheckResult.fail(
            "cluster config", opts.config_error, "fix the option named; see docs/cluster.md"
        )
    discovered: set[str] = set()
    names = (naming_of(t) for t in opts.topologies)
    basenames = frozenset(n[1] for n in names if n is not None)
    for topology in opts.topologies:
        report = await check_topology(
            topology,
            own,
            node_name=str(own) if own is not None else opts.name,
            epmd_port=opts.epmd_port,
            timeout=opts.timeout,
            wait=opts.wait,
            environ=env,
            basenames=basenames,
        )
        for result in report.results:
            yield result
        discovered |= report.discovered
    async for result in _peers(opts, own, cookie, discovered):
        yield result


async def _peers(
    opts: DoctorOptions, own: NodeName | None, cookie: str | None, discovered: set[str]
) -> AsyncIterator[CheckResult]:
    peers = list(opts.peers)
    if not peers:
        peers = sorted(discovered - {str(own)})[: opts.probe_discovered]
    if own is not None and opts.peers:
        kinds = check_name_kinds(own, opts.peers, "--peer")
        if kinds is not None:
            yield kinds
    for peer in peers:
        for result in await probe_peer(
            peer,
            own=own,
            cookie=cookie,
            epmd_port=opts.epmd_port,
            timeout=opts.timeout,
            tls=opts.tls,
        ):
            yield result


def _cookie(explicit: str | None, env: Mapping[str, str]) -> str | None:
    from nodemesh.cookie import resolve_cookie

    try:
        return resolve_cookie(explicit, environ=env)
    except ConfigError:
        return None
