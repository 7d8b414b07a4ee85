"""The Kubernetes API's JSON read without I/O: lists, filters, node names, watch lines, 403s.

Expected node names are written out literally from libcluster 3.5's rules
(``Cluster.Strategy.Kubernetes.format_node``): ``ip`` -> ``<basename>@<ip>``; ``dns`` ->
``<basename>@<ip with . as ->.<ns>.pod.<cluster_name>.local``; ``hostname`` ->
``<basename>@<hostname>.<service_name>.<ns>.svc.<cluster_name>.local``, where ``ns`` is
the address's ``targetRef.namespace`` (Endpoints) or the pod's ``metadata.namespace``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from nodemesh.cluster.kubernetes.access import (
    ServiceAccountName,
    api_base_url,
    explain_forbidden,
    service_account_of,
)
from nodemesh.cluster.kubernetes.api import (
    ENDPOINTS,
    ENDPOINTSLICES,
    PODS,
    Member,
    Naming,
    WatchDecoder,
    merged,
    parse_list,
    parse_object,
    parse_status,
)
from nodemesh.cluster.strategies.kubernetes import KubernetesOptions
from nodemesh.errors import ConfigError, DiscoveryError
from support.kube_api import (
    LIBCLUSTER_NAMES,
    Address,
    endpoint_slice,
    endpoints,
    jwt,
    slice_endpoint,
    statefulset,
)

# A v1 EndpointsList in the shape the API returns to
# GET /api/v1/namespaces/prod/endpoints?labelSelector=app%3Dmyapp for a headless Service in
# front of a StatefulSet (written out by hand from the API reference; no managedFields).
ENDPOINTS_LIST = """
{"kind":"EndpointsList","apiVersion":"v1","metadata":{"resourceVersion":"8412533"},
 "items":[{"metadata":{"name":"myapp-headless","namespace":"prod",
   "uid":"5d0f1b1e-3f4a-4c47-9d55-0b7e4cf10a11","resourceVersion":"8412410",
   "creationTimestamp":"2024-04-30T08:12:44Z",
   "labels":{"app":"myapp","service.kubernetes.io/headless":""},
   "annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2024-05-02T09:14:07Z"}},
  "subsets":[{"addresses":[
     {"ip":"10.48.33.136","hostname":"myapp-0","nodeName":"gke-pool-1-a",
      "targetRef":{"kind":"Pod","namespace":"prod","name":"myapp-0",
                   "uid":"0b8c0c39-65f0-4a3e-9a8e-1e3f0d5c2b01"}},
     {"ip":"10.48.34.7","hostname":"myapp-1","nodeName":"gke-pool-1-b",
      "targetRef":{"kind":"Pod","namespace":"prod","name":"myapp-1",
                   "uid":"8a6c2f71-1d47-4a3c-8d6f-6f2a6b1d7c02"}}],
    "notReadyAddresses":[
     {"ip":"10.48.35.12","hostname":"myapp-2","nodeName":"gke-pool-1-c",
      "targetRef":{"kind":"Pod","namespace":"prod","name":"myapp-2",
                   "uid":"c1d2e3f4-0000-4a3c-8d6f-6f2a6b1d7c03"}}],
    "ports":[{"name":"epmd","port":4369,"protocol":"TCP"}]}]}]}
"""


def names_of(resource: Any, doc: Any, naming: Naming, **kw: Any) -> set[str]:
    view = parse_list(resource, doc, namespace="prod", **kw).view
    found, _ = naming.names(merged(view))
    return set(found)


@pytest.mark.parametrize(("mode", "cluster"), sorted(LIBCLUSTER_NAMES))
def test_written_out_endpoints_list_gives_libclusters_names(mode: str, cluster: str) -> None:
    """A literal EndpointsList gives, per mode and cluster name, libcluster's node names."""
    naming = Naming(mode, "myapp", cluster, "myapp-headless")
    doc = json.loads(ENDPOINTS_LIST)
    assert names_of(ENDPOINTS, doc, naming) == LIBCLUSTER_NAMES[(mode, cluster)]


@pytest.mark.parametrize("resource", [ENDPOINTS, ENDPOINTSLICES, PODS], ids=lambda r: r.plural)
@pytest.mark.parametrize(("mode", "cluster"), sorted(LIBCLUSTER_NAMES))
def test_every_lookup_gives_the_same_names(resource: Any, mode: str, cluster: str) -> None:
    """Endpoints, slices and pods of one StatefulSet give libcluster's names, ready only."""
    items = statefulset()[resource.plural]
    doc = {"kind": f"{resource.kind}List", "metadata": {"resourceVersion": "7"}, "items": items}
    naming = Naming(mode, "myapp", cluster, "myapp-headless")
    assert names_of(resource, doc, naming) == LIBCLUSTER_NAMES[(mode, cluster)]


def test_require_ready_false_keeps_not_ready_but_never_terminating() -> None:
    """require_ready=False adds not-ready pods but never terminating ones."""
    naming = Naming("ip", "myapp")
    for resource in (ENDPOINTS, ENDPOINTSLICES, PODS):
        doc = {"items": statefulset()[resource.plural]}
        found = names_of(resource, doc, naming, require_ready=False)
        assert found == {"myapp@10.48.33.136", "myapp@10.48.34.7", "myapp@10.48.35.12"}


def test_slice_conditions_nil_means_ready_and_not_terminating() -> None:
    """EndpointConditions with nil fields count as ready and not terminating (API docs)."""
    entry = slice_endpoint("10.1.0.4", "a", "prod", ready=None, serving=None, terminating=None)
    assert entry["conditions"] == {}
    obj = endpoint_slice("s", "prod", "svc", [entry])
    _, members = parse_object(ENDPOINTSLICES, obj, namespace="prod")
    assert [m.ip for m in members] == ["10.1.0.4"]


def test_fqdn_slices_and_malformed_items_are_skipped() -> None:
    """FQDN EndpointSlices and items missing fields give nothing; the rest still counts."""
    fqdn = endpoint_slice("f", "prod", "svc", [slice_endpoint("db.example.com", "x", "prod")])
    fqdn["addressType"] = "FQDN"
    good = endpoint_slice("g", "prod", "svc", [slice_endpoint("10.1.0.9", "y", "prod")])
    doc = {"items": [fqdn, good, {"metadata": {}}, 5, {"metadata": {"name": "n"}, "endpoints": 3}]}
    assert names_of(ENDPOINTSLICES, doc, Naming("ip", "app")) == {"app@10.1.0.9"}


def test_endpoints_without_target_ref_use_the_listed_namespace() -> None:
    """An address without targetRef (libcluster crashes on it) takes the listed namespace."""
    doc = {"items": [{"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.2.0.1"}]}]}]}
    assert names_of(ENDPOINTS, doc, Naming("dns", "app")) == {"app@10-2-0-1.prod.pod.cluster.local"}


def test_ipv6_names_in_each_mode() -> None:
    """IPv6 pod IPs: plain in ip mode (as DNSPoll prints them), dashed in dns mode."""
    member = Member("fd00:10:244:1::1b", "prod", "myapp-0", "uid-1")
    assert Naming("ip", "app").name(member) == "app@fd00:10:244:1::1b"
    dns = Naming("dns", "app").name(member)
    assert dns == "app@fd00-10-244-1--1b.prod.pod.cluster.local"
    host = Naming("hostname", "app", service_name="svc").name(member)
    assert host == "app@myapp-0.svc.prod.svc.cluster.local"


def test_dual_stack_pods_give_one_name_in_the_preferred_family() -> None:
    """A pod in both an IPv4 and an IPv6 slice is named once, by the preferred family."""
    v4 = endpoint_slice("s4", "prod", "svc", [slice_endpoint("10.3.0.5", "p", "prod")])
    v6 = endpoint_slice(
        "s6", "prod", "svc", [slice_endpoint("fd00::5", "p", "prod")], address_type="IPv6"
    )
    view = parse_list(ENDPOINTSLICES, {"items": [v4, v6]}, namespace="prod").view
    naming = Naming("ip", "app")
    assert naming.names(merged(view))[0] == {"app@10.3.0.5"}
    assert naming.names(merged(view), prefer_ipv6=True)[0] == {"app@fd00::5"}


def test_hostname_mode_skips_and_counts_members_without_hostname() -> None:
    """Hostname mode skips and counts addresses without hostname (no 'app@.svc...')."""
    doc = {
        "items": [endpoints("e", "prod", [Address("10.4.0.1", "a"), Address("10.4.0.2", "b", "b")])]
    }
    view = parse_list(ENDPOINTS, doc, namespace="prod").view
    names, skipped = Naming("hostname", "app", service_name="svc").names(merged(view))
    assert names == {"app@b.svc.prod.svc.cluster.local"}
    assert skipped == {"no hostname": 1}


def test_a_non_list_answer_is_a_discovery_error() -> None:
    """A Status (or anything without items) where a list was expected says what it got."""
    with pytest.raises(DiscoveryError, match="answered a Status without 'items'"):
        parse_list(ENDPOINTS, {"kind": "Status", "code": 500}, namespace="prod")


# -- watch streams and Status objects ---------------------------------------------------------


def test_watch_decoder_joins_lines_split_across_reads() -> None:
    """Events split at any byte come out whole, in order, once their line ends."""
    events = [
        {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "11"}}},
        {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "12"}}},
    ]
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    for cut in range(1, len(stream)):
        decoder = WatchDecoder()
        got = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert [(e.type, e.resource_version) for e in got] == [("ADDED", "11"), ("BOOKMARK", "12")]
        assert decoder.pending == 0


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b"[1, 2]\n", b'{"type": "ADDED"}\n', b'{"type": 3, "object": {}}\n'],
)
def test_watch_decoder_refuses_lines_that_are_no_event(line: bytes) -> None:
    """A line that is not a watch event is a DiscoveryError (the stream is resumed)."""
    with pytest.raises(DiscoveryError, match="watch"):
        WatchDecoder().feed(line)


def test_watch_decoder_limits_line_length() -> None:
    """A line longer than max_line is refused before it is held in full."""
    decoder = WatchDecoder(max_line=100)
    with pytest.raises(DiscoveryError, match="longer than 100 bytes"):
        decoder.feed(b"x" * 101)


def test_status_objects_are_read_from_bytes_or_json() -> None:
    """A 410 Expired Status gives code, reason and message; other bodies give None."""
    expired = (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"too old resource version: 100 (200)","reason":"Expired","code":410}'
    )
    status = parse_status(expired)
    assert status is not None and (status.code, status.reason) == (410, "Expired")
    assert status.message == "too old resource version: 100 (200)"
    assert parse_status(b"404 page not found") is None
    assert parse_status({"kind": "Pod"}) is None


# -- the master URL, the service account, the 403 explanation ---------------------------------


@pytest.mark.parametrize(
    ("master", "env", "url"),
    [
        ("kubernetes.default.svc", {}, "https://kubernetes.default.svc.cluster.local"),
        (
            "kubernetes.default.svc",
            {"CLUSTER_DOMAIN": "corp.example"},
            "https://kubernetes.default.svc.corp.example",
        ),
        ("api.cluster.local", {}, "https://api.cluster.local"),
        ("kubernetes.default.svc.", {}, "https://kubernetes.default.svc."),
        ("api.k8s.local", {"CLUSTER_DOMAIN": ""}, "https://api.k8s.local"),
        (
            "kubernetes.default.svc",
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
            "https://10.96.0.1:443",
        ),
        (
            "kubernetes.default.svc",
            {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "6443"},
            "https://[fd00:10:96::1]:6443",
        ),
        (
            "kubernetes.default.svc",
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
            "https://10.96.0.1:443",
        ),
        (
            "api.internal",
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
            "https://api.internal.cluster.local",
        ),
        (
            "https://127.0.0.1:6443/",
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
            "https://127.0.0.1:6443",
        ),
    ],
)
def test_master_host_rules(master: str, env: dict[str, str], url: str) -> None:
    """libcluster's master rules; KUBERNETES_SERVICE_HOST/PORT only for the default master."""
    assert api_base_url(master, "cluster", env) == url


def test_cluster_name_makes_the_default_domain() -> None:
    """Without CLUSTER_DOMAIN the domain is <kubernetes_cluster_name>.local."""
    assert (
        api_base_url("kubernetes.default.svc", "k8s", {})
        == "https://kubernetes.default.svc.k8s.local"
    )


def test_service_account_from_token_then_api_message_then_namespace() -> None:
    """The token's sub names the account; else the API's message; else only the namespace."""
    token = jwt({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:prod:web"})
    assert service_account_of(token) == ServiceAccountName("prod", "web")
    message = 'pods is forbidden: User "system:serviceaccount:dev:api" cannot list resource "pods"'
    assert service_account_of("opaque-token", message) == ServiceAccountName("dev", "api")
    assert service_account_of("a.!!!.c", "", "qa") == ServiceAccountName("qa", None)
    assert service_account_of(None) is None


def test_forbidden_names_verb_resource_group_namespace_and_the_role() -> None:
    """A 403 explanation names what is missing and carries an applicable Role and binding."""
    text = explain_forbidden(
        verb="list",
        resource=ENDPOINTSLICES,
        namespace="prod",
        account=ServiceAccountName("prod", "web"),
        api_message='endpointslices.discovery.k8s.io is forbidden: User "system:..."',
    )
    head, _, manifest = text.partition("\n")
    assert 'service account "web" of namespace "prod" lacks verb "list"' in head
    assert 'resource "endpointslices" in API group "discovery.k8s.io" in namespace "prod"' in head
    assert manifest.splitlines()[:10] == [
        "---",
        "apiVersion: rbac.authorization.k8s.io/v1",
        "kind: Role",
        "metadata:",
        "  name: nodemesh-discovery",
        "  namespace: prod",
        "rules:",
        '  - apiGroups: ["discovery.k8s.io"]',
        '    resources: ["endpointslices"]',
        '    verbs: ["list", "watch"]',
    ]
    assert "kind: RoleBinding" in manifest and "    name: web\n    namespace: prod" in manifest


def test_forbidden_without_an_account_name_says_where_to_look() -> None:
    """With no account name known, the binding names 'default' and says to check it."""
    text = explain_forbidden(
        verb="watch", resource=PODS, namespace="qa", account=None, api_message="", verbs=("list",)
    )
    assert 'this pod\'s service account lacks verb "watch"' in text
    assert "name: default  # the pod's spec.serviceAccountName" in text
    assert 'verbs: ["list"]' in text


# -- options ----------------------------------------------------------------------------------


def test_options_default_to_libclusters() -> None:
    """Only basename and selector are required; every default is libcluster's."""
    o = KubernetesOptions(kubernetes_node_basename="myapp", kubernetes_selector="app=myapp")
    assert (o.mode, o.kubernetes_ip_lookup_mode, o.kubernetes_namespace) == (
        "ip",
        "endpoints",
        None,
    )
    assert (o.kubernetes_master, o.kubernetes_cluster_name) == ("kubernetes.default.svc", "cluster")
    assert o.kubernetes_service_account_path == "/var/run/secrets/kubernetes.io/serviceaccount"
    assert (o.kubernetes_use_cached_resources, o.polling_interval) == (False, 5000)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kubernetes_node_basename": "my.app"}, "kubernetes_node_basename"),
        ({"kubernetes_selector": " "}, "kubernetes_selector"),
        ({"mode": "hostname"}, "needs option 'kubernetes_service_name'"),
        ({"kubernetes_namespace": "Prod_1"}, "kubernetes_namespace"),
        ({"kubernetes_master": "http://10.0.0.1"}, "https:// URL"),
        ({"polling_interval": 0}, "polling_interval"),
        ({"kubernetes_watch_timeout": 10}, "kubernetes_watch_timeout"),
        ({"kubernetes_watch_retry_min": 50, "kubernetes_watch_retry_max": 10}, "retry_max"),
    ],
)
def test_bad_options_are_refused(changes: dict[str, Any], message: str) -> None:
    """Each bad option is a ConfigError naming it."""
    values: dict[str, Any] = {"kubernetes_node_basename": "app", "kubernetes_selector": "app=x"}
    with pytest.raises(ConfigError, match=message):
        KubernetesOptions(**{**values, **changes})
