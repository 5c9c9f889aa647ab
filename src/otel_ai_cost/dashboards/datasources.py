"""The Grafana datasources the dashboards use, by fixed uid (the provisioning file declares the same ones)."""

from __future__ import annotations

from typing import Any

PROMETHEUS_UID = "prometheus"
PROMETHEUS_TYPE = "prometheus"
PROMETHEUS_URL = "http://prometheus:9090"

# The trace store of docker-compose.yml: Jaeger 2 (query API and UI on 16686).
TRACES_UID = "jaeger"
TRACES_TYPE = "jaeger"
TRACES_URL = "http://jaeger:16686"

# The label/field Grafana reads an exemplar's trace id from (the OTel Prometheus exporter writes `trace_id`).
EXEMPLAR_TRACE_ID_LABEL = "trace_id"


def prometheus() -> dict[str, Any]:
    return {"type": PROMETHEUS_TYPE, "uid": PROMETHEUS_UID}


def traces() -> dict[str, Any]:
    return {"type": TRACES_TYPE, "uid": TRACES_UID}
