"""Server settings, from command-line flags and PRESCALER_* environment variables, parsed once.

This is the only module that reads the environment. A flag wins over its variable, which wins
over the default. Credentials for Prometheus live here (a mounted Secret), never in ScaledObject
metadata: KEDA does not forward TriggerAuthentication to external scalers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scaler.cgroup import default_forecast_workers
from scaler.trigger import MAX_HISTORY_S
from scaler.units import format_duration, parse_duration_s

BUNDLED_TRACES = Path(__file__).parent / "traces"
ENV_PREFIX = "PRESCALER_"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""`--log-level`'s values (any case)."""


class SettingsError(ValueError):
    """A flag, variable or credentials file that cannot be used; names which and why."""


@dataclass(frozen=True, slots=True)
class PrometheusCredentials:
    """Credentials for one Prometheus server: sent only to its origin (scheme, host, port) and path,
    only with its two query endpoints, and only for triggers of the namespaces it names."""

    server_address: str
    """The server they belong to, e.g. `https://prometheus.monitoring:9090` or, behind a proxy,
    `https://gateway.example/prometheus`: a trigger's `serverAddress` must name the same origin and
    path for them to be used."""
    bearer_token_file: Path | None = None
    """File holding a bearer token; read on each request so that rotated tokens are picked up."""
    username: str | None = None
    """Basic-auth user name (with `password_file`)."""
    password_file: Path | None = None
    """File holding the basic-auth password."""
    ca_file: Path | None = None
    """PEM bundle to verify the server's certificate with."""
    namespaces: tuple[str, ...] | None = None
    """Namespaces whose ScaledObjects may use these credentials; None: every namespace."""

    @property
    def origin(self) -> str:
        """The origin these credentials may be sent to, normalised as `origin_of` does."""
        return origin_of(self.server_address)

    @property
    def path(self) -> str:
        """The path prefix these credentials may be sent under, without a trailing `/`."""
        return path_of(self.server_address)

    def serves(self, server_address: str, namespace: str) -> bool:
        """Whether a trigger of `namespace` reading `server_address` may use these credentials."""
        return (
            origin_of(server_address) == self.origin
            and path_of(server_address) == self.path
            and (self.namespaces is None or namespace in self.namespaces)
        )


def origin_of(url: str) -> str:
    """`scheme://host:port` with the default port made explicit, lower-cased."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "http").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def path_of(url: str) -> str:
    """The URL's path without a trailing `/` (`` for the server's root)."""
    return urlsplit(url).path.rstrip("/")


@dataclass(frozen=True, slots=True)
class Settings:
    """How the scaler process runs; every field has a flag `--kebab-name` and a PRESCALER_UPPER_NAME variable."""

    host: str = field(default="0.0.0.0", metadata={"help": "address both servers bind to"})
    """Address the gRPC and HTTP servers bind to."""
    grpc_port: int = field(default=9090, metadata={"help": "gRPC port KEDA dials (0 = any free port)"})
    """Port of the ExternalScaler gRPC service (and health, reflection)."""
    metrics_port: int = field(default=8080, metadata={"help": "HTTP port for /metrics and /healthz"})
    """Port of the HTTP server with /metrics and /healthz (0 = any free port)."""
    tls_cert: Path | None = field(default=None, metadata={"help": "PEM server certificate (enables TLS)"})
    """Server certificate chain, PEM. Its names must match the host in KEDA's `scalerAddress`."""
    tls_key: Path | None = field(default=None, metadata={"help": "PEM private key of --tls-cert"})
    """Private key of `tls_cert`, PEM."""
    tls_client_ca: Path | None = field(
        default=None, metadata={"help": "PEM CA bundle; clients must present a cert it signed (mTLS)"}
    )
    """CA bundle for client certificates; when set, clients without a valid certificate are refused."""
    rpc_deadline_s: float = field(default=2.0, metadata={"help": "server-side deadline of every RPC"})
    """Longest any unary RPC may take; KEDA's polling path sets no deadline of its own."""
    max_age_s: float = field(default=60.0, metadata={"help": "older values are answered with UNAVAILABLE"})
    """A decision older than this is not served: the RPC fails with UNAVAILABLE instead."""
    idle_evict_s: float = field(
        default=600.0, metadata={"help": "forget targets not asked about for this long"}
    )
    """Targets no RPC asked about for this long stop being polled and are dropped."""
    drain_s: float = field(
        default=5.0,
        metadata={"help": "on SIGTERM, time health says NOT_SERVING while RPCs are still answered"},
    )
    """On SIGTERM health goes NOT_SERVING (and /healthz 503) at once, and for this long the server
    keeps answering new and in-flight RPCs, so that probes and KEDA's connection move elsewhere
    before anything is refused."""
    grace_s: float = field(default=10.0, metadata={"help": "time in-flight RPCs get on SIGTERM"})
    """After the drain, new RPCs are refused and in-flight RPCs get this long to finish."""
    max_history_s: float = field(
        default=MAX_HISTORY_S, metadata={"help": "longest `history` a trigger may ask for"}
    )
    """The longest `history` a predictive or shadow trigger may load; longer is INVALID_ARGUMENT."""
    prometheus_max_body: int = field(
        default=4 * 1024 * 1024, metadata={"help": "largest Prometheus response body read, in bytes"}
    )
    """A Prometheus answer with a longer body is refused (UNAVAILABLE naming the limit) before it is
    held in memory; one series of 10,000 points is about 0.3 MiB."""
    prometheus_max_connections: int = field(
        default=8, metadata={"help": "concurrent requests to one Prometheus origin"}
    )
    """Requests in flight to one Prometheus origin (scheme, host, port) at most, for all targets
    together: targets share one HTTP client per origin, TLS settings and credentials, and wait their
    turn within their own `timeout`, so the scaler never floods a user's Prometheus."""
    replay_dir: Path = field(
        default=BUNDLED_TRACES, metadata={"help": "directory `source: replay` traces are read from"}
    )
    """`trace` paths of replay triggers are resolved inside this directory and may not leave it."""
    prometheus_credentials: Path | None = field(
        default=None, metadata={"help": "JSON file of Prometheus credentials per server address"}
    )
    """JSON list of {serverAddress, bearerTokenFile, username, passwordFile, caFile, namespaces}
    objects; `namespaces` (a list) limits which ScaledObjects' triggers may use the entry."""
    forecast_workers: int = field(
        default_factory=default_forecast_workers,
        metadata={
            "help": "worker processes that fit forecasting models (predictive/shadow triggers)",
            "default": "sized from the container's CPU and memory limits, ~300 MB each",
        },
    )
    """Model fitting runs in this many worker processes, never in the server's event loop. The
    default is one per CPU of the container's CPU limit less one, within its memory limit at ~300 MB
    a worker (`scaler.cgroup`); the start-up log says what was read."""
    log_format: str = field(default="plain", metadata={"help": "plain or json"})
    """Log line format."""
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING or ERROR"})
    """Lowest level logged."""

    def credentials(self) -> tuple[PrometheusCredentials, ...]:
        """The Prometheus credentials file, parsed; empty when none is configured."""
        if self.prometheus_credentials is None:
            return ()
        return load_credentials(self.prometheus_credentials)


_CREDENTIAL_KEYS = {
    "serverAddress": "server_address",
    "bearerTokenFile": "bearer_token_file",
    "username": "username",
    "passwordFile": "password_file",
    "caFile": "ca_file",
    "namespaces": "namespaces",
}


def load_credentials(path: Path) -> tuple[PrometheusCredentials, ...]:
    """Parse the credentials file; every entry must name the server address it is for."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"prometheus credentials file {path}: {exc}") from exc
    if not isinstance(raw, list):
        raise SettingsError(f"prometheus credentials file {path}: expected a JSON list of objects")
    result = []
    for index, entry in enumerate(raw):
        where = f"prometheus credentials file {path}, entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("serverAddress"), str):
            raise SettingsError(f"{where}: expected an object with a `serverAddress` string")
        unknown = set(entry) - set(_CREDENTIAL_KEYS)
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_CREDENTIAL_KEYS)}")
        kwargs: dict[str, Any] = {}
        for key, name in _CREDENTIAL_KEYS.items():
            if key not in entry:
                continue
            value = entry[key]
            if key == "namespaces":
                if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
                    raise SettingsError(f"{where}: `namespaces` must be a list of namespace names")
                kwargs[name] = tuple(value)
            elif not isinstance(value, str) or not value:
                raise SettingsError(f"{where}: `{key}` must be a non-empty string")
            else:
                kwargs[name] = value if key in ("serverAddress", "username") else Path(value)
        address = kwargs["server_address"]
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise SettingsError(
                f"{where}: `serverAddress` `{address}` must be an http(s) URL without ?query or #fragment"
            )
        if ("username" in kwargs) != ("password_file" in kwargs):
            raise SettingsError(f"{where}: `username` and `passwordFile` go together")
        if "username" in kwargs and "bearer_token_file" in kwargs:
            raise SettingsError(f"{where}: give `bearerTokenFile` or `username`/`passwordFile`, not both")
        result.append(PrometheusCredentials(**kwargs))
    return tuple(result)


def _convert(name: str, kind: object, text: str) -> object:
    if name.endswith("_s"):
        # `0` turns a wait off (e.g. --drain 0); any other duration must be positive.
        return 0.0 if text.strip() == "0" else parse_duration_s(text)
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if "Path" in str(kind):
        return Path(text)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare a flag per Settings field on `parser` (defaults are resolved in `from_args`)."""
    for spec in dataclasses.fields(Settings):
        flag = "--" + spec.name.replace("_", "-").removesuffix("-s")
        env = ENV_PREFIX + spec.name.upper().removesuffix("_S")
        default = spec.metadata.get("default", spec.default)
        if spec.name.endswith("_s") and isinstance(default, int | float):
            default = format_duration(default) if default else "0"  # as the flag takes it: 2s, 10m, 35d
        parser.add_argument(
            flag,
            dest=spec.name,
            default=None,
            metavar="DURATION" if spec.name.endswith("_s") else None,
            help=f"{spec.metadata['help']} (env {env}; default {default})",
        )


def from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Settings from parsed flags, then the environment, then defaults."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(Settings):
        env = ENV_PREFIX + spec.name.upper().removesuffix("_S")
        text = getattr(args, spec.name, None)
        origin = "--" + spec.name.replace("_", "-").removesuffix("-s")
        if text is None and env in environ:
            text, origin = environ[env], env
        if text is None:
            continue
        try:
            values[spec.name] = _convert(spec.name, spec.type, str(text))
        except ValueError as exc:
            raise SettingsError(f"{origin}: `{text}` is not valid; {exc}") from exc
    settings = Settings(**values)
    _check(settings)
    return settings


def _no_password() -> bytes:
    return b""  # an encrypted key is refused, not prompted for


def _check_tls(settings: Settings) -> None:
    """Read the TLS files now, so that a missing or malformed one is named at the start instead of
    failing the listen (gRPC reports that as a port it cannot bind)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return
    for flag, path in (
        ("--tls-cert", settings.tls_cert),
        ("--tls-key", settings.tls_key),
        ("--tls-client-ca", settings.tls_client_ca),
    ):
        if path is not None and not path.is_file():
            raise SettingsError(f"{flag}: `{path}` is not a file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key, password=_no_password)
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(
            f"--tls-cert `{settings.tls_cert}` and --tls-key `{settings.tls_key}`: expected a PEM "
            f"certificate chain and its unencrypted private key ({exc})"
        ) from exc
    if settings.tls_client_ca is not None:
        try:
            context.load_verify_locations(cafile=settings.tls_client_ca)
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                f"--tls-client-ca `{settings.tls_client_ca}`: expected PEM CA certificates ({exc})"
            ) from exc


def _check(settings: Settings) -> None:
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError("--tls-cert and --tls-key go together")
    if settings.tls_client_ca is not None and settings.tls_cert is None:
        raise SettingsError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)")
    # Read the credentials file now, so a bad one stops the start instead of the first poll.
    settings.credentials()
    if settings.log_format not in ("plain", "json"):
        raise SettingsError(f"--log-format: `{settings.log_format}` is not valid; expected plain or json")
    if settings.log_level.upper() not in LOG_LEVELS:
        raise SettingsError(
            f"--log-level: `{settings.log_level}` is not valid; expected {', '.join(LOG_LEVELS)}"
        )
    _check_tls(settings)
    if settings.max_history_s > MAX_HISTORY_S * 4:
        raise SettingsError(f"--max-history: {settings.max_history_s:g}s is over the most supported, 140d")
    if settings.prometheus_max_body < 64 * 1024:
        raise SettingsError(
            f"--prometheus-max-body: {settings.prometheus_max_body} must be at least 65536 bytes"
        )
    if not 1 <= settings.prometheus_max_connections <= 1024:
        raise SettingsError(
            f"--prometheus-max-connections: {settings.prometheus_max_connections} must be from 1 to 1024"
        )
    if not settings.replay_dir.is_dir():
        raise SettingsError(
            f"--replay-dir: `{settings.replay_dir}` is not a directory; replay triggers read traces from it"
        )
    if settings.forecast_workers < 1:
        raise SettingsError(f"--forecast-workers: {settings.forecast_workers} must be at least 1")
    for name in ("grpc_port", "metrics_port"):
        port = getattr(settings, name)
        if not 0 <= port <= 65535:
            raise SettingsError(f"--{name.replace('_', '-')}: {port} is not a port number (0-65535)")


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Convenience for tests and tools: flags and environment straight to Settings."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(list(argv)), environ)
