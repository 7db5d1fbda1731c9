"""deploy/compose.yaml is a valid Compose file that runs the whole pipeline as the cluster manifests do.

Checked offline: Debian's `docker-compose` (1.29) validates the file against the Compose schema and resolves it
with `config`, which needs no Docker engine (`.ci/run` installs it).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from services.common.keys import KEYS, keys_of
from services.common.settings import IntakeSettings, PlatformSettings
from tests.unit.deploy_manifests import DEPLOY

COMPOSE = DEPLOY / "compose.yaml"
PASSWORDS = {"CPI_POSTGRES_PASSWORD": "compose-test-db-password", "CPI_GRAFANA_PASSWORD": "compose-test-grafana"}
STAGES = {"edge": "edge", **{name: name for name in PlatformSettings().worker_ports}}  # service -> key holder


def _compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed (.ci/run installs Debian's package)"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CPI_")} | (env or {})
    return subprocess.run([binary, "-f", str(COMPOSE), *args], capture_output=True, text=True, check=False,
                          timeout=120, env=environment, cwd=DEPLOY)


@functools.cache
def _config() -> dict[str, Any]:
    result = _compose("config", env=PASSWORDS)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _volumes(service: dict[str, Any]) -> list[dict[str, Any]]:
    """A service's mounts as source, target and read_only, from `config`'s short (source:target:mode) form."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append({**volume, "read_only": volume.get("read_only", False)})
            continue
        source, target, *mode = volume.split(":")
        mounts.append({"source": source, "target": target, "read_only": mode == ["ro"]})
    return mounts


def test_the_file_validates_and_needs_its_passwords_from_outside() -> None:
    """`docker-compose config` accepts the file; without the passwords it stops with a message naming the
    variable to set, rather than starting a database with an empty or committed password."""
    assert set(_config()["services"]) >= {"kafka", "postgres", "edge", *STAGES, "prometheus", "grafana"}
    result = _compose("config", "-q")
    assert result.returncode != 0 and "CPI_POSTGRES_PASSWORD" in result.stderr
    assert "compose-test-db-password" not in COMPOSE.read_text()


def test_kafka_is_the_official_image_in_kraft_mode_and_not_published() -> None:
    """Kafka is the official apache/kafka image as one KRaft broker and controller, reached on the project's
    network only (no host port); topics are created from the registry before any worker starts."""
    services = _config()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ports" not in kafka
    assert services["topics"]["command"] == ["topics", "apply"]
    for name in STAGES:
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully", name


def test_each_process_gets_only_its_own_keys_and_only_the_sanitiser_the_sealed_store() -> None:
    """As in the cluster: each service mounts a keys volume holding exactly its process's key files (the router
    and notifier none, only the console the unseal private key), and the sealed store's URL, whose database holds
    the sources' identities, is given to the sanitiser and the console alone."""
    config = _config()
    services = config["services"]
    command = services["keys"]["command"][0]
    for service, holder in {**STAGES, "console": "unseal"}.items():
        volumes = [v for v in _volumes(services[service]) if v["target"] == "/etc/cpi/keys"]
        expected = {spec.filename for spec in keys_of(holder)}  # type: ignore[arg-type]
        if not expected:
            assert volumes == [], service
            continue
        (volume,) = volumes
        assert volume["read_only"] is True
        copied = {word.rsplit("/", 1)[-1] for line in command.splitlines() if line.startswith("cp ")
                  for word in line.split()[1:] if line.split()[-1] == f"/keys/{volume['source'].removeprefix('keys-')}/"
                  and word != line.split()[-1]}
        assert copied == expected, service
    unseal_private = next(spec.filename for spec in KEYS if spec.name == "unseal-private")
    assert [line.split()[-1] for line in command.splitlines() if unseal_private in line] == ["/keys/console/"]
    running = [name for name, s in services.items() if name != "keys"]
    assert not [name for name in running for v in _volumes(services[name]) if v["source"] == "keys-iu"]
    with_store = {name for name, s in services.items() if "CPI_SEALED_STORE_URL" in s.get("environment", {})}
    assert with_store == {"sanitiser", "console"}
    assert services["sanitiser"]["environment"]["CPI_SEALED_STORE_URL"].startswith("postgresql://cpi:")


def test_every_pipeline_service_runs_read_only_without_capabilities_and_publishes_only_the_form() -> None:
    """Each pipeline service has a read-only root filesystem, no capabilities and no privilege gain; only the
    edge publishes a port, the form's, on loopback, never its metrics port."""
    services = _config()["services"]
    for name in STAGES:
        service = services[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert ("ports" in service) == (name == "edge"), name
    (port,) = services["edge"]["ports"]
    assert port in ("127.0.0.1:8080:8080/tcp", "127.0.0.1:8080:8080")
    assert int(services["edge"]["environment"]["CPI_EDGE_METRICS_PORT"]) == IntakeSettings().edge_metrics_port
    console = services["console"]
    assert console["read_only"] is True and console["cap_drop"] == ["ALL"]
    assert console["ports"] in (["127.0.0.1:8090:8090/tcp"], ["127.0.0.1:8090:8090"])  # loopback, never metrics


def test_prometheus_scrapes_every_metrics_port_and_grafana_is_provisioned() -> None:
    """Prometheus scrapes each process on the port it serves /metrics on (as jobs the alert rules' `cpi.*`
    match) and loads the alert rules; Grafana gets the Prometheus data source and the pipeline dashboard."""
    services = _config()["services"]
    prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert all(job["job_name"].startswith("cpi-") for job in prometheus["scrape_configs"])
    ports = {"edge": IntakeSettings().edge_metrics_port, **PlatformSettings().worker_ports,
             "console": int(services["console"]["environment"]["CPI_CONSOLE_METRICS_PORT"])}
    assert targets == {f"{name}:{port}" for name, port in ports.items()}
    for name, port in PlatformSettings().worker_ports.items():
        assert services[name]["environment"]["CPI_WORKER_PORT"] == str(port)
    mounts = {v["target"]: v["source"] for v in _volumes(services["prometheus"])}
    assert Path(mounts["/etc/prometheus/alerts.yaml"]) == DEPLOY / "prometheus" / "alerts.yaml"
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yaml"]
    grafana = {v["target"]: Path(v["source"]) for v in _volumes(services["grafana"]) if v["source"].startswith("/")}
    provisioning = grafana["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "cpi.yaml").read_text())["providers"]
    dashboards = grafana[provider["options"]["path"]]
    assert (dashboards / "cpi-pipeline.json").is_file()


def test_networks_keep_the_database_to_the_sanitiser_and_the_way_out_to_the_notifier() -> None:
    """As the cluster's NetworkPolicies do: the sealed store's database shares a network with the sanitiser alone;
    Kafka is on an internal network of the pipeline's services; only the notifier is on the network for reaching
    out, and besides it only the services that publish a port to the host (the edge, Prometheus, Grafana) are on
    any non-internal network; the keys service has no network at all."""
    config = _config()
    internal = {name for name, network in config["networks"].items() if network.get("internal")}
    services = config["services"]
    networks = {name: set(s.get("networks", {})) for name, s in services.items()}
    assert networks["postgres"] == {"sealed-store"} <= internal
    assert {name for name, joined in networks.items() if "sealed-store" in joined} == {"postgres", "sanitiser",
                                                                                        "console"}
    assert networks["kafka"] == {"kafka"} and "kafka" in internal
    assert {name for name, joined in networks.items() if "kafka" in joined} == {"kafka", "topics", *STAGES, "console"}
    assert {name for name, joined in networks.items() if "outbound" in joined} == {"notifier"}
    external = {name for name, joined in networks.items() if joined - internal}
    assert external == {"notifier", "edge", "console", "prometheus", "grafana"}
    assert external - {"notifier"} == {name for name, s in services.items() if s.get("ports")}
    assert services["keys"]["network_mode"] == "none"
