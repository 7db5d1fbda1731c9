"""Rendering the kustomize overlays and validating objects offline, for the deploy tests.

`kubectl kustomize` (kustomize v5 built in) renders; `kustomize build` does where kubectl is not installed
(`.ci/run` installs one of them). Built-in kinds are checked against Kubernetes' own schemas
(kubernetes-validate, strict: an unknown field fails); Strimzi and KEDA resources against the CRD schemas
vendored in deploy/crds, made strict the same way.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("base", "overlays/dev", "overlays/prod")
KUBERNETES_VERSION = "1.32"


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every object `kubectl apply -k deploy/k8s/<overlay>` would apply."""
    kubectl, kustomize = shutil.which("kubectl"), shutil.which("kustomize")
    if kubectl:
        command = [kubectl, "kustomize", str(K8S / overlay)]
    elif kustomize:
        command = [kustomize, "build", str(K8S / overlay)]
    else:
        raise RuntimeError("neither kubectl nor kustomize is installed (.ci/run installs kustomize)")
    out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_templates(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """Each Deployment's and Job's pod template, by the owner's name."""
    return {d["metadata"]["name"]: d["spec"]["template"] for d in docs if d["kind"] in {"Deployment", "Job"}}


def _strict(node: Any) -> Any:
    """A CRD's structural schema with unknown fields refused, as the API server's strict field validation does
    (Kubernetes prunes them silently otherwise, so a misspelt field would just vanish)."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    strict = {key: _strict(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the vendored CRD's openAPIV3Schema, strict."""
    schemas = {}
    for path in sorted((DEPLOY / "crds").glob("*.json")):
        crd = json.loads(path.read_text())
        schemas[(crd["apiVersion"], crd["kind"])] = _strict(crd["openAPIV3Schema"])
    return schemas


def validation_errors(doc: dict[str, Any]) -> list[str]:
    """Why `doc` is not a valid object of its kind (empty when it is)."""
    import jsonschema
    import kubernetes_validate

    schema = crd_schemas().get((doc["apiVersion"], doc["kind"]))
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []
