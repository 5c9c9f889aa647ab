"""`otel-ai-cost doctor --write-test`: one test call recorded through the path a real call takes, read back from
the ledger, and removed.

The call is a `track_request` call (`google_places` `place_details`, priced from the catalog) made by the same
`Recorder` the instrumentors use, on a tracer provider of its own that `attach_ledger` wires to the configured
ledger, exactly as `instrument()` wires the global one: the recorder builds the record, the ledger's span
processor queues it and its exporter writes it to the store. Only the environment differs: the provider's resource
says `contract.DOCTOR_ENVIRONMENT`, never a real environment's, and the doctor then removes that environment from
the ledger (its records, running totals and rollups), so the test record never counts in a real environment's
totals, reports, budgets or reconciliation. Its spans go nowhere else, its metrics to a meter provider without a
reader, and no usage quota applies to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from otel_ai_cost.contract import DOCTOR_ENVIRONMENT, Env, PricingStatus, Resource
from otel_ai_cost.doctor.checks import Result, Status

__all__ = ["WRITE_TEST", "check_write_test", "skipped"]

WRITE_TEST = "write-test"

PROVIDER, OPERATION = "google_places", "place_details"
_SETTLE_S = 10.0  # DynamoDB's indexes are eventually consistent (typically < 1 s): how long to wait for them


def skipped() -> Result:
    return Result(WRITE_TEST, Status.SKIP, "not run: --write-test records one test call and removes it")


def check_write_test() -> Result:
    from otel_ai_cost.ledger.open_store import configured_origin, configured_url, is_disabled, open_store, store_url

    url = configured_url()
    if is_disabled(url):
        return Result(WRITE_TEST, Status.SKIP, "not run: the ledger is off (see ledger)")
    try:
        store = open_store(url, origin=configured_origin())
    except Exception as exc:
        return Result(
            WRITE_TEST,
            Status.FAIL,
            f"the ledger cannot be opened: {exc}",
            fix="correct what the ledger checks above report, then run --write-test again",
        )
    where = store_url(store)
    with _captured_warnings() as warnings:
        try:
            return _write_read_remove(store, where, warnings)
        finally:
            store.close()


def _write_read_remove(store: Any, where: str, warnings: list[str]) -> Result:
    """Records the test call into a store of its own, as `instrument()` does (its exporter owns and closes it),
    and reads it back through `store`, another connection: what was read was committed, not merely buffered."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource as SdkResource
    from opentelemetry.sdk.trace import TracerProvider

    from otel_ai_cost.instrument_api import attach_ledger, ledger_queue
    from otel_ai_cost.instrumentation.per_request.skus import default_sku
    from otel_ai_cost.instrumentation.per_request.tracker import run_tracked
    from otel_ai_cost.ledger.open_store import configured_origin, open_store
    from otel_ai_cost.telemetry.recorder import Recorder

    provider = TracerProvider(
        resource=SdkResource(
            {Resource.DEPLOYMENT_ENVIRONMENT_NAME: DOCTOR_ENVIRONMENT, Resource.SERVICE_NAME: "otel-ai-cost-doctor"}
        )
    )
    meters = MeterProvider()  # no reader: the test call's spend is in no exported metric
    records: list[Any] = []
    try:
        attach_ledger(provider, store=open_store(origin=configured_origin()), meter_provider=meters)
        processor = ledger_queue(provider)
        if processor is None:
            return _failed("the ledger could not be wired to the test call's tracer provider", warnings)
        recorder = Recorder(tracer_provider=provider, meter_provider=meters)
        recorder.quota = None  # a usage quota must neither block the test call nor count it
        started = datetime.now(timezone.utc)
        run_tracked(recorder, PROVIDER, OPERATION, default_sku(PROVIDER, OPERATION), lambda: None, (), {})
        processor.force_flush()
        exporter = processor.ledger_exporter
        # Written: wait for it to read back (an index may lag). Not written: the exporter's log says why, now.
        records = _settled(lambda: _doctor_records(store), bool) if exporter.written else _doctor_records(store)
        written = f"written {exporter.written}, buffered {exporter.buffered}, rejected {exporter.rejected_total}"
        if records:
            before = store.totals(DOCTOR_ENVIRONMENT, records[-1].day)
    finally:
        provider.shutdown()  # writes what is still buffered, so the removal below comes after every write
        meters.shutdown()
        removed, not_removed = _remove(store)
    if not records:
        return _failed(f"the test call was not written to {where} ({written})", warnings)
    record = records[-1]
    if not_removed:
        return Result(
            WRITE_TEST,
            Status.FAIL,
            f"the test call was written to {where} and read back, but could not be removed: {not_removed}",
            fix=f"correct the ledger's permissions and run --write-test again (it removes what is left: "
            f"the environment {DOCTOR_ENVIRONMENT} holds only test records)",
        )
    left = _doctor_records(store)
    after = store.totals(DOCTOR_ENVIRONMENT, record.day)
    if left or after.calls or after.amount:
        return Result(
            WRITE_TEST,
            Status.FAIL,
            f"the test call was written to {where} but not all of it was removed ({len(left)} records, "
            f"{after.calls} calls in the totals of {DOCTOR_ENVIRONMENT} {record.day} left)",
            fix="run otel-ai-cost doctor --write-test again (it removes what is left); the environment "
            f"{DOCTOR_ENVIRONMENT} holds only test records",
        )
    amount = "unknown" if record.amount is None else f"${record.amount}"
    summary = (
        f"a test call ({PROVIDER} {OPERATION}, {amount}, {record.pricing_status}) was recorded in {where} "
        f"through the instrumentation's path, read back ({_count(before.calls, 'call')} in the running totals of "
        f"{DOCTOR_ENVIRONMENT}) and removed ({_count(removed, 'record')})"
    )
    problem = _problem(record, started)
    if problem:
        return Result(
            WRITE_TEST,
            Status.FAIL,
            f"{summary}; but {problem}",
            fix="check the price catalog (prices.catalog, prices.override above)",
        )
    return Result(WRITE_TEST, Status.OK, summary)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _doctor_records(store: Any) -> list[Any]:
    from otel_ai_cost.ledger.store import UsageQuery

    return list(store.query(UsageQuery(environment=DOCTOR_ENVIRONMENT)))


def _remove(store: Any) -> tuple[int, str]:
    """(records removed, why not all could be: "" when they could)."""
    try:
        removed = store.remove_environment(DOCTOR_ENVIRONMENT)
        # An index that had not caught up yet: while records still read back, remove again what is left.
        deadline = time.monotonic() + _SETTLE_S
        while _doctor_records(store) and time.monotonic() < deadline:
            time.sleep(0.5)
            removed += store.remove_environment(DOCTOR_ENVIRONMENT)
    except Exception as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    return removed, ""


def _settled(read: Any, done: Any) -> Any:
    deadline = time.monotonic() + _SETTLE_S
    while True:
        found = read()
        if done(found) or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def _problem(record: Any, started: datetime) -> str:
    if record.provider != PROVIDER or record.operation != OPERATION:
        return f"the record read back is a {record.provider} {record.operation} call"
    if record.pricing_status != PricingStatus.PRICED.value or record.amount is None or record.amount <= Decimal(0):
        return f"the test call was not priced ({record.pricing_status})"
    if record.timestamp < started.replace(microsecond=0):
        return "the record read back is older than the test call"
    return ""


def _failed(summary: str, warnings: list[str]) -> Result:
    return Result(
        WRITE_TEST,
        Status.FAIL,
        summary,
        fix=f"correct what the ledger checks report (the messages below are the ledger's own); "
        f"{Env.LEDGER} names the ledger",
        details=tuple(warnings),
    )


@contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """The warnings and errors otel-ai-cost logs during the test call: why a write failed, in the ledger's words."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(level=logging.WARNING)
    logger = logging.getLogger("otel_ai_cost")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
