"""deploy/kubernetes and deploy/examples: every overlay renders, every object validates against the
Kubernetes schemas (kubernetes-validate, offline) or against the schema of the CRD fields used
(tests/fixtures/*crd_schema*.json), and the pieces are wired to each other and to prescaler's settings."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from scaler.cgroup import Limits, forecast_workers
from scaler.settings import ENV_PREFIX, Settings, load_credentials
from scaler.trigger import parse_trigger
from tests.kustomize_render import KustomizeError, Resource, apply_operation, identity, pod_spec, render

ROOT = Path(__file__).resolve().parent.parent
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
EXAMPLES = ROOT / "deploy" / "examples"
FIXTURES = Path(__file__).parent / "fixtures"
OVERLAYS = sorted(path.name for path in (KUSTOMIZE / "overlays").iterdir() if path.is_dir())
TREES = ["base", *(f"overlays/{name}" for name in OVERLAYS)]
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""The oldest Kubernetes KEDA 2.17 supports and the newest schema kubernetes-validate ships."""
CRD_SCHEMAS: dict[str, Any] = {
    key: schema
    for name in ("keda_crd_schema.json", "crd_schema_operators.json")
    for key, schema in json.loads((FIXTURES / name).read_text()).items()
    if not key.startswith("$")
}
CLUSTER_SCOPED = {"ClusterTriggerAuthentication", "ClusterIssuer", "Namespace", "ClusterRole"}
KEDA_TLS_KEYS = ("caCert", "tlsClientCert", "tlsClientKey")


def rendered(tree: str) -> list[Resource]:
    return render(KUSTOMIZE / tree)


def validate(resource: Resource) -> None:
    """Against the CRD schema fixture for custom kinds, else against every Kubernetes version's."""
    key = f"{resource['apiVersion']}/{resource['kind']}"
    if key in CRD_SCHEMAS:
        jsonschema.validate(resource, CRD_SCHEMAS[key])
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(resource, version, strict=True)


def find(resources: list[Resource], kind: str, name: str | None = None) -> Resource:
    hits = [r for r in resources if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def container(resources: list[Resource]) -> dict[str, Any]:
    spec = pod_spec(find(resources, "Deployment", "prescaler"))
    assert spec is not None
    [only] = spec["containers"]
    return dict(only)


def env(resources: list[Resource]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(resources)["env"]}


def examples() -> list[Resource]:
    return [
        doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


@pytest.mark.parametrize("tree", TREES)
def test_every_object_of_every_overlay_validates(tree: str) -> None:
    resources = rendered(tree)
    assert resources, f"{tree} renders nothing"
    for resource in resources:
        validate(resource)


@pytest.mark.parametrize("tree", TREES)
def test_namespaced_objects_are_in_kedas_namespace_cluster_scoped_ones_have_none(tree: str) -> None:
    for resource in rendered(tree):
        namespace = resource["metadata"].get("namespace")
        if resource["kind"] in CLUSTER_SCOPED:
            assert namespace is None, identity(resource)
        else:
            assert namespace == "keda", identity(resource)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: renderer not compared")
@pytest.mark.parametrize("tree", ["", *TREES])
def test_renderer_agrees_with_kubectl_kustomize(tree: str) -> None:
    printed = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZE / tree)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    theirs = sorted((doc for doc in yaml.safe_load_all(printed) if doc), key=identity)
    ours = sorted(render(KUSTOMIZE / tree), key=identity)
    assert ours == theirs


def test_the_top_level_kustomization_is_the_base() -> None:
    assert render(KUSTOMIZE) == rendered("base")


def test_production_combines_every_component() -> None:
    kinds = {r["kind"] for r in rendered("overlays/production")}
    single = {r["kind"] for name in OVERLAYS if name != "production" for r in rendered(f"overlays/{name}")}
    assert kinds == single
    assert {"ServiceMonitor", "PrometheusRule", "Certificate", "Issuer", "NetworkPolicy", "Secret"} <= kinds
    assert {"ClusterTriggerAuthentication"} <= kinds


def test_the_base_sets_forecast_workers_and_memory_for_them() -> None:
    resources = rendered("base")
    workers = int(env(resources)["PRESCALER_FORECAST_WORKERS"])
    limits = container(resources)["resources"]["limits"]
    assert limits["memory"].endswith("Mi")
    # docs/operations.md: about 300 MB per worker, plus the server process and its targets.
    assert int(limits["memory"][:-2]) >= workers * 300 + 400
    # The value written is the one prescaler would derive from these limits itself.
    memory = int(limits["memory"][:-2]) * 1024**2
    assert workers == forecast_workers(Limits(float(limits["cpu"]), "test", memory, "test"))


def test_the_image_is_the_published_name_and_version() -> None:
    image = container(rendered("base"))["image"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image == f"ghcr.io/prescaler/prescaler:{version}"


@pytest.mark.parametrize("tree", TREES)
def test_every_prescaler_variable_in_the_manifests_is_a_setting(tree: str) -> None:
    known = {ENV_PREFIX + field.name.upper().removesuffix("_S") for field in dataclasses.fields(Settings)}
    used = {name for name in env(rendered(tree)) if name.startswith(ENV_PREFIX)}
    assert used, "the Deployment sets prescaler's settings through its environment"
    assert used <= known, f"not settings: {sorted(used - known)}"


def test_writable_paths_are_volumes_on_a_read_only_root() -> None:
    spec = container(rendered("base"))
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["mountPath"] for mount in spec["volumeMounts"]}
    variables = env(rendered("base"))
    for variable in ("NUMBA_CACHE_DIR", "MPLCONFIGDIR"):
        assert any(variables[variable].startswith(mount + "/") for mount in mounts), variable
    assert "/tmp" in mounts  # the spawn-started forecast workers' multiprocessing files


def test_mtls_serves_the_certificate_keda_verifies_and_trusts_its_client() -> None:
    resources = rendered("overlays/mtls")
    variables = env(resources)
    spec = pod_spec(find(resources, "Deployment"))
    assert spec is not None
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(resources)["volumeMounts"]}
    secrets_mounted = {
        path: volumes[name]["secret"]["secretName"]
        for path, name in mounts.items()
        if "secret" in volumes[name]
    }
    server = find(resources, "Certificate", "prescaler-server")
    for variable, key in [
        ("PRESCALER_TLS_CERT", "tls.crt"),
        ("PRESCALER_TLS_KEY", "tls.key"),
        ("PRESCALER_TLS_CLIENT_CA", "ca.crt"),
    ]:
        directory, _, filename = variables[variable].rpartition("/")
        assert filename == key
        assert secrets_mounted[directory] == server["spec"]["secretName"]
    # The kubelet's gRPC probe cannot speak TLS.
    assert "grpc" not in container(resources)["readinessProbe"]
    # Both leaf certificates come from the same CA, which is the one prescaler checks clients against.
    client = find(resources, "Certificate", "prescaler-keda-client")
    assert client["spec"]["issuerRef"]["name"] == server["spec"]["issuerRef"]["name"]
    assert "client auth" in client["spec"]["usages"] and "server auth" in server["spec"]["usages"]
    # KEDA reads the TLS material from the (Cluster)TriggerAuthentication, from the client's secret.
    auth = find(resources, "ClusterTriggerAuthentication", "prescaler-mtls")
    refs = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}
    secret = client["spec"]["secretName"]
    assert refs == {
        "caCert": (secret, "ca.crt"),
        "tlsClientCert": (secret, "tls.crt"),
        "tlsClientKey": (secret, "tls.key"),
    }


def test_mtls_example_names_a_host_the_server_certificate_holds() -> None:
    server = find(rendered("overlays/mtls"), "Certificate", "prescaler-server")
    scaled = [doc for doc in examples() if doc["kind"] == "ScaledObject"]
    with_tls = [t for doc in scaled for t in doc["spec"]["triggers"] if "authenticationRef" in t]
    assert with_tls, "no example uses TLS"
    for trigger in with_tls:
        host = trigger["metadata"]["scalerAddress"].rsplit(":", 1)[0]
        assert host in server["spec"]["dnsNames"]
        assert trigger["authenticationRef"] == {
            "name": "prescaler-mtls",
            "kind": "ClusterTriggerAuthentication",
        }


def test_networkpolicy_lets_grpc_in_from_keda_and_metrics_from_monitoring_only() -> None:
    resources = rendered("overlays/networkpolicy")
    policy = find(resources, "NetworkPolicy", "prescaler")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    allowed = {
        port["port"]: [
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"]
        ]
        for rule in policy["spec"]["ingress"]
        for port in rule["ports"]
    }
    assert allowed == {"grpc": ["keda"], "http": ["monitoring"]}
    ports = {port["name"] for port in container(resources)["ports"]}
    assert set(allowed) == ports, "every container port is covered, by its name"
    labels = find(resources, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_the_service_is_headless_so_keda_balances_over_every_replica() -> None:
    resources = rendered("base")
    assert find(resources, "Service", "prescaler")["spec"]["clusterIP"] == "None"
    assert find(resources, "Deployment", "prescaler")["spec"]["replicas"] == 2


def test_servicemonitor_scrapes_the_services_http_port_keeping_target_labels() -> None:
    resources = rendered("overlays/prometheus-operator")
    monitor = find(resources, "ServiceMonitor")
    service = find(resources, "Service", "prescaler")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics" and endpoint["honorLabels"] is True


def test_credentials_example_is_a_file_prescaler_accepts_naming_files_the_secret_holds(
    tmp_path: Path,
) -> None:
    resources = rendered("overlays/prometheus-credentials")
    secret = find(resources, "Secret", "prescaler-prometheus-credentials")
    path = Path(env(resources)["PRESCALER_PROMETHEUS_CREDENTIALS"])
    mounted = {m["mountPath"]: m["name"] for m in container(resources)["volumeMounts"]}
    assert str(path.parent) in mounted
    data = secret["stringData"]
    copy = tmp_path / path.name
    copy.write_text(data[path.name])
    [entry] = load_credentials(copy)
    for named in (entry.bearer_token_file, entry.ca_file):
        assert named is not None and named.parent == path.parent and named.name in data


def test_examples_validate_and_carry_tls_material_only_in_a_triggerauthentication() -> None:
    docs = examples()
    assert {doc["kind"] for doc in docs} >= {"ScaledObject"}
    for doc in docs:
        validate(doc)
        if doc["kind"] != "ScaledObject":
            continue
        for trigger in doc["spec"]["triggers"]:
            metadata = trigger["metadata"]
            assert not set(KEDA_TLS_KEYS) & set(metadata), "KEDA reads TLS material from authParams only"
            parse_trigger(metadata)  # prescaler accepts every key and value
            assert trigger.get("metricType", "AverageValue") == "AverageValue"


def test_readme_install_section_names_the_image_lock_overlays_and_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    assert container(rendered("base"))["image"] in section
    assert "requirements/lock.txt" in section and "requirements/lock-dev.txt" in section
    for overlay in OVERLAYS:
        assert f"deploy/kubernetes/overlays/{overlay}" in section, overlay
    assert "docs/end-to-end.md" in section
    mentioned = set(re.findall(r"`((?:deploy|requirements|docs)/[^`\s]+)`", section))
    mentioned |= set(re.findall(r"\]\(((?:docs|deploy)/[^)#]+)\)", section))
    missing = sorted(path for path in mentioned if not (ROOT / path).exists())
    assert not missing, f"the README names paths that do not exist: {missing}"


def test_the_renderer_refuses_features_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamespace: other\n")
    with pytest.raises(KustomizeError, match=r"\['namespace'\] are not supported"):
        render(tmp_path)


def test_the_renderer_applies_json_patches_as_kustomize_does() -> None:
    document: Resource = {"spec": {"list": [1, 2], "map": {"a": 1}}}
    for operation in (
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "add", "path": "/spec/list/0", "value": 0},
        {"op": "replace", "path": "/spec/map/a", "value": 2},
        {"op": "add", "path": "/spec/map/b~1c", "value": 4},
        {"op": "remove", "path": "/spec/list/1"},
    ):
        apply_operation(document, operation)
    assert document == {"spec": {"list": [0, 2, 3], "map": {"a": 2, "b/c": 4}}}
    with pytest.raises(KustomizeError, match="no such member"):
        apply_operation(document, {"op": "replace", "path": "/spec/missing", "value": 1})
