"""The gRPC and HTTP servers."""
