"""The tracer and meter providers, and the exporters `opentelemetry-instrument` would set up, with a
reachability check of each OTLP endpoint.

The exporters are read the way the OpenTelemetry SDK's configurator reads them, with the defaults the
`opentelemetry-distro` sets (`otlp` for traces and metrics, protocol `grpc`): `OTEL_TRACES_EXPORTER` /
`OTEL_METRICS_EXPORTER` (comma lists, `none` for none), the protocol from `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`
else `OTEL_EXPORTER_OTLP_PROTOCOL`, the endpoint from `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT` (used as it is) else
`OTEL_EXPORTER_OTLP_ENDPOINT` (plus `/v1/{signal}` over HTTP) else `localhost:4317` (gRPC) / `localhost:4318`.

Reachability is a TCP connection to the endpoint's host and port (2 s): it says a collector listens there, not
that it accepts our data. A problem with what was configured (an exporter or endpoint named by a variable) is a
failure; with the distro's defaults alone it is a warning: the in-process ledger still records every cost.
"""

from __future__ import annotations

import os
import socket
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from otel_ai_cost.attribution.ci import strip_credentials
from otel_ai_cost.contract import Env
from otel_ai_cost.doctor.checks import Result, Status

__all__ = ["METRICS_EXPORTER", "PROVIDERS", "TRACES_EXPORTER", "check_exporter", "check_providers"]

PROVIDERS = "providers"
TRACES_EXPORTER = "exporter.traces"
METRICS_EXPORTER = "exporter.metrics"

CONNECT_TIMEOUT_S = 2.0
_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http", "http/json": "otlp_proto_http"}
_PACKAGES = {
    "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc",
    "otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
}
_SIGNALS = {
    "traces": (Env.OTEL_TRACES_EXPORTER, Env.OTLP_TRACES_ENDPOINT, Env.OTLP_TRACES_PROTOCOL),
    "metrics": (Env.OTEL_METRICS_EXPORTER, Env.OTLP_METRICS_ENDPOINT, Env.OTLP_METRICS_PROTOCOL),
}


def check_providers() -> Result:
    """The global tracer and meter providers of this process (the doctor's own: set only when it runs in-process
    with the application, e.g. `otel_ai_cost.doctor.run_doctor()` called from it)."""
    from opentelemetry import metrics, trace

    tracer = type(trace.get_tracer_provider()).__name__
    meter = type(metrics.get_meter_provider()).__name__
    details = (f"tracer provider: {tracer}", f"meter provider: {meter}")
    if tracer.startswith(("Proxy", "NoOp")):
        return Result(
            PROVIDERS,
            Status.OK,
            "no tracer provider set in this process: opentelemetry-instrument sets one from the exporter "
            "settings below; in code, set yours before otel_ai_cost.instrument()",
            details=details,
        )
    return Result(PROVIDERS, Status.OK, f"tracer provider {tracer}, meter provider {meter}", details=details)


def _endpoint(signal: str, protocol: str, signal_env: str) -> tuple[str, str]:
    """(endpoint URL, the variable it came from)."""
    own = os.environ.get(signal_env, "").strip()
    if own:
        return own, signal_env
    base = os.environ.get(Env.OTLP_ENDPOINT, "").strip()
    if base:
        url = base if protocol == "grpc" else f"{base.rstrip('/')}/v1/{signal}"
        return url, Env.OTLP_ENDPOINT
    port = 4317 if protocol == "grpc" else 4318
    return (f"http://localhost:{port}" + ("" if protocol == "grpc" else f"/v1/{signal}")), "the default"


def reachable(url: str) -> str | None:
    """None when a TCP connection to the URL's host and port succeeds, else why not."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or "localhost"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return f"bad port: {exc}"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"


def check_exporter(signal: str) -> Result:
    """The exporters of one signal (`traces` or `metrics`): installed, and their endpoints reachable."""
    name = TRACES_EXPORTER if signal == "traces" else METRICS_EXPORTER
    exporter_env, endpoint_env, protocol_env = _SIGNALS[signal]
    raw = os.environ.get(exporter_env, "").strip()
    names = [n.strip() for n in (raw or "otlp").split(",") if n.strip()]
    origin = exporter_env if raw else f"the distro's default ({exporter_env} unset)"
    if names == ["none"]:
        what = (
            "spans are not exported (the in-process ledger still records costs)"
            if signal == "traces"
            else "cost metrics are not exported: dashboards and Prometheus alerts see nothing"
        )
        return Result(
            name,
            Status.WARN,
            f"{exporter_env}=none: {what}",
            fix=f"set {exporter_env}=otlp and point {Env.OTLP_ENDPOINT} at your collector",
        )
    group = f"opentelemetry_{signal}_exporter"
    installed = {ep.name for ep in entry_points(group=group)}
    details, failures, fixes = [f"exporters: {', '.join(names)} (from {origin})"], [], []
    # Else the distro's defaults alone: a miss there is a warning (see the module documentation).
    configured = bool(raw) or any(os.environ.get(v, "").strip() for v in (protocol_env, Env.OTLP_PROTOCOL))
    for exporter in names:
        protocol = os.environ.get(protocol_env, "").strip() or os.environ.get(Env.OTLP_PROTOCOL, "").strip() or "grpc"
        entry = _BY_PROTOCOL.get(protocol) if exporter == "otlp" else exporter
        if entry is None:
            failures.append(f"unknown OTLP protocol {protocol!r}")
            fixes.append(f"set {Env.OTLP_PROTOCOL} to grpc or http/protobuf")
            continue
        if entry not in installed:
            failures.append(f"exporter {entry} is not installed")
            package = _PACKAGES.get(entry, f"the package providing {entry}")
            fixes.append(
                f"pip install {package}"
                + (f", or set {Env.OTLP_PROTOCOL}=http/protobuf" if entry == "otlp_proto_grpc" else "")
            )
            continue
        if not entry.startswith("otlp"):
            details.append(f"{entry}: installed (no endpoint to check)")
            continue
        url, url_origin = _endpoint(signal, protocol, endpoint_env)
        configured = configured or url_origin != "the default"
        problem = reachable(url)
        url = strip_credentials(url)  # a user:password in the URL is never printed
        details.append(f"{entry} ({protocol}) -> {url} (from {url_origin}): {problem or 'reachable'}")
        if problem:
            failures.append(f"{url} is not reachable ({problem})")
            fixes.append(
                f"start the OpenTelemetry Collector there (docker compose up), or set {endpoint_env} / "
                f"{Env.OTLP_ENDPOINT} to where it listens"
            )
    if failures:
        status = Status.FAIL if configured else Status.WARN
        return Result(name, status, "; ".join(failures), fix="; ".join(fixes), details=tuple(details))
    return Result(name, Status.OK, f"{', '.join(names)}: installed and reachable", details=tuple(details))
