"""A Prometheus look-alike on loopback that misbehaves on purpose, for isolation tests and benchmarks.

The first path segment of `serverAddress` picks the behaviour, so one server plays every part:
`http://127.0.0.1:PORT/ok/api/v1/query` answers like Prometheus, `.../drip/...` drips a byte at a
time, and so on (`BEHAVIOURS`). It speaks HTTP/1.1 with keep-alive and counts connections and
requests in flight, so tests can check how hard the scaler leans on a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DAY_S = 86400.0


@dataclass
class Stats:
    """What the server saw."""

    connections: int = 0
    """Connections accepted in all."""
    open_connections: int = 0
    max_open_connections: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    """Requests per behaviour (range queries as `<behaviour> range`)."""


def established_to(port: int) -> int:
    """TCP connections of this machine in ESTABLISHED state whose remote end is `port` on loopback:
    the client side of connections to a server of ours (Linux' /proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def _vector(at_s: float, value: str, series: int = 1) -> bytes:
    result = [{"metric": {"i": str(n)}, "value": [at_s, value]} for n in range(series)]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def _matrix(start_s: float, end_s: float, step_s: float) -> bytes:
    count = int((end_s - start_s) / step_s) + 1
    values = [[start_s + k * step_s, "1"] for k in range(count)]
    result = [{"metric": {}, "values": values}]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()


class HostilePrometheus:
    """`async with HostilePrometheus() as server:` then `server.address("drip")`."""

    BEHAVIOURS = (
        "ok",  # a well-behaved Prometheus (instant and range queries), value 1
        "slow",  # like ok, after `slow_s`
        "drip",  # headers, then one byte of a long body every 0.2 s
        "endless",  # a chunked body that never ends
        "huge",  # declares and sends a 100 MB body
        "huge-chunked",  # a 100 MB body without Content-Length
        "nested",  # JSON nested 100,000 levels deep
        "series",  # 10,000 series
        "stale",  # a sample stamped 30 days ago
        "html",  # a login page
        "error",  # Prometheus' error envelope with a long, control-laden text
    )

    def __init__(self, *, slow_s: float = 0.5, tls: ssl.SSLContext | None = None) -> None:
        self.slow_s = slow_s
        self.tls = tls
        self.stats = Stats()
        self._server: asyncio.Server | None = None
        self.port = 0

    def address(self, behaviour: str) -> str:
        if behaviour not in self.BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour}; one of {self.BEHAVIOURS}")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{behaviour}"

    async def __aenter__(self) -> HostilePrometheus:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = self.stats
        stats.connections += 1
        stats.open_connections += 1
        stats.max_open_connections = max(stats.max_open_connections, stats.open_connections)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                target = line.decode("latin-1").split()[1]
                while (await reader.readline()).strip():
                    pass
                stats.in_flight += 1
                stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
                try:
                    await self._answer(target, writer)
                finally:
                    stats.in_flight -= 1
        except (ConnectionError, IndexError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            stats.open_connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, target: str, writer: asyncio.StreamWriter) -> None:
        parts = urlsplit(target)
        behaviour = parts.path.strip("/").split("/")[0]
        counted = behaviour + (" range" if parts.path.endswith("/query_range") else "")
        self.stats.requests[counted] = self.stats.requests.get(counted, 0) + 1
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        at_s = float(params.get("time", time.time()))
        if behaviour in ("ok", "slow"):
            if behaviour == "slow":
                await asyncio.sleep(self.slow_s)
            if parts.path.endswith("/query_range"):
                body = _matrix(float(params["start"]), float(params["end"]), float(params["step"]))
            else:
                body = _vector(at_s, "1")
            await self._send(writer, body)
        elif behaviour == "drip":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            )
            for _ in range(100_000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.2)
        elif behaviour in ("endless", "huge-chunked"):
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"[" * 65536
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            for _ in range(10**9 if behaviour == "endless" else 1600):
                writer.write(frame)
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif behaviour == "huge":
            size = 100 * 1024 * 1024
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
            )
            block = b" " * 65536
            for _ in range(size // len(block)):
                writer.write(block)
                await writer.drain()
        elif behaviour == "nested":
            await self._send(writer, b"[" * 100_000 + b"]" * 100_000)
        elif behaviour == "series":
            await self._send(writer, _vector(at_s, "1", series=10_000))
        elif behaviour == "stale":
            await self._send(writer, _vector(at_s - 30 * DAY_S, "1"))
        elif behaviour == "html":
            page = b"<html><body>SECRET-INTERNAL-PAGE " + b"x" * 500 + b"</body></html>"
            await self._send(writer, page, content_type="text/html")
        elif behaviour == "error":
            text = "bad\x00\x1b[31m query " + "y" * 5000
            envelope = {"status": "error", "errorType": "bad_data", "error": text}
            await self._send(writer, json.dumps(envelope).encode(), status="400 Bad Request")
        else:
            await self._send(writer, b"not found", status="404 Not Found", content_type="text/plain")

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter,
        body: bytes,
        *,
        status: str = "200 OK",
        content_type: str = "application/json",
    ) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()


class HostileProcess:
    """The server in a process of its own: `with HostileProcess() as server:`; `stats()` at the end."""

    def __init__(self, *, fast: bool = False) -> None:
        self.fast = fast
        """Serve only `ok` instant queries, fast (benchmarks)."""
        self._process: subprocess.Popen[str] | None = None
        self.port = 0
        self.final: dict[str, object] = {}

    def address(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}"

    def __enter__(self) -> HostileProcess:
        root = Path(__file__).resolve().parent.parent
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile_prometheus", *(["--fast"] if self.fast else [])],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        try:
            out, _ = process.communicate(input="", timeout=10)
            self.final = json.loads(out.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            process.kill()
            process.wait()


class _FastOk(asyncio.Protocol):
    """The `ok` instant query at a few thousand answers a second (a Protocol, no streams): what a
    benchmark of 5,000 targets polling every 15 s needs from its Prometheus."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._stats.connections += 1
        self._stats.open_connections += 1
        self._stats.max_open_connections = max(self._stats.max_open_connections, self._stats.open_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stats.open_connections -= 1

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while b"\r\n\r\n" in self._buffer:
            head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            target = head.split(b" ", 2)[1].decode("latin-1")
            query = parse_qs(urlsplit(target).query)
            at_s = float(query.get("time", [time.time()])[0])
            body = _vector(at_s, "1")
            self._stats.requests["ok"] = self._stats.requests.get("ok", 0) + 1
            head_out = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            assert self._transport is not None
            self._transport.write(head_out.encode() + body)


async def _main() -> None:
    """Serve until stdin closes, after printing the port (a separate process for benchmarks and
    isolation tests, so that the server's own work does not run in the scaler's event loop).
    With `--fast`, only the `ok` instant query, fast."""
    if "--fast" in sys.argv:
        stats = Stats()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _FastOk(stats), "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()
        print(json.dumps(stats.__dict__), flush=True)
        return
    async with HostilePrometheus() as hostile:
        print(hostile.port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        print(json.dumps(hostile.stats.__dict__), flush=True)


if __name__ == "__main__":
    asyncio.run(_main())
