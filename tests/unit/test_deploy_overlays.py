"""Every kustomize overlay renders, every object in it is valid offline, and every pod is hardened."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from schemas.topics import ALL_TOPICS
from services.common.kafka.acls import consumer_group
from services.common.settings import PlatformSettings
from tests.unit.deploy_manifests import DEPLOY, OVERLAYS, of_kind, pod_templates, render, validation_errors

WORKERS = tuple(PlatformSettings().worker_ports)
STRIMZI = ("overlays/dev", "overlays/prod")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_every_overlay_is_valid_against_its_schema(overlay: str) -> None:
    """Each rendered object validates strictly: built-in kinds against the Kubernetes 1.32 schemas, Strimzi and
    KEDA resources against their vendored CRD schemas (an unknown or misspelt field fails either way)."""
    docs = render(overlay)
    assert len(docs) > 20
    errors = {(d["kind"], d["metadata"]["name"]): validation_errors(d) for d in docs}
    assert {key: e for key, e in errors.items() if e} == {}


def test_the_validation_catches_a_misspelt_field_in_a_builtin_and_in_a_custom_resource() -> None:
    """The checks above can fail: a misspelt securityContext field and a misspelt KafkaTopic field are refused,
    and so is a listener authentication Strimzi does not know."""
    docs = render("overlays/prod")
    deployment = copy.deepcopy(of_kind(docs, "Deployment")["cpi-router"])
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    topic = copy.deepcopy(next(iter(of_kind(docs, "KafkaTopic").values())))
    topic["spec"]["partiton"] = 6
    kafka = copy.deepcopy(of_kind(docs, "Kafka")["cpi-kafka"])
    kafka["spec"]["kafka"]["listeners"][0]["authentication"]["type"] = "scram"
    for broken in (deployment, topic, kafka):
        assert validation_errors(broken), broken["kind"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened_sized_and_spread(overlay: str) -> None:
    """Every container of every pod has CPU and memory requests and a memory limit, a read-only root filesystem,
    no privilege escalation and no capabilities; every pod runs as non-root with the runtime's seccomp profile
    and spreads its replicas by a constraint that selects its own pods."""
    templates = pod_templates(render(overlay))
    assert set(templates) >= {f"cpi-{w}" for w in WORKERS} | {"cpi-intake-api"}
    for name, pod in templates.items():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            where = (name, container["name"])
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert "memory" in container["resources"]["limits"], where
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), where
        spread = spec["topologySpreadConstraints"]
        assert spread and all(c["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
                              for c in spread), name


@pytest.mark.parametrize("overlay", STRIMZI)
def test_strimzi_pods_are_hardened_and_sized_too(overlay: str) -> None:
    """The Kafka nodes and the entity operator's containers have resources and read-only root filesystems."""
    docs = render(overlay)
    for pool in of_kind(docs, "KafkaNodePool").values():
        assert pool["spec"]["resources"]["limits"]["memory"]
        assert pool["spec"]["template"]["kafkaContainer"]["securityContext"]["readOnlyRootFilesystem"] is True
        assert pool["spec"]["template"]["pod"]["topologySpreadConstraints"]
    operator = of_kind(docs, "Kafka")["cpi-kafka"]["spec"]["entityOperator"]
    for part in ("topicOperator", "userOperator"):
        assert operator[part]["resources"]["limits"]["memory"]
        assert operator["template"][f"{part}Container"]["securityContext"]["readOnlyRootFilesystem"] is True


def _referenced_secrets(node: Any) -> set[str]:
    """Every Secret name an object refers to: volumes, envFrom, env, KafkaUser passwords, KEDA, Ingress TLS."""
    names: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("secretName"), str):
            names.add(node["secretName"])
        for key in ("secretRef", "secret", "secretKeyRef"):
            if isinstance(node.get(key), dict) and "name" in node[key]:
                names.add(node[key]["name"])
        if isinstance(node.get("secretTargetRef"), list):
            names |= {ref["name"] for ref in node["secretTargetRef"]}
        node = list(node.values())
    if isinstance(node, list | tuple):
        for item in node:
            names |= _referenced_secrets(item)
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_committed_and_each_is_in_the_runbook(overlay: str) -> None:
    """No overlay carries a Secret or a secret generator (no key, password or certificate is in the repo);
    every Secret the objects refer to is one docs/operations.md tells the operator to create (or says Strimzi
    makes)."""
    docs = render(overlay)
    assert [d for d in docs if d["kind"] == "Secret"] == []
    for path in (DEPLOY / "k8s").rglob("*.yaml"):
        text = path.read_text()
        assert "secretGenerator" not in text and not re.search(r"^kind: Secret$", text, re.M), path
    runbook = (DEPLOY.parent / "docs" / "operations.md").read_text()
    referenced = _referenced_secrets(docs)
    assert {"cpi-kafka-edge", "cpi-key-transport-public", "cpi-intake-tls"} <= referenced
    assert sorted(name for name in referenced if f"`{name}`" not in runbook) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_worker_scales_on_its_own_consumer_lag(overlay: str) -> None:
    """One KEDA ScaledObject per worker, on its Deployment, reading the lag of the worker's own consumer group
    (the one the ACLs grant) on the topic it reads, through the bootstrap the worker itself is given, logged in as
    the worker and trusting the CA its pods trust; never more replicas than partitions."""
    docs = render(overlay)
    scaled, auths = of_kind(docs, "ScaledObject"), of_kind(docs, "TriggerAuthentication")
    deployments = of_kind(docs, "Deployment")
    config = of_kind(docs, "ConfigMap")["cpi-config"]["data"]
    assert set(scaled) == {f"cpi-{w}" for w in WORKERS}
    for worker in WORKERS:
        principal = f"cpi-{worker}"
        spec = scaled[principal]["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments
        (trigger,) = spec["triggers"]
        metadata = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert metadata["consumerGroup"] == consumer_group("", principal)
        reads = [t for t in ALL_TOPICS if principal in t.readers]
        assert metadata.get("topic") == (reads[0].name if len(reads) == 1 else None)
        assert spec["maxReplicaCount"] <= min(t.partitions for t in reads)
        container = deployments[principal]["spec"]["template"]["spec"]["containers"][0]
        assert metadata["bootstrapServersFromEnv"] == "CPI_KAFKA_BOOTSTRAP" and "CPI_KAFKA_BOOTSTRAP" in config
        assert {"configMapRef": {"name": "cpi-config"}} in container["envFrom"]
        assert (metadata["sasl"], metadata["tls"]) == ("scram_sha512", "enable")
        refs = {r["parameter"]: r for r in auths[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]}
        assert refs["username"]["name"] == refs["password"]["name"] == f"cpi-kafka-{worker}"
        ca_volume = deployments[principal]["spec"]["template"]["spec"]["volumes"][0]
        assert ca_volume["name"] == "kafka-ca" and refs["ca"]["name"] == ca_volume["secret"]["secretName"]


@pytest.mark.parametrize("overlay", STRIMZI)
def test_strimzi_overlays_connect_every_pod_to_strimzis_listener_and_ca(overlay: str) -> None:
    """Under Strimzi no topics Job runs (the operators own topics and users); the clients' bootstrap is the
    Kafka resource's bootstrap service on its TLS SCRAM-SHA-512 listener, and every Kafka CA mount is the
    cluster CA Secret Strimzi keeps."""
    docs = render(overlay)
    assert "cpi-topics-apply" not in of_kind(docs, "Job")
    kafka = of_kind(docs, "Kafka")["cpi-kafka"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}
    config = of_kind(docs, "ConfigMap")["cpi-config"]["data"]
    assert config["CPI_KAFKA_BOOTSTRAP"] == f"cpi-kafka-kafka-bootstrap:{listener['port']}"
    assert (config["CPI_KAFKA_SECURITY_PROTOCOL"], config["CPI_KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")
    for name, pod in pod_templates(docs).items():
        ca = [v for v in pod["spec"]["volumes"] if v["name"] == "kafka-ca"]
        assert ca == [{"name": "kafka-ca", "secret": {"secretName": "cpi-kafka-cluster-ca-cert"}}], name


def test_prod_runs_a_kraft_cluster_of_three_controllers_and_three_brokers_with_two_in_sync() -> None:
    """Prod's Kafka is KRaft with node pools (3 controllers, 3 brokers, zone-aware), min.insync.replicas 2 and
    replication 3 by default, simple authorization with the administrator the only super user; the stages run
    at least 2 replicas with a disruption budget each."""
    docs = render("overlays/prod")
    kafka = of_kind(docs, "Kafka")["cpi-kafka"]
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    roles: dict[str, int] = {}
    for pool in of_kind(docs, "KafkaNodePool").values():
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "cpi-kafka"
        for role in pool["spec"]["roles"]:
            roles[role] = roles.get(role, 0) + pool["spec"]["replicas"]
    assert roles == {"controller": 3, "broker": 3}
    settings = kafka["spec"]["kafka"]
    assert settings["config"]["min.insync.replicas"] == 2 and settings["config"]["default.replication.factor"] == 3
    assert settings["authorization"] == {"type": "simple", "superUsers": ["cpi-admin"]}
    assert settings["rack"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert all(s["spec"]["minReplicaCount"] >= 2 for n, s in of_kind(docs, "ScaledObject").items()
               if n != "cpi-notifier")
    assert set(of_kind(docs, "PodDisruptionBudget")) == {f"cpi-{w}" for w in WORKERS}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_edge_is_behind_a_rate_limited_tls_ingress_in_every_overlay(overlay: str) -> None:
    """Every overlay serves the edge only through its Ingress, over TLS for the host it serves, rate limited
    per client and redirecting plain HTTP."""
    ingress = of_kind(render(overlay), "Ingress")["cpi-intake-api"]
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert hosts and set(hosts) <= {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/limit-rpm"]) > 0
    assert int(annotations["nginx.ingress.kubernetes.io/limit-connections"]) > 0
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_overlay_widens_who_holds_keys_or_the_sealed_store(overlay: str) -> None:
    """Source protection survives every overlay's patches: each pod mounts exactly its own key Secrets, only the
    console (the unseal path) the unseal private key, and only the sanitiser and the console take the sealed
    store's URL (whose database holds the sources' identities)."""
    from services.common.keys import KEYS, keys_of
    from tests.unit.test_deploy import _PODS, _secrets_of

    deployments = of_kind(render(overlay), "Deployment")
    key_secrets = {f"cpi-key-{spec.name}" for spec in KEYS}
    for name, process in _PODS.items():
        mounted, env = _secrets_of(deployments[name]["spec"]["template"])
        assert mounted & key_secrets == {f"cpi-key-{s.name}" for s in keys_of(process)}, name  # type: ignore[arg-type]
        assert ("cpi-sealed-store" in mounted | env) == (process in ("sanitiser", "unseal")), name
        assert ("cpi-key-unseal-private" in mounted | env) == (process == "unseal"), name
