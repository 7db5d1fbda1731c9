"""The cluster manifests in deploy/k8s/base say what the code expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.common.settings import (
    IntakeSettings,
    NotifierSettings,
    PlatformSettings,
    RouterSettings,
    SanitiserSettings,
)

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_every_kustomization_resource_exists() -> None:
    """kustomization.yaml lists only files that are there, and every manifest is listed."""
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == present


def test_clusters_get_replication_three_and_two_in_sync() -> None:
    """The cluster config asks for replication 3 and min.insync.replicas 2, and names only real settings."""
    config = next(d for d in _documents() if d["kind"] == "ConfigMap")
    assert config["data"]["CPI_REPLICATION_FACTOR"] == "3"
    assert config["data"]["CPI_MIN_INSYNC_REPLICAS"] == "2"
    known = {name for cls in (IntakeSettings, SanitiserSettings, RouterSettings, NotifierSettings)
             for name in cls.model_fields}
    unknown = [key for key in config["data"] if key.removeprefix("CPI_").lower() not in known]
    assert unknown == [], "every configured key is a real setting"


def test_every_worker_runs_with_probes_and_scrapeable_metrics_on_its_port() -> None:
    """Each of the four workers has a Deployment running `cpi worker NAME`, probed on /healthz and
    /readyz, with Prometheus scraping the port the worker serves."""
    deployments = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}
    for name, port in PlatformSettings().worker_ports.items():
        pod = deployments[f"cpi-{name}"]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["args"] == ["worker", name]
        assert {"name": "CPI_WORKER_PORT", "value": str(port)} in container["env"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    api = deployments["cpi-intake-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["args"] == ["api"]


def test_dashboard_and_alerts_only_use_metrics_the_code_exports() -> None:
    """Every cpi_* series named in the Grafana dashboard and the alert rules is one the code defines (the running
    processes are scraped for the same in tests/e2e/test_pipeline.py)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    import services.common.metrics
    import services.console.metrics
    import services.intake.api
    import services.notifier.worker
    import services.router.worker
    import services.sanitiser.adapters.sealed_store
    from tests.metric_queries import offered_series, queried_series

    held = CollectorRegistry()
    held.register(services.console.metrics.HeldReviewCollector(lambda: [], target_days=2, refresh=60))
    offered = offered_series([generate_latest(REGISTRY).decode(), generate_latest(held).decode()])
    used = queried_series()
    assert {"cpi_consumer_lag", "cpi_stage_latency_seconds_bucket", "cpi_held_overdue"} <= used
    assert used - offered == set()


def test_the_edge_keeps_metrics_internal_and_is_rate_limited_at_the_ingress() -> None:
    """The edge's pod is scraped on its internal metrics port, which neither its Service nor its Ingress
    exposes; the Ingress carries ingress-nginx's per-client limits; every variable it sets is a setting."""
    docs = {(d["kind"], d.get("metadata", {}).get("name")): d for d in _documents()}
    pod = docs[("Deployment", "cpi-intake-api")]["spec"]["template"]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert [k for k in env if k.removeprefix("CPI_").lower() not in IntakeSettings.model_fields] == []
    metrics_port = IntakeSettings(edge_metrics_port=int(env["CPI_EDGE_METRICS_PORT"])).edge_metrics_port
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port) != "8080"
    service = docs[("Service", "cpi-intake-api")]["spec"]["ports"]
    assert [p["targetPort"] for p in service] == ["http"]
    ingress = docs[("Ingress", "cpi-intake-api")]
    assert {"nginx.ingress.kubernetes.io/limit-rpm", "nginx.ingress.kubernetes.io/limit-connections"} <= set(
        ingress["metadata"]["annotations"])
    backends = [p["backend"]["service"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert backends == [{"name": "cpi-intake-api", "port": {"name": "http"}}]


# The Deployment of each process that holds keys; the router and notifier hold none; the console is the unseal path.
_PODS = {"cpi-intake-api": "edge", "cpi-intake": "intake", "cpi-sanitiser": "sanitiser", "cpi-router": "router",
         "cpi-notifier": "notifier", "cpi-console": "unseal"}


def _secrets_of(pod: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The Secrets a pod mounts as files, and those it takes as environment variables."""
    mounted: set[str] = set()
    for volume in pod["spec"].get("volumes", []):
        if "secret" in volume:
            mounted.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                mounted.add(source["secret"]["name"])
    env = {ref["secretRef"]["name"] for c in pod["spec"]["containers"] for ref in c.get("envFrom", [])
           if "secretRef" in ref}
    return mounted, env


def test_each_pod_mounts_exactly_its_own_keys_and_the_edge_no_store_url() -> None:
    """Each Deployment mounts one Secret per key it holds (as services.common.keys says) and no other key:
    the edge only the transport public key, the router and notifier none, only the console (the unseal path) the
    unseal private key;
    the keys folder is where the settings look, and a missing key stops a pod rather than being made. The
    edge takes no Secret that holds the sealed store's URL; only the sanitiser takes that one."""
    from services.common.keys import KEYS, keys_of

    deployments = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}
    config = next(d for d in _documents() if d["kind"] == "ConfigMap")["data"]
    assert config["CPI_KEYS_DIR"] == "/etc/cpi/keys" and config["CPI_CREATE_MISSING_KEYS"] == "false"
    assert PlatformSettings.model_validate({"keys_dir": config["CPI_KEYS_DIR"]}).key_file(
        "transport-public", "transport.public.json") == Path("/etc/cpi/keys/transport.public.json")
    key_secrets = {f"cpi-key-{spec.name}" for spec in KEYS}
    assert set(_PODS) <= set(deployments)
    for name, process in _PODS.items():
        pod = deployments[name]["spec"]["template"]
        mounted, env = _secrets_of(pod)
        assert mounted & key_secrets == {f"cpi-key-{spec.name}" for spec in keys_of(process)}, name  # type: ignore[arg-type]
        assert not env & key_secrets, name
        mounts = [m for c in pod["spec"]["containers"] for m in c.get("volumeMounts", [])]
        if mounted & key_secrets:
            assert {"name": "keys", "mountPath": "/etc/cpi/keys", "readOnly": True} in mounts
        store_url = {"cpi-sealed-store", "cpi-secrets"}  # cpi-secrets held the URL before; the edge gets neither
        if process == "edge":
            assert not env & store_url and not mounted & store_url
        if process not in ("sanitiser", "unseal"):
            assert "cpi-sealed-store" not in env | mounted, name
    holders = {name for name, d in deployments.items()
               if "cpi-key-unseal-private" in _secrets_of(d["spec"]["template"])[0]}
    assert holders == {"cpi-console"}
    assert "sealed_store_url" not in IntakeSettings.model_fields


def test_each_pod_logs_in_to_kafka_as_its_own_principal_over_tls() -> None:
    """Every pod takes exactly one Kafka login Secret, its own registry principal's (the edge cpi-edge, each
    worker cpi-<stage>); only the topics Job takes the administrator's; all of them reach Kafka over TLS with
    SCRAM and have the CA the config names mounted (regression: the manifests gave every client the open,
    anonymous PLAINTEXT listener)."""
    from schemas.topics import ADMIN, PRINCIPALS

    docs = _documents()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    settings = PlatformSettings.model_validate({
        "kafka_security_protocol": config["CPI_KAFKA_SECURITY_PROTOCOL"], "kafka_sasl_username": "x",
        "kafka_sasl_password": "y", "kafka_sasl_mechanism": config["CPI_KAFKA_SASL_MECHANISM"],
        "kafka_ssl_cafile": config["CPI_KAFKA_SSL_CAFILE"]})
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_mechanism.startswith("SCRAM")
    expected = {"cpi-intake-api": "cpi-edge", "cpi-intake": "cpi-intake", "cpi-sanitiser": "cpi-sanitiser",
                "cpi-router": "cpi-router", "cpi-notifier": "cpi-notifier", "cpi-console": "cpi-iu",
                "cpi-topics-apply": ADMIN}
    logins_by_pod: dict[str, set[str]] = {}
    ca_dir = str(Path(config["CPI_KAFKA_SSL_CAFILE"]).parent)
    for doc in docs:
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        name, pod = doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        ca_volumes = {v["name"] for v in pod.get("volumes", [])
                      if v.get("secret", {}).get("secretName") == "cpi-kafka-ca"}
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            logins = {ref["secretRef"]["name"] for ref in container.get("envFrom", [])
                      if ref.get("secretRef", {}).get("name", "").startswith("cpi-kafka-")}
            assert len(logins) == 1, (name, logins)
            logins_by_pod.setdefault(name, set()).update(login.replace("cpi-kafka-", "cpi-") for login in logins)
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert mounts.get(ca_dir) in ca_volumes, (name, "the Kafka CA is not mounted")
    assert logins_by_pod == {name: {principal} for name, principal in expected.items()}
    assert set(expected.values()) - {ADMIN} <= set(PRINCIPALS)


def test_each_worker_is_a_static_group_member_named_after_its_pod() -> None:
    """Each worker's group instance id is its pod's name (unique per replica, the same across a container's
    restart), so a killed worker takes its partitions back at once instead of stalling its stage for the
    session timeout (regression, issue 14: each kill stalled its stage about a minute)."""
    deployments = {d["metadata"]["name"]: d for d in _documents() if d["kind"] == "Deployment"}
    for name in PlatformSettings().worker_ports:
        env = deployments[f"cpi-{name}"]["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "CPI_GROUP_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env
