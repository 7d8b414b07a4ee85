"""Kubernetes API prerequisites against local HTTPS servers that answer like the API.

No API server runs here (TESTING.md). Two stand-ins: a small one answering
SelfSubjectAccessReviews the way kube-apiserver does (``status.allowed`` / ``reason``),
and the suite's FakeKubeApi, which has no such endpoint, for the fallback of trying the
list and the watch themselves. Both check the bearer token and serve TLS with a CA the
doctor must verify.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from nodemesh.cluster.strategies.kubernetes import KubernetesOptions
from nodemesh.doctor.kubernetes import SSAR_PATH, check_kubernetes
from nodemesh.doctor.result import CheckResult, Status
from support.kube_api import certificates, running_api
from support.net import free_port


def jwt(sub: str) -> str:
    """An (unsigned) service-account token whose ``sub`` names the account."""

    def part(doc: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'sub': sub})}.c2ln"


TOKEN = jwt("system:serviceaccount:default:sample")


def options(sa: Path, **extra: Any) -> KubernetesOptions:
    return KubernetesOptions(
        kubernetes_node_basename="sample",
        kubernetes_selector="app.kubernetes.io/name=sample",
        kubernetes_ip_lookup_mode="endpointslices",
        kubernetes_service_account_path=str(sa),
        **extra,
    )


def env_for(port: int) -> dict[str, str]:
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port)}


def by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


class ReviewApi:
    """Answers SelfSubjectAccessReviews: ``allowed`` holds (verb, group, resource)."""

    def __init__(self, directory: Path, allowed: set[tuple[str, str, str]]) -> None:
        self.directory = directory
        self.allowed = allowed
        self.reviews: list[dict[str, Any]] = []
        self.port = 0

    async def review(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        body = await request.json()
        self.reviews.append(body)
        attrs = body["spec"]["resourceAttributes"]
        allowed = (attrs["verb"], attrs["group"], attrs["resource"]) in self.allowed
        # kube-apiserver's reason is empty when no RBAC rule matches
        body["status"] = {"allowed": allowed, "reason": ""}
        return web.json_response(body, status=201)


@pytest.fixture
async def review_api(tmp_path: Path) -> AsyncIterator[ReviewApi]:
    api = ReviewApi(tmp_path, {("list", "discovery.k8s.io", "endpointslices")})
    app = web.Application()
    app.router.add_post(SSAR_PATH, api.review)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certificates().server_context(tmp_path))
    await site.start()
    api.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield api
    await runner.cleanup()


def service_account(directory: Path, *, token: str = TOKEN, namespace: bool = True) -> Path:
    sa = directory / "serviceaccount"
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text(token + "\n")
    (sa / "ca.crt").write_bytes(certificates().ca_pem)
    if namespace:
        (sa / "namespace").write_text("default")
    return sa


async def test_missing_token_fails_with_how_to_mount_it(tmp_path: Path) -> None:
    """A pod without the service-account token (automount off): FAIL, nothing asked."""
    (result,) = await check_kubernetes(options(tmp_path / "nothing"), environ={})
    assert result.status is Status.FAIL and "no token" in result.detail
    assert "automountServiceAccountToken: true" in result.fix


async def test_missing_namespace_needs_the_option(tmp_path: Path) -> None:
    """Token but no namespace file and no kubernetes_namespace: FAIL."""
    sa = service_account(tmp_path, namespace=False)
    (result,) = await check_kubernetes(options(sa), environ={})
    assert result.status is Status.FAIL and "kubernetes_namespace" in result.fix


async def test_access_review_names_the_missing_permission(
    review_api: ReviewApi, tmp_path: Path
) -> None:
    """list allowed, watch not: PASS, then WARN with the kubectl commands granting it."""
    sa = service_account(tmp_path)
    results = by_check(await check_kubernetes(options(sa), environ=env_for(review_api.port)))
    assert results["service account files"].status is Status.PASS
    assert results["RBAC list endpointslices"].status is Status.PASS
    watch = results["RBAC watch endpointslices"]
    assert watch.status is Status.WARN and "falls back to polling" in watch.detail
    assert "may not watch endpointslices (discovery.k8s.io)" in watch.detail
    assert watch.fix == (
        "kubectl create role nodemesh-discovery -n default --verb=list,watch "
        "--resource=endpointslices.discovery.k8s.io && kubectl create rolebinding "
        "nodemesh-discovery -n default --role=nodemesh-discovery "
        "--serviceaccount=default:sample"
    )
    asked = [r["spec"]["resourceAttributes"] for r in review_api.reviews]
    assert asked[0] == {
        "namespace": "default",
        "verb": "list",
        "group": "discovery.k8s.io",
        "resource": "endpointslices",
    }


async def test_no_list_permission_fails(review_api: ReviewApi, tmp_path: Path) -> None:
    """Without list (the step libcluster's docs forget) the check FAILs."""
    review_api.allowed.clear()
    sa = service_account(tmp_path)
    results = by_check(await check_kubernetes(options(sa), environ=env_for(review_api.port)))
    assert results["RBAC list endpointslices"].status is Status.FAIL


async def test_falls_back_to_trying_the_requests(tmp_path: Path) -> None:
    """Without SelfSubjectAccessReview the list (403: FAIL) and watch (200: PASS) are tried."""
    async with running_api(tmp_path, token=TOKEN, account="sample") as api:
        sa = api.service_account()
        api.forbidden.add(("list", "endpointslices"))
        results = by_check(await check_kubernetes(options(sa), environ=env_for(api.port)))
    listing, watching = results["RBAC list endpointslices"], results["RBAC watch endpointslices"]
    assert listing.status is Status.FAIL and "tried the list" in listing.detail
    assert "--serviceaccount=default:sample" in listing.fix
    assert watching.status is Status.PASS and "tried the watch" in watching.detail


async def test_wrong_ca_is_a_tls_failure(tmp_path: Path) -> None:
    """A CA that did not sign the server's certificate: FAIL saying TLS, not 'unreachable'."""
    async with running_api(tmp_path, token=TOKEN) as api:
        sa = api.service_account(ca=certificates().other_ca_pem)
        results = await check_kubernetes(options(sa), environ=env_for(api.port))
    failed = [r for r in results if r.status is Status.FAIL]
    assert len(failed) == 1 and "TLS" in failed[0].detail


async def test_unreachable_api_fails_once(tmp_path: Path) -> None:
    """No API server at the address: one FAIL naming it, the next permission not asked."""
    sa = service_account(tmp_path)
    results = await check_kubernetes(options(sa), environ=env_for(free_port()))
    assert [r.status for r in results] == [Status.PASS, Status.FAIL, Status.WARN]
    assert "cannot reach it" in results[1].detail
    assert results[1].check.startswith("Kubernetes API https://127.0.0.1:")
