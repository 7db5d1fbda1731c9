"""Who may talk to whom: the rendered NetworkPolicies, read and evaluated as Kubernetes does.

Each overlay's policies (and, under Strimzi, the one Strimzi makes for its listener from the Kafka resource's
`networkPolicyPeers`) are applied to the pipeline's pods and to the other parties a cluster has: the ingress
controller, Prometheus, KEDA, the sealed store's database, Kafka's brokers, DNS, a pod of some other team and an
address outside the cluster. A flow is allowed when the sender's egress and the receiver's ingress both allow it
(a pod no policy of a direction selects is open in that direction).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.unit.deploy_manifests import OVERLAYS, of_kind, pod_templates, render

NAMESPACE = "cpi"


@dataclass(frozen=True)
class Party:
    name: str
    namespace: str | None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    ip: str = "10.1.2.3"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if not {"In": present and labels[key] in values, "NotIn": not present or labels[key] not in values,
                "Exists": present, "DoesNotExist": not present}[operator]:
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_namespace: str, party: Party) -> bool:
    if "ipBlock" in peer:
        if party.namespace is not None:  # ipBlock is for addresses outside the cluster's pod network
            return False
        address = ipaddress.ip_address(party.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", []))
    if party.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": party.namespace}):
            return False
    elif party.namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), party.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    return not ports or any(p.get("port") in (None, port) and p.get("protocol", "TCP") == protocol for p in ports)


def allowed(policies: list[dict[str, Any]], sender: Party, receiver: Party, port: int, protocol: str = "TCP") -> bool:
    """Whether `sender` may open `port` on `receiver` under `policies`."""
    def direction_allows(party: Party, kind: str, other: Party) -> bool:
        if party.namespace is None:
            return True  # outside the cluster: no policy of ours applies there
        selecting = [p for p in policies if p["metadata"].get("namespace", NAMESPACE) == party.namespace
                     and _selects(p["spec"]["podSelector"], party.labels) and kind in p["spec"]["policyTypes"]]
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        return any(
            _port_matches(rule.get("ports"), port, protocol)
            and (not rule.get(peers_key) or any(
                _peer_matches(peer, p["metadata"].get("namespace", NAMESPACE), other) for peer in rule[peers_key]))
            for p in selecting for rule in p["spec"].get(key, []))
    return direction_allows(sender, "Egress", receiver) and direction_allows(receiver, "Ingress", sender)


def _strimzi_listener_policies(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The ingress policy Strimzi makes for its brokers: each listener's port, from its networkPolicyPeers."""
    return [{"metadata": {"name": f"{name}-network-policy-kafka", "namespace": NAMESPACE},
             "spec": {"podSelector": {"matchLabels": {"strimzi.io/cluster": name, "strimzi.io/broker-role": "true"}},
                      "policyTypes": ["Ingress"],
                      "ingress": [{"from": listener.get("networkPolicyPeers", []),
                                   "ports": [{"port": listener["port"], "protocol": "TCP"}]}
                                  for listener in kafka["spec"]["kafka"]["listeners"]]}}
            for name, kafka in of_kind(docs, "Kafka").items()]


@dataclass
class Cluster:
    policies: list[dict[str, Any]]
    pods: dict[str, Party]  # the pipeline's own, by component
    ports: dict[str, set[int]]  # each of our pods' container ports
    metrics_port: dict[str, int]
    others: dict[str, Party]

    def may(self, sender: Party, receiver: Party, port: int, protocol: str = "TCP") -> bool:
        return allowed(self.policies, sender, receiver, port, protocol)

    def everyone(self) -> dict[str, Party]:
        return {**self.pods, **self.others}


def _cluster(overlay: str) -> Cluster:
    docs = render(overlay)
    policies = [*of_kind(docs, "NetworkPolicy").values(), *_strimzi_listener_policies(docs)]
    pods, ports, metrics = {}, {}, {}
    for pod in pod_templates(docs).values():
        labels = pod["metadata"]["labels"]
        component = labels["app.kubernetes.io/component"]
        pods[component] = Party(component, NAMESPACE, labels)
        ports[component] = {p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        if "prometheus.io/port" in pod["metadata"].get("annotations", {}):
            metrics[component] = int(pod["metadata"]["annotations"]["prometheus.io/port"])
    strimzi = bool(of_kind(docs, "Kafka"))
    others = {
        "ingress-controller": Party("ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
        "internal-ingress": Party("internal-ingress", "ingress-internal", {"app.kubernetes.io/name": "ingress-nginx"}),
        "prometheus": Party("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "keda": Party("keda", "keda", {"app": "keda-operator"}),
        "stranger": Party("stranger", "default", {"app": "something-else"}),
        "dns": Party("dns", "kube-system", {"k8s-app": "kube-dns"}),
        "database": Party("database", NAMESPACE, {"app.kubernetes.io/component": "sealed-store-db"}),
        "ledger-database": Party("ledger-database", NAMESPACE, {"app.kubernetes.io/component": "notifier-ledger-db"}),
        # Strimzi runs the brokers in the pipeline's namespace; the base expects an existing Kafka elsewhere.
        "kafka": Party("kafka", NAMESPACE if strimzi else "kafka",
                       {"app.kubernetes.io/name": "kafka", "strimzi.io/cluster": "cpi-kafka",
                        "strimzi.io/broker-role": "true"}),
        "outside": Party("outside", None, ip="203.0.113.7"),
    }
    return Cluster(policies, pods, ports, metrics, others)


CLUSTERS = {overlay: _cluster(overlay) for overlay in OVERLAYS}
STAGES = ("intake-api", "intake", "sanitiser", "router", "notifier")


def _who_may(cluster: Cluster, receiver: Party, port: int, protocol: str = "TCP") -> set[str]:
    return {name for name, sender in cluster.everyone().items()
            if sender is not receiver and cluster.may(sender, receiver, port, protocol)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_default_deny_covers_every_pod_of_the_namespace(overlay: str) -> None:
    """One policy selects every pod of the namespace for both directions and allows nothing."""
    denies = [p for p in CLUSTERS[overlay].policies if p["spec"]["podSelector"] == {}
              and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}]
    assert denies and all("ingress" not in p["spec"] and "egress" not in p["spec"] for p in denies)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_ingress_controller_reaches_the_edge(overlay: str) -> None:
    """The form's port is reachable from the ingress controller alone: not Prometheus, not another team's pod,
    not the pipeline's own pods, not an address outside (which must come through the Ingress)."""
    cluster = CLUSTERS[overlay]
    assert _who_may(cluster, cluster.pods["intake-api"], 8080) == {"ingress-controller"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_internal_ingress_reaches_the_console(overlay: str) -> None:
    """The Intelligence Unit console (the unseal path) is reached through the force's internal ingress alone:
    not the public ingress controller that serves the form, not the edge, not another team's pod."""
    cluster = CLUSTERS[overlay]
    assert _who_may(cluster, cluster.pods["console"], 8090) == {"internal-ingress"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_are_scraped_only_from_the_monitoring_namespace(overlay: str) -> None:
    """Each pod's metrics port is open to Prometheus in the monitoring namespace and to no one else; every other
    port of every pipeline pod is closed to everyone but the edge's form port to the ingress controller."""
    cluster = CLUSTERS[overlay]
    assert set(cluster.metrics_port) >= set(STAGES)
    for component, port in cluster.metrics_port.items():
        assert _who_may(cluster, cluster.pods[component], port) == {"prometheus"}, component
        for other in cluster.ports[component] - {port}:
            doors = {("intake-api", 8080): {"ingress-controller"}, ("console", 8090): {"internal-ingress"}}
            expected = doors.get((component, other), set())
            assert _who_may(cluster, cluster.pods[component], other) == expected, (component, other)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_sanitiser_and_the_console_reach_the_sealed_store_database(overlay: str) -> None:
    """The sealed store holds the sources' identities: its database is reachable from the sanitiser (which seals)
    and the Intelligence Unit console (which unseals) only, not the edge, the other stages or anyone else."""
    cluster = CLUSTERS[overlay]
    assert _who_may(cluster, cluster.others["database"], 5432) == {"sanitiser", "console"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_notifiers_reach_their_shared_delivery_ledger(overlay: str) -> None:
    """The notifier replicas share one ledger database (so two never both send); only they reach it, and they,
    the pod that talks to the outside world, do not reach the sealed store's database."""
    cluster = CLUSTERS[overlay]
    assert _who_may(cluster, cluster.others["ledger-database"], 5432) == {"notifier"}
    assert not cluster.may(cluster.pods["notifier"], cluster.others["database"], 5432)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_notifier_reaches_out_of_the_cluster(overlay: str) -> None:
    """Mail and webhooks go out from the notifier alone, and sign-in to the force's identity provider (HTTPS)
    from the console; no other pipeline pod (least of all the sanitiser or the edge) and not the database can open
    a connection to an address outside, on any port tried."""
    cluster = CLUSTERS[overlay]
    outside = cluster.others["outside"]
    ours = {**cluster.pods, "database": cluster.others["database"]}
    for port in (25, 80, 443, 465, 587, 5432, 8080, 9092):
        senders = {name for name, pod in ours.items() if cluster.may(pod, outside, port)}
        expected = {"notifier"} if port in (25, 465, 587) else {"notifier", "console"} if port == 443 else set()
        assert senders == expected, port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_stage_reaches_kafka_and_dns_and_nothing_of_each_other(overlay: str) -> None:
    """Each stage talks only through Kafka: it reaches the brokers' TLS listener and DNS, but no other stage's
    ports (a compromised edge cannot reach the sanitiser); under Strimzi only the pipeline's pods and KEDA
    (reading lag) reach the listener, not another team's pod."""
    cluster = CLUSTERS[overlay]
    kafka, dns = cluster.others["kafka"], cluster.others["dns"]
    for component in STAGES:
        pod = cluster.pods[component]
        assert cluster.may(pod, kafka, 9092), component
        assert cluster.may(pod, dns, 53, "UDP"), component
        for other in STAGES:
            if other != component:
                assert not any(cluster.may(pod, cluster.pods[other], port) for port in cluster.ports[other]), \
                    (component, other)
    if overlay != "base":
        assert _who_may(cluster, kafka, 9092) >= set(STAGES) | {"keda"}
        assert not cluster.may(cluster.others["stranger"], kafka, 9092)


def test_the_evaluator_denies_what_a_missing_policy_would_leave_open() -> None:
    """The checks can fail: without the namespace-wide policies (the default deny, and DNS's, which selects every
    pod for egress too), the database could send its contents anywhere; and
    another team's pod could reach the database with the sealers' policy widened to every pod."""
    cluster = CLUSTERS["overlays/prod"]
    database, outside, stranger = (cluster.others[n] for n in ("database", "outside", "stranger"))
    assert not cluster.may(database, outside, 443) and not cluster.may(stranger, database, 5432)
    without_deny = [p for p in cluster.policies if p["metadata"]["name"] not in {"default-deny", "dns"}]
    assert allowed(without_deny, database, outside, 443)
    widened = [{**p, "spec": {**p["spec"], "ingress": [{"from": [{"namespaceSelector": {}}]}]}}
               if p["metadata"]["name"] == "sealed-store-db-from-sealers" else p for p in cluster.policies]
    assert allowed(widened, stranger, database, 5432)
