"""HTTP clients shared by every target that reads the same server the same way.

One `httpx.AsyncClient` per (origin, TLS verification, credentials entry), with its connection pool,
and one gate (a semaphore) per origin that every client of that origin passes through: however many
ScaledObjects point at one Prometheus, the scaler holds at most `max_connections` requests (and
connections) to it. A client per target cost ~900 KB and a TCP connection each (an SSL context
alone loads the CA bundle), and 5,000 of them flooded the server. Under each client is a
`LeanTransport`: httpx's own costs 0.65 ms of CPU a request, which 5,000 targets cannot afford.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import NamedTuple

import httpx

from scaler.errors import SourceError
from scaler.sources.lean_transport import LeanTransport

_CLIENT_TIMEOUT_S = 60.0
"""The clients' own timeouts, a backstop only: each request runs under its trigger's total deadline."""


class ClientKey(NamedTuple):
    """What makes two targets' requests interchangeable on one connection."""

    origin: str
    """`scheme://host:port`, as `scaler.settings.origin_of` writes it."""
    verify: str
    """`default`, `insecure`, or `ca:<path>` of the CA bundle the server is verified with."""
    credentials: int | None
    """Index of the credentials entry the requests carry; None without credentials."""


class HttpClients:
    """The scaler's HTTP clients by `ClientKey`, and a gate per origin; closed once, at shutdown."""

    def __init__(
        self, *, max_connections: int = 8, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections is {max_connections}; it must be >= 1")
        self.max_connections = max_connections
        self._transport = transport
        self._clients: dict[ClientKey, httpx.AsyncClient] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def client(self, key: ClientKey) -> httpx.AsyncClient:
        """The client for `key`, made on first use; raises SourceError for an unusable CA file."""
        client = self._clients.get(key)
        if client is None:
            limits = httpx.Limits(
                max_connections=self.max_connections, max_keepalive_connections=self.max_connections
            )
            verify = self._verify(key)
            transport = self._transport or LeanTransport(verify=verify, max_idle=self.max_connections)
            client = httpx.AsyncClient(
                verify=verify,
                follow_redirects=False,
                limits=limits,
                timeout=_CLIENT_TIMEOUT_S,
                transport=transport,
            )
            self._clients[key] = client
        return client

    def gate(self, origin: str) -> asyncio.Semaphore:
        """The semaphore every request to `origin` holds while it is in flight."""
        gate = self._gates.get(origin)
        if gate is None:
            gate = self._gates[origin] = asyncio.Semaphore(self.max_connections)
        return gate

    def _verify(self, key: ClientKey) -> ssl.SSLContext | bool:
        if key.verify == "insecure":
            return False
        if key.verify == "default":
            return True
        path = key.verify.removeprefix("ca:")
        context = self._contexts.get(path)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=Path(path))
            except (OSError, ssl.SSLError) as exc:
                raise SourceError(f"{key.origin}: cannot use CA file {path}: {exc}") from exc
            self._contexts[path] = context
        return context

    async def aclose(self) -> None:
        """Close every client and its connections."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
