"""The mock vLLM in tests (on a loopback port, answering at once) and the load-test kit's paths."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from scaler.loadtest import httpd
from scaler.loadtest.engine import MockConfig, MockVllm

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "deploy" / "loadtest" / "locustfile.py"
LOCUST = Path(sys.executable).parent / "locust"
MODEL = {"model_name": "mock-llm"}


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample of the mock's model; fails if the series is not exported."""
    value = registry.get_sample_value(name, {**MODEL, **labels})
    assert value is not None, f"{name} {labels} is not exported"
    return value


@contextlib.asynccontextmanager
async def serving(mock: MockVllm) -> AsyncIterator[str]:
    """The mock on 127.0.0.1:<free port>; yields its base URL."""
    async with httpd.HttpServer(mock.handle) as server:
        yield f"http://127.0.0.1:{await server.start('127.0.0.1', 0)}"


def instant_mock(**config: Any) -> tuple[MockVllm, CollectorRegistry]:
    """A mock with `config` whose service takes no time, its clock fixed; and its registry."""

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    registry = CollectorRegistry()
    return MockVllm(
        MockConfig(**config), registry=registry, sleep=no_wait, wall=lambda: 1_700_000_000.0
    ), registry
