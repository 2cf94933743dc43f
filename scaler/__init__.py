"""prescaler: a KEDA external scaler that scales GPU inference services before demand arrives."""

__version__ = "0.1.0"
