"""Prometheus as the load source, with the conventions of KEDA's Prometheus scaler.

`sample()` is KEDA's instant query, `GET {serverAddress}/api/v1/query?query=...&time=...`, with the
trigger's `queryParameters` appended and its `customHeaders` sent; the query must return 0 or 1
series. `history()` asks `/api/v1/query_range` in chunks small enough for Prometheus' limit of
11,000 points per series, to bootstrap a target's history.

Any server can answer anything, so every request is bounded: one total deadline (the trigger's
`timeout`) from waiting for the origin's turn to the last byte of the body; a body size limit
(`--prometheus-max-body`), checked as it streams in; the JSON's depth and series count
(`scaler.sources.prometheus_answer`), decoded off the event loop when the body is large; and an
instant sample whose timestamp is older than the max age is stale. Targets share one HTTP client per
origin, TLS settings and credentials (`scaler.sources.http_clients`), and send their requests straight
to its transport: no cookies, auth flows or redirects to pay for on every poll.

Credentials come from the scaler's settings (KEDA does not forward TriggerAuthentication to external
scalers). An entry is used only by triggers whose `serverAddress` names its origin and path, of the
namespaces it lists, and is sent only with the two query endpoints; redirects are never followed,
since following one would hand the Authorization header to whoever it points at.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np

from scaler import __version__
from scaler.errors import (
    NullValueError,
    QueryShapeError,
    SourceError,
    SourceResponseError,
    SourceTimeout,
    SourceUnreachable,
    StaleSample,
)
from scaler.settings import PrometheusCredentials, Settings, origin_of, path_of
from scaler.sources.base import Sample, Series
from scaler.sources.http_clients import ClientKey, HttpClients
from scaler.sources.lean_transport import HeadTemplate, LeanTransport, Origin, head_of, request_of
from scaler.sources.prometheus_answer import Answer, AnswerError, decode, sanitized
from scaler.trigger import TriggerConfig
from scaler.units import format_duration

logger = logging.getLogger(__name__)

CHUNK_POINTS = 10_000
"""Points per range query of `history()`; Prometheus refuses more than 11,000 per series."""


_HEADERS = (("Accept", "application/json"), ("User-Agent", f"prescaler/{__version__}"))
INSTANT_PATH = "/api/v1/query"
QUERY_PATHS = (INSTANT_PATH, "/api/v1/query_range")
"""The only paths requested, and so the only ones credentials are ever sent with."""
INLINE_DECODE_BYTES = 64 * 1024
"""Bodies up to this size are decoded on the event loop (well under a millisecond); larger ones in
a thread, so that a large answer for one target never stalls the others' RPCs."""


class Limits(NamedTuple):
    """What one answer may hold (the scaler's settings, shared by every Prometheus source)."""

    max_body_bytes: int = 4 * 1024 * 1024
    """Longest body read; a longer one is refused as it streams in (`--prometheus-max-body`)."""
    max_age_s: float = math.inf
    """An instant sample whose timestamp is older than this is stale (`--max-age`)."""

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.prometheus_max_body, settings.max_age_s)


class PrometheusSource:
    """Reads one trigger's query from one Prometheus server; the HTTP transport is injected."""

    def __init__(
        self,
        config: TriggerConfig,
        *,
        transport: httpx.AsyncBaseTransport,
        credentials: PrometheusCredentials | None = None,
        clock: Callable[[], float] = time.time,
        gate: asyncio.Semaphore | None = None,
        limits: Limits | None = None,
        owned: HttpClients | None = None,
    ) -> None:
        self._address, self._query = _address_and_query(config)
        if credentials is not None and (
            credentials.origin != origin_of(self._address) or credentials.path != path_of(self._address)
        ):
            raise ValueError(
                f"credentials for {credentials.server_address} cannot be used for {self._address}; "
                "credentials are only ever sent to their own origin and path"
            )
        self._config = config
        self._transport = transport
        self._credentials = credentials
        self._clock = clock
        self._gate = gate
        self._limits = limits if limits is not None else Limits()
        self._owned = owned
        self._where = f"prometheus {self._address}"
        url = httpx.URL(self._address)
        self._base_url = f"{url.scheme}://{url.netloc.decode('ascii')}"
        self._origin: Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        self._instant = HeadTemplate(
            lambda time: self._request(INSTANT_PATH, [("query", self._query), ("time", time)])
        )

    @classmethod
    def from_config(
        cls,
        config: TriggerConfig,
        settings: Settings,
        *,
        namespace: str = "",
        clients: HttpClients | None = None,
        credentials: tuple[PrometheusCredentials, ...] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> PrometheusSource:
        """The production source: the shared transport for its origin, TLS settings and credentials
        (`clients`; without it, transports of its own, closed with it), and the first credentials
        entry that serves this address and namespace (`credentials`; default: the settings' file).

        `transport` replaces the network (tests) when the source makes its own.
        """
        address, _ = _address_and_query(config)
        entries = settings.credentials() if credentials is None else credentials
        index, creds = next(
            ((i, c) for i, c in enumerate(entries) if c.serves(address, namespace)), (None, None)
        )
        owned = None
        if clients is None:
            owned = clients = HttpClients(
                max_connections=settings.prometheus_max_connections, transport=transport
            )
        origin = origin_of(address)
        shared = clients.transport(ClientKey(origin, _verify(config, creds), index))
        return cls(
            config,
            transport=shared,
            credentials=creds,
            gate=clients.gate(origin),
            limits=Limits.of(settings),
            owned=owned,
        )

    async def sample(self) -> Sample:
        """The query's value now; empty, NaN and ±Inf results follow `ignoreNullValues`."""
        at_s = self._clock()
        result = await self._get(INSTANT_PATH, self._instant.head(_seconds(at_s)))
        if result.kind not in ("vector", "scalar"):
            raise QueryShapeError(
                f"{self._where}: query `{self._shown_query}` returned a {result.kind}; "
                "it must return an instant vector or a scalar"
            )
        if not result.points:
            return self._null(at_s, "returned no series")
        stamp_s, value = result.points[0]
        age_s = at_s - stamp_s
        if abs(age_s) > self._limits.max_age_s:
            shown_s = float(max(1, round(abs(age_s))))
            when = f"{format_duration(shown_s)} {'old' if age_s > 0 else 'ahead'}"
            raise StaleSample(
                f"{self._where}: the sample's timestamp is {when}, past the max age of "
                f"{format_duration(self._limits.max_age_s)}; is the server's clock right?"
            )
        if not math.isfinite(value):
            return self._null(at_s, f"returned {value}")
        # Negative values pass through: clamping is the policy's decision, not the source's.
        return Sample(at_s, value)

    async def history(self, start_s: float, end_s: float, step_s: float) -> Series:
        """Values on the grid start_s, start_s + step_s, ... <= end_s; NaN where Prometheus had none.

        NaN and ±Inf points are returned as NaN: a history holds values, and those are not.
        """
        if not (math.isfinite(start_s) and math.isfinite(end_s) and step_s > 0 and end_s >= start_s):
            raise ValueError(
                f"history needs finite times with end_s >= start_s and step_s > 0; "
                f"got start_s={start_s}, end_s={end_s}, step_s={step_s}"
            )
        count = math.floor((end_s - start_s) / step_s + 1e-9) + 1
        at_s = start_s + step_s * np.arange(count, dtype=np.float64)
        values = np.full(count, np.nan, dtype=np.float64)
        for first in range(0, count, CHUNK_POINTS):
            last = min(first + CHUNK_POINTS, count) - 1
            logger.debug("%s: range query of points %d-%d of %d", self._where, first, last, count)
            params = [
                ("query", self._query),
                ("start", _seconds(float(at_s[first]))),
                ("end", _seconds(float(at_s[last]))),
                ("step", _seconds(step_s)),
            ]
            result = await self._get(
                "/api/v1/query_range", head_of(self._request("/api/v1/query_range", params))
            )
            if result.kind != "matrix":
                raise SourceResponseError(
                    f"{self._where}: a range query answered a {result.kind}, not a matrix"
                )
            if result.points:
                _place(values, result.points, start_s, step_s, first, last)
        return Series(at_s, values)

    async def aclose(self) -> None:
        """Close the transports if the source made its own (shared ones close with the scaler)."""
        if self._owned is not None:
            await self._owned.aclose()

    @property
    def _shown_query(self) -> str:
        return sanitized(self._query, 120)

    def _null(self, at_s: float, what: str) -> Sample:
        if self._config.ignore_null_values:
            return Sample(at_s, 0.0)
        raise NullValueError(
            f"{self._where}: query `{self._shown_query}` {what} and ignoreNullValues is false"
        )

    async def _get(self, path: str, head: bytes) -> Answer:
        timeout_s = self._config.timeout_s
        try:
            # One deadline for the whole request: the origin's turn, connecting, the headers, every
            # byte of the body. httpx's own timeouts are per read, which a dripping body defeats.
            async with asyncio.timeout(timeout_s):
                head = await self._with_auth(path, head)
                if self._gate is None:
                    reply, body = await self._fetch(head)
                else:
                    async with self._gate:
                        reply, body = await self._fetch(head)
                return await self._decode(reply, body)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SourceTimeout(
                f"{self._where}: no complete answer within the timeout of {format_duration(timeout_s)}"
            ) from exc
        except httpx.TransportError as exc:
            hint = ""
            if isinstance(exc.__context__, ssl.SSLError) or "CERTIFICATE" in str(exc).upper():
                hint = " (a self-signed Prometheus certificate needs `caFile` in the credentials file, or "
                hint += "`prometheusUnsafeSsl: true`)"
            raise SourceUnreachable(
                f"{self._where}: {type(exc).__name__}: {sanitized(str(exc))}{hint}"
            ) from exc
        except httpx.HTTPError as exc:
            raise SourceResponseError(f"{self._where}: {type(exc).__name__}: {sanitized(str(exc))}") from exc

    def _request(self, path: str, params: Sequence[tuple[str, str]]) -> httpx.Request:
        """The request for `path` with `params`, then the trigger's `queryParameters`, and its
        `customHeaders` (without credentials: `_with_auth` adds them)."""
        return httpx.Request(
            "GET",
            self._address + path,
            params=[*params, *self._config.query_parameters],
            headers=[*_HEADERS, *self._config.custom_headers],
        )

    async def _fetch(self, head: bytes) -> tuple[_Reply, bytes]:
        """Send `head` and read the whole answer, refusing a body over the size limit as it arrives."""
        timeout_s = self._config.timeout_s
        stream: httpx.AsyncByteStream | httpx.SyncByteStream
        if isinstance(self._transport, LeanTransport):
            status, reason, raw, stream = await self._transport.exchange(
                self._origin, head, connect_timeout_s=timeout_s
            )
        else:
            # Another transport (tests' httpx.MockTransport): the same head as an httpx.Request.
            request = request_of(self._base_url, head)
            request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)
            response = await self._transport.handle_async_request(request)
            status, raw, stream = response.status_code, response.headers.raw, response.stream
            reason = response.extensions.get("reason_phrase", b"")
        if not isinstance(stream, httpx.AsyncByteStream):
            raise TypeError(f"{type(self._transport).__name__} answered with a synchronous body")
        try:
            headers = {name.lower(): value for name, value in raw}
            phrase = reason.decode("latin-1") or httpx.codes.get_reason_phrase(status)
            reply = _Reply(status, phrase, b"location" in headers)
            limit = self._limits.max_body_bytes
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > limit:
                raise self._too_big(reply, f"declares {int(declared):,} bytes")
            encoding = headers.get(b"content-encoding", b"identity").strip().lower()
            if encoding != b"identity":
                raise SourceResponseError(
                    f"{self._where}: answered HTTP {status} with Content-Encoding "
                    f"`{sanitized(encoding.decode('latin-1'), 40)}`, which prescaler does not ask for"
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise self._too_big(reply, f"sent more than {limit:,} bytes")
                chunks.append(chunk)
        finally:
            await stream.aclose()
        return reply, b"".join(chunks)

    def _too_big(self, reply: _Reply, what: str) -> SourceResponseError:
        return SourceResponseError(
            f"{self._where}: answered HTTP {reply.status} with a body that {what}, over the "
            f"limit of {self._limits.max_body_bytes:,} bytes (--prometheus-max-body)"
        )

    async def _decode(self, reply: _Reply, body: bytes) -> Answer:
        status = f"answered HTTP {reply.status} {sanitized(reply.reason, 40)}"
        if reply.status in _REDIRECTS and reply.location:
            raise SourceResponseError(
                f"{self._where}: {status}, a redirect; redirects are not followed, so that credentials "
                "stay with their origin: set serverAddress to the address Prometheus answers on"
            )
        try:
            if len(body) <= INLINE_DECODE_BYTES:
                answer = decode(body)
            else:
                answer = await asyncio.to_thread(decode, body)
            if not 200 <= reply.status < 300:
                raise AnswerError("the status is an error but the body says `success`")
        except AnswerError as exc:
            raise SourceResponseError(f"{self._where}: {status}: {exc}") from exc
        if answer.series_count > 1:
            raise QueryShapeError(
                f"{self._where}: query `{self._shown_query}` returned {answer.series_count} series; "
                "it must return 0 or 1"
            )
        return answer

    async def _with_auth(self, path: str, head: bytes) -> bytes:
        """`head` with the credentials' Authorization header, for the query endpoints only."""
        lines = await self._auth_headers(path)
        if not lines:
            return head
        extra = b"".join(f"{name}: {value}\r\n".encode("ascii") for name, value in lines)
        return head[:-2] + extra + b"\r\n"

    async def _auth_headers(self, path: str) -> list[tuple[str, str]]:
        # Files are read on every request so that rotated Secrets are picked up without a restart.
        creds = self._credentials
        if creds is None or path not in QUERY_PATHS:
            return []
        if creds.bearer_token_file is not None:
            token = await self._read_secret(creds.bearer_token_file)
            return [("Authorization", f"Bearer {token}")]
        if creds.username is not None and creds.password_file is not None:
            password = await self._read_secret(creds.password_file)
            pair = base64.b64encode(f"{creds.username}:{password}".encode()).decode("ascii")
            return [("Authorization", f"Basic {pair}")]
        return []

    async def _read_secret(self, path: Path) -> str:
        try:
            text = await asyncio.to_thread(path.read_text)
        except OSError as exc:
            raise SourceError(f"{self._where}: cannot read credentials file {path}: {exc}") from exc
        # Like Prometheus' own *_file settings: surrounding whitespace (a trailing newline) is not part of it.
        secret = text.strip()
        if not secret.isascii() or not secret.isprintable():
            raise SourceError(
                f"{self._where}: credentials file {path} holds a line break, a control character or "
                "non-ASCII text; a token or password is one line of printable ASCII"
            )
        return secret


async def read_history(config: TriggerConfig, start_s: float, end_s: float, step_s: float) -> Series:
    """One range read by a command-line tool (`simulate`, `plan`): a source of its own, opened for it
    with the scaler's default settings and closed after."""
    source = PrometheusSource.from_config(config, Settings())
    try:
        return await source.history(start_s, end_s, step_s)
    finally:
        await source.aclose()


def _address_and_query(config: TriggerConfig) -> tuple[str, str]:
    if config.server_address is None or config.query is None:
        raise ValueError("a Prometheus source needs a trigger with `serverAddress` and `query`")
    return config.server_address, config.query


def _verify(config: TriggerConfig, creds: PrometheusCredentials | None) -> str:
    """The ClientKey `verify` of a trigger: `prometheusUnsafeSsl`, the entry's CA file, or the default."""
    if config.prometheus_unsafe_ssl:
        return "insecure"
    if creds is None or creds.ca_file is None:
        return "default"
    return f"ca:{creds.ca_file}"


def _place(
    values: np.ndarray,
    points: list[tuple[float, float]],
    start_s: float,
    step_s: float,
    first: int,
    last: int,
) -> None:
    """Write a chunk's points into `values` at their grid index (vectorised: 10,000 points a chunk)."""
    pairs = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    index = np.round((pairs[:, 0] - start_s) / step_s)
    keep = (index >= first) & (index <= last) & np.isfinite(pairs[:, 1])
    values[index[keep].astype(np.int64)] = pairs[keep, 1]


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class _Reply(NamedTuple):
    """What is checked of an answer besides its body."""

    status: int
    reason: str
    location: bool
    """Whether it has a Location header (a status 3xx with one is a redirect)."""


def _seconds(value: float) -> str:
    """Unix time or duration as Prometheus parses it: decimal seconds, millisecond resolution."""
    return f"{value:.3f}"
