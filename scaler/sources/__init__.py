"""Metric sources: where a target's load signal comes from.

Each source is one module with one class behind the tiny `Source` protocol (`base`); `catalog`
picks one from the trigger's `source` key. Sources never import each other.
"""

from scaler.sources.base import Sample, Series, Source

__all__ = ["Sample", "Series", "Source"]
