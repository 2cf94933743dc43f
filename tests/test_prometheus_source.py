"""PrometheusSource against httpx.MockTransport: KEDA's result rules, errors, auth, chunked history."""

from __future__ import annotations

import base64
import itertools
import json
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import pytest

from scaler.errors import (
    NullValueError,
    PrescalerError,
    QueryShapeError,
    SourceError,
    SourceResponseError,
    SourceTimeout,
    SourceUnreachable,
)
from scaler.settings import PrometheusCredentials, Settings
from scaler.sources.prometheus import CHUNK_POINTS, PrometheusSource
from scaler.trigger import TriggerConfig

ADDRESS = "http://prometheus.test:9090"
NOW_S = 1_700_000_000.0

Answer = Callable[[httpx.Request], httpx.Response]


def trigger(**overrides: Any) -> TriggerConfig:
    values: dict[str, Any] = {"threshold": 10.0, "server_address": ADDRESS, "query": "sum(x)"}
    return TriggerConfig(**(values | overrides))


def success(result_type: str, result: object) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


def vector(*values: str) -> dict[str, Any]:
    return success(
        "vector", [{"metric": {"instance": f"i{n}"}, "value": [NOW_S, v]} for n, v in enumerate(values)]
    )


def reply(body: object, status: int = 200) -> Answer:
    return lambda request: httpx.Response(status, json=body)


class Recorder:
    """A MockTransport handler: answers with `answer` and keeps every request it saw."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


class MakeSource(Protocol):
    def __call__(
        self,
        answer: Answer,
        *,
        credentials: PrometheusCredentials | None = None,
        **overrides: Any,
    ) -> tuple[PrometheusSource, Recorder]: ...


@pytest.fixture
async def make_source() -> AsyncIterator[MakeSource]:
    """Builds sources on a MockTransport with a fixed clock, and closes them all afterwards."""
    sources: list[PrometheusSource] = []

    def make(
        answer: Answer,
        *,
        credentials: PrometheusCredentials | None = None,
        **overrides: Any,
    ) -> tuple[PrometheusSource, Recorder]:
        recorder = Recorder(answer)
        source = PrometheusSource(
            trigger(**overrides),
            transport=httpx.MockTransport(recorder),
            credentials=credentials,
            clock=lambda: NOW_S,
        )
        sources.append(source)
        return source, recorder

    yield make
    for source in sources:
        await source.aclose()


# --- sample(): KEDA's result rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "ignore_null", "expected"),
    [
        pytest.param(vector("42"), False, 42.0, id="one-series"),
        pytest.param(vector("-3.5"), False, -3.5, id="negative-passes-through"),
        pytest.param(vector(), True, 0.0, id="no-series-ignored"),
        pytest.param(vector("NaN"), True, 0.0, id="nan-ignored"),
        pytest.param(vector("+Inf"), True, 0.0, id="inf-ignored"),
        pytest.param(vector("-Inf"), True, 0.0, id="minus-inf-ignored"),
        pytest.param(success("scalar", [NOW_S, "7.25"]), False, 7.25, id="scalar"),
        pytest.param(success("scalar", [NOW_S, "NaN"]), True, 0.0, id="scalar-nan-ignored"),
    ],
)
async def test_sample_value(
    make_source: MakeSource, body: dict[str, Any], ignore_null: bool, expected: float
) -> None:
    source, _ = make_source(reply(body), ignore_null_values=ignore_null)
    assert await source.sample() == (NOW_S, expected)


@pytest.mark.parametrize(
    ("body", "ignore_null", "error", "message"),
    [
        pytest.param(
            vector(), False, NullValueError, "returned no series and ignoreNullValues is false", id="empty"
        ),
        pytest.param(vector("NaN"), False, NullValueError, "returned nan and ignoreNullValues", id="nan"),
        pytest.param(vector("+Inf"), False, NullValueError, "returned inf and ignoreNullValues", id="inf"),
        pytest.param(
            vector("-Inf"), False, NullValueError, "returned -inf and ignoreNullValues", id="minus-inf"
        ),
        pytest.param(
            success("scalar", [NOW_S, "NaN"]), False, NullValueError, "returned nan", id="scalar-nan"
        ),
        pytest.param(
            vector("1", "2", "3"),
            True,
            QueryShapeError,
            "query `sum(x)` returned 3 series; it must return 0 or 1",
            id="three-series",
        ),
        pytest.param(vector("1", "2"), False, QueryShapeError, "returned 2 series", id="two-series"),
        pytest.param(
            success("matrix", [{"metric": {}, "values": [[NOW_S, "1"]]}]),
            True,
            QueryShapeError,
            "returned a matrix; it must return an instant vector or a scalar",
            id="range-vector",
        ),
        pytest.param(success("string", [NOW_S, "hello"]), True, QueryShapeError, "a string", id="string"),
    ],
)
async def test_sample_rule_errors(
    make_source: MakeSource,
    body: dict[str, Any],
    ignore_null: bool,
    error: type[PrescalerError],
    message: str,
) -> None:
    source, _ = make_source(reply(body), ignore_null_values=ignore_null)
    with pytest.raises(error, match=r"^prometheus http://prometheus\.test:9090: ") as caught:
        await source.sample()
    assert message in str(caught.value)


# --- errors from the server and from the transport --------------------------------------------

BAD_DATA = {
    "status": "error",
    "errorType": "bad_data",
    "error": 'invalid parameter "query": 1:5: parse error: unexpected end of input',
}


@pytest.mark.parametrize(
    ("response", "parts"),
    [
        pytest.param(
            httpx.Response(400, json=BAD_DATA),
            ["HTTP 400 Bad Request", "bad_data: invalid parameter", "parse error"],
            id="bad-query",
        ),
        pytest.param(
            httpx.Response(
                422, json={"status": "error", "errorType": "execution", "error": "too many samples"}
            ),
            ["HTTP 422", "execution: too many samples"],
            id="execution-error",
        ),
        pytest.param(
            httpx.Response(503, text="Service Unavailable"),
            ["HTTP 503", "not JSON", "Service Unavailable"],
            id="proxy-error-text",
        ),
        pytest.param(httpx.Response(200, text="<html>sign in</html>"), ["not JSON", "(20 bytes)"], id="html"),
        pytest.param(httpx.Response(200, text=""), ["not JSON"], id="empty-body"),
        pytest.param(
            httpx.Response(200, json={"status": "error", "errorType": "timeout", "error": "query timed out"}),
            ["timeout: query timed out"],
            id="error-envelope-with-200",
        ),
        pytest.param(
            httpx.Response(200, json={"status": "success"}), ["`data` is not an object"], id="no-data"
        ),
        pytest.param(httpx.Response(200, json={"data": {}}), ["envelope"], id="no-status"),
        pytest.param(httpx.Response(200, json=[1, 2]), ["envelope"], id="not-an-object"),
        pytest.param(httpx.Response(200, json=success("histogram", [])), ["`data` is"], id="unknown-type"),
        pytest.param(httpx.Response(200, json=success("vector", {})), ["to be a list"], id="result-not-list"),
        pytest.param(
            httpx.Response(200, json=success("vector", [{"metric": {}}])), ["with `value`"], id="no-value"
        ),
        pytest.param(httpx.Response(200, json=vector("many")), ["pair"], id="value-not-a-number"),
        pytest.param(
            httpx.Response(200, json=success("vector", [{"metric": {}, "value": [NOW_S, 3]}])),
            ["pair"],
            id="value-not-a-string",
        ),
        pytest.param(httpx.Response(500, json=vector("1")), ["HTTP 500", "says `success`"], id="500-success"),
    ],
)
async def test_bad_answers_are_response_errors(
    make_source: MakeSource, response: httpx.Response, parts: list[str]
) -> None:
    source, _ = make_source(lambda request: response)
    with pytest.raises(SourceResponseError) as caught:
        await source.sample()
    for part in [ADDRESS, *parts]:
        assert part in str(caught.value)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("raised", "error", "timeout_s", "message"),
    [
        pytest.param(
            httpx.ConnectTimeout("timed out"), SourceTimeout, 3.0, "within the timeout of 3s", id="connect"
        ),
        pytest.param(
            httpx.ReadTimeout("timed out"), SourceTimeout, 0.25, "within the timeout of 250ms", id="read"
        ),
        pytest.param(httpx.PoolTimeout("timed out"), SourceTimeout, 2.0, "timeout of 2s", id="pool"),
        pytest.param(
            httpx.ConnectError("[Errno 111] Connection refused"),
            SourceUnreachable,
            3.0,
            "ConnectError: [Errno 111] Connection refused",
            id="refused",
        ),
        pytest.param(
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            SourceUnreachable,
            3.0,
            "Server disconnected",
            id="dropped",
        ),
        pytest.param(httpx.DecodingError("bad gzip"), SourceResponseError, 3.0, "bad gzip", id="decoding"),
    ],
)
async def test_transport_errors(
    make_source: MakeSource,
    raised: httpx.HTTPError,
    error: type[SourceError],
    timeout_s: float,
    message: str,
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise raised

    source, _ = make_source(fail, timeout_s=timeout_s, step_s=15.0)
    with pytest.raises(error) as caught:
        await source.sample()
    assert ADDRESS in str(caught.value)
    assert message in str(caught.value)
    assert caught.value.__cause__ is raised


# --- what is sent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "path"),
    [
        pytest.param(ADDRESS, "/api/v1/query", id="root"),
        pytest.param("http://gateway.test/prometheus", "/prometheus/api/v1/query", id="path-prefix"),
    ],
)
async def test_instant_query_request(make_source: MakeSource, address: str, path: str) -> None:
    source, recorder = make_source(
        reply(vector("1")),
        server_address=address,
        custom_headers=(("X-Scope-OrgID", "tenant-a"), ("X-Extra", "")),
        query_parameters=(("dedup", "false"), ("partial_response", "true")),
        timeout_s=1.5,
    )
    await source.sample()
    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.path == path
    assert request.url.params.multi_items() == [
        ("query", "sum(x)"),
        ("time", "1700000000.000"),
        ("dedup", "false"),
        ("partial_response", "true"),
    ]
    assert request.headers["X-Scope-OrgID"] == "tenant-a"
    assert request.headers["X-Extra"] == ""
    assert "authorization" not in request.headers
    # The trigger's timeout applies whatever the injected client's default is.
    assert request.extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 1.5)


async def test_bearer_token_is_read_on_every_request(make_source: MakeSource, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    credentials = PrometheusCredentials(ADDRESS, bearer_token_file=token)
    source, recorder = make_source(reply(vector("1")), credentials=credentials)
    await source.sample()
    token.write_text("rotated-token")
    await source.sample()
    assert [r.headers["authorization"] for r in recorder.requests] == [
        "Bearer first-token",
        "Bearer rotated-token",
    ]


async def test_basic_auth_password_from_file(make_source: MakeSource, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("pa:ss word\n")
    credentials = PrometheusCredentials(ADDRESS, username="keda", password_file=password)
    source, recorder = make_source(reply(vector("1")), credentials=credentials)
    await source.sample()
    expected = base64.b64encode(b"keda:pa:ss word").decode()
    assert recorder.requests[0].headers["authorization"] == f"Basic {expected}"


async def test_unreadable_secret_names_the_file(make_source: MakeSource, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    source, recorder = make_source(
        reply(vector("1")), credentials=PrometheusCredentials(ADDRESS, bearer_token_file=missing)
    )
    with pytest.raises(SourceError, match=r"cannot read credentials file .*no-such-token"):
        await source.sample()
    assert recorder.requests == []


async def test_credentials_of_another_origin_are_refused() -> None:
    with pytest.raises(ValueError, match=r"credentials for http://other\.test:9090 cannot be used"):
        PrometheusSource(
            trigger(),
            transport=httpx.MockTransport(reply(vector("1"))),
            credentials=PrometheusCredentials("http://other.test:9090", bearer_token_file=Path("t")),
        )


def settings_with(tmp_path: Path, *server_addresses: str) -> Settings:
    """Settings whose credentials file holds a bearer token for each of `server_addresses`."""
    entries = []
    for n, address in enumerate(server_addresses):
        token = tmp_path / f"token-{n}"
        token.write_text(f"token-{n}")
        entries.append({"serverAddress": address, "bearerTokenFile": str(token)})
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(entries))
    # The mock's samples are stamped at NOW_S while from_config's sources read the real clock.
    return Settings(prometheus_credentials=path, max_age_s=math.inf)


@pytest.mark.parametrize(
    ("server_address", "credential_addresses", "expected"),
    [
        pytest.param(ADDRESS, [ADDRESS], "Bearer token-0", id="same-origin"),
        pytest.param(ADDRESS, ["http://PROMETHEUS.test:9090/"], "Bearer token-0", id="case-and-slash"),
        pytest.param(ADDRESS, ["http://prometheus.test:9090/some/path"], None, id="other-path"),
        pytest.param(
            ADDRESS + "/prefix", [ADDRESS + "/prefix", ADDRESS], "Bearer token-0", id="path-prefix-entry"
        ),
        pytest.param(
            "http://prometheus.test", ["http://prometheus.test:80"], "Bearer token-0", id="default-port"
        ),
        pytest.param(
            ADDRESS, ["http://other.test:9090", ADDRESS], "Bearer token-1", id="picks-matching-entry"
        ),
        pytest.param(ADDRESS, ["http://prometheus.test:9091"], None, id="other-port"),
        pytest.param(ADDRESS, ["https://prometheus.test:9090"], None, id="other-scheme"),
        pytest.param(ADDRESS, ["http://prometheus.test.evil:9090"], None, id="other-host"),
        pytest.param(ADDRESS, [], None, id="none-configured"),
    ],
)
async def test_from_config_sends_credentials_only_to_their_origin(
    tmp_path: Path, server_address: str, credential_addresses: list[str], expected: str | None
) -> None:
    recorder = Recorder(reply(vector("1")))
    source = PrometheusSource.from_config(
        trigger(server_address=server_address),
        settings_with(tmp_path, *credential_addresses),
        transport=httpx.MockTransport(recorder),
    )
    try:
        await source.sample()
    finally:
        await source.aclose()
    assert recorder.requests[0].headers.get("authorization") == expected


def redirect_to_evil(request: httpx.Request) -> httpx.Response:
    if request.url.host == "prometheus.test":
        return httpx.Response(302, headers={"Location": "http://evil.test/api/v1/query?query=up"})
    return httpx.Response(200, json=vector("1"))


@pytest.mark.parametrize("build", ["from-config", "injected-transport"])
async def test_redirect_is_not_followed(make_source: MakeSource, tmp_path: Path, build: str) -> None:
    if build == "from-config":
        recorder = Recorder(redirect_to_evil)
        source = PrometheusSource.from_config(
            trigger(), settings_with(tmp_path, ADDRESS), transport=httpx.MockTransport(recorder)
        )
    else:
        token = tmp_path / "token"
        token.write_text("secret")
        credentials = PrometheusCredentials(ADDRESS, bearer_token_file=token)
        source, recorder = make_source(redirect_to_evil, credentials=credentials)
    try:
        with pytest.raises(
            SourceResponseError, match=r"HTTP 302 Found, a redirect; redirects are not followed"
        ):
            await source.sample()
    finally:
        await source.aclose()
    assert [r.url.host for r in recorder.requests] == ["prometheus.test"]


async def test_bad_ca_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps([{"serverAddress": ADDRESS, "caFile": str(tmp_path / "missing-ca.pem")}]))
    with pytest.raises(SourceError, match=r"cannot use CA file .*missing-ca\.pem"):
        PrometheusSource.from_config(trigger(), Settings(prometheus_credentials=path))


class Closing(httpx.MockTransport):
    """A MockTransport that counts its aclose() calls."""

    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def test_aclose_leaves_a_shared_transport_open_and_closes_its_own(tmp_path: Path) -> None:
    shared = Closing(reply(vector("1")))
    source = PrometheusSource(trigger(), transport=shared)
    await source.aclose()
    assert shared.closed == 0  # injected: shared by other targets, closed by its owner
    own_transport = Closing(reply(vector("1")))
    own = PrometheusSource.from_config(trigger(), settings_with(tmp_path, ADDRESS), transport=own_transport)
    assert (await own.sample()).value == 1.0
    await own.aclose()
    assert own_transport.closed == 1


# --- history(): chunked range queries onto an exact grid ---------------------------------------


def is_hole(index: int) -> bool:
    return index % 7 == 3


def range_answer(start_s: float, step_s: float, *, series: int = 1) -> Answer:
    """A fake query_range: a point per step except at holes; NaN at every 11th; value = index."""

    def answer(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        first, last, step = (float(params[name]) for name in ("start", "end", "step"))
        values = []
        for n in range(round((last - first) / step) + 1):
            at = first + n * step
            index = round((at - start_s) / step_s)
            if not is_hole(index):
                values.append([round(at, 3), "NaN" if index % 11 == 5 else str(index)])
        result = [{"metric": {"instance": f"i{k}"}, "values": values} for k in range(series)]
        return httpx.Response(200, json=success("matrix", result))

    return answer


def expected_value(index: int) -> float:
    return math.nan if is_hole(index) or index % 11 == 5 else float(index)


@pytest.mark.parametrize(
    ("points", "end_offset_s", "requests"),
    [
        pytest.param(25_000, 0.0, 3, id="25000-points"),
        pytest.param(25_000, 14.9, 3, id="end-between-steps"),
        pytest.param(CHUNK_POINTS, 0.0, 1, id="exactly-one-chunk"),
        pytest.param(CHUNK_POINTS + 1, 0.0, 2, id="one-over"),
        pytest.param(1, 0.0, 1, id="single-point"),
    ],
)
async def test_history_chunks_onto_exact_grid(
    make_source: MakeSource, points: int, end_offset_s: float, requests: int
) -> None:
    start_s, step_s = 1_600_000_000.5, 15.0
    end_s = start_s + (points - 1) * step_s + end_offset_s
    source, recorder = make_source(range_answer(start_s, step_s))
    series = await source.history(start_s, end_s, step_s)

    assert len(recorder.requests) == requests
    spans = [(float(r.url.params["start"]), float(r.url.params["end"])) for r in recorder.requests]
    for first, last in spans:
        assert (last - first) / step_s + 1 <= 11_000
    assert spans[0][0] == start_s
    assert [b[0] - a[1] for a, b in itertools.pairwise(spans)] == [step_s] * (requests - 1)
    assert {r.url.path for r in recorder.requests} == {"/api/v1/query_range"}
    np.testing.assert_array_equal(series.at_s, start_s + step_s * np.arange(points))
    np.testing.assert_array_equal(series.values, [expected_value(n) for n in range(points)])


async def test_history_several_series_is_a_shape_error(make_source: MakeSource) -> None:
    source, _ = make_source(range_answer(NOW_S, 60.0, series=3))
    with pytest.raises(QueryShapeError, match=r"query `sum\(x\)` returned 3 series; it must return 0 or 1"):
        await source.history(NOW_S, NOW_S + 3600, 60.0)


async def test_history_empty_result_is_all_nan(make_source: MakeSource) -> None:
    source, _ = make_source(reply(success("matrix", [])))
    series = await source.history(NOW_S, NOW_S + 3600, 60.0)
    assert series.at_s.size == 61
    assert np.isnan(series.values).all()


async def test_history_ignores_points_off_the_grid_and_inf(make_source: MakeSource) -> None:
    values = [[NOW_S - 60, "1"], [NOW_S, "+Inf"], [NOW_S + 60, "2"], [NOW_S + 180, "3"]]
    source, _ = make_source(reply(success("matrix", [{"metric": {}, "values": values}])))
    series = await source.history(NOW_S, NOW_S + 120, 60.0)
    np.testing.assert_array_equal(series.values, [math.nan, 2.0, math.nan])


async def test_history_needs_a_matrix(make_source: MakeSource) -> None:
    source, _ = make_source(reply(vector("1")))
    with pytest.raises(SourceResponseError, match="answered a vector, not a matrix"):
        await source.history(NOW_S, NOW_S + 60, 60.0)


@pytest.mark.parametrize(
    ("start_s", "end_s", "step_s"),
    [
        pytest.param(NOW_S, NOW_S - 1, 60.0, id="end-before-start"),
        pytest.param(NOW_S, NOW_S + 60, 0.0, id="zero-step"),
        pytest.param(math.nan, NOW_S, 60.0, id="nan-start"),
    ],
)
async def test_history_rejects_bad_ranges(
    make_source: MakeSource, start_s: float, end_s: float, step_s: float
) -> None:
    source, recorder = make_source(reply(success("matrix", [])))
    with pytest.raises(ValueError, match="history needs"):
        await source.history(start_s, end_s, step_s)
    assert recorder.requests == []
