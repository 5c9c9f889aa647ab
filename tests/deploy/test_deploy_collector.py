"""collector/config.yaml checked against what otelcol-contrib requires and what the telemetry contract defines.

No collector binary runs here, so these tests do what `otelcol validate` would for the graph (every component a
pipeline names is defined, every defined one is used, types exist in the pinned contrib version) and go further
for our own rules: the metrics pipeline strips every unbounded attribute the contract knows of, the traces
pipeline strips nothing, and the ledger export never gives up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_ai_cost import contract
from otel_ai_cost.contract import METRIC_LABELS_FORBIDDEN, METRICS, Attribution, Resource

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "collector" / "config.yaml"
PINNED_VERSION = "0.159.0"

# Component types otelcol-contrib 0.159.0 registers under these names (the ones this config may use). Deprecated
# aliases (`otlphttp`, `otlp` as an exporter) are deliberately absent: they warn on every start.
KNOWN_TYPES: dict[str, set[str]] = {
    "receivers": {"otlp", "prometheus"},
    "processors": {"memory_limiter", "batch", "transform", "attributes", "resource", "filter"},
    "exporters": {"otlp_http", "otlp_grpc", "prometheus", "debug"},
    "extensions": {"health_check", "file_storage", "bearertokenauth"},
    "connectors": set(),
}
# Processors that may change attributes; none of them may sit in the traces pipeline.
ATTRIBUTE_PROCESSORS = {"transform", "attributes", "resource", "filter", "redaction", "groupbyattrs"}


def load_config() -> dict[str, Any]:
    """The collector config as parsed YAML."""
    return yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))


def component_type(component_id: str) -> str:
    """`otlp_http/ledger` -> `otlp_http`."""
    return component_id.split("/", 1)[0]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load_config()


def test_parses_and_names_the_pinned_version(config: dict[str, Any]) -> None:
    assert isinstance(config, dict)
    assert PINNED_VERSION in CONFIG_PATH.read_text(encoding="utf-8")
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert f"otel/opentelemetry-collector-contrib:{PINNED_VERSION}" in compose


def test_every_component_type_exists_under_its_current_name(config: dict[str, Any]) -> None:
    for kind, known in KNOWN_TYPES.items():
        for component_id in config.get(kind) or {}:
            assert component_type(component_id) in known, f"{kind}: {component_id} is not a 0.159 component name"


def test_pipelines_reference_only_defined_components_and_every_component_is_used(config: dict[str, Any]) -> None:
    service = config["service"]
    used: dict[str, set[str]] = {kind: set() for kind in ("receivers", "processors", "exporters")}
    for name, pipeline in service["pipelines"].items():
        assert component_type(name) in {"traces", "metrics", "logs"}, name
        assert pipeline.get("receivers") and pipeline.get("exporters"), f"pipeline {name} needs receivers/exporters"
        for kind in used:
            for component_id in pipeline.get(kind) or []:
                assert component_id in (config.get(kind) or {}), (
                    f"pipeline {name}: {kind[:-1]} {component_id} undefined"
                )
                used[kind].add(component_id)
    for kind, ids in used.items():
        assert set(config.get(kind) or {}) == ids, f"{kind} defined but unused: {set(config.get(kind) or {}) - ids}"
    assert set(service["extensions"]) == set(config["extensions"]), "every extension must be listed in service"
    # Extensions other components point at must be defined and enabled.
    referenced = {
        config["exporters"]["otlp_http/ledger"]["sending_queue"]["storage"],
        config["exporters"]["otlp_http/ledger"]["auth"]["authenticator"],
    }
    assert referenced <= set(service["extensions"])


def test_receivers_listen_on_all_interfaces(config: dict[str, Any]) -> None:
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["extensions"]["health_check"]["endpoint"].startswith("0.0.0.0:")
    assert config["exporters"]["prometheus"]["endpoint"].startswith("0.0.0.0:")


def test_processor_order(config: dict[str, Any]) -> None:
    pipelines = config["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        processors = [component_type(p) for p in pipeline["processors"]]
        assert processors[0] == "memory_limiter", f"{name}: memory_limiter must come first"
        assert processors[-1] == "batch", f"{name}: batch must come last"
    metrics = [component_type(p) for p in pipelines["metrics"]["processors"]]
    assert metrics == ["memory_limiter", "transform", "batch"]


def test_metrics_pipeline_exports_openmetrics_without_resource_labels(config: dict[str, Any]) -> None:
    assert config["service"]["pipelines"]["metrics"]["exporters"] == ["prometheus"]
    exporter = config["exporters"]["prometheus"]
    assert exporter["enable_open_metrics"] is True  # exemplars are only exposed in OpenMetrics
    # Every resource attribute as a label on every series would defeat the stripping below.
    assert exporter["resource_to_telemetry_conversion"]["enabled"] is False
    assert "resource_constant_labels" not in exporter
    # The contract's prometheus_name values carry unit and _total suffixes.
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert any(spec.prometheus_name.endswith("_USD_total") for spec in METRICS)


def test_traces_pipeline_keeps_every_attribute_and_fans_out(config: dict[str, Any]) -> None:
    traces = config["service"]["pipelines"]["traces"]
    for processor in traces["processors"]:
        assert component_type(processor) not in ATTRIBUTE_PROCESSORS, f"{processor} would alter spans"
    assert set(traces["exporters"]) == {"otlp_http/ledger", "otlp_grpc/jaeger"}


def test_ledger_export_never_gives_up_and_queues_on_disk_with_fsync(config: dict[str, Any]) -> None:
    exporter = config["exporters"]["otlp_http/ledger"]
    retry = exporter["retry_on_failure"]
    assert retry["enabled"] is True
    assert retry["max_elapsed_time"] == 0  # 0: retry forever
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    storage = config["extensions"][queue["storage"]]
    assert component_type(queue["storage"]) == "file_storage"
    assert storage["fsync"] is True
    assert exporter.get("compression", "gzip") in ("gzip", "none")  # the ledger service decodes gzip


# --- attribute stripping in the metrics pipeline ----------------------------------------------------------------

_CALL = re.compile(r'^(?P<fn>\w+)\((?P<target>[\w.]+), (?P<arg>"(?:[^"\\]|\\.)*"|\[.*\])\)$')


@dataclass
class Stripping:
    """What the metrics pipeline's transform statements do to a key, interpreted from their OTTL."""

    datapoint_deleted_keys: set[str]
    datapoint_deleted_patterns: list[re.Pattern[str]]
    resource_kept_keys: set[str] | None  # None: no keep_keys on the resource
    resource_deleted_keys: set[str]
    resource_deleted_patterns: list[re.Pattern[str]]

    def deleted_from_datapoints(self, key: str) -> bool:
        return key in self.datapoint_deleted_keys or any(p.search(key) for p in self.datapoint_deleted_patterns)

    def deleted_from_resource(self, key: str) -> bool:
        if self.resource_kept_keys is not None and key not in self.resource_kept_keys:
            return True
        return key in self.resource_deleted_keys or any(p.search(key) for p in self.resource_deleted_patterns)


def _statements(processor: dict[str, Any]) -> list[str]:
    statements: list[str] = []
    for group in processor.get("metric_statements", []):
        statements.extend([group] if isinstance(group, str) else group["statements"])
    return statements


def interpret(config: dict[str, Any]) -> Stripping:
    """Reads the delete/keep statements of every transform processor in the metrics pipeline."""
    result = Stripping(set(), [], None, set(), [])
    for processor_id in config["service"]["pipelines"]["metrics"]["processors"]:
        if component_type(processor_id) != "transform":
            continue
        for statement in _statements(config["processors"][processor_id]):
            match = _CALL.match(statement.strip())
            if match is None or match["fn"] not in ("delete_key", "delete_matching_keys", "keep_keys"):
                continue  # set(...) and the like add nothing that strips
            fn, target, arg = match["fn"], match["target"], match["arg"]
            assert target in ("datapoint.attributes", "resource.attributes"), statement
            on_resource = target == "resource.attributes"
            if fn == "keep_keys":
                assert on_resource, "keep_keys on data points would drop the contract's labels"
                result.resource_kept_keys = set(yaml.safe_load(arg))
            elif fn == "delete_key":
                (result.resource_deleted_keys if on_resource else result.datapoint_deleted_keys).add(arg[1:-1])
            else:
                pattern = re.compile(yaml.safe_load(arg))  # the same escapes as OTTL's string literal
                (result.resource_deleted_patterns if on_resource else result.datapoint_deleted_patterns).append(pattern)
    return result


def unbounded_attributes() -> list[str]:
    """Every attribute the contract says must never become a metric label, plus every cicd/vcs resource
    attribute and a sample free-form tag."""
    cicd_vcs = [
        value
        for name, value in vars(Resource).items()
        if not name.startswith("_") and isinstance(value, str) and value.split(".", 1)[0] in ("cicd", "vcs")
    ]
    assert len(cicd_vcs) >= 8, "the contract's cicd.*/vcs.* resource attributes were not found"
    tags = [f"{Attribution.TAG_PREFIX}customer", f"{Attribution.TAG_PREFIX}ticket_id"]
    return sorted({*METRIC_LABELS_FORBIDDEN, *cicd_vcs, *tags})


def test_every_delete_statement_is_unconditional(config: dict[str, Any]) -> None:
    for processor_id in config["service"]["pipelines"]["metrics"]["processors"]:
        if component_type(processor_id) == "transform":
            for statement in _statements(config["processors"][processor_id]):
                if statement.startswith(("delete_", "keep_")):
                    assert " where " not in statement, f"a conditional strip can let a value through: {statement}"


@pytest.mark.parametrize("key", unbounded_attributes())
def test_unbounded_attribute_never_becomes_a_metric_label(config: dict[str, Any], key: str) -> None:
    stripping = interpret(config)
    assert stripping.deleted_from_datapoints(key), f"{key} is not deleted from metric data points"
    assert stripping.deleted_from_resource(key), f"{key} would reach target_info as a resource label"
    assert config["exporters"]["prometheus"]["resource_to_telemetry_conversion"]["enabled"] is False


def test_bounded_contract_labels_survive(config: dict[str, Any]) -> None:
    """The stripping must not take the labels dashboards and budget rules group by."""
    stripping = interpret(config)
    labels = {label for spec in METRICS for label in (*spec.labels, *spec.extra_labels)}
    labels |= set(contract.METRIC_LABELS_DEFAULT)
    for label in sorted(labels):
        assert not stripping.deleted_from_datapoints(label), f"{label} is a contract metric label but is deleted"
    for key in (Resource.SERVICE_NAME, Resource.DEPLOYMENT_ENVIRONMENT_NAME, "service.instance.id"):
        assert not stripping.deleted_from_resource(key), f"{key} must stay (job/instance, environment)"


def test_environment_is_copied_onto_data_points(config: dict[str, Any]) -> None:
    env = Resource.DEPLOYMENT_ENVIRONMENT_NAME
    statements = _statements(config["processors"]["transform/metric_labels"])
    assert any(s.startswith(f'set(datapoint.attributes["{env}"], resource.attributes["{env}"])') for s in statements), (
        "services that set the environment only on the resource would lose it as a label"
    )


def test_ledger_and_trace_store_endpoints(config: dict[str, Any]) -> None:
    assert config["exporters"]["otlp_http/ledger"]["endpoint"] == "http://ledger:4319"
    assert config["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
