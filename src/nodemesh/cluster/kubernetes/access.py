"""Reaching the Kubernetes API: the server's URL, who we are, and what a 403 is missing.

Pure functions; the environment and file contents are passed in.

- :func:`api_base_url` applies libcluster's master host rules and, when the pod has them,
  ``KUBERNETES_SERVICE_HOST`` / ``KUBERNETES_SERVICE_PORT`` (what client-go's in-cluster
  configuration uses).
- :func:`service_account_of` names the service account a token belongs to, from the
  token's ``sub`` claim (``system:serviceaccount:<ns>:<name>``), read without verifying the
  signature: it only labels an error message, it grants nothing.
- :func:`explain_forbidden` turns a 403 into a sentence naming the verb, resource, API
  group, namespace and service account, followed by the Role and RoleBinding that grant
  exactly that (``kubectl apply -f -`` ready).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nodemesh.cluster.kubernetes.api import Resource

__all__ = [
    "DEFAULT_MASTER",
    "ServiceAccountName",
    "api_base_url",
    "explain_forbidden",
    "rbac_manifest",
    "service_account_of",
]

DEFAULT_MASTER = "kubernetes.default.svc"
ROLE_NAME = "nodemesh-discovery"
_USER = re.compile(r'User "system:serviceaccount:([^:"]+):([^"]+)"')


def api_base_url(master: str, cluster_name: str, env: Mapping[str, str]) -> str:
    """The API server's base URL (``https://host[:port]``, no trailing slash).

    In order: a ``kubernetes_master`` written as an ``https://`` URL is used as is; with
    ``kubernetes_master`` left at its default and ``KUBERNETES_SERVICE_HOST`` set (every
    pod has it), ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``; otherwise
    libcluster's rule: the master host, plus ``.$CLUSTER_DOMAIN`` (default
    ``<cluster_name>.local``) unless it already ends with that domain or with a dot.
    """
    if master.startswith("https://"):
        return master.rstrip("/")
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    if master == DEFAULT_MASTER and host:
        port = env.get("KUBERNETES_SERVICE_PORT", "").strip() or "443"
        return f"https://{f'[{host}]' if ':' in host else host}:{port}"
    domain = env.get("CLUSTER_DOMAIN", f"{cluster_name}.local")  # set but empty counts
    if not (master.endswith(domain) or master.endswith(".")):
        master = f"{master}.{domain}"
    return f"https://{master}"


@dataclass(frozen=True, slots=True)
class ServiceAccountName:
    """A service account; ``name`` is None when nothing said which one."""

    namespace: str
    name: str | None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name or '?'}"


def service_account_of(
    token: str | None, api_message: str = "", namespace: str | None = None
) -> ServiceAccountName | None:
    """Who we are: from the token's ``sub`` claim, else from the user the API named in
    its message, else only the namespace (from the service account directory)."""
    subject = _token_subject(token) if token else None
    if subject and subject.startswith("system:serviceaccount:"):
        ns, _, name = subject.removeprefix("system:serviceaccount:").partition(":")
        if ns and name:
            return ServiceAccountName(ns, name)
    match = _USER.search(api_message)
    if match:
        return ServiceAccountName(match.group(1), match.group(2))
    return ServiceAccountName(namespace, None) if namespace else None


def _token_subject(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


def explain_forbidden(
    *,
    verb: str,
    resource: Resource,
    namespace: str,
    account: ServiceAccountName | None,
    api_message: str,
    verbs: Sequence[str] = ("list", "watch"),
) -> str:
    """What a 403 means and the Role + RoleBinding that fix it."""
    group = resource.group
    who = (
        f'service account "{account.name}" of namespace "{account.namespace}"'
        if account is not None and account.name
        else "this pod's service account"
    )
    head = (
        f"the Kubernetes API refused to {verb} {resource.plural} (403 Forbidden): the {who} "
        f'lacks verb "{verb}" on resource "{resource.plural}" in API group "{group}" in '
        f'namespace "{namespace}"'
    )
    detail = f" (the API said: {api_message})" if api_message else ""
    manifest = rbac_manifest(resource, namespace, account, verbs)
    return (
        f"{head}{detail}. Grant it with this Role and RoleBinding (kubectl apply -f -):\n{manifest}"
    )


def rbac_manifest(
    resource: Resource,
    namespace: str,
    account: ServiceAccountName | None,
    verbs: Sequence[str] = ("list", "watch"),
) -> str:
    """A least-privilege Role and RoleBinding: ``verbs`` on one resource, one namespace."""
    sa_ns = account.namespace if account is not None else namespace
    if account is not None and account.name:
        sa_name = account.name
    else:
        sa_name = "default  # the pod's spec.serviceAccountName"
    verb_list = ", ".join(f'"{v}"' for v in verbs)
    return (
        "---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: Role\n"
        "metadata:\n"
        f"  name: {ROLE_NAME}\n"
        f"  namespace: {namespace}\n"
        "rules:\n"
        f'  - apiGroups: ["{resource.group}"]\n'
        f'    resources: ["{resource.plural}"]\n'
        f"    verbs: [{verb_list}]\n"
        "---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: RoleBinding\n"
        "metadata:\n"
        f"  name: {ROLE_NAME}\n"
        f"  namespace: {namespace}\n"
        "subjects:\n"
        "  - kind: ServiceAccount\n"
        f"    name: {sa_name}\n"
        f"    namespace: {sa_ns}\n"
        "roleRef:\n"
        "  apiGroup: rbac.authorization.k8s.io\n"
        "  kind: Role\n"
        f"  name: {ROLE_NAME}\n"
    )
