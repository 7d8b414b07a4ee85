"""The kubernetes strategy against a local HTTPS server that answers like kube-apiserver.

No API server runs here (see tests/support/kube_api.py): the server serves the API's real
list, watch and Status shapes, checks the bearer token and presents a certificate that
the strategy must verify against the service account's ``ca.crt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from nodemesh.cluster.kubernetes.client import KubernetesApiError
from nodemesh.cluster.strategies.kubernetes import KubernetesOptions, KubernetesStrategy
from nodemesh.errors import DiscoveryError
from support.kube_api import (
    LIBCLUSTER_NAMES,
    Address,
    FakeKubeApi,
    certificates,
    endpoint_slice,
    endpoints,
    jwt,
    pod,
    running_api,
    slice_endpoint,
    statefulset,
)
from support.net import wait_for

NS = "prod"
TOKEN = jwt({"iss": "https://kubernetes.default.svc", "sub": f"system:serviceaccount:{NS}:web"})

StrategyFactory = Callable[..., KubernetesStrategy]


class Context:
    """What the runner gives a strategy, minus connecting: counts requested rounds."""

    def __init__(self, node_name: str = "myapp@10.48.0.1") -> None:
        self.topology = "k8s"
        self.node_name = node_name
        self.epmd_port = 4369
        self.log = logging.LoggerAdapter(logging.getLogger("nodemesh.cluster"), {})
        self.rounds = 0

    def request_round(self) -> None:
        self.rounds += 1


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeKubeApi]:
    """The fake API for namespace prod, accepting TOKEN, with its service-account dir."""
    async with running_api(tmp_path, namespace=NS, token=TOKEN, account="web") as server:
        server.service_account()
        yield server


@pytest.fixture
async def make_strategy(api: FakeKubeApi) -> AsyncIterator[StrategyFactory]:
    """Build strategies pointed at ``api`` (watch retries fast); each is closed after."""
    made: list[KubernetesStrategy] = []

    def factory(ctx: Context | None = None, **options: Any) -> KubernetesStrategy:
        values: dict[str, Any] = {
            "kubernetes_node_basename": "myapp",
            "kubernetes_selector": "app=myapp-headless",
            "kubernetes_master": api.url,
            "kubernetes_service_account_path": str(api.directory / "serviceaccount"),
            "kubernetes_watch": False,
            "kubernetes_watch_retry_min": 20,
            "kubernetes_watch_retry_max": 200,
            **options,
        }
        strategy = KubernetesStrategy(KubernetesOptions(**values))
        strategy.bind(ctx or Context())  # type: ignore[arg-type]
        made.append(strategy)
        return strategy

    yield factory
    for strategy in made:
        await strategy.aclose()


def serve_statefulset(api: FakeKubeApi) -> None:
    for resource, objects in statefulset(NS).items():
        api.put(resource, *objects)


@pytest.mark.parametrize("lookup", ["endpoints", "endpointslices", "pods"])
@pytest.mark.parametrize(("mode", "cluster"), sorted(LIBCLUSTER_NAMES))
async def test_served_lookups_give_libclusters_names(
    api: FakeKubeApi, make_strategy: StrategyFactory, lookup: str, mode: str, cluster: str
) -> None:
    """Every lookup and mode names the two ready pods as libcluster does; no others."""
    serve_statefulset(api)
    strategy = make_strategy(
        mode=mode,
        kubernetes_ip_lookup_mode=lookup,
        kubernetes_cluster_name=cluster,
        kubernetes_service_name="myapp-headless",
        kubernetes_selector="app=myapp-headless" if lookup != "pods" else "app=app",
    )
    assert await strategy.discover() == LIBCLUSTER_NAMES[(mode, cluster)]
    (request,) = api.requests
    assert (
        request.path
        == {
            "endpoints": f"/api/v1/namespaces/{NS}/endpoints",
            "endpointslices": f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices",
            "pods": f"/api/v1/namespaces/{NS}/pods",
        }[lookup]
    )
    assert request.authorization == f"Bearer {TOKEN}"


async def test_namespace_option_overrides_the_service_account(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """kubernetes_namespace is asked instead of the service account's namespace file."""
    api.put("endpoints", endpoints("myapp-headless", "other", [Address("10.9.0.1", "a")]))
    strategy = make_strategy(kubernetes_namespace="other")
    assert await strategy.discover() == {"myapp@10.9.0.1"}
    assert api.requests[0].path == "/api/v1/namespaces/other/endpoints"


async def test_cached_resources_asks_for_resource_version_zero(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """kubernetes_use_cached_resources lists with resourceVersion=0, as libcluster does."""
    strategy = make_strategy(kubernetes_use_cached_resources=True)
    assert await strategy.discover() == set()
    assert api.requests[0].query == {"labelSelector": "app=myapp-headless", "resourceVersion": "0"}


async def test_kubernetes_service_host_and_port_are_used(
    api: FakeKubeApi, make_strategy: StrategyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default master, $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT is asked."""
    serve_statefulset(api)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
    strategy = make_strategy(kubernetes_master="kubernetes.default.svc")
    assert await strategy.discover() == LIBCLUSTER_NAMES[("ip", "cluster")]


async def test_endpointslices_fall_back_to_endpoints_on_404(
    api: FakeKubeApi, make_strategy: StrategyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An API without discovery.k8s.io/v1 (404) makes the strategy use v1 Endpoints."""
    serve_statefulset(api)
    api.missing.add("endpointslices")
    strategy = make_strategy(kubernetes_ip_lookup_mode="endpointslices")
    with caplog.at_level(logging.INFO, "nodemesh.cluster"):
        assert await strategy.discover() == LIBCLUSTER_NAMES[("ip", "cluster")]
        assert await strategy.discover() == LIBCLUSTER_NAMES[("ip", "cluster")]
    assert [r.path.rsplit("/", 1)[1] for r in api.requests] == [
        "endpointslices",
        "endpoints",
        "endpoints",
    ]
    assert "no discovery.k8s.io/v1 EndpointSlices (404): using v1 Endpoints" in caplog.text


async def test_ipv6_pods_are_named_plainly(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """IPv6 EndpointSlices give app@<ipv6>; dual-stack pods get the node's own family."""
    v6 = [
        slice_endpoint("fd00:10:244::7", "myapp-0", NS),
        slice_endpoint("fd00:10:244::8", "myapp-1", NS),
    ]
    v4 = [slice_endpoint("10.48.0.7", "myapp-0", NS)]
    api.put(
        "endpointslices",
        endpoint_slice("myapp-v6", NS, "myapp-headless", v6, address_type="IPv6"),
        endpoint_slice("myapp-v4", NS, "myapp-headless", v4),
    )
    ipv6_node = make_strategy(
        Context("myapp@fd00:10:244::1"), kubernetes_ip_lookup_mode="endpointslices"
    )
    assert await ipv6_node.discover() == {"myapp@fd00:10:244::7", "myapp@fd00:10:244::8"}
    ipv4_node = make_strategy(kubernetes_ip_lookup_mode="endpointslices")
    assert await ipv4_node.discover() == {"myapp@10.48.0.7", "myapp@fd00:10:244::8"}
    dns = make_strategy(
        Context("myapp@fd00:10:244::1"), kubernetes_ip_lookup_mode="endpointslices", mode="dns"
    )
    assert await dns.discover() == {
        f"myapp@fd00-10-244--7.{NS}.pod.cluster.local",
        f"myapp@fd00-10-244--8.{NS}.pod.cluster.local",
    }


# -- credentials and TLS --------------------------------------------------------------------


async def test_a_rotated_token_is_read_before_the_next_request(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """The token is re-read every poll: a rotated one is sent, a stale one is a 401."""
    serve_statefulset(api)
    strategy = make_strategy()
    await strategy.discover()
    api.tokens = {"rotated-token"}
    with pytest.raises(
        DiscoveryError, match=r"rejected the token in .*/serviceaccount/token \(401"
    ):
        await strategy.discover()
    (api.directory / "serviceaccount" / "token").write_text("rotated-token\n")
    assert await strategy.discover() == LIBCLUSTER_NAMES[("ip", "cluster")]
    sent = [r.authorization for r in api.requests]
    assert sent == [f"Bearer {TOKEN}", f"Bearer {TOKEN}", "Bearer rotated-token"]


async def test_a_wrong_ca_fails_clearly(api: FakeKubeApi, make_strategy: StrategyFactory) -> None:
    """A server certificate not signed by ca.crt is refused with an error naming ca.crt."""
    api.service_account(ca=certificates().other_ca_pem)
    strategy = make_strategy()
    with pytest.raises(DiscoveryError) as info:
        await strategy.discover()
    message = str(info.value)
    assert message.startswith(f"TLS verification of the Kubernetes API at {api.url} failed")
    assert "not signed by the CA in" in message and message.count("serviceaccount/ca.crt") == 1
    assert api.requests == []


async def test_a_missing_token_or_namespace_says_what_to_mount(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """No token file, or no namespace from option or file, is a DiscoveryError saying so."""
    account = api.directory / "serviceaccount"
    (account / "namespace").unlink()
    strategy = make_strategy()
    with pytest.raises(DiscoveryError, match="set kubernetes_namespace, or mount"):
        await strategy.discover()
    (account / "token").unlink()
    strategy = make_strategy(kubernetes_namespace=NS)
    with pytest.raises(DiscoveryError, match=r"cannot read the service account token .*token"):
        await strategy.discover()


# -- 403 ----------------------------------------------------------------------------------------


async def test_403_names_the_permission_and_the_role(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """A 403 names verb, resource, group, namespace, account, and the Role to apply."""
    api.forbidden.add(("list", "endpointslices"))
    strategy = make_strategy(kubernetes_ip_lookup_mode="endpointslices", kubernetes_watch=True)
    with pytest.raises(KubernetesApiError) as info:
        await strategy.discover()
    assert info.value.status == 403
    message = str(info.value)
    assert message.startswith(
        "the Kubernetes API refused to list endpointslices (403 Forbidden): the service account "
        '"web" of namespace "prod" lacks verb "list" on resource "endpointslices" in API group '
        '"discovery.k8s.io" in namespace "prod" (the API said: endpointslices is forbidden: '
    )
    for line in (
        "kind: Role",
        '  - apiGroups: ["discovery.k8s.io"]',
        '    resources: ["endpointslices"]',
        '    verbs: ["list", "watch"]',
        "kind: RoleBinding",
        "    name: web",
    ):
        assert line in message.splitlines()


async def test_a_role_without_watch_falls_back_to_polling(
    api: FakeKubeApi, make_strategy: StrategyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A Role with list but not watch: one warning naming watch, then polling."""
    serve_statefulset(api)
    api.forbidden.add(("watch", "endpoints"))
    strategy = make_strategy(kubernetes_watch=True)
    with caplog.at_level(logging.WARNING, "nodemesh.cluster"):
        assert await strategy.discover() == LIBCLUSTER_NAMES[("ip", "cluster")]
        async with watching(strategy):
            await wait_for(lambda: len(api.seen("watch", "endpoints")) >= 1)
            await wait_for(lambda: "cannot watch" in caplog.text)
            assert not strategy.watching
            api.put("endpoints", endpoints("myapp-headless", NS, [Address("10.48.9.9", "myapp-9")]))
            assert await strategy.discover() == {"myapp@10.48.9.9"}
    warned = [r.getMessage() for r in caplog.records if "cannot watch" in r.getMessage()]
    assert len(warned) == 1
    assert 'lacks verb "watch" on resource "endpoints" in API group ""' in warned[0]


# -- watching -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def watching(strategy: KubernetesStrategy) -> AsyncIterator[None]:
    """Run the strategy's watch beside the test, as the runner does; cancelled after."""
    async with asyncio.TaskGroup() as tg:
        watch = tg.create_task(strategy.watch())
        try:
            yield
        finally:
            watch.cancel()


@contextlib.asynccontextmanager
async def watched(
    make_strategy: StrategyFactory, **options: Any
) -> AsyncIterator[tuple[KubernetesStrategy, Context]]:
    """A strategy after its first round, with its watch open."""
    ctx = Context()
    strategy = make_strategy(ctx, kubernetes_watch=True, **options)
    await strategy.discover()
    async with watching(strategy):
        await wait_for(lambda: strategy.watching, timeout=5, what="the watch to open")
        yield strategy, ctx


async def test_watch_applies_changes_and_asks_for_a_round(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """Watched changes ask for a round at once; rounds then answer without a request."""
    serve_statefulset(api)
    async with watched(make_strategy, kubernetes_ip_lookup_mode="endpointslices") as (
        strategy,
        ctx,
    ):
        lists = len(api.seen("list", "endpointslices"))
        entries = [
            slice_endpoint("10.48.33.136", "myapp-0", NS),
            slice_endpoint("10.48.40.1", "myapp-5", NS),
        ]
        api.put(
            "endpointslices", endpoint_slice("myapp-headless-x7k2p", NS, "myapp-headless", entries)
        )
        await wait_for(lambda: ctx.rounds == 1, timeout=5, what="a round request")
        assert await strategy.discover() == {"myapp@10.48.33.136", "myapp@10.48.40.1"}
        api.delete("endpointslices", "myapp-headless-x7k2p")
        await wait_for(lambda: ctx.rounds == 2, timeout=5, what="a round request")
        assert await strategy.discover() == set()
        assert len(api.seen("list", "endpointslices")) == lists  # no request while watching


async def test_a_change_that_keeps_the_names_asks_for_nothing(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """Watch events that change no node name do not wake the runner."""
    serve_statefulset(api)
    async with watched(
        make_strategy, kubernetes_ip_lookup_mode="pods", kubernetes_selector="app=app"
    ) as (strategy, ctx):
        relabeled = pod("myapp-0", NS, "10.48.33.136", labels={"app": "app", "version": "2"})
        api.put("pods", relabeled, pod("myapp-4", NS, None, phase="Pending"))
        api.bookmark()
        await wait_for(lambda: strategy.resource_version == str(api.version), timeout=5)
        assert ctx.rounds == 0


async def test_410_during_watch_lists_again_and_resumes(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """An ERROR 410 Expired makes it list again and watch from the new version."""
    serve_statefulset(api)
    async with watched(make_strategy) as (strategy, ctx):
        assert len(api.seen("list", "endpoints")) == 1
        api.expire()
        await wait_for(lambda: len(api.seen("list", "endpoints")) == 2, timeout=5, what="a re-list")
        await wait_for(lambda: api.watchers == 1, timeout=5, what="a new watch")
        assert api.seen("watch", "endpoints")[-1].query["resourceVersion"] == str(api.version)
        api.put("endpoints", endpoints("myapp-headless", NS, [Address("10.48.50.1", "myapp-7")]))
        await wait_for(lambda: ctx.rounds >= 1, timeout=5, what="a round request")
        assert await strategy.discover() == {"myapp@10.48.50.1"}


async def test_watch_resumes_from_the_last_bookmark(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """A watch the server ended resumes from the last BOOKMARK, without a list."""
    serve_statefulset(api)
    async with watched(make_strategy, kubernetes_watch_timeout=60_000) as (strategy, _):
        first = api.seen("watch", "endpoints")[0].query
        assert first["allowWatchBookmarks"] == "true" and first["timeoutSeconds"] == "60"
        api.bookmark()
        mark = str(api.version)
        await wait_for(lambda: strategy.resource_version == mark, timeout=5)
        api.end_watches()
        await wait_for(lambda: len(api.seen("watch", "endpoints")) == 2, timeout=5)
        assert api.seen("watch", "endpoints")[1].query["resourceVersion"] == mark
        assert len(api.seen("list", "endpoints")) == 1


async def test_while_the_watch_is_down_discovery_lists(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """While the watch is refused each round lists; the watch returns when allowed."""
    serve_statefulset(api)
    async with watched(make_strategy) as (strategy, _):
        api.forbidden.add(("watch", "endpoints"))
        api.end_watches()
        await wait_for(lambda: not strategy.watching, timeout=5)
        lists = len(api.seen("list", "endpoints"))
        await strategy.discover()
        assert len(api.seen("list", "endpoints")) == lists + 1
        api.forbidden.clear()
        await wait_for(lambda: strategy.watching, timeout=5, what="the watch to come back")


async def test_deprecation_warnings_are_logged_once(
    api: FakeKubeApi, make_strategy: StrategyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The API's Warning header (v1 Endpoints is deprecated in 1.33) is logged once."""
    api.warning = (
        '299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"'
    )
    strategy = make_strategy()
    with caplog.at_level(logging.INFO, "nodemesh.cluster"):
        for _ in range(3):
            await strategy.discover()
    assert caplog.text.count("v1 Endpoints is deprecated") == 1


async def test_cancelling_the_watch_closes_the_stream(
    api: FakeKubeApi, make_strategy: StrategyFactory
) -> None:
    """Cancelling watch() (the runner stopping) closes the stream on the server's side."""
    async with watched(make_strategy) as (strategy, _):
        assert api.watchers == 1
    await wait_for(lambda: api.watchers == 0, timeout=5, what="the server to see the close")
    assert not strategy.watching


async def test_without_kubernetes_watch_the_watch_returns_at_once(
    make_strategy: StrategyFactory,
) -> None:
    """kubernetes_watch = false: watch() returns at once and opens nothing."""
    strategy = make_strategy(kubernetes_watch=False)
    async with asyncio.timeout(1):
        await strategy.watch()
    assert not strategy.watching
