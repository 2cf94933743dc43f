"""A small HTTP/1.1 server on asyncio streams: enough for Locust, Prometheus and curl.

One request at a time per connection, bodies framed by Content-Length only, keep-alive unless the
client asks to close (or speaks HTTP/1.0 without asking to keep it). What is not supported is answered
with a status, never a dropped connection: chunked bodies 411, oversized heads or bodies 431/413.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import NamedTuple

MAX_LINE_BYTES = 8192
"""Longest request line or header line."""
MAX_HEADERS = 100
MAX_BODY_BYTES = 1 << 20
"""Largest request body (1 MiB); a completion prompt is far smaller."""
IDLE_TIMEOUT_S = 75.0
"""A keep-alive connection with no new request for this long is closed."""


class Request(NamedTuple):
    method: str
    path: str
    """The path without its query string."""
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: bytes


class Response(NamedTuple):
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    close: bool = False
    """Close the connection after this response, whatever the client asked."""


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """The bytes on the wire are not a request this server reads; answered with `status`."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


SHUTTING_DOWN = Response(
    HTTPStatus.SERVICE_UNAVAILABLE,
    json.dumps({"error": {"message": "the server is shutting down", "type": "unavailable"}}).encode(),
    close=True,
)


class HttpServer:
    """Listens on host:port and answers every request with `handler`. `aclose(grace_s)` stops listening,
    lets requests being handled finish for up to `grace_s`, answers new ones on open keep-alive connections
    503, then ends every connection (asyncio's Server leaves them running after `close`)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._handling = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    async def start(self, host: str, port: int) -> int:
        """Start listening (port 0: any free port); returns the port."""
        self._server = await asyncio.start_server(self._on_connection, host, port, limit=MAX_LINE_BYTES)
        port_: int = self._server.sockets[0].getsockname()[1]
        return port_

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await serve_connection(reader, writer, self._handle)
        except asyncio.CancelledError:
            return  # aclose ended this connection; nobody waits for the result
        finally:
            self._connections.discard(task)

    async def _handle(self, request: Request) -> Response:
        if self._closing:
            return SHUTTING_DOWN
        self._handling += 1
        self._idle.clear()
        try:
            return await self._handler(request)
        finally:
            self._handling -= 1
            if not self._handling:
                self._idle.set()

    async def aclose(self, grace_s: float = 0.0) -> None:
        """Stop; requests being handled get up to `grace_s` to finish (0: cancelled at once)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        self._closing = True
        if grace_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self._idle.wait()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> HttpServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> None:
    """Answer requests on one connection until the client closes it or asks to."""
    try:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    request, keep_alive = await read_request(reader)
            except BadRequest as exc:
                body = json.dumps({"error": {"message": str(exc), "type": "invalid_request_error"}})
                await _write(writer, Response(exc.status, body.encode()), keep_alive=False)
                return
            except (TimeoutError, EOFError):
                return
            response = await handler(request)
            keep_alive = keep_alive and not response.close
            await _write(writer, response, keep_alive=keep_alive)
            if not keep_alive:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return  # the client went away mid-request: nothing to answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[Request, bool]:
    """The next request and whether the connection stays open after it; EOFError at a clean end."""
    line = await _line(reader)
    if not line:
        raise EOFError
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    while True:
        header = await _line(reader)
        if not header:
            break
        if len(headers) >= MAX_HEADERS:
            raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEADERS} headers")
        name, sep, value = header.partition(":")
        if not sep:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not supported; send Content-Length")
    length = _content_length(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (version != "HTTP/1.0" or connection == "keep-alive")
    return Request(method, target.partition("?")[0], headers, body), keep_alive


def _content_length(text: str) -> int:
    if not text.isdigit():
        raise BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length must be a number of bytes")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
    return length


async def _line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "connection closed inside the request head") from None
        return ""
    except asyncio.LimitOverrunError:
        raise BadRequest(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"a line over {MAX_LINE_BYTES} bytes"
        ) from None
    return raw.decode("latin-1").rstrip("\r\n")


async def _write(writer: asyncio.StreamWriter, response: Response, *, keep_alive: bool) -> None:
    reason = HTTPStatus(response.status).phrase
    head = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + response.body)
    await writer.drain()
