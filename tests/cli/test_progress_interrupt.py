"""Long work on a terminal: a progress bar with counts and a rate (silent when standard error is not a terminal),
and Ctrl-C, which leaves the ledger consistent, says how far the work got and that re-running is safe (exit 130).
Also the `import` command as a group (`import FILE` and `import SUBCOMMAND ...`) and `record`'s message."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from otel_ai_cost.cli import main
from otel_ai_cost.cli.progress import ProgressReporter
from otel_ai_cost.cli.record import import_usage
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

JANUARY = datetime(2026, 1, 1, tzinfo=timezone.utc)


def usage_file(path: Path, count: int) -> Path:
    """`count` seed lines (usage.jsonl), each 0.0001 USD on 2026-01-30."""
    lines = (
        json.dumps({"timestamp": "2026-01-30T14:00:00Z", "service": "openai", "cost_usd": "0.0001", "note": str(n)})
        for n in range(1, count + 1)
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def ledger_with(path: Path, count: int) -> Path:
    with SQLiteStore(path) as store:
        store.write(
            [
                LedgerRecord(trace_id=f"{n:032x}", span_id=f"{n:016x}", timestamp=JANUARY + timedelta(seconds=n),
                             environment="production", service="svc", provider="openai", amount=Decimal("0.0001"))
                for n in range(1, count + 1)
            ]
        )  # fmt: skip
    return path


def consistent_count(path: Path) -> int:
    """The records in the ledger, after checking that its running totals and rollup say the same."""
    with SQLiteStore(path) as store:
        records = list(store.query(UsageQuery()))
        totals = store.totals("development", "2026-01")
        (row,) = store.aggregate(UsageQuery(), []) or [None]
    assert totals.calls == len(records) and totals.amount == Decimal("0.0001") * len(records)
    assert row is None or (row.calls, row.amount) == (len(records), totals.amount)
    return len(records)


def interrupt_at(monkeypatch: pytest.MonkeyPatch, done: int) -> None:
    """Ctrl-C (a KeyboardInterrupt) from inside the work, when its progress reaches `done`."""
    report = ProgressReporter.__call__

    def interrupting(self: ProgressReporter, count: int, total: int | None = None) -> None:
        report(self, count, total)
        if count >= done:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressReporter, "__call__", interrupting)


# -- progress -----------------------------------------------------------------------------------------------------


def test_progress_is_silent_off_a_terminal_and_shows_counts_and_a_rate_when_asked(tmp_path: Path):
    ledger = ledger_with(tmp_path / "l.db", 2_500)
    args = ["export", "jsonl", "--month", "2026-01", "-o", str(tmp_path), "--ledger", f"sqlite://{ledger}"]
    quiet = CliRunner().invoke(main, args)  # CliRunner's standard error is not a terminal
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.output
    shown = CliRunner().invoke(main, [*args, "--progress"])
    assert shown.exit_code == 0, shown.output
    assert "exporting 2026-01" in shown.stderr and "2500/2500" in shown.stderr and "records/s" in shown.stderr
    assert shown.stdout.startswith("wrote 2,500 records of 2026-01")  # the result alone on standard output

    usage = usage_file(tmp_path / "usage.jsonl", 700)
    imported = CliRunner().invoke(main, ["import", str(usage), "--ledger", f"sqlite://{ledger}", "--progress"])
    assert "700/700" in imported.stderr and "records/s" in imported.stderr
    assert imported.stdout == f"{usage}: 700 new, 0 already recorded\n"


def test_on_a_terminal_the_bar_is_drawn_unless_turned_off(tmp_path: Path):
    ledger = ledger_with(tmp_path / "l.db", 1_500)
    args = [sys.executable, "-m", "otel_ai_cost", "export", "jsonl", "--month", "2026-01", "-o", str(tmp_path),
            "--ledger", f"sqlite://{ledger}"]  # fmt: skip
    on_terminal = _stderr_on_a_terminal(args)
    assert "exporting 2026-01" in on_terminal and "1500/1500" in on_terminal and "records/s" in on_terminal
    assert _stderr_on_a_terminal([*args, "--no-progress"]) == ""


def _stderr_on_a_terminal(args: list[str]) -> str:
    """What the command writes to standard error when that is a terminal (a pseudo-terminal here)."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, env=env)
    os.close(terminal)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 10)
            if not ready:
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end closed: the command ended
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(controller)
        process.communicate(timeout=30)
    assert process.returncode == 0, seen
    return seen.decode("utf-8", "replace")


# -- Ctrl-C ---------------------------------------------------------------------------------------------------------


def test_ctrl_c_during_an_import_says_how_far_it_got_and_a_rerun_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    usage = usage_file(tmp_path / "usage.jsonl", 2_500)
    ledger = tmp_path / "l.db"
    args = ["import", str(usage), "--ledger", f"sqlite://{ledger}"]
    with monkeypatch.context() as patch:
        interrupt_at(patch, 1_000)  # after two batches of 500
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 130, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"{usage}: interrupted after 1000 of 2500 records (1000 new, 0 already recorded); the ledger is consistent.\n"
        "re-running the same import is safe: the records already written are recognised and change nothing\n"
    )
    assert consistent_count(ledger) == 1_000
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.stdout == f"{usage}: 1500 new, 1000 already recorded\n"
    assert consistent_count(ledger) == 2_500


def test_ctrl_c_while_checking_the_file_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    usage = usage_file(tmp_path / "usage.jsonl", 10)
    ledger = tmp_path / "l.db"

    def interrupted_read(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("otel_ai_cost.ledger.manual._read_numbered", interrupted_read)
    result = CliRunner().invoke(main, ["import", str(usage), "--ledger", f"sqlite://{ledger}"])
    assert result.exit_code == 130
    assert result.stderr == f"{usage}: interrupted before any record was written; re-running the same import is safe\n"
    with SQLiteStore(ledger) as store:
        assert list(store.query(UsageQuery())) == []


@pytest.mark.parametrize("progress", ["--progress", "--no-progress"])
def test_ctrl_c_during_an_export_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, progress: str):
    ledger = ledger_with(tmp_path / "l.db", 5_000)
    history = tmp_path / "history"
    history.mkdir()
    earlier = history / "usage-2026-01.jsonl"
    earlier.write_text("an earlier, complete archive\n")
    interrupt_at(monkeypatch, 2_000)
    args = ["export", "jsonl", "--month", "2026-01", "-o", str(history), "--ledger", f"sqlite://{ledger}", progress]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130, result.output
    of = " of 5,000" if progress == "--progress" else ""  # the total is counted for the bar only
    assert result.stderr.endswith(
        f"interrupted after 2,000{of} records; the partial file was removed and {earlier} was not written (any "
        "earlier archive of that name is unchanged). The ledger is only read by an export: re-running it is safe.\n"
    ), result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in history.iterdir()) == ["usage-2026-01.jsonl"]  # no temporary file left
    assert earlier.read_text() == "an earlier, complete archive\n"


def test_a_real_sigint_stops_an_import_between_whole_batches(tmp_path: Path):
    """The real thing: SIGINT to a running `otel-ai-cost import`, once its first records are in the ledger."""
    usage = usage_file(tmp_path / "usage.jsonl", 4_000)
    ledger = tmp_path / "l.db"
    args = [sys.executable, "-m", "otel_ai_cost", "import", str(usage), "--ledger", f"sqlite://{ledger}"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline and _records_in(ledger) == 0:
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, (stdout, stderr)
    assert stdout == "" and "Traceback" not in stderr
    assert "re-running the same import is safe" in stderr
    (done,) = [int(word) for word in stderr.split(" of 4000 records")[0].split() if word.isdigit()][-1:]
    written = consistent_count(ledger)
    assert 0 < written < 4_000 and written % 500 == 0  # whole batches, each with its running totals
    assert done in (written, written - 500)  # the batch committing as the signal came may not be counted yet
    with SQLiteStore(ledger) as store:
        from otel_ai_cost.ledger.manual import import_usage_file

        again = import_usage_file(store, usage)
    assert (again.new, again.already_recorded) == (4_000 - written, written)
    assert consistent_count(ledger) == 4_000


def _records_in(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"{ledger.resolve().as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are being created
        return 0


# -- `import` as a group; `record`'s message --------------------------------------------------------------------------


def test_import_dispatches_to_a_subcommand_and_still_imports_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    package = tmp_path / "extra_importers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "demo.py").write_text(
        textwrap.dedent(
            '''
            import click

            @click.command()
            @click.option("--file", required=True)
            def demo(file):
                """Import a demo file."""
                click.echo(f"demo importer read {file}")
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(import_usage, "commands", dict(import_usage.commands))
    monkeypatch.setitem(import_usage.lazy_subcommands, "demo", ("extra_importers.demo", "demo"))
    monkeypatch.setitem(import_usage.lazy_subcommands, "absent", ("extra_importers.not_written_yet", "absent"))

    help_text = CliRunner().invoke(main, ["import", "--help"], prog_name="otel-ai-cost").output
    assert "Usage: otel-ai-cost import [OPTIONS] FILE" in help_text
    assert "or: otel-ai-cost import COMMAND [ARGS]..." in help_text
    assert re.search(r"\n  demo +Import a demo file\.\n", help_text), help_text
    assert "absent" not in help_text  # a subcommand whose module does not exist is not listed
    sub_help = CliRunner().invoke(main, ["import", "demo", "--help"], prog_name="otel-ai-cost").output
    assert sub_help.startswith("Usage: otel-ai-cost import demo [OPTIONS]\n"), sub_help
    sub = CliRunner().invoke(main, ["import", "demo", "--file", "EXECUTION_FILE"])
    assert sub.exit_code == 0 and sub.output == "demo importer read EXECUTION_FILE\n", sub.output

    usage = usage_file(tmp_path / "usage.jsonl", 3)
    ledger = tmp_path / "l.db"
    as_file = CliRunner().invoke(main, ["import", str(usage), "--ledger", f"sqlite://{ledger}", "-e", "staging"])
    assert as_file.exit_code == 0 and as_file.stdout == f"{usage}: 3 new, 0 already recorded\n", as_file.output
    options_first = CliRunner().invoke(
        main, ["import", "-e", "staging", "--no-progress", "--ledger", f"sqlite://{ledger}", str(usage)]
    )
    assert options_first.stdout == f"{usage}: 0 new, 3 already recorded\n", options_first.output
    extra = CliRunner().invoke(main, ["import", str(usage), "other.jsonl"])
    assert extra.exit_code == 2 and "unexpected extra argument (other.jsonl)" in extra.output


def test_record_names_the_ledger_by_its_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    args = ["record", "--provider", "anthropic", "--amount", "20", "--date", "2026-01-29", "--source", "subscription"]
    given = f"sqlite://{tmp_path}/given.db"
    result = CliRunner().invoke(main, [*args, "--ledger", given])
    assert result.exit_code == 0, result.output
    assert f" in {given}: id " in result.output and "SQLiteStore" not in result.output

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("OTEL_AI_COST_LEDGER", raising=False)
    default = CliRunner().invoke(main, args)
    assert default.exit_code == 0, default.output
    assert f" in sqlite://{tmp_path}/data/otel-ai-cost/usage.db: id " in default.output
    assert "SQLiteStore" not in default.output
