"""deploy/kubernetes/seed001: two StatefulSets ("a" and "b") under one headless Service,
running examples/seed001/app.py. (Every object is checked against the API schemas by
test_manifests.py, which validates every file under deploy/kubernetes.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from nodemesh.cluster import topologies_from_env
from nodemesh.cluster.strategies.kubernetes_dnssrv import srv_name
from nodemesh.dist.names import parse_node_name
from nodemesh.doctor.result import Status
from nodemesh.doctor.strategies import check_naming

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "kubernetes" / "seed001"
APP = ROOT / "examples" / "seed001" / "app.py"
KINDS = ("a", "b")


def objects() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(HERE.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def pod_env(work: dict[str, Any]) -> dict[str, str]:
    """The first pod's environment as the kubelet makes it (downward API, $(VAR))."""
    fields = {
        "metadata.name": f"{work['metadata']['name']}-0",
        "metadata.namespace": "default",
        "status.podIP": "10.1.2.3",
    }
    env: dict[str, str] = {}
    for item in work["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: env.get(m.group(1), m.group(0)),
                item["value"],
            )
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[item["name"]] = "cookie-from-the-secret"
    return env


def app_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed001_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configmap_holds_the_example_as_it_is() -> None:
    """The ConfigMap's app.py is examples/seed001/app.py, byte for byte."""
    assert find("ConfigMap", "seed001-app")["data"]["app.py"] == APP.read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_pods_of_both_kinds_are_hardened_and_probed(kind: str) -> None:
    """Non-root, read-only, no capabilities, limits; probes on the health port."""
    spec = find("StatefulSet", kind)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert (sc["allowPrivilegeEscalation"], sc["readOnlyRootFilesystem"]) == (False, True)
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = pod_env(find("StatefulSet", kind))
    assert ports["health"] == int(env["NODEMESH_HEALTH_PORT"])
    assert ports["dist"] == int(env["NODEMESH_DIST_PORT"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    cookie = next(e for e in container["env"] if e["name"] == "NODEMESH_COOKIE")
    assert cookie["valueFrom"]["secretKeyRef"] == {"name": "nodemesh-cookie", "key": "cookie"}


@pytest.mark.parametrize("kind", KINDS)
def test_pod_takes_the_stable_name_peers_dial(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """app.py, given the pod's environment, is seed001@<pod>.seed001.<ns>.svc.cluster.local
    of kind ``kind``: the SRV target the shared kubernetes_dnssrv topology finds."""
    work = find("StatefulSet", kind)
    assert work["spec"]["serviceName"] == "seed001"
    env = pod_env(work)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = app_module().parse([])
    assert args.kind == kind
    (topology,) = topologies_from_env(env)
    options = topology.options
    assert (topology.strategy, options.service) == ("kubernetes_dnssrv", "seed001")
    target = f"{kind}-0.{srv_name(options.service, options.namespace, {}).rstrip('.')}"
    assert args.name == f"{options.application_name}@{target}"
    results = check_naming(topology, parse_node_name(args.name))
    assert [r.status for r in results] == [Status.PASS], results


def test_one_headless_service_selects_both_kinds() -> None:
    """seed001 is headless, publishes unready pods, and selects the pods of a and b; the
    NetworkPolicy lets exactly those pods reach EPMD and the distribution port."""
    service = find("Service", "seed001")["spec"]
    assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
    policy = find("NetworkPolicy", "seed001-nodemesh")["spec"]
    for kind in KINDS:
        labels = find("StatefulSet", kind)["spec"]["template"]["metadata"]["labels"]
        assert service["selector"].items() <= labels.items()
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    peers, health = policy["ingress"]
    assert [p["port"] for p in peers["ports"]] == [4369, 9100]
    assert "from" not in health
    assert not [d for d in objects() if d["kind"] in ("Secret", "Deployment")]
    services = [d["spec"] for d in objects() if d["kind"] == "Service"]
    assert [spec["clusterIP"] for spec in services] == ["None"]  # no load balancer at all
