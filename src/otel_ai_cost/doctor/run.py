"""The doctor's checklist: every check in the order it is reported, and `run_doctor()`.

To add a check, write a function of no arguments returning a `Result` (or several) in a module of its own, and
add `(NAME, function)` to `CHECKS`: `CHECK_NAMES`, the JSON output and the test that holds `docs/operations.md`
equal to the list follow.
"""

from __future__ import annotations

from otel_ai_cost.doctor import api_keys, attribution, budgets, exporters, ledger, pricing, sdks, write_test
from otel_ai_cost.doctor.checks import Check, Result, run_checks

__all__ = ["CHECKS", "CHECK_NAMES", "run_doctor"]

CHECKS: list[tuple[str, Check]] = [
    (sdks.TRACKING, sdks.check_tracking),
    (sdks.ENTRY_POINTS, sdks.check_entry_points),
    (sdks.SDKS, sdks.check_sdks),
    (attribution.ATTRIBUTION, attribution.check_attribution),
    (attribution.SERVICE_NAME, attribution.check_service_name),
    (exporters.PROVIDERS, exporters.check_providers),
    (exporters.TRACES_EXPORTER, lambda: exporters.check_exporter("traces")),
    (exporters.METRICS_EXPORTER, lambda: exporters.check_exporter("metrics")),
    (ledger.LEDGER, ledger.check_ledger),
    (ledger.LEDGER_SCHEMA, ledger.check_ledger_schema),
    (ledger.LEDGER_WRITE, ledger.check_ledger_write),
    (ledger.LEDGER_QUERY, ledger.check_ledger_query),
    (api_keys.API_KEYS, api_keys.check_api_keys),
    (pricing.PRICES_CATALOG, pricing.check_catalog),
    (pricing.PRICES_OVERRIDE, pricing.check_override),
    (budgets.BUDGETS, budgets.check_budgets),
]

# Every name a doctor run reports, in order: the checks, then the write test (skipped unless asked for).
CHECK_NAMES: tuple[str, ...] = (*(name for name, _ in CHECKS), write_test.WRITE_TEST)


def run_doctor(*, write_test_record: bool = False) -> list[Result]:
    """Runs every check against this process's environment; with `write_test_record`, also records one test call
    in the ledger, reads it back and removes it (`write_test.py`). A result per name of `CHECK_NAMES`."""
    ledger.reset()  # the ledger is looked at afresh by each run
    last = write_test.check_write_test if write_test_record else write_test.skipped
    return run_checks([*CHECKS, (write_test.WRITE_TEST, last)])
