"""Every error prescaler raises, and the one place they become gRPC status codes.

The tree::

    PrescalerError
    ├── ConfigError                 bad ScaledObject metadata         -> INVALID_ARGUMENT
    ├── SourceError                 the load signal could not be read -> UNAVAILABLE
    │   ├── SourceUnreachable       connection refused, DNS, TLS
    │   ├── SourceTimeout           no answer within the trigger's `timeout`
    │   ├── SourceResponseError     HTTP error status, a body over the limits or not the expected JSON
    │   ├── StaleSample             the server's sample timestamp is older than max age
    │   └── NullValueError          empty / NaN / Inf result with ignoreNullValues=false
    ├── QueryShapeError             the query returned several series  -> FAILED_PRECONDITION
    └── NotReady                    no trustworthy value to answer with -> UNAVAILABLE
        ├── WarmingUp               the first sample has not arrived within the RPC deadline
        └── StaleValue              the last good value is older than max age

KEDA treats every non-OK status as a scaler error: the HPA keeps its replicas, and a ScaledObject
with a `fallback` block scales to its fallback replicas after `failureThreshold` errors. That is why
an unknown value is UNAVAILABLE and never a made-up 0.
"""

from __future__ import annotations


class PrescalerError(Exception):
    """Base of every error prescaler raises on purpose."""


class ConfigError(PrescalerError):
    """ScaledObject trigger metadata that cannot be used; lists every problem at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid trigger metadata: " + "; ".join(problems))


class SourceError(PrescalerError):
    """The load signal could not be read; the message names the source address."""


class SourceUnreachable(SourceError):
    """The source refused or dropped the connection, or its name did not resolve."""


class SourceTimeout(SourceError):
    """The source did not answer within the configured timeout."""


class SourceResponseError(SourceError):
    """The source answered, but with an error status or a body of the wrong shape."""


class StaleSample(SourceError):
    """The source answered with a sample whose timestamp is older than the max age."""


class NullValueError(SourceError):
    """The query result was empty, NaN or infinite and `ignoreNullValues` is false."""


class QueryShapeError(PrescalerError):
    """The query returned more than one series; prescaler needs 0 or 1."""


class NotReady(PrescalerError):
    """There is no value prescaler can vouch for right now."""


class WarmingUp(NotReady):
    """A newly tracked target has not produced its first sample within the RPC deadline."""


class StaleValue(NotReady):
    """The newest good value is older than the configured max age."""


_STATUS: tuple[tuple[type[PrescalerError], str], ...] = (
    (ConfigError, "INVALID_ARGUMENT"),
    (QueryShapeError, "FAILED_PRECONDITION"),
    (SourceError, "UNAVAILABLE"),
    (NotReady, "UNAVAILABLE"),
)


def status_name(exc: PrescalerError) -> str:
    """The name of the gRPC status KEDA receives for `exc` (`grpc.StatusCode[name]`); the only
    mapping in the project. Names, not grpc objects, keep this module free of grpc so that pure
    modules (policy, simulator) can use the tree."""
    for kind, name in _STATUS:
        if isinstance(exc, kind):
            return name
    return "INTERNAL"
