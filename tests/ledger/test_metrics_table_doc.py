"""docs/ledger.md's `/metrics` table is tested against `ledger/service/metrics.py`'s METRICS, so it cannot drift: every
metric's name, type and label set is in it, once, and it lists nothing more."""

from __future__ import annotations

import re
from pathlib import Path

from otel_ai_cost import contract
from otel_ai_cost.ledger.service.metrics import METRICS

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"
HEADER = "| metric | type | labels | meaning |"


def table_rows() -> list[tuple[str, str, tuple[str, ...]]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    assert lines.count(HEADER) == 1, f"expected one {HEADER!r} table in {DOC}"
    start = lines.index(HEADER) + 2  # past the header and its |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[0])
        assert name, f"one metric per row, its full name in backticks: {line}"
        labels = tuple(re.findall(r"`(\w+)`", cells[2]))
        rows.append((name.group(1), cells[1], labels))
    return rows


def test_the_metrics_table_lists_every_metric_with_its_type_and_labels_and_nothing_more():
    rows = table_rows()
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), "a metric listed twice"
    assert sorted(rows) == sorted((m.name, m.kind, m.labels) for m in METRICS)


def test_the_service_exposes_exactly_the_contracts_ledger_metrics():
    assert sorted(m.name for m in METRICS) == sorted(m.name for m in contract.LEDGER_METRICS)
