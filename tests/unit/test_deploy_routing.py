"""The alert routing table the manifests ship is one the notifier accepts, and the notifier is wired to read it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from services.notifier.domain import load_routing_table
from tests.unit.test_deploy import _documents

BASE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"
TABLE = BASE / "files" / "alert-routing.yaml"


def _config() -> dict[str, str]:
    return next(d for d in _documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "cpi-config")["data"]


def test_the_shipped_routing_table_loads_as_the_notifier_loads_it() -> None:
    """The table validates against the deployment's own allow-list of mail domains (a mistyped address or a
    webhook whose secret is not set would stop the notifier), and every outcome that alerts has a team."""
    allowed = json.loads(_config()["CPI_MAIL_ALLOWED_DOMAINS"])
    table = load_routing_table(TABLE, {}, allowed)
    told = {outcome for team in table.teams for outcome in team.when.outcomes}
    assert {"crime_desk", "safeguarding"} <= told
    assert table.default_team in {team.name for team in table.teams}


def test_the_notifier_reads_the_table_from_its_configmap_and_not_the_single_address_settings() -> None:
    """CPI_ROUTING_TABLE names the file the cpi-alert-routing ConfigMap mounts; the single-address settings, which
    the notifier refuses beside a table, are not in the shared config."""
    config = _config()
    assert not {"CPI_CRIME_DESK_EMAIL", "CPI_SAFEGUARDING_EMAIL"} & set(config)
    notifier = next(d for d in _documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "cpi-notifier")
    pod = notifier["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    routing = next(name for name, v in volumes.items() if v.get("configMap", {}).get("name") == "cpi-alert-routing")
    assert Path(env["CPI_ROUTING_TABLE"]) == Path(mounts[routing]) / TABLE.name
    generated = yaml.safe_load((BASE / "kustomization.yaml").read_text())["configMapGenerator"]
    assert {"name": "cpi-alert-routing", "files": ["files/alert-routing.yaml"]} in generated
    assert notifier["spec"]["replicas"] >= 2
    assert {"secretRef": {"name": "cpi-notifier-ledger"}} in pod["containers"][0]["envFrom"]
