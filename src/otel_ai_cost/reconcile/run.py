"""One reconciliation run: pull each billing source, store what it billed, compare, store the result.

Every run pulls the whole window it is asked for (the command's default window is the trailing days, so a partial
"today" and rows that arrive late are pulled again on the next run) and REPLACES each source's stored lines for
those days (`LedgerStore.replace_billed`): re-running a day never doubles it. So the data is the same whether the
run is hourly or monthly.

A source that fails (no key, the API refusing) does not stop the run: its stored lines are used, and the result
says why it was not pulled. Error texts are cleaned of every admin key the process holds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from otel_ai_cost.ledger.store import BilledQuery, LedgerStore, UsageQuery
from otel_ai_cost.reconcile.billed import OTHER, BillingSource, MissingCredentials
from otel_ai_cost.reconcile.compare import TRACKED_GROUPS, compare
from otel_ai_cost.reconcile.result import DEFAULT_THRESHOLD, Reconciliation, SourceSummary

__all__ = ["SECRET_VARIABLES", "reconcile", "redact"]

# Variables holding billing credentials: their values are masked in every error text a run reports.
SECRET_VARIABLES = ("OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "GOOGLE_APPLICATION_CREDENTIALS_JSON")  # fmt: skip


def reconcile(
    store: LedgerStore,
    *,
    start_day: date,
    end_day: date,
    sources: Sequence[BillingSource] = (),
    providers: Sequence[str] = (),
    threshold: Decimal = DEFAULT_THRESHOLD,
    today: date | None = None,
    now: Callable[[], datetime] | None = None,
    keep: bool = True,
) -> Reconciliation:
    """Pulls `sources` for `start_day`..`end_day` (days after today are not pulled), stores their lines, compares
    the ledger's tracked spend with everything billed in the window, and (`keep`) stores the run.

    `providers`: only these (`gen_ai.provider.name` values); empty for every provider with tracked or billed spend.
    """
    if end_day < start_day:
        raise ValueError(f"--to {end_day} is before --from {start_day}")
    clock = now or (lambda: datetime.now(timezone.utc))
    today = today or clock().date()
    summaries: list[SourceSummary] = []
    notes: list[str] = []
    covered: dict[str, list[date]] = {}
    last = min(end_day, today)
    for source in sources:
        if last < start_day:
            break
        try:
            pull = source.pull(start_day, last)
        except MissingCredentials as error:
            summaries.append(SourceSummary(source.name, pulled=False, error=redact(str(error))))
            continue
        except Exception as error:  # a source's failure is reported; the run goes on with the stored lines
            summaries.append(SourceSummary(source.name, pulled=False, error=redact(f"{type(error).__name__}: {error}")))
            continue
        store.replace_billed(pull)
        covered[source.name] = [
            pull.start_day + timedelta(days=n) for n in range((pull.end_day - pull.start_day).days + 1)
        ]
        notes.extend(pull.notes)
        summaries.append(
            SourceSummary(
                source.name,
                pulled=True,
                lines=len(pull.lines),
                unparsed_lines=sum(1 for line in pull.lines if not line.parsed or line.token_class == OTHER),
                usage_rows=len(pull.usage),
                requests=pull.requests,
                retries=pull.retries,
            )
        )
    # Monthly invoices are stored on their month's first day: read from there.
    billed_query = BilledQuery(start_day=start_day.replace(day=1), end_day=end_day)
    wanted = set(providers)
    lines = [line for line in store.billed_lines(billed_query) if not wanted or line.provider in wanted]
    usage = [row for row in store.billed_usage(billed_query) if not wanted or row.provider in wanted]
    tracked = store.aggregate(UsageQuery(start_day=start_day, end_day=end_day), TRACKED_GROUPS)
    if wanted:
        tracked = [row for row in tracked if dict(row.group).get("provider") in wanted]
    result = compare(
        tracked,
        lines,
        usage,
        start_day=start_day,
        end_day=end_day,
        today=today,
        threshold=threshold,
        covered=covered,
        sources=summaries,
        notes=notes,
        run_id=uuid.uuid4().hex,
        now=clock,
    )
    if keep:
        store.write_reconciliation(result.run_record())
    return result


def redact(text: str) -> str:
    """`text` with the value of every `SECRET_VARIABLES` variable (and of the files their `_FILE` twins name)
    masked."""
    secrets = [os.environ.get(name, "").strip() for name in SECRET_VARIABLES]
    for name in SECRET_VARIABLES:
        file = os.environ.get(f"{name}_FILE", "").strip()
        if file:
            try:
                with open(file, encoding="utf-8") as handle:
                    secrets.append(handle.read().strip())
            except OSError:
                pass
    for secret in sorted((s for s in secrets if len(s) >= 8), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
