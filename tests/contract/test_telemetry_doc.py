"""docs/telemetry.md is generated from the contract module and lists every name in it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from otel_ai_cost import contract
from otel_ai_cost.cli import main
from otel_ai_cost.telemetry.contract_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "telemetry.md"


def _constants(cls: type) -> list[str]:
    return [v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)]


def test_committed_doc_is_what_the_generator_produces():
    assert DOC.read_text(encoding="utf-8") == render(), "run: otel-ai-cost docs telemetry -o docs/telemetry.md"


def test_every_contract_name_is_documented():
    text = render()
    names = [
        *_constants(contract.GenAI),
        *_constants(contract.Cost),
        *_constants(contract.Attribution),
        *_constants(contract.Resource),
        *_constants(contract.Env),
        *_constants(contract.Server),
        contract.ERROR_TYPE,
        contract.OUTCOME_LABEL,
        *(m.name for m in contract.METRICS),
        *(m.prometheus_name for m in contract.METRICS),
        *(m.name for m in contract.LEDGER_METRICS),
    ]
    missing = [n for n in names if f"`{n}" not in text]
    assert missing == []


def test_forbidden_labels_are_never_default_labels():
    for metric in contract.METRICS:
        assert not set(metric.labels) & contract.METRIC_LABELS_FORBIDDEN, metric.name


def test_cli_writes_the_doc(tmp_path):
    out = tmp_path / "telemetry.md"
    result = CliRunner().invoke(main, ["docs", "telemetry", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == render()
