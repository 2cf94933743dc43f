"""Prometheus as the load source, with the conventions of KEDA's Prometheus scaler.

`sample()` is KEDA's instant query, `GET {serverAddress}/api/v1/query?query=...&time=...`, with the
trigger's `queryParameters` appended and its `customHeaders` sent; the query must return 0 or 1
series. `history()` asks `/api/v1/query_range` in chunks small enough for Prometheus' limit of
11,000 points per series, to bootstrap a target's history.

Credentials come from the scaler's settings (KEDA does not forward TriggerAuthentication to external
scalers), are picked by the exact origin of `serverAddress`, and go to that origin only: redirects
are never followed, since following one would hand the Authorization header to whoever it points at.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple, NotRequired, TypedDict, cast

import httpx
import numpy as np

from scaler.errors import (
    NullValueError,
    QueryShapeError,
    SourceError,
    SourceResponseError,
    SourceTimeout,
    SourceUnreachable,
)
from scaler.settings import PrometheusCredentials, Settings, origin_of
from scaler.sources.base import Sample, Series
from scaler.trigger import TriggerConfig
from scaler.units import format_duration

logger = logging.getLogger(__name__)

CHUNK_POINTS = 10_000
"""Points per range query of `history()`; Prometheus refuses more than 11,000 per series."""


class VectorElement(TypedDict):
    """One series of an instant vector: its labels and its `[unix_s, "value"]` pair."""

    metric: dict[str, str]
    value: list[float | str]


class MatrixElement(TypedDict):
    """One series of a range vector: its labels and its `[unix_s, "value"]` pairs, oldest first."""

    metric: dict[str, str]
    values: list[list[float | str]]


class QueryData(TypedDict):
    """`data` of a successful query; a scalar or string result is a bare `[unix_s, "value"]` pair."""

    resultType: Literal["vector", "scalar", "matrix", "string"]
    result: list[VectorElement] | list[MatrixElement] | list[float | str]


class ApiResponse(TypedDict):
    """The envelope of every `/api/v1` answer, success or error."""

    status: Literal["success", "error"]
    data: NotRequired[QueryData]
    errorType: NotRequired[str]
    error: NotRequired[str]
    warnings: NotRequired[list[str]]


_RESULT_TYPES = ("vector", "scalar", "matrix", "string")

Points = list[tuple[float, float]]


class _Result(NamedTuple):
    """A decoded answer: the result type and each series' (unix_s, value) points."""

    kind: str
    series: list[Points]


class _AnswerError(ValueError):
    """The JSON body is Prometheus' error envelope, or not of the shape its API documents."""


class PrometheusSource:
    """Reads one trigger's query from one Prometheus server; the client is injected."""

    def __init__(
        self,
        config: TriggerConfig,
        *,
        client: httpx.AsyncClient,
        credentials: PrometheusCredentials | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._address, self._query = _address_and_query(config)
        if credentials is not None and credentials.origin != origin_of(self._address):
            raise ValueError(
                f"credentials for {credentials.origin} cannot be used for {origin_of(self._address)}; "
                "credentials are only ever sent to their own origin"
            )
        self._config = config
        self._client = client
        self._credentials = credentials
        self._clock = clock
        self._where = f"prometheus {self._address}"

    @classmethod
    def from_config(
        cls,
        config: TriggerConfig,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> PrometheusSource:
        """The production source: its own client, and the credentials configured for this origin.

        `transport` replaces the network (tests); TLS settings only apply without it.
        """
        address, _ = _address_and_query(config)
        origin = origin_of(address)
        credentials = next((c for c in settings.credentials() if c.origin == origin), None)
        client = httpx.AsyncClient(
            verify=_verify(address, config, credentials),
            follow_redirects=False,
            timeout=config.timeout_s,
            transport=transport,
        )
        return cls(config, client=client, credentials=credentials)

    async def sample(self) -> Sample:
        """The query's value now; empty, NaN and ±Inf results follow `ignoreNullValues`."""
        at_s = self._clock()
        result = await self._get("/api/v1/query", [("query", self._query), ("time", _seconds(at_s))])
        if result.kind not in ("vector", "scalar"):
            raise QueryShapeError(
                f"{self._where}: query `{self._query}` returned a {result.kind}; "
                "it must return an instant vector or a scalar"
            )
        if not result.series:
            return self._null(at_s, "returned no series")
        value = result.series[0][0][1]
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
            result = await self._get("/api/v1/query_range", params)
            if result.kind != "matrix":
                raise SourceResponseError(
                    f"{self._where}: a range query answered a {result.kind}, not a matrix"
                )
            for point_s, value in result.series[0] if result.series else ():
                index = round((point_s - start_s) / step_s)
                if first <= index <= last and math.isfinite(value):
                    values[index] = value
        return Series(at_s, values)

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        await self._client.aclose()

    def _null(self, at_s: float, what: str) -> Sample:
        if self._config.ignore_null_values:
            return Sample(at_s, 0.0)
        raise NullValueError(f"{self._where}: query `{self._query}` {what} and ignoreNullValues is false")

    async def _get(self, path: str, params: list[tuple[str, str]]) -> _Result:
        headers = [*self._config.custom_headers, *await self._auth_headers()]
        try:
            response = await self._client.get(
                self._address + path,
                params=[*params, *self._config.query_parameters],
                headers=headers,
                timeout=self._config.timeout_s,
                # Per request, whatever the client's default: credentials stay with their origin.
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            timeout = format_duration(self._config.timeout_s)
            raise SourceTimeout(f"{self._where}: no answer within the timeout of {timeout}") from exc
        except httpx.TransportError as exc:
            raise SourceUnreachable(f"{self._where}: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise SourceResponseError(f"{self._where}: {type(exc).__name__}: {exc}") from exc
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> _Result:
        status = f"answered HTTP {response.status_code} {response.reason_phrase}"
        if response.is_redirect:
            raise SourceResponseError(
                f"{self._where}: {status} to {response.headers.get('location', '?')}; redirects are not "
                "followed, so that credentials stay with their origin: set serverAddress to the address "
                "Prometheus answers on"
            )
        try:
            body: object = response.json()
        except ValueError as exc:
            raise SourceResponseError(
                f"{self._where}: {status} with a body that is not JSON: {_clip(response.text)}"
            ) from exc
        try:
            data = _envelope(body)
            if not response.is_success:
                raise _AnswerError("the status is an error but the body says `success`")
            result = _Result(data["resultType"], _points(data))
        except _AnswerError as exc:
            raise SourceResponseError(f"{self._where}: {status}: {exc}") from exc
        if len(result.series) > 1:
            raise QueryShapeError(
                f"{self._where}: query `{self._query}` returned {len(result.series)} series; "
                "it must return 0 or 1"
            )
        return result

    async def _auth_headers(self) -> list[tuple[str, str]]:
        # Files are read on every request so that rotated Secrets are picked up without a restart.
        creds = self._credentials
        if creds is None:
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
        return text.strip()


def _address_and_query(config: TriggerConfig) -> tuple[str, str]:
    if config.server_address is None or config.query is None:
        raise ValueError("a Prometheus source needs a trigger with `serverAddress` and `query`")
    return config.server_address, config.query


def _verify(
    address: str, config: TriggerConfig, creds: PrometheusCredentials | None
) -> ssl.SSLContext | bool:
    if config.unsafe_ssl:
        return False
    if creds is None or creds.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=creds.ca_file)
    except OSError as exc:
        raise SourceError(f"prometheus {address}: cannot use CA file {creds.ca_file}: {exc}") from exc


def _seconds(value: float) -> str:
    """Unix time or duration as Prometheus parses it: decimal seconds, millisecond resolution."""
    return f"{value:.3f}"


def _clip(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _envelope(body: object) -> QueryData:
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise _AnswerError(f"expected the JSON envelope of Prometheus' HTTP API, got {_clip(body)}")
    envelope = cast(ApiResponse, body)
    if envelope["status"] == "error":
        raise _AnswerError(
            f"{envelope.get('errorType', 'error')}: {envelope.get('error', '(no error text)')}"
        )
    data = envelope.get("data")
    if not isinstance(data, dict) or data.get("resultType") not in _RESULT_TYPES or "result" not in data:
        raise _AnswerError(f"`data` is {_clip(data)}; expected an object with `resultType` and `result`")
    return data


def _points(data: QueryData) -> list[Points]:
    """Each series' points; a scalar is one series of one point, a string none (the caller rejects it)."""
    kind, result = data["resultType"], data["result"]
    if kind == "string":
        return []
    if kind == "scalar":
        return [[_pair(result)]]
    if kind == "vector":
        return [[_pair(_member(item, "value"))] for item in _list(result)]
    return [[_pair(pair) for pair in _list(_member(item, "values"))] for item in _list(result)]


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise _AnswerError(f"expected a list, got {_clip(value)}")
    return value


def _member(item: object, key: str) -> object:
    if not isinstance(item, dict) or key not in item:
        raise _AnswerError(f"expected a series object with `{key}`, got {_clip(item)}")
    return cast(object, item[key])


def _pair(raw: object) -> tuple[float, float]:
    """`[unix_s, "value"]`; Prometheus sends values as strings so that NaN and ±Inf survive JSON."""
    if isinstance(raw, list) and len(raw) == 2:
        at_s, value = raw
        if isinstance(at_s, int | float) and isinstance(value, str):
            try:
                return float(at_s), float(value)
            except ValueError:
                pass
    raise _AnswerError(f'expected a [unix_s, "value"] pair, got {_clip(raw)}')
