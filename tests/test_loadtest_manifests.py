"""deploy/loadtest: every manifest validates offline (Kubernetes schemas, the KEDA CRD fixture), `kubectl
apply -k` makes what docs/end-to-end.md says, and the pieces are wired to each other, to prescaler's base,
to the mock's flags and to the locustfile's; the locustfile's bad-input line and the local Prometheus
config."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scaler import cli
from scaler.loadtest import mock_vllm
from scaler.loadtest.engine import ROUTES
from scaler.settings import Settings
from scaler.trigger import parse_trigger
from tests.kustomize_render import Resource, pod_spec, render
from tests.mock_vllm_kit import LOCUST, LOCUSTFILE, ROOT, instant_mock
from tests.prometheus_server import binaries
from tests.test_deploy_manifests import KUSTOMIZE, find, validate

LOADTEST = ROOT / "deploy" / "loadtest"
MANIFESTS = LOADTEST / "kubernetes"
MANIFEST_FILES = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
LOCUST_OWN_FLAGS = {"-f", "--headless", "--only-summary", "--host"}


def documents(name: str) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]


def one(name: str, kind: str) -> Resource:
    [hit] = [doc for doc in documents(name) if doc["kind"] == kind]
    return hit


def generated_configmaps() -> list[Resource]:
    """The ConfigMaps deploy/loadtest/kustomization.yaml generates (tests/kustomize_render.py has no
    generators): from files, without a name hash."""
    spec = yaml.safe_load((LOADTEST / "kustomization.yaml").read_text())
    assert set(spec) == {"apiVersion", "kind", "resources", "configMapGenerator", "generatorOptions"}
    assert spec["generatorOptions"] == {"disableNameSuffixHash": True}
    maps = []
    for generator in spec["configMapGenerator"]:
        assert set(generator) == {"name", "namespace", "files"}
        data = {name: (LOADTEST / name).read_text() for name in generator["files"]}
        meta = {"name": generator["name"], "namespace": generator["namespace"]}
        maps.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    return maps


def container_args(args: list[str]) -> dict[str, str]:
    """`--flag value` pairs (and bare `--flag`s, as "") of a container's args."""
    pairs, i = {}, 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("-"):
            pairs[args[i]] = args[i + 1]
            i += 2
        else:
            pairs[args[i]] = ""
            i += 1
    return pairs


@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_every_manifest_validates(name: str) -> None:
    for doc in documents(name):
        validate(doc)  # Kubernetes 1.30 and 1.37 schemas, or the KEDA CRD fixture
        assert doc["metadata"].get("namespace", "loadtest") == "loadtest"


def test_apply_k_makes_the_namespace_the_mock_shadow_mode_and_the_locustfile() -> None:
    resources = [*render(MANIFESTS), *generated_configmaps()]
    for resource in resources:
        validate(resource)
    kinds = sorted((r["kind"], r["metadata"]["name"]) for r in resources)
    assert kinds == [
        ("ConfigMap", "locustfile"),
        ("Deployment", "mock-vllm"),
        ("Namespace", "loadtest"),
        ("ScaledObject", "mock-vllm"),
        ("Service", "mock-vllm"),
    ]
    [scaled] = [r for r in resources if r["kind"] == "ScaledObject"]
    assert scaled["spec"]["triggers"][0]["metadata"]["mode"] == "shadow"
    [configmap] = generated_configmaps()
    assert configmap["data"] == {"locustfile.py": LOCUSTFILE.read_text()}


def test_the_mock_runs_prescalers_image_scraped_on_the_port_it_listens_on() -> None:
    deployment, service = one("mock-vllm.yaml", "Deployment"), one("mock-vllm.yaml", "Service")
    template = deployment["spec"]["template"]
    [mock] = template["spec"]["containers"]
    [prescaler_image] = {
        c["image"] for c in pod_spec(find(render(KUSTOMIZE / "base"), "Deployment"))["containers"]
    }
    assert mock["image"] == prescaler_image
    args = cli.build_parser(mock["args"]).parse_args(mock["args"])
    assert args.func is mock_vllm.run
    [port] = mock["ports"]
    assert (
        port["containerPort"] == args.port == int(template["metadata"]["annotations"]["prometheus.io/port"])
    )
    assert template["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert mock["readinessProbe"]["httpGet"]["path"] in ROUTES
    assert (
        service["spec"]["selector"]
        == template["metadata"]["labels"]
        == deployment["spec"]["selector"]["matchLabels"]
    )
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert not any(key.startswith("prometheus.io/") for key in service["metadata"].get("annotations", {}))


def test_shadow_and_predictive_differ_in_mode_only_and_prescaler_accepts_both() -> None:
    shadow, predictive = (
        one(f"scaledobject-{mode}.yaml", "ScaledObject") for mode in ("shadow", "predictive")
    )
    [shadow_trigger], [predictive_trigger] = shadow["spec"]["triggers"], predictive["spec"]["triggers"]
    assert shadow_trigger["metadata"].pop("mode") == "shadow"
    assert predictive_trigger["metadata"].pop("mode") == "predictive"
    assert shadow == predictive
    metadata = {**shadow_trigger["metadata"], "mode": "predictive"}
    config = parse_trigger(metadata)
    assert config.mode == "predictive"
    # One replica's share is its slots; the query reads the names the mock exports, in this namespace.
    [mock] = one("mock-vllm.yaml", "Deployment")["spec"]["template"]["spec"]["containers"]
    assert config.threshold == cli.build_parser(mock["args"]).parse_args(mock["args"]).slots
    _, registry = instant_mock()
    exported = {family.name for family in registry.collect()}
    assert {"vllm:num_requests_running", "vllm:num_requests_waiting"} <= exported
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting"):
        assert f'{name}{{namespace="loadtest"}}' in metadata["query"]
    assert shadow["spec"]["scaleTargetRef"]["name"] == "mock-vllm"
    # KEDA 2.17.0's admission webhook refuses `fallback` beside a trigger that leaves metricType out
    # (docs/compatibility.md); fallback applies to AverageValue triggers on every version.
    assert "fallback" in shadow["spec"] and shadow_trigger["metricType"] == "AverageValue"
    # KEDA reaches the base's Service.
    service = find(render(KUSTOMIZE / "base"), "Service", "prescaler")
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert metadata["scalerAddress"] == f"{name}.{namespace}.svc.cluster.local:{grpc_port}"


def test_the_job_runs_the_configmaps_locustfile_on_the_trace_against_the_mocks_service() -> None:
    job = one("locust-job.yaml", "Job")
    spec = job["spec"]["template"]["spec"]
    [init], [locust] = spec["initContainers"], spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in locust["volumeMounts"]}
    args = container_args(locust["args"])
    [configmap] = generated_configmaps()
    assert volumes["locustfile"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert args["-f"] == f"{mounts['locustfile']}/{next(iter(configmap['data']))}"
    # The init container copies a bundled trace where --trace reads it.
    trace = Path(args["--trace"])
    assert str(trace.parent) == mounts["trace"] == init["volumeMounts"][0]["mountPath"]
    assert f"'{trace.name}'" in init["command"][-1] and (ROOT / "scaler" / "traces" / trace.name).is_file()
    service = one("mock-vllm.yaml", "Service")
    meta, [port] = service["metadata"], service["spec"]["ports"]
    assert args["--host"] == f"http://{meta['name']}.{meta['namespace']}.svc:{port['port']}"
    # Every other flag is one the locustfile declares, and the image is the Locust the tests run.
    declared = LOCUSTFILE.read_text()
    for flag in set(args) - LOCUST_OWN_FLAGS:
        assert f'option("{flag}"' in declared, flag
    assert locust["image"] == f"locustio/locust:{importlib.metadata.version('locust')}"
    minutes = float(args["--day-minutes"]) * float(args["--days"])
    assert job["spec"]["activeDeadlineSeconds"] > minutes * 60


def test_the_locustfile_refuses_a_bad_trace_in_one_line(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,value\n2024-01-01T00:00:00Z,1\nyesterday,2\n")
    command = [str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "--host", "http://127.0.0.1:9"]
    done = subprocess.run(
        [*command, "--trace", str(trace)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"locustfile: --trace {trace}: line 3: timestamp 'yesterday' is neither unix seconds nor ISO 8601"
    )


def test_a_locustfile_copied_out_of_the_checkout_names_the_trace_it_missed(tmp_path: Path) -> None:
    copied = tmp_path / "locustfile.py"
    shutil.copy(LOCUSTFILE, copied)
    done = subprocess.run(
        [str(LOCUST), "-f", str(copied), "--headless", "--host", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    missed = copied.resolve().parents[2] / "scaler" / "traces" / "nyc_taxi_10d.csv"
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"locustfile: --trace {missed}: cannot read it: No such file or directory"
    )


@pytest.mark.prometheus
def test_the_local_prometheus_config_is_valid_and_scrapes_the_default_ports() -> None:
    config = LOADTEST / "prometheus.yml"
    done = subprocess.run(
        [binaries()[1], "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = {job["job_name"]: job for job in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert jobs["mock-vllm"]["static_configs"][0]["targets"] == [f"127.0.0.1:{mock_vllm.DEFAULT_PORT}"]
    assert jobs["prescaler"]["static_configs"][0]["targets"] == [f"127.0.0.1:{Settings().metrics_port}"]
