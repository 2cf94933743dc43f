"""A small kustomize for the features deploy/kubernetes uses, so that the manifests render in tests on a
machine without kubectl: `resources` (files and directories), `components`, JSON 6902 `patches` with a
`target`, and `images`. Any other key is refused, so a kustomization using a feature this does not
implement fails the tests instead of rendering differently from `kubectl kustomize` (which the tests
compare it with where kubectl is installed).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KNOWN_KEYS = {"apiVersion", "kind", "resources", "components", "patches", "images"}
KINDS = {"Kustomization": "kustomize.config.k8s.io/v1beta1", "Component": "kustomize.config.k8s.io/v1alpha1"}


class KustomizeError(ValueError):
    """A kustomization this renderer cannot build; names the file and the problem."""


def render(directory: Path) -> list[Resource]:
    """The resources `kubectl kustomize directory` would print, in accumulation order."""
    return _build(directory, expect="Kustomization")


def _load(directory: Path, expect: str) -> dict[str, Any]:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        raise KustomizeError(f"{path}: keys {sorted(unknown)} are not supported by this renderer")
    kind = spec.get("kind", "Kustomization")
    if kind != expect or spec.get("apiVersion", KINDS[kind]) != KINDS[kind]:
        raise KustomizeError(f"{path}: expected kind {expect} ({KINDS[expect]}), found {kind}")
    return spec


def _build(directory: Path, expect: str, base: list[Resource] | None = None) -> list[Resource]:
    spec = _load(directory, expect)
    resources = list(base or [])
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(_build(path, "Kustomization"))
        else:
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for entry in spec.get("components", []):
        resources = _build((directory / entry).resolve(), "Component", resources)
    for patch in spec.get("patches", []):
        _patch(directory, patch, resources)
    for image in spec.get("images", []):
        _set_image(image, resources)
    _check_unique(directory, resources)
    return resources


def _check_unique(directory: Path, resources: Iterable[Resource]) -> None:
    seen = set()
    for resource in resources:
        key = identity(resource)
        if key in seen:
            raise KustomizeError(f"{directory}: {key} is defined twice")
        seen.add(key)


def identity(resource: Resource) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what kustomize keeps unique."""
    meta = resource.get("metadata", {})
    return resource["apiVersion"], resource["kind"], meta.get("namespace", ""), meta["name"]


def _matches(target: dict[str, str], resource: Resource) -> bool:
    group, _, version = resource["apiVersion"].rpartition("/")
    wanted = {
        "group": group,
        "version": version,
        "kind": resource["kind"],
        "name": resource["metadata"]["name"],
    }
    unknown = set(target) - set(wanted)
    if unknown:
        raise KustomizeError(f"patch target keys {sorted(unknown)} are not supported by this renderer")
    return all(wanted[key] == value for key, value in target.items())


def _patch(directory: Path, patch: dict[str, Any], resources: list[Resource]) -> None:
    if set(patch) != {"path", "target"}:
        raise KustomizeError(f"{directory}: patches need exactly `path` and `target`, got {sorted(patch)}")
    operations = yaml.safe_load((directory / patch["path"]).read_text())
    if not isinstance(operations, list):
        raise KustomizeError(f"{directory / patch['path']}: only JSON 6902 patches (a list of operations)")
    hits = [resource for resource in resources if _matches(patch["target"], resource)]
    if not hits:
        raise KustomizeError(f"{directory}: patch {patch['path']} matches no resource")
    for resource in hits:
        for operation in operations:
            apply_operation(resource, operation)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer `{path}` must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def apply_operation(document: Resource, operation: dict[str, Any]) -> None:
    """Apply one JSON 6902 `add`, `replace` or `remove` operation in place."""
    op, parts = operation["op"], _pointer(operation["path"])
    parent: Any = document
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        if op == "add":
            parent.insert(len(parent) if last == "-" else int(last), value)
        elif op == "replace":
            parent[int(last)] = value
        elif op == "remove":
            del parent[int(last)]
        else:
            raise KustomizeError(f"JSON patch op `{op}` is not supported by this renderer")
        return
    if op == "add":
        parent[last] = value
    elif op in ("replace", "remove"):
        if last not in parent:
            raise KustomizeError(f"JSON patch {op} {operation['path']}: no such member")
        if op == "replace":
            parent[last] = value
        else:
            del parent[last]
    else:
        raise KustomizeError(f"JSON patch op `{op}` is not supported by this renderer")


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    """The pod template's spec of a workload, or None."""
    template = resource.get("spec", {}).get("template")
    return template.get("spec") if isinstance(template, dict) else None


def _set_image(image: dict[str, str], resources: list[Resource]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images keys {sorted(unknown)} are not supported by this renderer")
    for resource in resources:
        spec = pod_spec(resource)
        if spec is None:
            continue
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            name = container["image"].split("@")[0]
            if ":" in name.rsplit("/", 1)[-1]:  # a tag, not a registry's port
                name = name.rsplit(":", 1)[0]
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            if "digest" in image:
                new += "@" + image["digest"]
            elif "newTag" in image:
                new += ":" + image["newTag"]
            container["image"] = new
