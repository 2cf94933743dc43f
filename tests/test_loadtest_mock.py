"""The mock vLLM (`prescaler mock-vllm`): slots and waiting, vLLM's metrics, OpenAI-shaped answers and
errors, its HTTP/1.1 server, and its command line."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from scaler import cli
from scaler.loadtest import httpd, mock_vllm
from scaler.loadtest.engine import MockConfig, MockVllm
from tests.mock_vllm_kit import MODEL, ROOT, instant_mock, sample, serving
from tests.servers import FakeClock


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


async def test_closing_lets_requests_in_flight_finish_and_answers_new_ones_503() -> None:
    gates = Gates()
    mock = MockVllm(MockConfig(slots=1), registry=CollectorRegistry(), sleep=gates)
    server = httpd.HttpServer(mock.handle)
    url = f"http://127.0.0.1:{await server.start('127.0.0.1', 0)}"
    async with httpx.AsyncClient(base_url=url) as busy, httpx.AsyncClient(base_url=url) as idle:
        assert (await idle.get("/health")).status_code == 200  # a keep-alive connection, left open
        in_flight = asyncio.create_task(busy.post("/v1/completions", json={"prompt": "x"}))
        await settle(lambda: len(gates.waiting) == 1)
        closing = asyncio.create_task(server.aclose(grace_s=60.0))
        await asyncio.sleep(0)  # aclose has begun
        refused = await idle.get("/v1/models")
        assert refused.status_code == 503
        assert refused.headers["connection"] == "close"
        assert refused.json()["error"]["message"] == "the server is shutting down"
        assert not closing.done()
        gates.open_first()
        answer = await in_flight
        await closing
    assert answer.status_code == 200
    assert answer.json()["object"] == "text_completion"


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
