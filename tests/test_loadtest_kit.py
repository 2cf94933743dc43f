"""The load-test kit: the mock vLLM, the Locust replay, their manifests, and the three run together.

The end-to-end test runs what docs/end-to-end.md describes, on loopback: the mock vLLM, a real
Prometheus scraping it every second, Locust headless replaying a compressed day of the NYC-taxi trace
(a subprocess: Locust runs on gevent, which is never imported here), and prescaler reading that
Prometheus, asked over gRPC as KEDA asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib.metadata
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry

from scaler import cli
from scaler._generated import externalscaler_pb2 as pb
from scaler.loadtest import httpd, mock_vllm
from scaler.loadtest.engine import ROUTES, MockConfig, MockVllm
from scaler.settings import Settings
from scaler.trigger import parse_trigger
from tests.kustomize_render import Resource, pod_spec, render
from tests.prometheus_server import binaries
from tests.scraping_prometheus import scraping_prometheus, wait_for_series
from tests.servers import FakeClock, ref, running_app
from tests.test_deploy_manifests import KUSTOMIZE, find, validate

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "deploy" / "loadtest" / "locustfile.py"
LOCUST = Path(sys.executable).parent / "locust"
MODEL = {"model_name": "mock-llm"}
IN_FLIGHT_QUERY = "sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)"


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, {**MODEL, **labels})
    assert value is not None, f"{name} {labels} is not exported"
    return value


@contextlib.asynccontextmanager
async def serving(mock: MockVllm) -> AsyncIterator[str]:
    """The mock on 127.0.0.1:<free port>; yields its base URL."""
    async with httpd.HttpServer(mock.handle) as server:
        yield f"http://127.0.0.1:{await server.start('127.0.0.1', 0)}"


class Gates:
    """A `sleep` for the mock whose calls wait until the test opens them, one by one, in order."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Event] = []

    async def __call__(self, seconds: float) -> None:
        gate = asyncio.Event()
        self.waiting.append(gate)
        await gate.wait()

    def open_first(self) -> None:
        self.waiting.pop(0).set()


async def settle(condition: Callable[[], bool]) -> None:
    """Let the event loop run until `condition` holds (no wall-clock wait: bounded loop turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the mock never reached the expected state")


def instant_mock(**config: Any) -> tuple[MockVllm, CollectorRegistry]:
    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    registry = CollectorRegistry()
    return MockVllm(
        MockConfig(**config), registry=registry, sleep=no_wait, wall=lambda: 1_700_000_000.0
    ), registry


# --- The engine: slots, waiting, metrics ---------------------------------------------------------


async def test_slots_limit_concurrency_and_the_rest_wait() -> None:
    gates = Gates()
    registry = CollectorRegistry()
    mock = MockVllm(MockConfig(slots=2), registry=registry, sleep=gates)
    body = {"prompt": "one two three", "max_tokens": 4}
    calls = [asyncio.create_task(mock.complete(body, chat=False)) for _ in range(5)]
    await settle(lambda: len(gates.waiting) == 2)
    assert sample(registry, "vllm:num_requests_running") == 2
    assert sample(registry, "vllm:num_requests_waiting") == 3
    gates.open_first()
    await settle(lambda: sample(registry, "vllm:num_requests_waiting") == 2 and len(gates.waiting) == 2)
    assert sample(registry, "vllm:num_requests_running") == 2
    assert sample(registry, "vllm:request_success_total", finished_reason="length") == 1
    while gates.waiting or not all(call.done() for call in calls):
        if gates.waiting:
            gates.open_first()
        await asyncio.sleep(0)
    assert sample(registry, "vllm:num_requests_running") == 0
    assert sample(registry, "vllm:num_requests_waiting") == 0
    assert sample(registry, "vllm:request_success_total", finished_reason="length") == 5
    assert sample(registry, "vllm:prompt_tokens_total") == 15
    assert sample(registry, "vllm:generation_tokens_total") == 20


async def test_latency_and_queue_time_histograms_observe_each_request() -> None:
    clock = FakeClock(0.0)
    services: list[float] = []

    async def advance(seconds: float) -> None:
        await asyncio.sleep(0)  # let the other requests arrive first
        services.append(seconds)
        clock.advance(seconds)

    registry = CollectorRegistry()
    config = MockConfig(slots=1, service_time_s=0.5, time_per_token_s=0.25)
    mock = MockVllm(config, registry=registry, sleep=advance, clock=clock)
    await asyncio.gather(*(mock.complete({"prompt": "x", "max_tokens": 2}, chat=False) for _ in range(3)))
    # One slot, 1 s each (0.5 + 2 x 0.25): they finish 1, 2 and 3 s after arriving together.
    assert services == [1.0, 1.0, 1.0]
    assert sample(registry, "vllm:e2e_request_latency_seconds_count") == 3
    assert sample(registry, "vllm:e2e_request_latency_seconds_sum") == 6.0
    assert sample(registry, "vllm:e2e_request_latency_seconds_bucket", le="1.0") == 1
    assert sample(registry, "vllm:e2e_request_latency_seconds_bucket", le="2.0") == 2
    assert sample(registry, "vllm:request_queue_time_seconds_sum") == 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"slots": 0}, "slots must be at least 1", id="no-slots"),
        pytest.param({"service_time_s": -1.0}, "must be >= 0", id="negative-time"),
    ],
)
def test_config_refuses_what_cannot_serve(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MockConfig(**kwargs)


# --- The HTTP face: OpenAI-shaped answers and errors --------------------------------------------


async def test_completions_models_and_metrics_answer_as_openai_and_vllm_do() -> None:
    mock, _ = instant_mock(model="llama")
    async with serving(mock) as url, httpx.AsyncClient(base_url=url) as client:
        completion = await client.post(
            "/v1/completions", json={"model": "llama", "prompt": "a b c", "max_tokens": 3}
        )
        chat = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi there"}]}
        )
        models = await client.get("/v1/models")
        metrics = await client.get("/metrics")
        health = await client.get("/health")
    assert completion.status_code == 200
    assert completion.json() == {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1_700_000_000,
        "model": "llama",
        "choices": [{"index": 0, "finish_reason": "length", "logprobs": None, "text": "lorem lorem lorem"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    }
    answer = chat.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": " ".join(["lorem"] * 16)}
    assert answer["usage"] == {"prompt_tokens": 2, "completion_tokens": 16, "total_tokens": 18}
    assert models.json() == {
        "object": "list",
        "data": [{"id": "llama", "object": "model", "created": 1_700_000_000, "owned_by": "mock"}],
    }
    assert metrics.headers["content-type"].startswith("text/plain")
    for line in (
        'vllm:num_requests_running{model_name="llama"} 0.0',
        'vllm:num_requests_waiting{model_name="llama"} 0.0',
        'vllm:request_success_total{finished_reason="length",model_name="llama"} 2.0',
        'vllm:e2e_request_latency_seconds_count{model_name="llama"} 2.0',
    ):
        assert line in metrics.text.splitlines()
    assert health.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        pytest.param("POST", "/v1/completions", b"{not json", 400, "must be a JSON object", id="not-json"),
        pytest.param("POST", "/v1/completions", b"[1, 2]", 400, "must be a JSON object", id="json-list"),
        pytest.param(
            "POST", "/v1/completions", b'{"max_tokens": 3}', 400, "`prompt` must be", id="no-prompt"
        ),
        pytest.param(
            "POST",
            "/v1/completions",
            b'{"prompt": "x", "max_tokens": 0}',
            400,
            "`max_tokens` must be an integer from 1 to 32768, got 0",
            id="zero-tokens",
        ),
        pytest.param(
            "POST",
            "/v1/completions",
            b'{"prompt": "x", "model": "gpt-4"}',
            404,
            "The model `gpt-4` does not exist; this server serves `mock-llm`",
            id="other-model",
        ),
        pytest.param(
            "POST", "/v1/completions", b'{"prompt": "x", "stream": true}', 400, "stream", id="stream"
        ),
        pytest.param(
            "POST", "/v1/chat/completions", b'{"messages": []}', 400, "`messages` must", id="no-messages"
        ),
        pytest.param("GET", "/v1/completions", b"", 405, "/v1/completions takes POST", id="get-completions"),
        pytest.param("GET", "/v2/models", b"", 404, "no route /v2/models", id="unknown-path"),
    ],
)
async def test_bad_requests_get_openai_errors(
    method: str, path: str, body: bytes, status: int, message: str
) -> None:
    mock, registry = instant_mock()
    async with serving(mock) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.request(method, path, content=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert message in error["message"]
    assert error["code"] == status
    assert (
        registry.get_sample_value("vllm:request_success_total", {**MODEL, "finished_reason": "length"})
        is None
    )


async def raw_exchange(url: str, payload: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    answer = await reader.read()  # until the server closes
    writer.close()
    return answer


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    mock, _ = instant_mock()
    request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    closing = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with serving(mock) as url:
        answer = await raw_exchange(url, request + request + closing)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.count(b"Connection: keep-alive") == 2
    assert answer.endswith(b"Connection: close\r\n\r\n")


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        pytest.param(b"HELLO\r\n\r\n", b"400 Bad Request", id="malformed-line"),
        pytest.param(b"GET / SPDY/3\r\n\r\n", b"400 Bad Request", id="not-http1"),
        pytest.param(
            b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"411 Length Required",
            id="chunked",
        ),
        pytest.param(
            b"POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            b"413 Request Entity Too Large",
            id="huge-body",
        ),
        pytest.param(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400 Bad Request", id="bad-header"),
    ],
)
async def test_unreadable_requests_are_answered_then_closed(payload: bytes, status: bytes) -> None:
    mock, _ = instant_mock()
    async with serving(mock) as url:
        answer = await raw_exchange(url, payload)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in answer


# --- The command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param(
            ["--slots", "0"],
            "argument --slots: `0`: expected a whole number of slots, at least 1",
            id="slots-0",
        ),
        pytest.param(
            ["--slots", "many"], "argument --slots: `many`: expected a whole number", id="slots-word"
        ),
        pytest.param(
            ["--service-time", "5 minutes"],
            "argument --service-time: `5 minutes`: expected a duration such as 15s",
            id="service-time",
        ),
        pytest.param(
            ["--port", "70000"], "argument --port: `70000`: expected a port number from 0 to 65535", id="port"
        ),
        pytest.param(["--model", " "], "argument --model: expected a non-empty model name", id="model"),
    ],
)
def test_bad_flags_are_one_error_line(
    flags: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["mock-vllm", *flags], environ={})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"prescaler mock-vllm: error: {expected}")
    assert "Traceback" not in err


def test_a_busy_port_is_one_line_naming_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert mock_vllm.main(["--host", "127.0.0.1", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"python -m scaler.loadtest.mock_vllm: cannot listen on 127.0.0.1:{port} (--host, --port): "
        "Address already in use"
    )


def test_the_prescaler_command_imports_the_mock_only_to_run_it() -> None:
    code = (
        "import sys; from scaler import cli; cli.build_parser(['call']); a = 'scaler.loadtest' in sys.modules; "
        "cli.build_parser(['mock-vllm']); print(a, 'scaler.loadtest.mock_vllm' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split() == ["False", "True"]


def test_python_m_serves_until_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "scaler.loadtest.mock_vllm", "--host", "127.0.0.1", "--port", "0"]
    command += ["--slots", "3", "--service-time", "0", "--model", "tiny"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as process:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+):", banner)
        assert found is not None, banner
        url = found.group(1)
        try:
            models = httpx.get(f"{url}/v1/models", timeout=5).json()
            completion = httpx.post(f"{url}/v1/completions", json={"prompt": "x"}, timeout=5).json()
        finally:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert banner.startswith("mock vLLM serving `tiny` on http://127.0.0.1:")
    assert "3 slots, 0s per request" in banner
    assert models["data"][0]["id"] == "tiny"
    assert completion["choices"][0]["text"].split() == ["lorem"] * 16


# --- End to end: the mock, a scraping Prometheus, Locust and prescaler --------------------------

DAY_S = 20.0
"""The compressed day Locust replays: the NYC-taxi trace's first day in 20 s."""
PEAK_USERS = 12
SERVICE_S = 0.5
"""The mock's service time, also Locust's pace: every user is always in flight (running or waiting)."""
POLL_S = 0.5
"""How often the test asks prescaler, as KEDA would (KEDA's own default is every 30 s)."""
LOCUST_LIMIT_S = 45.0
"""The Locust run is killed, and the test fails, past this (it stops by itself after DAY_S)."""


@dataclass(frozen=True, slots=True)
class Reading:
    at_s: float
    """Wall-clock time of the GetMetrics answer."""
    served: float
    """What prescaler answered: requests in flight as Prometheus scraped them."""
    in_flight: float
    """The mock's own running + waiting at that moment."""


@dataclass(frozen=True, slots=True)
class LocustSecond:
    at_s: float
    users: int
    requests: int
    failures: int


def locust_history(path: Path) -> list[LocustSecond]:
    """The aggregated rows of Locust's `--csv` stats history, one per second."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    return [
        LocustSecond(
            float(row["Timestamp"]),
            int(row["User Count"]),
            int(row["Total Request Count"]),
            int(row["Total Failure Count"]),
        )
        for row in rows
    ]


async def poll_while_locust_runs(
    locust: asyncio.subprocess.Process, ask: Callable[[], Awaitable[float]], in_flight: Callable[[], float]
) -> list[Reading]:
    readings = []
    deadline = time.monotonic() + LOCUST_LIMIT_S
    while locust.returncode is None and time.monotonic() < deadline:
        served = await ask()
        readings.append(Reading(time.time(), served, in_flight()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(locust.wait(), POLL_S)
    if locust.returncode is None:
        locust.kill()
        await locust.wait()
        raise AssertionError(f"Locust still ran after {LOCUST_LIMIT_S:g}s")
    return readings


def best_lag(readings: list[Reading]) -> tuple[int, float, float]:
    """Prescaler's answers lag the mock by a scrape and a step: the lag (in polls) at which they match
    the mock's in-flight best, with the mean absolute error and the correlation there."""
    served = np.array([r.served for r in readings])
    in_flight = np.array([r.in_flight for r in readings])
    scores = []
    for lag in range(int(4 / POLL_S) + 1):
        a, b = served[lag:], in_flight[: len(in_flight) - lag]
        flat = np.std(a) == 0 or np.std(b) == 0  # no load at all: nothing to correlate
        corr = 0.0 if flat else float(np.corrcoef(a, b)[0, 1])
        scores.append((float(np.mean(np.abs(a - b))), lag, corr))
    mae, lag, corr = min(scores)
    return lag, mae, corr


@pytest.mark.prometheus
async def test_getmetrics_follows_the_load_locust_generates(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    mock = MockVllm(MockConfig(slots=4, service_time_s=SERVICE_S), registry=registry)

    def in_flight() -> float:
        return sample(registry, "vllm:num_requests_running") + sample(registry, "vllm:num_requests_waiting")

    async with serving(mock) as mock_url:
        with scraping_prometheus([mock_url.removeprefix("http://")], tmp_path / "prometheus") as prom_url:
            await wait_for_series(prom_url, "vllm:num_requests_running")
            async with running_app(real_sources=True) as running:
                metadata = {
                    "serverAddress": prom_url,
                    "query": IN_FLIGHT_QUERY,
                    "threshold": "4",
                    "step": "1s",
                    "timeout": "800ms",
                }
                scaled_object = ref(metadata, name="mock-vllm", namespace="loadtest")
                request = pb.GetMetricsRequest(scaledObjectRef=scaled_object, metricName="prescaler")

                async def ask() -> float:
                    answer = await running.stub.GetMetrics(request, timeout=2.0)
                    (value,) = answer.metricValues
                    return float(value.metricValueFloat)

                assert await ask() == 0.0  # the mock is idle
                with (tmp_path / "locust.log").open("wb") as log:
                    locust = await asyncio.create_subprocess_exec(
                        *locust_command(mock_url, tmp_path / "locust"),
                        cwd=tmp_path,  # no locust.conf or pyproject.toml of ours is read
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "PYTHONWARNINGS": "ignore"},
                    )
                    readings = await poll_while_locust_runs(locust, ask, in_flight)
    output = (tmp_path / "locust.log").read_text(errors="replace")
    assert locust.returncode == 0, f"locust exited with {locust.returncode}:\n{output[-3000:]}"
    seconds = locust_history(tmp_path / "locust_stats_history.csv")
    report(readings, seconds)

    # Locust replayed the day: from a trough of one user to about PEAK_USERS (it samples the shape
    # once a second), every request answered.
    assert 0.8 * PEAK_USERS <= max(s.users for s in seconds) <= PEAK_USERS
    assert min(s.users for s in seconds if s.users > 0) == 1
    assert seconds[-1].requests > 100
    assert seconds[-1].failures == 0
    assert sample(registry, "vllm:request_success_total", finished_reason="length") >= seconds[-1].requests

    # What prescaler answers KEDA is the mock's in-flight count, a scrape and a step late.
    lag, mae, corr = best_lag(readings)
    assert lag * POLL_S <= 3.0
    assert mae <= 0.15 * PEAK_USERS
    assert corr >= 0.9

    # And it follows the day: the evening peak well above the early-morning trough.
    served = [r.served for r in readings]
    peak = int(np.argmax(served))
    start = next(i for i, value in enumerate(served) if value > 0)
    trough = min(served[start:peak])
    assert served[peak] >= 0.75 * PEAK_USERS
    assert served[peak] >= 4 * max(trough, 1.0)
    assert readings[peak].at_s - readings[start].at_s >= 0.5 * DAY_S


def locust_command(host: str, csv_prefix: Path) -> list[str]:
    return [
        str(LOCUST),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--day-minutes",
        repr(DAY_S / 60),
        "--peak-users",
        str(PEAK_USERS),
        "--pace",
        repr(SERVICE_S),
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]


def report(readings: list[Reading], seconds: list[LocustSecond]) -> None:
    """Printed for `pytest -s`: what Locust ran and what prescaler answered, second by second."""
    lag, mae, corr = best_lag(readings)
    print(f"\nlag {lag * POLL_S:g}s, mean abs error {mae:.2f}, correlation {corr:.3f}")
    t0 = readings[0].at_s
    users = {round(s.at_s - t0): s.users for s in seconds}
    for r in readings:
        print(
            f"{r.at_s - t0:6.1f}s users {users.get(round(r.at_s - t0), '-'):>3} "
            f"in flight {r.in_flight:4.0f} served {r.served:5.1f}"
        )


# --- The Kubernetes manifests --------------------------------------------------------------------

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
