"""The GitHub Actions job summary: Markdown appended to the file `$GITHUB_STEP_SUMMARY` names, when it is set.

`budgets check` and the pytest plugin call `append_step_summary`; anywhere else (a terminal, another CI) the
variable is unset and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["STEP_SUMMARY_ENV", "append_step_summary"]

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
MAX_SUMMARY_BYTES = 1024 * 1024  # GitHub's limit per step: a larger summary is refused by the runner


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> bool:
    """Appends `markdown` (and a blank line) to the step summary file; False when there is none. A summary beyond
    GitHub's 1 MiB per step is cut at a line, with a last line saying so. An unwritable file is an OSError."""
    path = (os.environ if environ is None else environ).get(STEP_SUMMARY_ENV, "").strip()
    if not path:
        return False
    text = markdown.rstrip("\n") + "\n\n"
    if len(text.encode("utf-8")) > MAX_SUMMARY_BYTES:
        cut = text.encode("utf-8")[: MAX_SUMMARY_BYTES - 200].decode("utf-8", "ignore")
        text = cut[: cut.rfind("\n") + 1] + "\n_(summary cut at GitHub's 1 MiB limit)_\n\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
    return True
