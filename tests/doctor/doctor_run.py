"""The result of one `otel-ai-cost doctor` run, as the tests read it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Doctor:
    """One run of `otel-ai-cost doctor`."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def check(self, name: str) -> dict[str, Any]:
        return next(c for c in self.json()["checks"] if c["name"] == name)
