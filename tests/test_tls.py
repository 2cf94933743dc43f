"""TLS and mutual TLS as KEDA dials them, with certificates made in the test."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import trustme

from scaler.settings import SettingsError, parse
from tests.servers import metadata, ref, running_app


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path | bytes]:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("localhost", "127.0.0.1")
    client = client_ca.issue_cert("keda-operator.keda.svc")
    paths: dict[str, Path | bytes] = {}
    for name, blob in {
        "cert": server.cert_chain_pems[0].bytes(),
        "key": server.private_key_pem.bytes(),
        "client_ca": client_ca.cert_pem.bytes(),
    }.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(blob)
        paths[name] = path
    paths["server_ca_pem"] = server_ca.cert_pem.bytes()
    paths["client_cert_pem"] = client.cert_chain_pems[0].bytes()
    paths["client_key_pem"] = client.private_key_pem.bytes()
    return paths


async def test_tls_client_trusting_the_ca_gets_answers(pki: dict[str, Path | bytes]) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["server_ca_pem"])  # type: ignore[arg-type]
    async with running_app(
        credentials=credentials, target_host="localhost", tls_cert=pki["cert"], tls_key=pki["key"]
    ) as run:
        run.sources.get("load").answer = 3.0
        answer = await run.stub.IsActive(ref(metadata()), timeout=5)
    assert answer.result is True


async def test_plaintext_client_cannot_talk_to_tls_server(pki: dict[str, Path | bytes]) -> None:
    async with running_app(tls_cert=pki["cert"], tls_key=pki["key"]) as run:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.IsActive(ref(metadata()), timeout=2)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_accepts_a_client_certificate(pki: dict[str, Path | bytes]) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["server_ca_pem"],  # type: ignore[arg-type]
        private_key=pki["client_key_pem"],  # type: ignore[arg-type]
        certificate_chain=pki["client_cert_pem"],  # type: ignore[arg-type]
    )
    async with running_app(
        credentials=credentials,
        target_host="localhost",
        tls_cert=pki["cert"],
        tls_key=pki["key"],
        tls_client_ca=pki["client_ca"],
    ) as run:
        run.sources.get("load").answer = 0.0
        answer = await run.stub.IsActive(ref(metadata()), timeout=5)
    assert answer.result is False


async def test_mutual_tls_refuses_a_client_without_certificate(pki: dict[str, Path | bytes]) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["server_ca_pem"])  # type: ignore[arg-type]
    async with running_app(
        credentials=credentials,
        target_host="localhost",
        tls_cert=pki["cert"],
        tls_key=pki["key"],
        tls_client_ca=pki["client_ca"],
    ) as run:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run.stub.IsActive(ref(metadata()), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together", id="cert-without-key"),
        pytest.param(["--tls-client-ca", "ca.pem"], "needs --tls-cert", id="client-ca-without-tls"),
        pytest.param(["--grpc-port", "70000"], "not a port number", id="port"),
        pytest.param(["--max-age", "soon"], "--max-age: `soon`", id="duration"),
        pytest.param(
            ["--grpc-port", "abc"], "--grpc-port: `abc` is not valid; expected a whole number", id="int"
        ),
        pytest.param(
            ["--log-level", "LOUD"], "--log-level: `LOUD` is not valid; expected DEBUG", id="log-level"
        ),
        pytest.param(
            ["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"],
            "--tls-cert: `/nonexistent/c.pem` is not a file",
            id="cert-missing",
        ),
    ],
)
def test_bad_settings_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse(argv, {})


def test_a_certificate_that_is_not_pem_is_named_at_the_start(
    tmp_path: Path, pki: dict[str, Path | bytes]
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    key = str(pki["key"])
    with pytest.raises(
        SettingsError, match="expected a PEM certificate chain and its unencrypted private key"
    ):
        parse(["--tls-cert", str(junk), "--tls-key", key], {})
    with pytest.raises(SettingsError, match=r"--tls-client-ca `.*junk\.pem`: expected PEM CA certificates"):
        parse(["--tls-cert", str(pki["cert"]), "--tls-key", key, "--tls-client-ca", str(junk)], {})
    assert parse(["--tls-cert", str(pki["cert"]), "--tls-key", key], {}).tls_cert == pki["cert"]


def test_environment_fills_settings_and_flags_win() -> None:
    env = {"PRESCALER_GRPC_PORT": "7000", "PRESCALER_MAX_AGE": "2m", "PRESCALER_METRICS_PORT": "9100"}
    settings = parse(["--metrics-port", "9200"], env)
    assert (settings.grpc_port, settings.max_age_s, settings.metrics_port) == (7000, 120.0, 9200)
