"""The mock vLLM engine: `slots` requests in service at once, the rest waiting, vLLM's metric names.

A request waits (FIFO) for one of `slots` (vLLM's `--max-num-seqs`), then holds it for
`service_time_s + time_per_token_s * max_tokens`, then answers OpenAI-shaped JSON. The metrics carry the
names and labels vLLM exports, so that queries, dashboards and ScaledObjects written against the mock work
unchanged against vLLM:

    vllm:num_requests_running{model_name}           requests holding a slot
    vllm:num_requests_waiting{model_name}           requests waiting for one
    vllm:request_success_total{model_name,finished_reason}
    vllm:e2e_request_latency_seconds{model_name}    histogram, arrival to answer
    vllm:request_queue_time_seconds{model_name}     histogram, time spent waiting
    vllm:prompt_tokens_total, vllm:generation_tokens_total {model_name}

Tokens are counted as whitespace-separated words of the prompt and `max_tokens` generated ones; the
generated text is filler. Streaming is not mocked (answered 400).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from scaler.loadtest.httpd import Request, Response

DEFAULT_MAX_TOKENS = 16
"""OpenAI's default `max_tokens` for completions."""
MAX_MAX_TOKENS = 32768
LATENCY_BUCKETS_S = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
"""vLLM's buckets for its request latency histograms."""
FILLER = "lorem"


@dataclass(frozen=True, slots=True)
class MockConfig:
    """How the mock serves; each field is a flag of `prescaler mock-vllm`."""

    slots: int = 4
    """Requests in service at once (vLLM's `--max-num-seqs`); later ones wait."""
    service_time_s: float = 1.0
    """Time a request holds its slot, before the per-token part."""
    time_per_token_s: float = 0.0
    """Added to the service time for each generated token (`max_tokens`)."""
    model: str = "mock-llm"
    """The model name served: `/v1/models`, responses and the `model_name` label."""

    def __post_init__(self) -> None:
        if self.slots < 1:
            raise ValueError(f"slots must be at least 1, got {self.slots}")
        if self.service_time_s < 0 or self.time_per_token_s < 0:
            raise ValueError("service_time_s and time_per_token_s must be >= 0")

    def service_s(self, tokens: int) -> float:
        return self.service_time_s + self.time_per_token_s * tokens


class InvalidRequest(ValueError):
    """A request body the OpenAI API would refuse; answered with `status` and OpenAI's error JSON."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


class VllmMetrics:
    """vLLM's metric families on `registry`, for one model."""

    def __init__(self, registry: CollectorRegistry, model: str) -> None:
        labels = ["model_name"]
        self.running = Gauge(
            "vllm:num_requests_running", "Requests holding a slot.", labels, registry=registry
        ).labels(model)
        self.waiting = Gauge(
            "vllm:num_requests_waiting", "Requests waiting for a slot.", labels, registry=registry
        ).labels(model)
        self.success = Counter(
            "vllm:request_success",
            "Requests answered, by finish reason.",
            [*labels, "finished_reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Time from arrival to answer.",
            labels,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        ).labels(model)
        self.queue_time = Histogram(
            "vllm:request_queue_time_seconds",
            "Time spent waiting for a slot.",
            labels,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        ).labels(model)
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Prompt tokens received.", labels, registry=registry
        ).labels(model)
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Tokens generated.", labels, registry=registry
        ).labels(model)
        self.model = model


class MockVllm:
    """Serves completions through `slots`; `handle` is its HTTP face (an `httpd.Handler`)."""

    def __init__(
        self,
        config: MockConfig,
        *,
        registry: CollectorRegistry,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.registry = registry
        self.metrics = VllmMetrics(registry, config.model)
        self._slots = asyncio.Semaphore(config.slots)
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._ids = itertools.count(1)

    async def handle(self, request: Request) -> Response:
        """Route one HTTP request: the OpenAI endpoints, `/metrics` and `/health`."""
        route = ROUTES.get(request.path)
        if route is None:
            return _error(HTTPStatus.NOT_FOUND, f"no route {request.path}", "not_found_error")
        method, kind = route
        if request.method != method:
            return _error(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{request.path} takes {method}", "invalid_request_error"
            )
        if kind == "metrics":
            return Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if kind == "health":
            return Response(200, b"", "text/plain")
        if kind == "models":
            return _json(self.models())
        try:
            body = _object(request.body)
            answer = await self.complete(body, chat=kind == "chat")
        except InvalidRequest as exc:
            return _error(exc.status, str(exc), "invalid_request_error")
        return _json(answer)

    def models(self) -> dict[str, Any]:
        """The `/v1/models` answer: the one model served."""
        card = {"id": self.config.model, "object": "model", "created": int(self._wall()), "owned_by": "mock"}
        return {"object": "list", "data": [card]}

    async def complete(self, body: Mapping[str, Any], *, chat: bool) -> dict[str, Any]:
        """Wait for a slot, hold it for the service time, and answer as `/v1/(chat/)completions` would."""
        prompt_tokens = _prompt_tokens(body, chat=chat)
        tokens = _max_tokens(body)
        model = body.get("model", self.config.model)
        if model != self.config.model:
            raise InvalidRequest(
                f"The model `{model}` does not exist; this server serves `{self.config.model}`",
                HTTPStatus.NOT_FOUND,
            )
        if body.get("stream"):
            raise InvalidRequest("`stream: true` is not supported by the mock; leave it out")
        metrics = self.metrics
        arrived_s = self._clock()
        metrics.waiting.inc()
        try:
            await self._slots.acquire()
        finally:
            metrics.waiting.dec()
        metrics.queue_time.observe(self._clock() - arrived_s)
        metrics.running.inc()
        try:
            await self._sleep(self.config.service_s(tokens))
        finally:
            metrics.running.dec()
            self._slots.release()
        metrics.latency.observe(self._clock() - arrived_s)
        metrics.success.labels(self.config.model, "length").inc()
        metrics.prompt_tokens.inc(prompt_tokens)
        metrics.generation_tokens.inc(tokens)
        return self._answer(prompt_tokens, tokens, chat=chat)

    def _answer(self, prompt_tokens: int, tokens: int, *, chat: bool) -> dict[str, Any]:
        text = " ".join([FILLER] * tokens)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{next(self._ids)}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(self._wall()),
            "model": self.config.model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": tokens,
                "total_tokens": prompt_tokens + tokens,
            },
        }


ROUTES: Mapping[str, tuple[str, str]] = {
    "/v1/completions": ("POST", "completions"),
    "/v1/chat/completions": ("POST", "chat"),
    "/v1/models": ("GET", "models"),
    "/metrics": ("GET", "metrics"),
    "/health": ("GET", "health"),
}


def _object(raw: bytes) -> Mapping[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _prompt_tokens(body: Mapping[str, Any], *, chat: bool) -> int:
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("`messages` must be a non-empty list of {role, content} objects")
        texts: list[object] = [m.get("content") if isinstance(m, dict) else None for m in messages]
    else:
        prompt = body.get("prompt")
        texts = list(prompt) if isinstance(prompt, list) else [prompt]
    words = 0
    for text in texts:
        if not isinstance(text, str):
            what = "each message's `content`" if chat else "`prompt`"
            raise InvalidRequest(f"{what} must be a string (or a list of strings)")
        words += len(text.split())
    return words


def _max_tokens(body: Mapping[str, Any]) -> int:
    tokens = body.get("max_tokens", DEFAULT_MAX_TOKENS)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= MAX_MAX_TOKENS:
        raise InvalidRequest(f"`max_tokens` must be an integer from 1 to {MAX_MAX_TOKENS}, got {tokens!r}")
    return tokens


def _json(body: Mapping[str, Any]) -> Response:
    return Response(200, json.dumps(body).encode())


def _error(status: HTTPStatus, message: str, kind: str) -> Response:
    error = {"message": message, "type": kind, "param": None, "code": status.value}
    return Response(status.value, json.dumps({"error": error}).encode())
