"""HTTP/1.1 over asyncio streams, with keep-alive: the transport under the scaler's httpx clients.

The scaler's traffic to Prometheus is thousands of small GETs a minute on a few connections. httpx's
default transport (httpcore, h11, anyio) spends ~0.65 ms of CPU on each; this one ~0.05 ms, which is
what lets 5,000 targets poll every 15 s without the event loop falling behind its RPCs. Behind
`httpx.AsyncBaseTransport` httpx keeps everything above it (URLs, headers, content decoding, the
`Response`); the sources' polls skip even that and send ready-made request heads through
`exchange`, reading the answer's status, headers and body as received.

What it does: one request at a time per connection, idle connections kept per origin (at most
`max_idle`), bodies by Content-Length, chunked or until close, yielded in pieces of at most 64 KiB
(a hostile chunk size is never buffered whole; the caller counts bytes against its limit), a request
on a connection the server had closed while idle retried once on a new one (GETs only). No proxies,
no HTTP/2, no redirects (the sources never follow them). A response not read to its end, or cut by
a cancellation, closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

import httpx

PIECE_BYTES = 64 * 1024
"""Largest piece of a body read at once."""
HEAD_LIMIT_BYTES = 64 * 1024
"""Longest status line plus headers (and chunk-size line) accepted."""
_NO_BODY = frozenset({204, 304})

Origin = tuple[str, str, int]
"""(scheme, host, port)."""


class Answer(NamedTuple):
    """An answer's status line and headers as received, and its body to read."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: _Body


def head_of(request: httpx.Request) -> bytes:
    """The bytes `LeanTransport` sends for `request`: request line, headers, blank line."""
    if request.method not in ("GET", "HEAD") or request.content:
        raise httpx.UnsupportedProtocol("this transport only sends GET and HEAD without a body")
    lines = [request.method.encode("ascii") + b" " + request.url.raw_path + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def request_of(base_url: str, head: bytes) -> httpx.Request:
    """The `httpx.Request` that `head` (as `head_of` writes it) sends to `base_url`'s origin: how a
    head reaches a transport other than `LeanTransport` (tests give an `httpx.MockTransport`)."""
    request_line, *lines = head.rstrip(b"\r\n").split(b"\r\n")
    method, target, _ = request_line.split(b" ")
    headers = [(name, value) for name, _, value in (line.partition(b": ") for line in lines)]
    return httpx.Request(method.decode("ascii"), base_url + target.decode("ascii"), headers=headers)


class HeadTemplate:
    """A request head with one parameter's value left open, filled on every poll without building
    an `httpx.Request` (~0.1 ms of CPU each, a third of a poll's).

    `request(value)` is the request with `value` in that parameter. The head is made from two of
    them, with two marks that URL encoding keeps as they are and that differ in every character, so
    its bytes are httpx's encoding of everything else; the value filled in must be a decimal number
    (Prometheus' time), which URL encoding leaves as it is too."""

    _MARKS = ("a" * 8, "b" * 8)

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, request: Callable[[str], httpx.Request]) -> None:
        one, other = (head_of(request(mark)) for mark in self._MARKS)
        at = next(n for n, (x, y) in enumerate(zip(one, other, strict=True)) if x != y)
        self._prefix, self._suffix = one[:at], one[at + len(self._MARKS[0]) :]
        if other != self.head(self._MARKS[1]):
            raise ValueError("the request's open parameter is not where its marks are")

    def head(self, value: str) -> bytes:
        """The head with `value` in the open parameter."""
        return self._prefix + value.encode("ascii") + self._suffix


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    @property
    def closed(self) -> bool:
        return self.writer.is_closing() or self.reader.at_eof()


class LeanTransport(httpx.AsyncBaseTransport):
    """An `httpx.AsyncBaseTransport` for many small requests to few servers."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, max_idle: int = 8) -> None:
        if isinstance(verify, ssl.SSLContext):
            self._tls = verify
        else:
            self._tls = ssl.create_default_context()
            if not verify:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        self._max_idle = max_idle
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin: Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        try:
            answer = await self.exchange(
                origin, head_of(request), connect_timeout_s=timeouts.get("connect"), method=request.method
            )
        except httpx.TransportError as exc:
            exc.request = request
            raise
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=answer.body,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
        )

    async def exchange(
        self, origin: Origin, head: bytes, *, connect_timeout_s: float | None, method: str = "GET"
    ) -> Answer:
        """Send one request's head (`head_of`'s bytes) to `origin` and read the answer's head; the
        body follows in `Answer.body`, which must be read through or closed.

        The path of the sources' polls: no `httpx.Request` or `httpx.Response` is made for it."""
        if self._closed:
            raise httpx.ConnectError("the transport is closed")
        for attempt in (1, 2):
            connection, reused = await self._connection(origin, connect_timeout_s)
            try:
                connection.writer.write(head)
                await connection.writer.drain()
                status, reason, headers = await self._read_head(connection.reader)
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                connection.close()
                if reused and attempt == 1 and method == "GET":
                    continue  # the server closed this idle connection; a GET can be sent again
                raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
            except ValueError as exc:
                connection.close()
                raise httpx.RemoteProtocolError(str(exc)) from exc
            except BaseException:
                connection.close()
                raise
            break
        body = _Body(self, origin, connection, headers, has_body=method != "HEAD" and status not in _NO_BODY)
        return Answer(status, reason, headers, body)

    async def _connection(self, origin: Origin, connect_timeout_s: float | None) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection, True
            connection.close()
        scheme, host, port = origin
        try:
            async with asyncio.timeout(connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=self._tls if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                    limit=HEAD_LIMIT_BYTES,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        return _Connection(reader, writer), False

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise ValueError(f"the response's headers are longer than {HEAD_LIMIT_BYTES} bytes") from None
        status_line, *header_lines = raw[:-4].split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ValueError("the response does not start with an HTTP/1.x status line")
        headers = []
        for line in header_lines:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise ValueError("a response header is not `name: value`")
            headers.append((name, value.strip()))
        return int(parts[1]), parts[2] if len(parts) == 3 else b"", headers

    def release(self, origin: Origin, connection: _Connection) -> None:
        """Keep a connection whose response was read to its end, for the next request."""
        idle = self._idle.setdefault(origin, [])
        if self._closed or connection.closed or len(idle) >= self._max_idle:
            connection.close()
        else:
            idle.append(connection)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; the connection goes back to the pool once it is read through."""

    def __init__(
        self,
        transport: LeanTransport,
        origin: Origin,
        connection: _Connection,
        headers: list[tuple[bytes, bytes]],
        *,
        has_body: bool,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection = connection
        fields = {name.lower(): value for name, value in headers}
        self._chunked = b"chunked" in fields.get(b"transfer-encoding", b"").lower()
        length = fields.get(b"content-length")
        self._length = int(length) if length is not None and length.isdigit() else None
        self._keep_alive = fields.get(b"connection", b"").lower() != b"close" and (
            self._chunked or self._length is not None or not has_body
        )
        self._has_body = has_body
        self._complete = not has_body
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if not self._has_body:
            return
        reader = self._connection.reader
        try:
            if self._chunked:
                async for piece in self._chunks(reader):
                    yield piece
            elif self._length is not None:
                left = self._length
                while left:
                    piece = await reader.read(min(PIECE_BYTES, left))
                    if not piece:
                        raise httpx.RemoteProtocolError("the server closed the connection mid-body")
                    left -= len(piece)
                    yield piece
            else:
                while piece := await reader.read(PIECE_BYTES):
                    yield piece
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
        self._complete = True

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError:
                raise httpx.RemoteProtocolError("a chunk-size line is too long") from None
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise httpx.RemoteProtocolError("a chunk size is not hexadecimal") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return
            while size:
                piece = await reader.read(min(PIECE_BYTES, size))
                if not piece:
                    raise httpx.RemoteProtocolError("the server closed the connection mid-chunk")
                size -= len(piece)
                yield piece
            if await reader.readexactly(2) != b"\r\n":
                raise httpx.RemoteProtocolError("a chunk does not end with CRLF")

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        if self._complete and self._keep_alive:
            self._transport.release(self._origin, self._connection)
        else:
            self._connection.close()
