"""`otel-ai-cost reconcile` and the Lambda handler over a SQLite ledger: figures entered by hand are the billed
side (never tracked spend), formats, --fail-on-discrepancy, stored runs, and secrets kept out of everything."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_ai_cost.cli import main
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import BilledQuery, StoreUnavailable, UsageQuery
from otel_ai_cost.reconcile import lambda_handler
from otel_ai_cost.reconcile.billed import BilledPull
from otel_ai_cost.reconcile.run import reconcile

DAY = date(2026, 11, 2)


def call(day: date, amount: str, *, provider: str = "x_ai", model: str = "grok-4", n: int = 0) -> LedgerRecord:
    return LedgerRecord(
        trace_id=f"{n + 1:032x}", span_id=f"{n + 1:016x}", timestamp=datetime(day.year, day.month, day.day, 12,
        tzinfo=timezone.utc), environment="production", service="svc", provider=provider, request_model=model,
        input_tokens=100, output_tokens=10, amount=Decimal(amount), cost_source="provider",
    )  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    path = tmp_path / "usage.db"
    with SQLiteStore(path) as store:
        store.write([call(DAY, "1.25", n=1), call(DAY, "0.75", n=2), call(date(2026, 11, 3), "3.00", n=3)])
    return f"sqlite://{path}"


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_a_dashboard_figure_is_billed_not_spend_and_reconciles(ledger: str) -> None:
    recorded = invoke("record", "--provider", "x_ai", "--amount", "2.00", "--date", "2026-11-02", "--ledger", ledger)
    assert recorded.exit_code == 0, recorded.output
    report = invoke("report", "--since", "2026-11-02", "--until", "2026-11-02", "--by", "", "--format", "json",
                    "--ledger", ledger)  # fmt: skip
    assert Decimal(json.loads(report.output)["total"]["amount"]) == 2, report.output  # the calls, not the figure
    result = invoke("reconcile", "--from", "2026-11-02", "--to", "2026-11-03", "--no-pull", "--format", "json",
                    "--ledger", ledger)  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (day2, day3) = data["days"]
    assert (day2["day"], day2["tracked"], day2["billed"], day2["verdict"], day2["relative"]) == (
        "2026-11-02", "2.00", "2.00", "match", "0")  # fmt: skip
    assert day2["source"] == "dashboard"
    assert (day3["verdict"], day3["billed"]) == ("no bill yet", None)


def test_report_totals_do_not_count_billed_figures(ledger: str, tmp_path: Path) -> None:
    invoke("record", "--provider", "x_ai", "--amount", "99.00", "--date", "2026-11-02", "--ledger", ledger)
    usage = tmp_path / "usage.jsonl"
    usage.write_text('{"timestamp":"2026-11-02","service":"x_ai","cost_usd":"50","source":"invoice"}\n')
    assert invoke("import", str(usage), "--ledger", ledger).exit_code == 0
    with SQLiteStore(ledger.removeprefix("sqlite://")) as store:
        (row,) = store.aggregate(UsageQuery(start_day=DAY, end_day=DAY), [])
        assert row.amount == Decimal("2.00") and row.calls == 2
        assert store.totals("production", "2026-11-02").amount == Decimal("2.00")
        assert {line.source for line in store.billed_lines(BilledQuery(DAY, DAY))} == {"dashboard", "invoice"}


def test_fail_on_discrepancy_and_the_formats(ledger: str, tmp_path: Path) -> None:
    invoke("record", "--provider", "x_ai", "--amount", "5.00", "--date", "2026-11-02", "--ledger", ledger)
    window = ("--from", "2026-11-02", "--to", "2026-11-02", "--no-pull", "--ledger", ledger)
    failed = invoke("reconcile", *window, "--fail-on-discrepancy")
    assert failed.exit_code == 1
    assert "2026-11-02 x_ai under" in failed.stderr
    assert "under" in failed.stdout and "2.00" in failed.stdout and "5.00" in failed.stdout
    rows = list(csv.DictReader(io.StringIO(invoke("reconcile", *window, "--format", "csv").output)))
    assert rows[0]["level"] == "day" and rows[0]["difference"] == "-3.00" and rows[0]["relative"] == "-0.6"
    page = tmp_path / "r.html"
    written = invoke("reconcile", *window, "--format", "html", "-o", str(page))
    assert written.exit_code == 0 and page.read_text().startswith("<!doctype html>")
    assert "under" in page.read_text()
    relaxed = invoke("reconcile", *window, "--threshold", "70%", "--fail-on-discrepancy")
    assert relaxed.exit_code == 0, relaxed.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--threshold", "five"), "not a threshold"),
        (("--threshold", "150%"), "from 0% to below 100%"),
        (("--from", "2026-13-01"), "not a day"),
        (("--from", "2026-11-05", "--to", "2026-11-01"), "before --from"),
        (("--from", "2020-01-01", "--to", "2026-01-01"), "at most 400 days"),
        (("--every", "often"), "not a duration"),
    ],
)
def test_bad_options_are_named(ledger: str, args: tuple[str, ...], problem: str) -> None:
    result = invoke("reconcile", "--no-pull", "--ledger", ledger, *args)
    assert result.exit_code == 2 and problem in result.output, result.output


def test_each_run_is_stored_with_its_verdicts(ledger: str) -> None:
    invoke("record", "--provider", "x_ai", "--amount", "2.00", "--date", "2026-11-02", "--ledger", ledger)
    for _ in range(2):
        invoke("reconcile", "--from", "2026-11-02", "--to", "2026-11-02", "--no-pull", "--ledger", ledger)
    with SQLiteStore(ledger.removeprefix("sqlite://")) as store:
        runs = store.reconciliation_runs()
        (day,) = store.reconciled_days(BilledQuery(DAY, DAY))
    assert len(runs) == 2 and runs[0].finished_at >= runs[1].finished_at
    assert (day.provider, day.verdict, day.tracked, day.billed, day.run_id) == (
        "x_ai", "match", Decimal("2.00"), Decimal("2.00"), runs[0].run_id)  # fmt: skip
    assert runs[0].document["days"][0]["verdict"] == "match"


class FailingSource:
    """A billing source whose API refuses with a message echoing the key (as a careless proxy might)."""

    name = "openai_admin"
    providers = ("openai",)

    def pull(self, start_day: date, end_day: date) -> BilledPull:
        raise RuntimeError("401 from proxy: bad key sk-admin-SECRET-0123456789")


def test_a_failing_source_is_reported_without_its_key_and_the_run_goes_on(
    ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-SECRET-0123456789")
    with SQLiteStore(ledger.removeprefix("sqlite://")) as store:
        result = reconcile(store, start_day=DAY, end_day=DAY, sources=[FailingSource()], today=date(2026, 12, 1))
        stored = json.dumps(store.reconciliation_runs()[0].document)
    (summary,) = result.sources
    assert not summary.pulled and "401 from proxy" in summary.error
    assert "SECRET" not in summary.error and "SECRET" not in stored
    assert [day.provider for day in result.days] == ["x_ai"]


def test_a_missing_key_is_said_when_the_provider_is_named(ledger: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_ADMIN_KEY", "OPENAI_ADMIN_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    result = invoke("reconcile", "--provider", "openai", "--from", "2026-11-02", "--to", "2026-11-02", "--ledger",
                    ledger)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "source openai_admin not pulled: set $OPENAI_ADMIN_KEY" in result.output


def test_the_lambda_handler(ledger: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", ledger)
    invoke("record", "--provider", "x_ai", "--amount", "1.00", "--date", "2026-11-02", "--ledger", ledger)
    event = {"from": "2026-11-02", "to": "2026-11-03", "providers": ["x_ai"]}
    summary = lambda_handler(event, None)
    assert summary["verdicts"] == {"over": 1, "no bill yet": 1}
    assert summary["discrepancies"] == ["2026-11-02 x_ai over"]
    with pytest.raises(Exception, match="1 day\\(s\\) beyond the threshold"):
        lambda_handler({**event, "fail_on_discrepancy": True}, None)
    with pytest.raises(ValueError, match="unknown event key"):
        lambda_handler({"form": "2026-11-02"}, None)
    with SQLiteStore(ledger.removeprefix("sqlite://")) as store:
        assert len(store.reconciliation_runs()) == 2


def test_the_accounts_file_maps_accounts_to_environments_and_names_its_errors(tmp_path: Path) -> None:
    from otel_ai_cost.reconcile.accounts import AccountsFileError, load_accounts

    good = tmp_path / "accounts.yaml"
    good.write_text('accounts:\n  openai:\n    proj_a: production\n  anthropic:\n    "": staging\n')
    accounts = load_accounts(good)
    assert accounts.environment("openai", "proj_a") == "production"
    assert accounts.environment("anthropic", "") == "staging"
    assert accounts.environment("openai", "proj_z") == ""
    cases = (("acounts: {}\n", ":1: acounts: unknown key (did you mean 'accounts'?)"),
             ("accounts:\n  openai:\n    proj_a: production\n    proj_a: ci\n",
              ":4: accounts.openai.proj_a: duplicate account"),
             ("accounts: {openai: [\n", ":2: (yaml)"),  # not YAML: the file's own error, not a crash
             ("accounts:\n  openai:\n    proj_a: [1]\n", ":3: accounts.openai.proj_a: expected"))  # fmt: skip
    for text, where in cases:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(AccountsFileError) as raised:
            load_accounts(bad)
        assert f"{bad}{where}" in str(raised.value)
    result = invoke("reconcile", "--no-pull", "--accounts", str(bad))
    assert result.exit_code == 1 and f"{bad}:3:" in result.output


def test_a_figure_for_an_environment_is_compared_with_that_environment(ledger: str) -> None:
    invoke("record", "--provider", "x_ai", "--amount", "2.00", "--date", "2026-11-02", "-e", "production",
           "--ledger", ledger)  # fmt: skip
    result = invoke("reconcile", "--from", "2026-11-02", "--to", "2026-11-02", "--no-pull", "--format", "json",
                    "--ledger", ledger)  # fmt: skip
    (row,) = json.loads(result.output)["environments"]
    assert (row["environment"], row["tracked"], row["billed"], row["verdict"]) == ("production", "2.00", "2.00",
                                                                                   "match")  # fmt: skip


def test_every_keeps_running_after_a_failed_run(ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import otel_ai_cost.cli.reconcile as command

    runs: list[str] = []

    def once(*args: object) -> None:
        runs.append("run")
        if len(runs) == 1:
            raise StoreUnavailable("the ledger is down")

    def sleep(seconds: float) -> None:
        assert seconds == 3600
        if len(runs) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(command, "_once", once)
    monkeypatch.setattr(command.time, "sleep", sleep)
    heartbeat = tmp_path / "heartbeat"
    result = invoke("reconcile", "--every", "1h", "--heartbeat-file", str(heartbeat), "--ledger", ledger)
    assert runs == ["run", "run", "run"], result.exception
    assert "reconcile run failed: StoreUnavailable: the ledger is down" in result.stderr
    assert heartbeat.exists()
