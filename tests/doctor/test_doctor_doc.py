"""docs/operations.md's troubleshooting section lists every check `otel-ai-cost doctor` reports, in its order."""

from __future__ import annotations

import re
from pathlib import Path

from otel_ai_cost.doctor import CHECK_NAMES

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SECTION = "## Troubleshooting: costs aren't being tracked"


def _documented_checks() -> list[str]:
    text = DOC.read_text()
    assert SECTION in text
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_the_troubleshooting_section_lists_every_check_name_in_order() -> None:
    assert _documented_checks() == list(CHECK_NAMES)
