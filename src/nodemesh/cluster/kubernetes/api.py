"""The Kubernetes API's JSON, read without I/O: lists, watch events, Status objects, names.

Theory of operation
-------------------
The Kubernetes strategy lists one resource in one namespace (``GET .../endpoints``,
``.../endpointslices`` or ``.../pods`` with a ``labelSelector``) and then watches it
(the same path with ``watch=1&resourceVersion=N``). Everything here is pure: the I/O shell
(:mod:`nodemesh.cluster.kubernetes.client`) hands in decoded JSON or raw stream bytes.

- :func:`parse_list` turns a list document into a *view*: object key (``ns/name``) ->
  the :class:`Member` entries (one per pod address) that object contributes, plus the
  list's ``resourceVersion`` to watch from. :func:`parse_object` does the same for the one
  object of a watch event, so the view is kept up to date object by object.
- Which addresses count (API reference, ``core/v1`` and ``discovery.k8s.io/v1``):
  Endpoints ``subsets[].addresses`` (``notReadyAddresses`` only with
  ``require_ready=False``); EndpointSlice endpoints whose ``conditions.terminating`` is
  not true and whose ``conditions.ready`` is not false (nil means ready), first address
  only ("clients may choose to only use the first element"), IPv4/IPv6 slices only (not
  FQDN); Pods in phase ``Running``, without ``metadata.deletionTimestamp``, with a
  ``Ready`` condition of ``"True"`` and a ``status.podIP``.
- :class:`Naming` builds libcluster's node names from a member: ``ip`` mode
  ``app@10.48.33.136`` (IPv6 printed plainly, ``app@fd00::1``), ``dns`` mode
  ``app@10-48-33-136.<ns>.pod.<cluster_name>.local`` (IPv6 colons become dashes too, the
  form CoreDNS reads back), ``hostname`` mode
  ``app@<hostname>.<service>.<ns>.svc.<cluster_name>.local``.
- :class:`WatchDecoder` splits a watch stream (one JSON object per line) into
  :class:`WatchEvent` objects, h11-style: ``feed(bytes)`` returns the complete events.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from nodemesh.dist.names import parse_node_name
from nodemesh.errors import DiscoveryError, NodeNameError

__all__ = [
    "ENDPOINTS",
    "ENDPOINTSLICES",
    "PODS",
    "ApiStatus",
    "ListResult",
    "Member",
    "Naming",
    "Resource",
    "WatchDecoder",
    "WatchEvent",
    "is_ipv6_host",
    "merged",
    "object_key",
    "parse_list",
    "parse_object",
    "parse_status",
]


@dataclass(frozen=True, slots=True)
class Resource:
    """One listable resource: where it lives in the API and what RBAC calls it."""

    plural: str  # RBAC's resource name and the last path segment
    group: str  # RBAC's apiGroups entry; "" is the core group
    version: str
    kind: str

    def path(self, namespace: str) -> str:
        """The collection's path in ``namespace``, e.g. ``/api/v1/namespaces/ns/pods``."""
        prefix = "/api" if not self.group else f"/apis/{self.group}"
        return f"{prefix}/{self.version}/namespaces/{namespace}/{self.plural}"


ENDPOINTS = Resource("endpoints", "", "v1", "Endpoints")
ENDPOINTSLICES = Resource("endpointslices", "discovery.k8s.io", "v1", "EndpointSlice")
PODS = Resource("pods", "", "v1", "Pod")


class Member(NamedTuple):
    """One address that may be a node: a pod's IP with what the node names need."""

    ip: str
    namespace: str
    hostname: str | None
    pod: str | None  # the pod's uid or ns/name when known: one pod, several addresses


@dataclass(frozen=True, slots=True)
class ListResult:
    """A list response: ``view`` maps each object key to its members."""

    view: dict[str, tuple[Member, ...]]
    resource_version: str | None


@dataclass(frozen=True, slots=True)
class ApiStatus:
    """The useful part of a ``Status`` object (``kind: Status``, API conventions)."""

    code: int | None
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One line of a watch stream: ``type`` ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str | None:
        return _str(_dict(self.object.get("metadata")).get("resourceVersion"))


# -- lists and objects -----------------------------------------------------------------------


def parse_list(
    resource: Resource, doc: Any, *, namespace: str, require_ready: bool = True
) -> ListResult:
    """Read a list response (``EndpointsList``, ``EndpointSliceList``, ``PodList``).

    ``namespace`` is the one listed (used when an address does not name its own). Raises
    :class:`DiscoveryError` when ``doc`` is not a list of that shape; items that are
    malformed are skipped, as the API may add fields but never breaks these.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise DiscoveryError(
            f"the API answered a {kind or 'document'} without 'items' to a list of "
            f"{resource.plural}; is kubernetes_master the Kubernetes API server?"
        )
    view: dict[str, tuple[Member, ...]] = {}
    for item in doc["items"]:
        key, members = parse_object(
            resource, item, namespace=namespace, require_ready=require_ready
        )
        if key is not None:
            view[key] = members
    version = _str(_dict(doc.get("metadata")).get("resourceVersion"))
    return ListResult(view, version)


def object_key(obj: Any, namespace: str) -> str | None:
    """``ns/name`` of an API object, or None when it has no name."""
    meta = _dict(obj.get("metadata")) if isinstance(obj, dict) else {}
    name = _str(meta.get("name"))
    return None if name is None else f"{_str(meta.get('namespace')) or namespace}/{name}"


def parse_object(
    resource: Resource, obj: Any, *, namespace: str, require_ready: bool = True
) -> tuple[str | None, tuple[Member, ...]]:
    """The key of one Endpoints, EndpointSlice or Pod object and the members it gives."""
    key = object_key(obj, namespace)
    if key is None:
        return None, ()
    own_ns = key.partition("/")[0]
    if resource is ENDPOINTSLICES:
        return key, _slice_members(obj, own_ns, require_ready)
    if resource is PODS:
        return key, _pod_members(obj, own_ns, require_ready)
    return key, _endpoints_members(obj, own_ns, require_ready)


def _endpoints_members(obj: dict[str, Any], ns: str, require_ready: bool) -> tuple[Member, ...]:
    keys = ("addresses",) if require_ready else ("addresses", "notReadyAddresses")
    found: list[Member] = []
    for subset in _list(obj.get("subsets")):
        subset = _dict(subset)
        for key in keys:
            for address in _list(subset.get(key)):
                address = _dict(address)
                ip = _str(address.get("ip"))
                if ip is None:
                    continue
                ref = _dict(address.get("targetRef"))
                own = _str(ref.get("namespace")) or ns
                found.append(Member(ip, own, _str(address.get("hostname")), _pod_id(ref, own)))
    return tuple(found)


def _slice_members(obj: dict[str, Any], ns: str, require_ready: bool) -> tuple[Member, ...]:
    if obj.get("addressType") not in ("IPv4", "IPv6"):
        return ()  # FQDN slices name hosts, not pods
    found: list[Member] = []
    for endpoint in _list(obj.get("endpoints")):
        endpoint = _dict(endpoint)
        conditions = _dict(endpoint.get("conditions"))
        # discovery.k8s.io/v1 EndpointConditions: nil terminating = not terminating,
        # nil ready = ready. A terminating endpoint is never joined, even when a
        # Service with publishNotReadyAddresses marks it ready.
        if conditions.get("terminating") is True:
            continue
        if require_ready and conditions.get("ready") is False:
            continue
        addresses = _list(endpoint.get("addresses"))
        ip = _str(addresses[0]) if addresses else None
        if ip is None:
            continue
        ref = _dict(endpoint.get("targetRef"))
        own = _str(ref.get("namespace")) or ns
        found.append(Member(ip, own, _str(endpoint.get("hostname")), _pod_id(ref, own)))
    return tuple(found)


def _pod_members(obj: dict[str, Any], ns: str, require_ready: bool) -> tuple[Member, ...]:
    meta, status = _dict(obj.get("metadata")), _dict(obj.get("status"))
    if meta.get("deletionTimestamp") is not None or status.get("phase") != "Running":
        return ()
    if require_ready and not _pod_ready(status):
        return ()
    ip = _str(status.get("podIP"))
    if ip is None:
        return ()
    hostname = _str(_dict(obj.get("spec")).get("hostname"))
    pod = _str(meta.get("uid")) or f"{ns}/{meta.get('name')}"
    return (Member(ip, ns, hostname, pod),)


def _pod_ready(status: dict[str, Any]) -> bool:
    for condition in _list(status.get("conditions")):
        condition = _dict(condition)
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _pod_id(ref: dict[str, Any], ns: str) -> str | None:
    uid, name = _str(ref.get("uid")), _str(ref.get("name"))
    return uid or (f"{ns}/{name}" if name else None)


# -- node names ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Naming:
    """How libcluster names a node found at a member, for one ``mode``."""

    mode: str  # "ip", "dns" or "hostname"
    basename: str
    cluster_name: str = "cluster"
    service_name: str | None = None

    def name(self, member: Member) -> str:
        """The node name, or ValueError saying why this member has none."""
        if self.mode == "ip":
            return f"{self.basename}@{member.ip}"
        if self.mode == "dns":
            # libcluster replaces "." by "-"; for IPv6 ":" too, as CoreDNS maps the
            # label back (a label with 3 dashes and no "--" is IPv4, else IPv6).
            dashed = member.ip.replace(".", "-").replace(":", "-")
            return f"{self.basename}@{dashed}.{member.namespace}.pod.{self.cluster_name}.local"
        if not member.hostname:
            raise ValueError("no hostname")
        return (
            f"{self.basename}@{member.hostname}.{self.service_name}.{member.namespace}"
            f".svc.{self.cluster_name}.local"
        )

    def names(
        self, members: Iterable[Member], *, prefer_ipv6: bool = False
    ) -> tuple[frozenset[str], Counter[str]]:
        """The node names of ``members`` and a count of members skipped, by reason.

        A pod listed with addresses of both families (dual-stack EndpointSlices) gives
        one name, from the family ``prefer_ipv6`` picks: the one its peers use for
        their own names.
        """
        skipped: Counter[str] = Counter()
        found: set[str] = set()
        for member in _one_family_per_pod(members, prefer_ipv6):
            try:
                name = self.name(member)
                parse_node_name(name, longnames=True)
            except NodeNameError:
                skipped["invalid node name"] += 1
            except ValueError as exc:
                skipped[str(exc)] += 1
            else:
                found.add(name)
        return frozenset(found), skipped


def _one_family_per_pod(members: Iterable[Member], prefer_ipv6: bool) -> list[Member]:
    chosen: dict[str, Member] = {}
    loose: list[Member] = []
    for member in members:
        if member.pod is None:
            loose.append(member)
            continue
        held = chosen.get(member.pod)
        preferred = _is_ipv6(member.ip) == prefer_ipv6
        if held is None or (preferred and _is_ipv6(held.ip) != prefer_ipv6):
            chosen[member.pod] = member
    return loose + list(chosen.values())


def _is_ipv6(ip: str) -> bool:
    return ":" in ip


def is_ipv6_host(host: str) -> bool:
    """Whether a node name's host part is an IPv6 literal."""
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


# -- Status objects and watch streams --------------------------------------------------------


def parse_status(body: bytes | Any) -> ApiStatus | None:
    """The Status in an error body (bytes or decoded JSON), or None if it holds none."""
    doc = body
    if isinstance(body, bytes | bytearray):
        try:
            doc = json.loads(body)
        except ValueError:
            return None
    if not isinstance(doc, dict) or doc.get("kind") != "Status":
        return None
    code = doc.get("code")
    return ApiStatus(
        code if type(code) is int else None,
        _str(doc.get("reason")) or "",
        _str(doc.get("message")) or "",
    )


class WatchDecoder:
    """Splits a watch response body into events; one JSON object per line.

    ``feed`` returns the events completed by ``data``. A line longer than ``max_line``
    bytes or one that is not a watch event raises :class:`DiscoveryError` (the caller
    drops the stream and resumes from the last resourceVersion).
    """

    def __init__(self, max_line: int = 64 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[WatchEvent]:
        self._buffer += data
        if b"\n" not in data:
            if len(self._buffer) > self._max_line:
                raise DiscoveryError(f"a watch event is longer than {self._max_line} bytes")
            return []
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer = bytearray(rest)
        if len(rest) > self._max_line:
            raise DiscoveryError(f"a watch event is longer than {self._max_line} bytes")
        return [_event(line) for line in lines if line.strip()]

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held back."""
        return len(self._buffer)


def _event(line: bytes) -> WatchEvent:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise DiscoveryError(f"a watch stream line is not JSON: {line[:80]!r}") from exc
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("type"), str)
        or not isinstance(doc.get("object"), dict)
    ):
        raise DiscoveryError(f"a watch stream line is not a watch event: {line[:80]!r}")
    return WatchEvent(doc["type"], doc["object"])


# -- tolerant accessors: the API may omit any optional field ---------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def merged(view: Mapping[str, tuple[Member, ...]]) -> Iterable[Member]:
    """Every member of a view."""
    for members in view.values():
        yield from members
