"""`prescaler call` against a real scaler on loopback: metadata with commas (`--set`,
`--metadata-json`), one-line usage errors, and the `/targets` view printed beside the answer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaler import call
from scaler._generated import externalscaler_pb2 as pb
from scaler.cli import build_parser, main
from scaler.errors import SourceError
from tests.servers import Running, metadata, ref, running_app

COMMA_QUERY = "sum by (a,b) (up)"


def _args(*argv: str) -> argparse.Namespace:
    words = ["call", *argv]
    return build_parser(words).parse_args(words)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param([], dict(p.split("=") for p in call.EXAMPLE_METADATA.split(",")), id="default-example"),
        pytest.param(
            ["--set", f"query={COMMA_QUERY}", "--set", "threshold=5"],
            {"query": COMMA_QUERY, "threshold": "5"},
            id="set-carries-commas",
        ),
        pytest.param(
            [
                "--metadata-json",
                json.dumps({"query": COMMA_QUERY, "threshold": 5, "ignoreNullValues": False}),
            ],
            {"query": COMMA_QUERY, "threshold": "5", "ignoreNullValues": "false"},
            id="json-values-become-strings",
        ),
        pytest.param(
            ["--metadata", "source=replay,threshold=1", "--set", "customHeaders=a=1,b=2"],
            {"source": "replay", "threshold": "1", "customHeaders": "a=1,b=2"},
            id="set-adds-to-metadata",
        ),
        pytest.param(
            ["--metadata", "threshold=1,mode=shadow", "--set", "mode=reactive"],
            {"threshold": "1", "mode": "reactive"},
            id="set-wins",
        ),
    ],
)
def test_metadata_from_flags(argv: list[str], expected: dict[str, str]) -> None:
    args = _args("all", *argv)
    assert call.metadata_from(args.metadata, args.metadata_json, args.sets) == expected


def test_metadata_json_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"query": COMMA_QUERY}))
    assert call.metadata_from(None, f"@{path}", []) == {"query": COMMA_QUERY}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--metadata", f"query={COMMA_QUERY},threshold=5"],
            "--metadata `query=sum by (a,b) (up),threshold=5`: expected k1=v1,k2=v2 pairs; `b) (up)` is not "
            "KEY=VALUE; for values with commas use --set KEY=VALUE or --metadata-json",
            id="comma-in-metadata",
        ),
        pytest.param(["--set", "novalue"], "--set `novalue`: expected KEY=VALUE", id="set-without-equals"),
        pytest.param(["--metadata-json", "{oops"], "--metadata-json `{oops`: not JSON", id="bad-json"),
        pytest.param(["--metadata-json", "[1]"], "expected a JSON object", id="json-not-object"),
        pytest.param(
            ["--metadata-json", '{"query": {"a": 1}}'],
            '`query` is {"a": 1}; trigger metadata values are strings',
            id="json-nested",
        ),
        pytest.param(
            ["--metadata-json", "@/nonexistent/m.json"], "cannot read /nonexistent/m.json", id="no-file"
        ),
        pytest.param(
            ["--ca", "/nonexistent/ca.pem"],
            "prescaler call: --ca /nonexistent/ca.pem: cannot read it: No such file or directory",
            id="ca-missing",
        ),
    ],
)
def test_bad_metadata_is_one_line_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["call", "all", "--address", "127.0.0.1:1", "--no-targets", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--address", "localhost"], "--address localhost: expected HOST:PORT", id="no-port"),
        pytest.param(["--address", "h:99999"], "--address h:99999: expected HOST:PORT", id="port-range"),
        pytest.param(["--http-address", ":8080"], "--http-address :8080: expected HOST:PORT", id="no-host"),
    ],
)
def test_an_address_without_host_and_port_is_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["call", "all", "--no-targets", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_the_timeout_takes_seconds_or_a_duration_above_zero() -> None:
    assert _args("all", "--timeout", "5s").timeout == 5.0
    assert _args("all", "--timeout", "250ms").timeout == 0.25
    assert _args("all", "--timeout", "2").timeout == 2.0
    for bad in ("-1", "0", "soon"):
        with pytest.raises(SystemExit):
            _args("all", "--timeout", bad)


async def test_without_a_scaler_at_the_address_the_targets_view_is_not_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused connection: /targets on the guessed HTTP port could be another scaler's."""
    code = await call._run(_args("IsActive", "--address", "127.0.0.1:1", "--timeout", "2s"))
    out = capsys.readouterr().out
    assert code == 1
    assert "IsActive: UNAVAILABLE" in out
    assert "why: not read; no scaler answered at 127.0.0.1:1" in out


def test_http_address_defaults_to_the_grpc_host_on_8080() -> None:
    assert call.http_address("scaler.keda:9090", None) == "scaler.keda:8080"
    assert call.http_address("10.0.0.1:9090", "10.0.0.1:18080") == "10.0.0.1:18080"


async def _call(running: Running, *argv: str) -> Any:
    return await call._run(
        _args(
            *argv,
            "--address",
            f"127.0.0.1:{running.ports.grpc}",
            "--http-address",
            f"127.0.0.1:{running.ports.http}",
            "--namespace",
            "serving",
            "--name",
            "llm",
        )
    )


async def test_call_with_a_comma_query_prints_the_answer_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    async with running_app() as running:
        running.sources.get(COMMA_QUERY).answer = 42.0
        code = await _call(
            running,
            "all",
            "--set",
            "serverAddress=http://prometheus.test:9090",
            "--set",
            f"query={COMMA_QUERY}",
            "--set",
            "threshold=10",
        )
    out = capsys.readouterr().out
    assert code == 0
    assert 'GetMetrics: {"metricValues": [{"metricName": "prescaler", "metricValue": "42"' in out
    assert 'IsActive: {"result": true}' in out
    why = json.loads(out[out.index("[\n") :])
    assert len(why) == 1
    entry = why[0]
    assert entry["namespace"] == "serving" and entry["name"] == "llm"
    assert entry["mode"] == "reactive" and entry["reason"] == "observed"
    assert entry["observed"] == 42.0 and entry["served"] == 42.0 and entry["active"] is True
    assert entry["last_error"] is None and entry["decision_age_s"] == 0.0


async def test_call_shows_the_last_error_beside_an_unavailable_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_app() as running:
        running.sources.get("load").answer = SourceError("prometheus.test: connection refused")
        code = await _call(
            running,
            "GetMetrics",
            "--metadata-json",
            json.dumps(metadata("load")),
        )
    out = capsys.readouterr().out
    assert code == 1
    assert "GetMetrics: UNAVAILABLE" in out
    entry = json.loads(out[out.index("[\n") :])[0]
    assert entry["served"] is None and entry["observed"] is None
    assert "connection refused" in entry["last_error"] and "connection refused" in entry["unavailable"]


async def test_call_says_when_the_targets_view_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    async with running_app() as running:
        code = await call._run(
            _args(
                "IsActive",
                "--address",
                f"127.0.0.1:{running.ports.grpc}",
                "--http-address",
                "127.0.0.1:1",
                "--metadata-json",
                json.dumps(metadata()),
            )
        )
    out = capsys.readouterr().out
    assert code == 0
    assert "why: http://127.0.0.1:1/targets?namespace=default&name=example not readable (ConnectError" in out


async def _targets(running: Running, query: str = "") -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{running.ports.http}/targets{query}", timeout=5)
    assert answer.headers["Content-Type"] == "application/json"
    document: dict[str, Any] = answer.json()
    return document


async def test_targets_filters_by_namespace_and_name_and_is_bounded() -> None:
    async with running_app() as running:
        for namespace, name in (("a", "x"), ("a", "y"), ("b", "x")):
            await running.stub.GetMetricSpec(ref(metadata(), name=name, namespace=namespace))
        everything = await _targets(running)
        assert everything["tracked"] == everything["matched"] == everything["shown"] == 3
        assert {(t["namespace"], t["name"]) for t in everything["targets"]} == {
            ("a", "x"),
            ("a", "y"),
            ("b", "x"),
        }
        in_a = await _targets(running, "?namespace=a")
        assert [t["name"] for t in in_a["targets"]] == ["x", "y"]
        only = await _targets(running, "?namespace=a&name=y")
        assert only["matched"] == 1 and only["targets"][0]["name"] == "y"
        assert (await _targets(running, "?name=nobody"))["targets"] == []
        capped = running.app.registry.describe(limit=2)
        assert capped["matched"] == 3 and capped["shown"] == 2 and len(capped["targets"]) == 2  # type: ignore[arg-type]


@pytest.fixture
def mtls_files(tmp_path: Path) -> dict[str, Path]:
    """A server certificate for the in-cluster name only (as the mtls overlay's), and a client one."""
    import trustme

    server_ca, client_ca = trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("prescaler.keda.svc.cluster.local")
    client = client_ca.issue_cert("keda-operator")
    blobs = {
        "cert": server.cert_chain_pems[0].bytes(),
        "key": server.private_key_pem.bytes(),
        "client_ca": client_ca.cert_pem.bytes(),
        "ca": server_ca.cert_pem.bytes(),
        "client_cert": client.cert_chain_pems[0].bytes(),
        "client_key": client.private_key_pem.bytes(),
    }
    for name, blob in blobs.items():
        (tmp_path / f"{name}.pem").write_bytes(blob)
    return {name: tmp_path / f"{name}.pem" for name in blobs}


async def test_call_reaches_a_mutual_tls_scaler_through_a_forwarded_port(
    mtls_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_app(
        tls_cert=mtls_files["cert"], tls_key=mtls_files["key"], tls_client_ca=mtls_files["client_ca"]
    ) as running:
        running.sources.get("load").answer = 3.0
        tls = ["--ca", str(mtls_files["ca"]), "--server-name", "prescaler.keda.svc.cluster.local"]
        client = ["--cert", str(mtls_files["client_cert"]), "--key", str(mtls_files["client_key"])]
        answered = await _call(running, "IsActive", "--metadata-json", json.dumps(metadata()), *tls, *client)
        first = capsys.readouterr().out
        refused = await _call(running, "IsActive", "--metadata-json", json.dumps(metadata()), *tls)
        second = capsys.readouterr().out
    assert answered == 0 and 'IsActive: {"result": true}' in first
    # Without the client certificate the server refuses the handshake.
    assert refused == 1 and "IsActive: UNAVAILABLE" in second


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--cert", "c.pem"], "--cert and --key go together", id="cert-without-key"),
        pytest.param(["--server-name", "x"], "--server-name x: needs a TLS server", id="name-without-tls"),
        pytest.param(
            ["--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"],
            "--key /nonexistent/k.pem: cannot read it",
            id="key-missing",
        ),
    ],
)
def test_bad_tls_flags_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["call", "IsActive", "--address", "127.0.0.1:1", "--no-targets", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


async def test_call_shows_only_the_target_of_its_own_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    async with running_app() as running:
        running.sources.get("old").answer = 1.0
        running.sources.get("new").answer = 2.0
        # An older version of the same ScaledObject (other metadata) is still tracked.
        await running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(metadata("old"), name="llm", namespace="serving"))
        )
        code = await _call(running, "GetMetrics", "--metadata-json", json.dumps(metadata("new")))
    out = capsys.readouterr().out
    assert code == 0
    assert "1 other target(s) of that name track other metadata" in out
    entries = json.loads(out[out.index("[\n") :])
    assert [entry["observed"] for entry in entries] == [2.0]
