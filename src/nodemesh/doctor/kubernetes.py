"""Kubernetes API strategy prerequisites: service-account files, the API server, RBAC.

Permissions are asked with a SelfSubjectAccessReview (``POST
/apis/authorization.k8s.io/v1/selfsubjectaccessreviews``), which every authenticated
account may create (ClusterRole ``system:basic-user``): the API answers whether *this*
token may ``list`` / ``watch`` the resource in the namespace, without needing the
permission itself. The files, URL rules and the Role that fixes a refusal are the
strategy's own (:mod:`nodemesh.cluster.kubernetes.access`,
:mod:`nodemesh.cluster.kubernetes.client`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nodemesh.doctor.result import CheckResult, Status

__all__ = ["SSAR_PATH", "access_review", "check_kubernetes", "grant_command", "resource_of"]

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
DEFAULT_SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def resource_of(options: Any) -> Any:
    """The resource the strategy lists, by its ``kubernetes_ip_lookup_mode``."""
    from nodemesh.cluster.kubernetes.api import ENDPOINTS, ENDPOINTSLICES, PODS

    mode = str(getattr(options, "kubernetes_ip_lookup_mode", "endpoints"))
    return {"pods": PODS, "endpointslices": ENDPOINTSLICES}.get(mode, ENDPOINTS)


def access_review(namespace: str, verb: str, resource: Any) -> dict[str, Any]:
    """The SelfSubjectAccessReview asking whether we may ``verb`` ``resource``."""
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": resource.group,
                "resource": resource.plural,
            }
        },
    }


async def check_kubernetes(
    options: Any,
    *,
    environ: Mapping[str, str] | None = None,
    verbs: Sequence[str] = ("list", "watch"),
    timeout: float = 5.0,
) -> list[CheckResult]:
    """Service-account files, then the API server and each permission the strategy needs."""
    from nodemesh.cluster.kubernetes.access import api_base_url, service_account_of
    from nodemesh.cluster.kubernetes.client import ServiceAccount

    env = os.environ if environ is None else environ
    path = str(getattr(options, "kubernetes_service_account_path", "") or DEFAULT_SA_PATH)
    results, namespace = _files(path, str(getattr(options, "kubernetes_namespace", "") or ""))
    if any(r.status is Status.FAIL for r in results) or namespace is None:
        return results
    account = ServiceAccount(path)
    base = api_base_url(
        str(getattr(options, "kubernetes_master", "") or "kubernetes.default.svc"),
        str(getattr(options, "kubernetes_cluster_name", "") or "cluster"),
        env,
    )
    resource = resource_of(options)
    try:
        token, context = await asyncio.to_thread(account.credentials)
    except Exception as exc:  # KubernetesApiError: unreadable token or CA
        return [*results, CheckResult.fail("service account", str(exc), _MOUNT_FIX)]
    who = service_account_of(token, "", namespace)
    review = _Reviewer(base, token, context, timeout)
    try:
        for verb in verbs:
            selector = str(getattr(options, "kubernetes_selector", ""))
            result = await review.check(namespace, verb, resource, who, selector)
            if verb == "watch" and result.status is Status.FAIL:
                # Without watch the strategy still lists every polling_interval.
                detail = result.detail + "; the strategy falls back to polling"
                result = CheckResult.warn(result.check, detail, result.fix)
            results.append(result)
    finally:
        await review.aclose()
    return results


_MOUNT_FIX = (
    "mount the service account: automountServiceAccountToken: true and serviceAccountName "
    "in the pod spec (or set kubernetes_service_account_path)"
)


def _files(path: str, namespace_option: str) -> tuple[list[CheckResult], str | None]:
    folder = Path(path)
    check = "service account files"
    missing = [f for f in ("token", "ca.crt", "namespace") if not (folder / f).is_file()]
    if "token" in missing:
        return [CheckResult.fail(check, f"no token at {folder / 'token'}", _MOUNT_FIX)], None
    namespace = namespace_option
    if not namespace:
        try:
            namespace = (folder / "namespace").read_text().strip()
        except OSError:
            namespace = ""
    if not namespace:
        detail = f"no namespace: {folder / 'namespace'} is missing and kubernetes_namespace unset"
        return [CheckResult.fail(check, detail, "set kubernetes_namespace, or " + _MOUNT_FIX)], None
    if "ca.crt" in missing:
        return [
            CheckResult.warn(
                check,
                f"no {folder / 'ca.crt'}: the API server's certificate is checked against "
                "the system's CAs instead",
                "mount the service account's ca.crt (automountServiceAccountToken: true)",
            )
        ], namespace
    return [CheckResult.ok(check, f"token, ca.crt in {folder}; namespace {namespace}")], namespace


class _Reviewer:
    """Asks one API server what this token may do: a SelfSubjectAccessReview, or, where
    that cannot be created, the request itself (a list or a watch of one second)."""

    def __init__(self, base: str, token: str, context: Any, timeout: float) -> None:
        import aiohttp

        self.base = base
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.context = context
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session = aiohttp.ClientSession()
        self.reachable: bool | None = None

    async def aclose(self) -> None:
        await self.session.close()

    async def check(
        self, namespace: str, verb: str, resource: Any, who: Any, selector: str
    ) -> CheckResult:
        check = f"RBAC {verb} {resource.plural}"
        if self.reachable is False:
            return CheckResult.warn(check, "not checked: the API server cannot be reached")
        body = access_review(namespace, verb, resource)
        try:
            status, text = await self._send("POST", SSAR_PATH, json=body)
        except _Unreachable as exc:
            return exc.result
        if status == 401:
            return CheckResult.fail(
                check,
                "the API rejected the token (401): expired, revoked or from another cluster",
                "restart the pod to get a fresh token; check the service account exists",
            )
        if status in (200, 201):
            return _review_verdict(check, text, namespace, verb, resource, who)
        # No SelfSubjectAccessReview here (a 403 or 404 for it): try the request itself.
        params = {"labelSelector": selector, "limit": "1"}
        if verb == "watch":
            params = {"labelSelector": selector, "watch": "1", "timeoutSeconds": "1"}
        try:
            tried, answer = await self._send("GET", resource.path(namespace), params=params)
        except _Unreachable as exc:
            return exc.result
        how = f"tried the {verb} (SelfSubjectAccessReview answered {status})"
        if tried == 200:
            return CheckResult.ok(
                check, f"{who or 'this account'} may {verb} {resource.plural}: {how}"
            )
        if tried == 403:
            return CheckResult.fail(
                check,
                f"{who or 'this account'} may not {verb} {resource.plural} in namespace "
                f"{namespace}: {how}: {answer[:200]}",
                grant_command(namespace, resource, who),
            )
        return CheckResult.warn(
            check, f"could not tell: {how}, and it answered {tried}: {answer[:160]}"
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        import aiohttp

        try:
            async with self.session.request(
                method,
                self.base + path,
                headers=self.headers,
                ssl=self.context,
                timeout=self.timeout,
                **kwargs,
            ) as response:
                if kwargs.get("params", {}).get("watch") and response.status == 200:
                    return 200, ""  # the watch opened: allowed; do not wait for events
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.reachable = False
            raise _Unreachable(
                CheckResult.fail(
                    f"Kubernetes API {self.base}",
                    f"cannot reach it: {_describe(exc)}",
                    "check KUBERNETES_SERVICE_HOST/PORT, kubernetes_master, CLUSTER_DOMAIN, "
                    "and that NetworkPolicies allow egress to the API server",
                )
            ) from exc


class _Unreachable(Exception):
    def __init__(self, result: CheckResult) -> None:
        self.result = result


def _review_verdict(
    check: str, text: str, namespace: str, verb: str, resource: Any, who: Any
) -> CheckResult:
    try:
        answer = json.loads(text).get("status", {})
    except (ValueError, AttributeError):
        answer = {}
    group = resource.group or "core"
    account = who or "this account"
    if answer.get("allowed") is True:
        return CheckResult.ok(
            check, f"{account} may {verb} {resource.plural} ({group}) in namespace {namespace}"
        )
    reason = answer.get("reason") or "no Role grants it"
    return CheckResult.fail(
        check,
        f"{account} may not {verb} {resource.plural} ({group}) in namespace {namespace}: {reason}",
        grant_command(namespace, resource, who),
    )


def grant_command(namespace: str, resource: Any, who: Any) -> str:
    """The kubectl commands creating the least-privilege Role and RoleBinding."""
    kind = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
    account = getattr(who, "name", None) or "<service account>"
    sa_ns = getattr(who, "namespace", None) or namespace
    return (
        f"kubectl create role nodemesh-discovery -n {namespace} --verb=list,watch "
        f"--resource={kind} && kubectl create rolebinding nodemesh-discovery -n {namespace} "
        f"--role=nodemesh-discovery --serviceaccount={sa_ns}:{account}"
    )


def _describe(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS: the server's certificate does not verify against ca.crt ({exc})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc.os_error or exc)
    return str(exc) or type(exc).__name__
