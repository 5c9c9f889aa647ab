"""The checklist's building blocks: one `Result` per check, and the runner that never lets a check crash the list.

A check is a function of no arguments returning one or more `Result`s. Each result has a stable `name` (the doc
`docs/operations.md` lists every name, and a test holds the two together), a `status`, a one-line `summary` of
what was found, `details` (where each value came from), and, when the status is `fail` or `warn`, a `fix`: what
to do about it.

Only `fail` makes `otel-ai-cost doctor` exit 1; `warn` is worth reading but does not stop costs being tracked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Check", "Result", "Status", "exit_code", "run_checks"]


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"  # works, but probably not as intended
    FAIL = "fail"  # costs will not be tracked (or not where you think)
    SKIP = "skip"  # not applicable to this set-up (e.g. DynamoDB checks with a SQLite ledger)


@dataclass(frozen=True)
class Result:
    """What one check found."""

    name: str
    status: Status
    summary: str
    fix: str = ""
    details: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status.value,
            "summary": self.summary,
            "fix": self.fix or None,
            "details": list(self.details),
        }


Check = Callable[[], Result | Iterable[Result]]


def run_checks(checks: Sequence[tuple[str, Check]]) -> list[Result]:
    """Runs every check in order; a check that raises becomes a `fail` result under its own name (the doctor's
    job is to report a broken set-up, so a broken set-up must never stop the rest of the list)."""
    results: list[Result] = []
    for name, check in checks:
        try:
            found = check()
        except Exception as exc:
            results.append(
                Result(
                    name,
                    Status.FAIL,
                    f"the check itself failed: {type(exc).__name__}: {exc}",
                    fix="report this as a bug of otel-ai-cost doctor, with the message above",
                )
            )
            continue
        results.extend([found] if isinstance(found, Result) else found)
    return results


def exit_code(results: Iterable[Result]) -> int:
    """0 when nothing failed, else 1."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0
