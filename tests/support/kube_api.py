"""A local HTTPS server that answers like kube-apiserver, for one namespace.

No Kubernetes API server can run on the machines this suite runs on (TESTING.md), so the
strategy is tested against this one. It serves the API's real JSON shapes for Endpoints,
EndpointSlices (``discovery.k8s.io/v1``) and Pods: lists (``EndpointsList`` ... with
``metadata.resourceVersion``, items without ``kind``), watch streams (one JSON event per
line, chunked; ADDED / MODIFIED / DELETED / BOOKMARK / ERROR, replayed from the requested
``resourceVersion``, ``410 Expired`` for a compacted one, ended after ``timeoutSeconds``),
and ``Status`` objects for 401, 403 (with the apiserver's exact sentence) and 404. It
checks ``Authorization: Bearer <token>`` on every request, serves TLS with a certificate
from a throwaway CA (:func:`certificates`), and binds 127.0.0.1 only.

Objects are built by :func:`endpoints`, :func:`endpoint_slice` and :func:`pod`, with the
fields a cluster returns (shapes from the API reference, without managedFields).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import functools
import ipaddress
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

GROUPS = {"endpoints": "", "pods": "", "endpointslices": "discovery.k8s.io"}
KINDS = {"endpoints": "Endpoints", "pods": "Pod", "endpointslices": "EndpointSlice"}
CREATED = "2024-05-02T09:14:07Z"

# -- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate it signed for 127.0.0.1, and an unrelated CA."""

    ca_pem: bytes
    server_pem: bytes
    server_key_pem: bytes
    other_ca_pem: bytes

    def server_context(self, directory: Path) -> ssl.SSLContext:
        cert, key = directory / "server.crt", directory / "server.key"
        cert.write_bytes(self.server_pem)
        key.write_bytes(self.server_key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


@functools.cache
def certificates() -> Certificates:
    """Made once per test process: the CA is ``kubernetes``, as kubeadm names it."""
    ca, ca_key = _ca("kubernetes")
    other, _ = _ca("kubernetes")  # same name, different key: must still be refused
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names = [
        x509.DNSName("kubernetes.default.svc.cluster.local"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Certificates(
        ca.public_bytes(pem),
        server.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        other.public_bytes(pem),
    )


# -- objects in the API's shapes -------------------------------------------------------------


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def _meta(name: str, ns: str, labels: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": _uid(ns, name),
        "resourceVersion": "1",
        "creationTimestamp": CREATED,
    }
    if labels:
        meta["labels"] = dict(labels)
    meta.update(extra)
    return meta


@dataclass(frozen=True)
class Address:
    """A pod address as Endpoints lists it."""

    ip: str
    pod: str
    hostname: str | None = None
    node: str = "worker-1"

    def shape(self, ns: str) -> dict[str, Any]:
        found: dict[str, Any] = {"ip": self.ip}
        if self.hostname:
            found["hostname"] = self.hostname
        found["nodeName"] = self.node
        found["targetRef"] = {
            "kind": "Pod",
            "namespace": ns,
            "name": self.pod,
            "uid": _uid(ns, self.pod),
        }
        return found


def endpoints(
    name: str,
    ns: str,
    ready: Sequence[Address] = (),
    not_ready: Sequence[Address] = (),
    *,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A v1 Endpoints object, as the endpoints controller writes it for a Service."""
    subset: dict[str, Any] = {}
    if ready:
        subset["addresses"] = [a.shape(ns) for a in ready]
    if not_ready:
        subset["notReadyAddresses"] = [a.shape(ns) for a in not_ready]
    subset["ports"] = [{"name": "epmd", "port": 4369, "protocol": "TCP"}]
    obj: dict[str, Any] = {"metadata": _meta(name, ns, labels or {"app": name})}
    if ready or not_ready:
        obj["subsets"] = [subset]
    return obj


def slice_endpoint(
    ip: str,
    pod: str,
    ns: str,
    *,
    ready: bool | None = True,
    serving: bool | None = None,
    terminating: bool | None = False,
    hostname: str | None = None,
) -> dict[str, Any]:
    """One entry of an EndpointSlice's ``endpoints`` (conditions as the controller sets)."""
    conditions: dict[str, bool] = {}
    for key, value in (
        ("ready", ready),
        ("serving", ready if serving is None else serving),
        ("terminating", terminating),
    ):
        if value is not None:
            conditions[key] = value
    found: dict[str, Any] = {"addresses": [ip], "conditions": conditions}
    if hostname:
        found["hostname"] = hostname
    found["targetRef"] = {"kind": "Pod", "namespace": ns, "name": pod, "uid": _uid(ns, pod)}
    found["nodeName"] = "worker-1"
    found["zone"] = "zone-a"
    return found


def endpoint_slice(
    name: str,
    ns: str,
    service: str,
    entries: Sequence[dict[str, Any]],
    *,
    address_type: str = "IPv4",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A discovery.k8s.io/v1 EndpointSlice; the controller copies the Service's labels."""
    all_labels = {
        **(labels or {"app": service}),
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    owner = {
        "apiVersion": "v1",
        "kind": "Service",
        "name": service,
        "uid": _uid(ns, "svc", service),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "metadata": _meta(
            name, ns, all_labels, generateName=f"{service}-", ownerReferences=[owner]
        ),
        "addressType": address_type,
        "endpoints": list(entries),
        "ports": [{"name": "epmd", "protocol": "TCP", "port": 4369}],
    }


def pod(
    name: str,
    ns: str,
    ip: str | None,
    *,
    phase: str = "Running",
    ready: bool = True,
    deleting: bool = False,
    hostname: str | None = None,
    subdomain: str | None = None,
    labels: dict[str, str] | None = None,
    extra_ips: Sequence[str] = (),
) -> dict[str, Any]:
    """A v1 Pod, with the status the kubelet reports."""
    extra = {"deletionTimestamp": "2024-05-02T10:00:00Z", "deletionGracePeriodSeconds": 30}
    spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": "example/app:1.0"}],
        "nodeName": "worker-1",
        "serviceAccountName": "nodemesh",
    }
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    ready_text = "True" if ready else "False"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": CREATED},
            {"type": "Ready", "status": ready_text, "lastTransitionTime": CREATED},
            {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": CREATED},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": CREATED},
        ],
        "hostIP": "192.168.10.4",
        "startTime": CREATED,
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}, *({"ip": x} for x in extra_ips)]
    return {
        "metadata": _meta(name, ns, labels or {"app": "app"}, **(extra if deleting else {})),
        "spec": spec,
        "status": status,
    }


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A ``Status`` object, as the API returns with every error."""
    found: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        found["details"] = details
    found["code"] = code
    return found


# -- the server ------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request the server received."""

    path: str
    query: dict[str, str]
    authorization: str


@dataclass(eq=False)
class _Watcher:
    resource: str
    selector: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)


class FakeKubeApi:
    """kube-apiserver's list and watch for endpoints, endpointslices and pods."""

    def __init__(
        self,
        directory: Path,
        *,
        namespace: str = "default",
        token: str = "token-1",
        account: str = "nodemesh",
    ) -> None:
        self.directory = directory
        self.namespace = namespace
        self.account = account
        self.tokens = {token}
        self.version = 1000
        self.objects: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in GROUPS}
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []
        self.compacted = 0  # watches from a version below this get 410 Expired
        self.forbidden: set[tuple[str, str]] = set()  # (verb, resource)
        self.missing: set[str] = set()  # resources answering 404 (no such API)
        self.requests: list[Seen] = []
        self.warning: str | None = None  # a Warning header on every answer
        self._watchers: set[_Watcher] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def watchers(self) -> int:
        """Watch streams open now."""
        return len(self._watchers)

    def seen(self, verb: str, resource: str) -> list[Seen]:
        """The requests for ``verb`` (list or watch) of ``resource``."""
        return [
            r
            for r in self.requests
            if r.path.endswith(f"/{resource}") and ("watch" in r.query) == (verb == "watch")
        ]

    # -- setup ---------------------------------------------------------------------------------
    async def start(self) -> FakeKubeApi:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/{resource}", self._handle)
        app.router.add_get("/apis/discovery.k8s.io/v1/namespaces/{ns}/{resource}", self._handle)
        # handler_cancellation: a client that hangs up ends its watch here, as in the API.
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        context = certificates().server_context(self.directory)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def aclose(self) -> None:
        self.end_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeKubeApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def service_account(
        self, *, ca: bytes | None = None, token: str | None = None, namespace: bool = True
    ) -> Path:
        """A service-account directory as a pod has it: ``token``, ``ca.crt``, ``namespace``."""
        path = self.directory / "serviceaccount"
        path.mkdir(exist_ok=True)
        (path / "token").write_text((token or next(iter(self.tokens))) + "\n")
        (path / "ca.crt").write_bytes(ca if ca is not None else certificates().ca_pem)
        if namespace:
            (path / "namespace").write_text(self.namespace)
        return path

    # -- changing what the API holds -------------------------------------------------------
    def put(self, resource: str, *objects: dict[str, Any]) -> None:
        """Create or replace objects; open watches get ADDED or MODIFIED."""
        for obj in objects:
            name = obj["metadata"]["name"]
            kind = "MODIFIED" if name in self.objects[resource] else "ADDED"
            self._record(resource, kind, obj)
            self.objects[resource][name] = obj

    def delete(self, resource: str, name: str) -> None:
        """Delete an object; open watches get DELETED."""
        obj = self.objects[resource].pop(name)
        self._record(resource, "DELETED", obj)

    def replace(self, resource: str, objects: Iterable[dict[str, Any]]) -> None:
        """Make ``objects`` the whole collection (deleting the others)."""
        wanted = {o["metadata"]["name"]: o for o in objects}
        for name in list(self.objects[resource]):
            if name not in wanted:
                self.delete(resource, name)
        self.put(resource, *wanted.values())

    def bookmark(self) -> None:
        """Send every open watch a BOOKMARK at the current version."""
        self.version += 1
        for watcher in self._watchers:
            obj = {
                "kind": KINDS[watcher.resource],
                "apiVersion": _api_version(watcher.resource),
                "metadata": {"resourceVersion": str(self.version)},
            }
            watcher.queue.put_nowait({"type": "BOOKMARK", "object": obj})

    def expire(self) -> None:
        """Compact the history: open watches get ERROR 410 Expired and end; a watch from
        any older version is refused the same way (a new list's version works)."""
        self.compacted = self.version
        for watcher in self._watchers:
            watcher.queue.put_nowait(self._expired(self.compacted - 1))
            watcher.queue.put_nowait(None)

    def end_watches(self) -> None:
        """End every open watch cleanly, as timeoutSeconds does."""
        for watcher in self._watchers:
            watcher.queue.put_nowait(None)

    def _record(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        shaped = {"kind": KINDS[resource], "apiVersion": _api_version(resource), **obj}
        self.history.append((self.version, resource, kind, shaped))
        for watcher in self._watchers:
            if watcher.resource == resource and _matches(watcher.selector, obj):
                watcher.queue.put_nowait({"type": kind, "object": shaped})

    def _expired(self, asked: int) -> dict[str, Any]:
        message = f"too old resource version: {asked} ({self.version})"
        return {"type": "ERROR", "object": status(410, "Expired", message)}

    # -- serving ---------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        resource, ns = request.match_info["resource"], request.match_info["ns"]
        query = dict(request.query)
        self.requests.append(Seen(request.path, query, request.headers.get("Authorization", "")))
        verb = "watch" if query.get("watch") in ("1", "true") else "list"
        header = request.headers.get("Authorization", "")
        if not any(header == f"Bearer {t}" for t in self.tokens):
            return self._json(401, status(401, "Unauthorized", "Unauthorized"))
        if resource not in GROUPS or resource in self.missing:
            message = "the server could not find the requested resource"
            return self._json(404, status(404, "NotFound", message))
        if (verb, resource) in self.forbidden:
            return self._json(403, self._forbidden(verb, resource, ns))
        selector = query.get("labelSelector", "")
        if verb == "list":
            items = [o for o in self.objects[resource].values() if _matches(selector, o)]
            doc = {
                "kind": f"{KINDS[resource]}List",
                "apiVersion": _api_version(resource),
                "metadata": {"resourceVersion": str(self.version)},
                "items": items,
            }
            return self._json(200, doc)
        return await self._watch(request, resource, selector, query)

    def _forbidden(self, verb: str, resource: str, ns: str) -> dict[str, Any]:
        user = f"system:serviceaccount:{self.namespace}:{self.account}"
        message = (
            f'{resource} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{GROUPS[resource]}" in the namespace "{ns}"'
        )
        return status(403, "Forbidden", message, kind=resource)

    def _json(self, code: int, doc: dict[str, Any]) -> web.Response:
        headers = {"Warning": self.warning} if self.warning else None
        return web.Response(
            status=code, text=json.dumps(doc), content_type="application/json", headers=headers
        )

    async def _watch(
        self, request: web.Request, resource: str, selector: str, query: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(request)
        watcher = _Watcher(resource, selector)
        asked = query.get("resourceVersion", "")
        if asked.isdigit() and int(asked) != 0 and int(asked) < self.compacted:
            await _send(response, self._expired(int(asked)))
            return response
        for version, kind_of, kind, obj in self.history:
            if kind_of == resource and version > int(asked or 0) and _matches(selector, obj):
                watcher.queue.put_nowait({"type": kind, "object": obj})
        self._watchers.add(watcher)
        try:
            async with asyncio.timeout(float(query.get("timeoutSeconds", "1800"))):
                while (event := await watcher.queue.get()) is not None:
                    await _send(response, event)
        except (TimeoutError, ConnectionResetError):
            pass
        finally:
            self._watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response


async def _send(response: web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(json.dumps(event).encode() + b"\n")


def _api_version(resource: str) -> str:
    group = GROUPS[resource]
    return f"{group}/v1" if group else "v1"


def _matches(selector: str, obj: dict[str, Any]) -> bool:
    """Equality-based label selectors (``a=b,c==d,e!=f``): what these tests use."""
    labels = obj.get("metadata", {}).get("labels", {})
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        else:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
    return True


@contextlib.asynccontextmanager
async def running_api(directory: Path, **kwargs: Any) -> AsyncIterator[FakeKubeApi]:
    """A started :class:`FakeKubeApi`, closed afterwards."""
    api = FakeKubeApi(directory, **kwargs)
    await api.start()
    try:
        yield api
    finally:
        await api.aclose()


# -- a scenario shared by the tests ----------------------------------------------------------

# The node names libcluster 3.5 gives the two ready pods of statefulset(), written out from
# its rules (Cluster.Strategy.Kubernetes.format_node): ip -> <basename>@<ip>; dns ->
# <basename>@<ip, "." as "-">.<ns>.pod.<cluster_name>.local; hostname ->
# <basename>@<hostname>.<service_name>.<ns>.svc.<cluster_name>.local; keyed (mode, cluster_name).
LIBCLUSTER_NAMES = {
    ("ip", "cluster"): {"myapp@10.48.33.136", "myapp@10.48.34.7"},
    ("dns", "cluster"): {
        "myapp@10-48-33-136.prod.pod.cluster.local",
        "myapp@10-48-34-7.prod.pod.cluster.local",
    },
    ("hostname", "cluster"): {
        "myapp@myapp-0.myapp-headless.prod.svc.cluster.local",
        "myapp@myapp-1.myapp-headless.prod.svc.cluster.local",
    },
    ("dns", "k8s"): {
        "myapp@10-48-33-136.prod.pod.k8s.local",
        "myapp@10-48-34-7.prod.pod.k8s.local",
    },
    ("hostname", "k8s"): {
        "myapp@myapp-0.myapp-headless.prod.svc.k8s.local",
        "myapp@myapp-1.myapp-headless.prod.svc.k8s.local",
    },
}


def statefulset(ns: str = "prod") -> dict[str, list[dict[str, Any]]]:
    """The same two ready pods (plus a not-ready and a terminating one) per resource."""
    ready = [
        Address("10.48.33.136", "myapp-0", "myapp-0"),
        Address("10.48.34.7", "myapp-1", "myapp-1"),
    ]
    not_ready = [Address("10.48.35.12", "myapp-2", "myapp-2")]
    entries = [slice_endpoint(a.ip, a.pod, ns, hostname=a.hostname) for a in ready]
    entries.append(slice_endpoint("10.48.35.12", "myapp-2", ns, ready=False, hostname="myapp-2"))
    entries.append(
        slice_endpoint(
            "10.48.36.3",
            "myapp-3",
            ns,
            ready=False,
            serving=True,
            terminating=True,
            hostname="myapp-3",
        )
    )
    pods = [pod(a.pod, ns, a.ip, hostname=a.hostname, subdomain="myapp-headless") for a in ready]
    pods.append(pod("myapp-2", ns, "10.48.35.12", ready=False, hostname="myapp-2"))
    pods.append(pod("myapp-3", ns, "10.48.36.3", deleting=True, hostname="myapp-3"))
    pods.append(pod("myapp-4", ns, None, phase="Pending", hostname="myapp-4"))
    return {
        "endpoints": [endpoints("myapp-headless", ns, ready, not_ready)],
        "endpointslices": [endpoint_slice("myapp-headless-x7k2p", ns, "myapp-headless", entries)],
        "pods": pods,
    }


def jwt(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.c2lnbmF0dXJl"
