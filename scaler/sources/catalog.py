"""The catalog of sources: picks a trigger's source from its `source` key.

Adding a source is one module plus one entry here. The catalog owns what sources share: the HTTP
clients (one per Prometheus origin, TLS settings and credentials) and the parsed credentials file.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from scaler.settings import PrometheusCredentials, Settings
from scaler.sources.base import Source
from scaler.sources.http_clients import HttpClients
from scaler.trigger import TriggerConfig

SourceFactory = Callable[[TriggerConfig, Settings, str], Source]
"""(trigger, the scaler's settings, the ScaledObject's namespace) -> its source."""


class SourceCatalog:
    """The production SourceFactory; `aclose()` once, when the scaler stops."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.clients = HttpClients(max_connections=settings.prometheus_max_connections, transport=transport)
        self._credentials: tuple[PrometheusCredentials, ...] = settings.credentials()

    def __call__(self, config: TriggerConfig, settings: Settings, namespace: str = "") -> Source:
        """The source `config` asks for, for a ScaledObject of `namespace`."""
        if config.source == "replay":
            from scaler.sources.replay import ReplaySource

            return ReplaySource.from_config(config, settings)
        from scaler.sources.prometheus import PrometheusSource

        return PrometheusSource.from_config(
            config, settings, namespace=namespace, clients=self.clients, credentials=self._credentials
        )

    async def aclose(self) -> None:
        await self.clients.aclose()
