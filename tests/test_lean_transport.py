"""LeanTransport against scripted HTTP/1.1 servers: keep-alive, a connection closed while idle,
chunked bodies read in bounded pieces, malformed answers as httpx errors; and the sources' polls
through it, whose heads are made without httpx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from scaler import __version__
from scaler.errors import SourceError, SourceResponseError
from scaler.settings import PrometheusCredentials
from scaler.sources.lean_transport import PIECE_BYTES, LeanTransport, head_of
from scaler.sources.prometheus import PrometheusSource
from scaler.trigger import TriggerConfig

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]
"""Answers request number n on a connection; returns whether to keep the connection open."""


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self.heads: list[bytes] = []
        """Every request head received, in order."""


@contextlib.asynccontextmanager
async def serving(script: Script) -> AsyncIterator[Server]:
    server = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"GET ")
                server.heads.append(head)
                n += 1
                if not await script(reader, writer, n):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def answer(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_requests_share_one_kept_alive_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(answer(f"answer {n}".encode()))
        await writer.drain()
        return True

    async with serving(script) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        bodies = [(await client.get(f"http://127.0.0.1:{server.port}/q")).text for _ in range(5)]
    assert bodies == [f"answer {n}" for n in range(1, 6)]
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced_once() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(answer(b"ok"))  # says nothing of closing, then closes
        await writer.drain()
        return False

    async with serving(script) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        first = await client.get(f"http://127.0.0.1:{server.port}/q")
        await asyncio.sleep(0.05)  # the server's close reaches the idle connection
        second = await client.get(f"http://127.0.0.1:{server.port}/q")
    assert (first.text, second.text) == ("ok", "ok")
    assert server.connections == 2


async def test_chunked_bodies_with_extensions_and_trailers_arrive_in_bounded_pieces() -> None:
    big = b"x" * (3 * PIECE_BYTES + 17)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"5;ext=1\r\nhello\r\n")
        writer.write(f"{len(big):x}\r\n".encode() + big + b"\r\n")
        writer.write(b"0\r\nX-Trailer: t\r\n\r\n")
        await writer.drain()
        return True

    async with serving(script) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        async with client.stream("GET", f"http://127.0.0.1:{server.port}/q") as response:
            pieces = [piece async for piece in response.aiter_raw()]
        again = await client.get(f"http://127.0.0.1:{server.port}/q")  # the connection is reusable
    assert b"".join(pieces) == b"hello" + big
    assert max(len(piece) for piece in pieces) <= PIECE_BYTES
    assert again.content == b"hello" + big
    assert server.connections == 1


async def test_gzip_is_decoded_by_httpx_above_the_transport() -> None:
    import gzip

    payload = b'{"status":"success"}' * 100

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(answer(gzip.compress(payload), "Content-Encoding: gzip"))
        await writer.drain()
        return True

    async with serving(script) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/q")
    assert response.content == payload


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        pytest.param(b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError, id="not-http"),
        pytest.param(b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", httpx.RemoteProtocolError, id="bad-header"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
            httpx.RemoteProtocolError,
            id="head-too-long",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            httpx.RemoteProtocolError,
            id="bad-chunk",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", httpx.RemoteProtocolError, id="short-body"
        ),
    ],
)
async def test_malformed_answers_are_httpx_errors(reply: bytes, error: type[Exception]) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(reply)
        await writer.drain()
        return False

    async with serving(script) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(error):
            await client.get(f"http://127.0.0.1:{server.port}/q")


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with serving(lambda r, w, n: asyncio.sleep(0, False)) as server:
        port = server.port
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/q")


async def test_a_response_left_unread_closes_its_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(answer(b"z" * 100_000))
        await writer.drain()
        return True

    async with serving(script) as server, httpx.AsyncClient(transport=LeanTransport()) as client:
        async with client.stream("GET", f"http://127.0.0.1:{server.port}/q") as response:
            await anext(response.aiter_raw())
        assert (await client.get(f"http://127.0.0.1:{server.port}/q")).content == b"z" * 100_000
    assert server.connections == 2  # the half-read one was not reused


# --- the sources' poll path: heads made without httpx, answers read without it ---------------------


def always(reply: bytes) -> Script:
    """A script that answers every request with `reply` and keeps the connection open."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(reply)
        await writer.drain()
        return True

    return script


VECTOR = (
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"4"]}]}}'
)


@pytest.mark.parametrize(
    ("query", "parameters", "headers", "prefix"),
    [
        pytest.param("sum(x)", (), (), "", id="plain"),
        pytest.param(
            'sum(rate(http_total{job="a b",code=~"5.+|4%"}[1m])) / 2 > 0 and on() vector(1) # é&=?',
            (("dedup", "false"), ("partial_response", "true"), ("x", "a b&c=é")),
            (("X-Scope-OrgID", "tenant-a"), ("X-Extra", "")),
            "/prom/sub path",
            id="everything-escaped",
        ),
    ],
)
async def test_a_poll_sends_what_httpx_would(
    query: str, parameters: tuple[tuple[str, str], ...], headers: tuple[tuple[str, str], ...], prefix: str
) -> None:
    """The poll's head is httpx's request, byte for byte: same URL encoding, headers and order."""

    async with serving(always(answer(VECTOR))) as server:
        address = f"http://127.0.0.1:{server.port}{prefix}"
        config = TriggerConfig(
            threshold=1.0,
            server_address=address,
            query=query,
            query_parameters=parameters,
            custom_headers=headers,
        )
        transport = LeanTransport()
        source = PrometheusSource(config, transport=transport, clock=lambda: 1_700_000_000.25)
        try:
            assert (await source.sample()).value == 4.0
            assert (await source.sample()).value == 4.0  # on the kept-alive connection
        finally:
            await transport.aclose()
    expected = httpx.Request(
        "GET",
        f"{address}/api/v1/query",
        params=[("query", query), ("time", "1700000000.250"), *parameters],
        headers=[("Accept", "application/json"), ("User-Agent", f"prescaler/{__version__}"), *headers],
    )
    assert server.heads == [head_of(expected)] * 2
    assert server.connections == 1


async def test_a_compressed_answer_to_a_poll_is_refused_by_name() -> None:
    """prescaler never asks for compression; a body it cannot read as sent is an error, not garbage."""
    import gzip

    async with serving(always(answer(gzip.compress(VECTOR), "Content-Encoding: gzip"))) as server:
        transport = LeanTransport()
        config = TriggerConfig(threshold=1.0, server_address=f"http://127.0.0.1:{server.port}", query="x")
        source = PrometheusSource(config, transport=transport)
        try:
            with pytest.raises(
                SourceResponseError, match=r"Content-Encoding `gzip`, which prescaler does not"
            ):
                await source.sample()
        finally:
            await transport.aclose()


async def test_a_token_with_a_line_break_is_never_sent(tmp_path: Path) -> None:
    """A token file's inner line break would start a header of the file's choosing."""
    token = tmp_path / "token"
    token.write_text("s3cret\r\nX-Injected: yes\n")

    async with serving(always(answer(VECTOR))) as server:
        address = f"http://127.0.0.1:{server.port}"
        transport = LeanTransport()
        source = PrometheusSource(
            TriggerConfig(threshold=1.0, server_address=address, query="x"),
            transport=transport,
            credentials=PrometheusCredentials(address, bearer_token_file=token),
        )
        try:
            with pytest.raises(SourceError, match=r"holds a line break, a control character or non-ASCII"):
                await source.sample()
        finally:
            await transport.aclose()
    assert server.heads == []
