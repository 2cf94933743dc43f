"""The catalog of sources: picks a trigger's source from its `source` key.

Adding a source is one module plus one entry here.
"""

from __future__ import annotations

from scaler.settings import Settings
from scaler.sources.base import Source
from scaler.trigger import TriggerConfig


def open_source(config: TriggerConfig, settings: Settings) -> Source:
    """The source a trigger asks for, built with the scaler's own settings."""
    if config.source == "replay":
        from scaler.sources.replay import ReplaySource

        return ReplaySource.from_config(config, settings)
    from scaler.sources.prometheus import PrometheusSource

    return PrometheusSource.from_config(config, settings)
