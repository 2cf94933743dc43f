"""The HTTP side port: `/metrics` (Prometheus text format), `/healthz` and `/targets`, on the event loop.

A minimal HTTP/1.1 responder over asyncio streams: three GET paths, one response per connection.
`/targets` is a read-only JSON debug view of the tracked targets (`?namespace=&name=` filter, at
most `TARGETS_SHOWN` entries): what each serves and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scaler.target_series import TargetSeries

logger = logging.getLogger(__name__)

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_READ_TIMEOUT_S = 5.0
TARGETS_SHOWN = 1000
"""Most entries one `/targets` answer lists; `matched` says how many there were."""

TargetsView = Callable[[str | None, str | None, int], Mapping[str, object]]
"""(namespace or None, name or None, limit) -> the JSON document of `/targets`."""


class HttpServer:
    """Serves the metrics registry and a health answer supplied by `healthy()`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        healthy: Callable[[], bool],
        targets: TargetsView | None = None,
        series: TargetSeries | None = None,
    ) -> None:
        self._registry = registry
        self._series = series
        self._healthy = healthy
        self._targets = targets
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        parts = urlsplit(path)
        route = parts.path
        if route == "/metrics":
            # In a thread, the registry being thread-safe; the per-target families (most of the
            # series) come pre-rendered (scaler.target_series).
            return 200, CONTENT_TYPE_LATEST, await asyncio.to_thread(self._exposition)
        if route == "/healthz":
            if self._healthy():
                return 200, "text/plain", b"ok\n"
            return 503, "text/plain", b"shutting down\n"
        if route == "/targets" and self._targets is not None:
            query = parse_qs(parts.query)
            namespace, name = query.get("namespace", [None])[-1], query.get("name", [None])[-1]
            # Read on the event loop (the registry changes there), written out in a thread.
            document = self._targets(namespace or None, name or None, TARGETS_SHOWN)
            text = await asyncio.to_thread(json.dumps, document, indent=1)
            return 200, "application/json", text.encode() + b"\n"
        return 404, "text/plain", b"not found; try /metrics, /healthz or /targets\n"

    def _exposition(self) -> bytes:
        if self._series is None:
            return bytes(generate_latest(self._registry))
        with self._series.rendered_apart():
            text = generate_latest(self._registry)
        return text + self._series.render()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                request_line = (await reader.readline()).decode("latin-1").split()
                while (await reader.readline()).strip():
                    pass  # headers are not needed
            if len(request_line) < 2:
                return
            method, path = request_line[0], request_line[1]
            status, content_type, body = await self._respond(method, path)
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError) as exc:
            logger.debug("HTTP request dropped: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
