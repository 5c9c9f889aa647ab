"""`otel-ai-cost export focus`: a FOCUS 1.2 dataset of the tracked and the billed cost, CSV and Parquet, checked by
our assertions AND by the FinOps Foundation's own validator (`focus-validator` 1.0.0 from PyPI).

**The validator** lives in a venv of its own (a session fixture; created once under `$XDG_CACHE_HOME` or
`~/.cache`, reused while it works): it pins numpy<2, pandas<3, pandera 0.17 and sqlglot 18, which the main
environment cannot hold. Two more pins make it run at all: `multimethod<2` (pandera 0.17 imports
`multimethod.overload`, gone in 2.0) and `pyarrow<26` (its Parquet reader; pyarrow 26 needs numpy 2).

What it can check, and what it cannot (read from its source, `focus_validator/`):
- Its newest rule set is "1.0" (`--supported-versions`: 0.5, 1.0, 1.0-preview); it knows no 1.2. That set is not
  quite FOCUS 1.0 as ratified: it names four columns by their pre-1.0 names (`Provider`, `Publisher`,
  `InvoiceIssuer`, `ResourceID`, where 1.0 and 1.2 say `ProviderName`, `PublisherName`, `InvoiceIssuerName`,
  `ResourceId`), and it requires every column it knows, conditional ones too (ListUnitPrice, SkuId, the
  commitment-discount columns, ...), which 1.2 asks for only when the charge has them.
- So the file we write (1.2, as users get it, byte for byte) is validated against the 1.0 rules with an override
  file that skips exactly the rules of the columns it cannot have: those 1.2 names otherwise, and the conditional
  ones an AI API's charges do not have (`OMITTED`). Every rule of every other column runs and must pass: the
  mandatory columns' presence, types (decimal, UTC date-time, ISO currency code, JSON object), nullability and
  allowed values. The renamed columns' values (non-null strings, all that its rules ask of them) are checked by our
  own assertions instead.
- It reads Parquet with pandas, which turns decimal128 columns into Python `Decimal` objects, and its decimal rule
  accepts float64 only; its override file cannot skip a type rule (it marks it skipped and runs it anyway). So on
  Parquet, the decimal-type rules of our decimal columns are the expected failures, and nothing else may fail; the
  same values pass those rules in the CSV file, and our test reads the Parquet types (decimal128) itself.
- Its command always exits 0; failure is in its report: the JUnit XML of `--output-type unittest` is parsed here.
- Its currency codes are read from a path relative to the working directory: it runs in its site-packages.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from otel_ai_cost.cli import main
from otel_ai_cost.contract import PricingStatus, RecordSource
from otel_ai_cost.exports.focus import COLUMNS, csv_text, focus_dataset, write_focus
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import AggregateRow
from otel_ai_cost.reconcile.billed import BilledLine, BilledPull

VALIDATOR_VERSION = "1.0.0"
RULES_VERSION = "1.0"  # its newest
VALIDATOR_PINS = (f"focus-validator=={VALIDATOR_VERSION}", "multimethod<2", "pyarrow<26")
# Columns the validator's 1.0 rules know and our 1.2 file does not have, and why.
RENAMED = {"Provider": "ProviderName", "Publisher": "PublisherName", "InvoiceIssuer": "InvoiceIssuerName",
           "ResourceID": "ResourceId"}  # fmt: skip
OMITTED = {  # 1.2: conditional; an AI API charge per token has none of them (and no single unit price per row)
    "AvailabilityZone", "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "ContractedUnitPrice", "ListUnitPrice", "RegionId",
    "RegionName", "ResourceName", "ResourceType", "SkuId", "SkuPriceId", *RENAMED,
}  # fmt: skip
DECIMALS = [column.name for column in COLUMNS if column.kind == "decimal"]
FOCUS_DECIMALS = [name for name in DECIMALS if not name.startswith("x_")]

START, END = date(2026, 1, 5), date(2026, 1, 7)


# --- the validator -----------------------------------------------------------------------------------------------


@dataclass
class Validator:
    bin: Path
    site_packages: Path
    rules: dict[str, str]  # check id -> column, of the rule set RULES_VERSION

    def run(self, data: Path, tmp: Path, skip: set[str] = frozenset()) -> Report:
        overrides = tmp / f"{data.name}.overrides.yaml"
        overrides.write_text("overrides:\n" + "".join(f"  - {check}\n" for check in sorted(skip)) if skip else "")
        report = tmp / f"{data.name}.report.xml"
        report.unlink(missing_ok=True)
        command = [str(self.bin / "focus-validator"), "--data-file", str(data), "--validate-version", RULES_VERSION,
                   "--output-type", "unittest", "--output-destination", str(report)]  # fmt: skip
        if skip:
            command += ["--override-file", str(overrides)]
        done = subprocess.run(command, cwd=self.site_packages, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and report.exists(), f"focus-validator crashed:\n{done.stdout}\n{done.stderr}"
        return Report.parse(report)

    def skipped_for_csv(self) -> set[str]:
        return {check for check, column in self.rules.items() if column in OMITTED}


@dataclass
class Report:
    passed: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # check id -> the validator's message
    skipped: set[str] = field(default_factory=set)
    errored: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, path: Path) -> Report:
        report = cls()
        for case in ET.parse(path).getroot().iter("testcase"):
            check = case.get("name", "").split(" :: ")[0]
            if (failure := case.find("failure")) is not None:
                report.failed[check] = failure.get("message", "")
            elif (error := case.find("error")) is not None:
                report.errored[check] = error.get("message", "")
            elif case.find("skipped") is not None:
                report.skipped.add(check)
            else:
                report.passed.add(check)
        return report

    def problems(self, validator: Validator, skipped: set[str], expected_failures: set[str] = frozenset()) -> list[str]:
        """Everything wrong with the report: any failure but the expected ones, any error, a rule skipped that we did
        not skip, or a rule of a column we write that did not run and pass."""
        problems = [f"{check} failed: {message}" for check, message in self.failed.items()
                    if check not in expected_failures]  # fmt: skip
        problems += [f"{check} errored: {message}" for check, message in self.errored.items()]
        problems += [f"{check} expected to fail, did not" for check in expected_failures - set(self.failed)]
        if self.skipped != skipped:
            problems.append(f"skipped {sorted(self.skipped ^ skipped)} differ from the overrides")
        ran = set(self.passed) | set(self.failed)
        problems += [f"{check} did not run" for check in set(validator.rules) - skipped - ran]
        return problems


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "otel-ai-cost-tests"


def _working(venv: Path) -> Path | None:
    """The venv's site-packages when its validator answers, with a Parquet reader; else None."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = ("import os, focus_validator, pandas.io.parquet as p; p.get_engine('pyarrow'); "
             "print(os.path.dirname(os.path.dirname(focus_validator.__file__)))")  # fmt: skip
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120)
    if found.returncode != 0:
        return None
    site = Path(found.stdout.strip())
    versions = subprocess.run([str(venv / "bin" / "focus-validator"), "--supported-versions"], cwd=site,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    return site if versions.returncode == 0 and RULES_VERSION in versions.stdout.split() else None


@pytest.fixture(scope="session")
def validator() -> Iterator[Validator]:
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / f"focus-validator-{VALIDATOR_VERSION}"
    with open(cache / f"{venv.name}.lock", "w") as lock:  # another test run may be creating it
        fcntl.flock(lock, fcntl.LOCK_EX)
        site = _working(venv)
        if site is None:
            steps = ([sys.executable, "-m", "venv", "--clear", str(venv)],
                     [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                      *VALIDATOR_PINS])  # fmt: skip
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=900)
                if done.returncode != 0:
                    pytest.fail(
                        f"cannot install the FOCUS validator: {step}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
                    )
            site = _working(venv)
            assert site is not None, "the FOCUS validator was installed but does not run"
    rules = {}
    for rule in (site / "focus_validator" / "rules" / "version_sets" / RULES_VERSION).glob("*.yaml"):
        text = rule.read_text(encoding="utf-8")
        check = re.search(r"^check_id:\s*(\S+)", text, re.MULTILINE)
        rules[check.group(1) if check else rule.stem] = re.search(r"^column_id:\s*(\S+)", text, re.MULTILINE)[1]
    assert len(rules) > 100, f"the validator's {RULES_VERSION} rule set looks empty: {len(rules)} rules"
    yield Validator(bin=venv / "bin", site_packages=site, rules=rules)


# --- a ledger with both sides --------------------------------------------------------------------------------------

_SPAN = 0


def _record(day: str, provider: str, model: str, amount: str | None, *, tokens: tuple[int, int] = (1000, 200),
            env: str = "production", service: str = "receipts", team: str = "search") -> LedgerRecord:  # fmt: skip
    global _SPAN
    _SPAN += 1
    return LedgerRecord(
        trace_id=f"{_SPAN:032x}",
        span_id=f"{_SPAN:016x}",
        timestamp=datetime.fromisoformat(f"{day}T12:00:00+00:00"),
        environment=env,
        service=service,
        provider=provider,
        request_model=model,
        response_model=model,
        operation="chat",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        amount=None if amount is None else Decimal(amount),
        pricing_status=PricingStatus.PRICED.value if amount is not None else PricingStatus.UNPRICED.value,
        team=team,
        record_source=RecordSource.SPAN.value,
    )


HAIKU_BEDROCK = "us.anthropic.claude-3-haiku-20240307-v1:0"
RECORDS = [
    _record("2026-01-04", "openai", "gpt-4o-mini", "1.00"),  # the day before the window
    _record("2026-01-05", "openai", "gpt-4o-mini", "0.00027"),
    _record("2026-01-05", "openai", "gpt-4o-mini", "0.000135"),
    _record("2026-01-05", "anthropic", "claude-sonnet-4", "0.0105"),
    _record("2026-01-05", "anthropic", "claude-sonnet-4", None),  # unpriced: unknown cost
    _record("2026-01-06", "anthropic", "claude-haiku-3", None, team="ops"),  # unknown cost, and nothing else
    _record("2026-01-06", "aws.bedrock", HAIKU_BEDROCK, "0.0025"),
    _record("2026-01-07", "google_places", "legacy_text_search", "0.032", tokens=(0, 0)),
    _record("2026-01-08", "anthropic", "claude-sonnet-4", "2.00"),  # the day after the window
]
OPENAI_LINES = [
    BilledLine("openai", START, "openai_admin", "gpt-4o-mini-2024-07-18, input", Decimal("0.00030"),
               account="proj_abc", model="gpt-4o-mini", token_class="input", quantity=Decimal(2000), unit="tokens"),
    BilledLine("openai", START, "openai_admin", "gpt-4o-mini-2024-07-18, output", Decimal("0.000120"),
               account="proj_abc", model="gpt-4o-mini", token_class="output", quantity=Decimal(400), unit="tokens"),
]  # fmt: skip
AWS_LINES = [
    BilledLine("aws.bedrock", date(2026, 1, 6), "aws_cost_explorer", "USE1-Claude3Haiku-input-tokens",
               Decimal("0.0024"), account="123456789012", model=HAIKU_BEDROCK, token_class="input",
               quantity=Decimal(9600), unit="tokens"),
    BilledLine("aws.bedrock", date(2026, 1, 6), "aws_cost_explorer", "Credit: promotional", Decimal("-0.0004"),
               account="123456789012"),
]  # fmt: skip
BY_HAND = [
    BilledLine("openai", START, "dashboard", "dashboard figure (all models)", Decimal("0.0005")),  # the API's wins
    BilledLine("x_ai", date(2026, 1, 6), "dashboard", "dashboard figure (all models)", Decimal("2.50")),
]
# Each provider's day once: openai's API bill, anthropic's estimates (no bill; lower bounds), AWS's bill (credit
# included), xAI's dashboard figure, the Places estimate.
BILLED_COST_TOTAL = Decimal("0.00042") + Decimal("0.0105") + Decimal("0.0020") + Decimal("2.50") + Decimal("0.032")


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path)
    try:
        store.write(RECORDS)
        store.replace_billed(BilledPull("openai_admin", START, END, lines=OPENAI_LINES))
        outside = BilledLine("openai", date(2026, 1, 8), "openai_admin", "gpt-4o-mini, input", Decimal("5.00"))
        store.replace_billed(BilledPull("openai_admin", date(2026, 1, 8), date(2026, 1, 8), lines=[outside]))
        store.replace_billed(BilledPull("aws_cost_explorer", START, END, lines=AWS_LINES))
        store.write_billed(BY_HAND)
    finally:
        store.close()
    return f"sqlite://{path}"


def _export(ledger: str, output: Path, *extra: str) -> str:
    result = CliRunner().invoke(
        main, ["export", "focus", "--from", str(START), "--to", str(END), "-o", str(output), "--ledger", ledger, *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def _find(rows: list[dict], **match: object) -> dict:
    found = [row for row in rows if all(row[key] == value for key, value in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


# --- the exported files, from a SQLite ledger --------------------------------------------------------------------


def test_csv_from_the_ledger_has_every_row_once_with_exact_amounts(ledger: str, tmp_path: Path) -> None:
    output = _export(ledger, tmp_path / "january.csv")
    rows = _csv_rows(tmp_path / "january.csv")
    assert list(rows[0]) == [column.name for column in COLUMNS]
    assert "wrote 11 FOCUS 1.2 rows (5 tracked, 6 billed)" in output
    assert Decimal(re.search(r"BilledCost sums to (\S+) USD", output)[1]) == BILLED_COST_TOTAL

    # No day outside the window: neither the records of Jan 4 and 8 nor the bill of Jan 8.
    assert {row["ChargePeriodStart"] for row in rows} == {"2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z",
                                                           "2026-01-07T00:00:00Z"}  # fmt: skip
    assert "5.00" not in {row["x_Amount"] for row in rows}
    # Money is exact decimal text, in plain notation with a point; sums are exact.
    for row in rows:
        for name in DECIMALS:
            assert row[name] == "" or re.fullmatch(r"-?\d+\.\d+", row[name]), (name, row[name])
    assert sum(Decimal(row["BilledCost"]) for row in rows) == BILLED_COST_TOTAL
    assert all(row[name] == row["BilledCost"] for row in rows for name in ("EffectiveCost", "ListCost",
                                                                             "ContractedCost"))  # fmt: skip

    # OpenAI's day: its API bill counts; the dashboard figure and the tracked estimate are kept, at BilledCost 0.
    billed_input = _find(rows, x_BillingSource="openai_admin", x_TokenClass="input")
    assert Decimal(billed_input["BilledCost"]) == Decimal("0.00030")
    assert (billed_input["ConsumedQuantity"], billed_input["ConsumedUnit"]) == ("2000.0", "Tokens")
    assert (billed_input["PricingQuantity"], billed_input["PricingUnit"]) == ("0.002000", "1000000 Tokens")
    assert (billed_input["SubAccountId"], billed_input["x_CostSource"], billed_input["x_CountedInBilledCost"]) == (
        "proj_abc", "billed", "true")  # fmt: skip
    dashboard = _find(rows, x_GenAIProviderName="openai", x_BillingSource="dashboard")
    assert (dashboard["BilledCost"], dashboard["x_SupersededBy"]) == ("0.0", "openai_admin")
    assert Decimal(dashboard["x_Amount"]) == Decimal("0.0005")
    tracked = _find(rows, x_GenAIProviderName="openai", x_CostSource="tracked")
    assert (tracked["BilledCost"], tracked["x_Amount"], tracked["x_CountedInBilledCost"]) == ("0.0", "0.000405",
                                                                                               "false")  # fmt: skip
    assert (tracked["x_Calls"], tracked["ConsumedQuantity"], tracked["x_InputTokens"]) == ("2", "2400.0", "2000")
    assert tracked["Tags"] == '{"environment":"production","service":"receipts","team":"search"}'
    assert (tracked["ChargePeriodEnd"], tracked["BillingPeriodStart"], tracked["BillingPeriodEnd"]) == (
        "2026-01-06T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")  # fmt: skip

    # Anthropic: no bill, so the estimates count; calls of unknown cost make each a lower bound, never a silent $0.
    partly = _find(rows, x_GenAIProviderName="anthropic", ChargePeriodStart="2026-01-05T00:00:00Z")
    assert (partly["BilledCost"], partly["x_CostIsLowerBound"], partly["x_UnknownCostCalls"]) == ("0.0105", "true",
                                                                                                   "1")  # fmt: skip
    unknown = _find(rows, x_GenAIProviderName="anthropic", ChargePeriodStart="2026-01-06T00:00:00Z")
    assert (unknown["BilledCost"], unknown["x_CostIsLowerBound"], unknown["x_UnknownCostCalls"]) == ("0.0", "true",
                                                                                                     "1")  # fmt: skip
    assert "1 of unknown cost (the amount is a lower bound)" in unknown["ChargeDescription"]
    assert unknown["x_CountedInBilledCost"] == "true"

    # Bedrock: AWS sells and invoices, Anthropic made the model; the credit is a Credit row without a quantity.
    bedrock = _find(rows, x_GenAIProviderName="aws.bedrock", x_CostSource="tracked")
    assert (bedrock["ProviderName"], bedrock["PublisherName"], bedrock["InvoiceIssuerName"]) == ("AWS", "Anthropic",
                                                                                                 "AWS")  # fmt: skip
    assert (bedrock["BilledCost"], bedrock["x_SupersededBy"]) == ("0.0", "aws_cost_explorer")
    credit = _find(rows, ChargeCategory="Credit")
    assert (Decimal(credit["BilledCost"]), credit["ConsumedQuantity"], credit["PricingQuantity"]) == (
        Decimal("-0.0004"), "", "")  # fmt: skip
    # A per-request API: counted in requests; not an AI service.
    places = _find(rows, x_GenAIProviderName="google_places")
    assert (places["ConsumedQuantity"], places["ConsumedUnit"], places["ServiceCategory"]) == ("1.0", "Requests",
                                                                                               "Web")  # fmt: skip
    # The columns the validator knows only by older names: non-null strings on every row.
    for name in ("ProviderName", "PublisherName", "InvoiceIssuerName"):
        assert all(row[name] for row in rows), name


def test_parquet_from_the_ledger_has_decimal128_columns_and_the_same_exact_values(ledger: str, tmp_path: Path) -> None:
    _export(ledger, tmp_path / "january.csv")
    _export(ledger, tmp_path / "january.parquet")
    table = pq.read_table(tmp_path / "january.parquet")
    assert table.schema.names == [column.name for column in COLUMNS]
    for name in DECIMALS:
        assert table.schema.field(name).type == pa.decimal128(38, 18), name
    assert table.schema.field("ChargePeriodStart").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("x_Calls").type == pa.int64()
    assert table.schema.metadata[b"focus_version"] == b"1.2"

    parquet = table.to_pylist()
    text = _csv_rows(tmp_path / "january.csv")
    assert len(parquet) == len(text) == 11
    for got, written in zip(parquet, text, strict=True):
        for name in DECIMALS:
            assert got[name] == (Decimal(written[name]) if written[name] else None), name
            assert got[name] is None or isinstance(got[name], Decimal)
        assert got["ChargePeriodStart"].strftime("%Y-%m-%dT%H:%M:%SZ") == written["ChargePeriodStart"]
        assert (got["x_CostSource"], got["Tags"] or "") == (written["x_CostSource"], written["Tags"])
    assert sum(row["BilledCost"] for row in parquet) == BILLED_COST_TOTAL
    lower = [row for row in parquet if row["x_CostIsLowerBound"]]
    assert [(row["BilledCost"], row["x_UnknownCostCalls"]) for row in lower] == [(Decimal("0.0105"), 1), (0, 1)]


def test_the_foundations_validator_passes_both_files(ledger: str, tmp_path: Path, validator: Validator) -> None:
    _export(ledger, tmp_path / "january.csv")
    _export(ledger, tmp_path / "january.parquet")
    skipped = validator.skipped_for_csv()
    assert {validator.rules[check] for check in skipped} == OMITTED  # the validator still knows each of them

    csv_report = validator.run(tmp_path / "january.csv", tmp_path, skipped)
    assert csv_report.problems(validator, skipped) == []
    assert len(csv_report.passed) >= 75, sorted(csv_report.passed)  # the mandatory columns' rules all ran

    parquet_report = validator.run(tmp_path / "january.parquet", tmp_path, skipped)
    decimal_type_rules = {f"{name}_IsDecimal" for name in FOCUS_DECIMALS}
    assert decimal_type_rules <= set(validator.rules)
    assert parquet_report.problems(validator, skipped, expected_failures=decimal_type_rules) == []
    assert decimal_type_rules <= csv_report.passed  # the same values, as CSV


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_broken_file_fails_the_validator(ledger: str, tmp_path: Path, validator: Validator, suffix: str) -> None:
    """The check above can fail: a file with a mandatory column missing, a service category the spec does not
    have and a date without a time is reported, each break by its rule."""
    good = tmp_path / f"january{suffix}"
    _export(ledger, good)
    broken = tmp_path / f"broken{suffix}"
    if suffix == ".csv":
        rows = _csv_rows(good)
        rows[0]["ServiceCategory"] = "Artificial Intelligence"
        rows[1]["ChargePeriodStart"] = "2026-01-05"
        names = [name for name in rows[0] if name != "BilledCost"]
        with broken.open("w", encoding="utf-8", newline="") as stream:
            writer = csv.DictWriter(stream, names, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        table = pq.read_table(good)
        categories = table.column("ServiceCategory").to_pylist()
        starts = [value.strftime("%Y-%m-%d") if index == 1 else value.strftime("%Y-%m-%dT%H:%M:%SZ")
                  for index, value in enumerate(table.column("ChargePeriodStart").to_pylist())]  # fmt: skip
        table = table.set_column(table.schema.get_field_index("ServiceCategory"), "ServiceCategory",
                                 pa.array(["Artificial Intelligence", *categories[1:]]))  # fmt: skip
        table = table.set_column(table.schema.get_field_index("ChargePeriodStart"), "ChargePeriodStart",
                                 pa.array(starts))  # fmt: skip
        pq.write_table(table.drop_columns(["BilledCost"]), broken)
    skipped = validator.skipped_for_csv()
    expected = (
        {f"{name}_IsDecimal" for name in FOCUS_DECIMALS if name != "BilledCost"} if suffix == ".parquet" else set()
    )
    problems = validator.run(broken, tmp_path, skipped).problems(validator, skipped, expected_failures=expected)
    failed = {problem.split(" ")[0] for problem in problems}
    assert {"BilledCost_Required", "ServiceCategory_Enum", "ChargePeriodStart_IsDateTime"} <= failed, problems


def test_the_datadog_recipe_in_the_docs_uploads_each_counted_row_once(ledger: str, tmp_path: Path) -> None:
    """docs/focus.md's script turns the CSV into Datadog Custom Costs JSON: counted rows only, no blank values,
    inclusive end days."""
    _export(ledger, tmp_path / "january.csv")
    docs = (Path(__file__).parents[2] / "docs" / "focus.md").read_text(encoding="utf-8")
    script = re.search(r"```python\n(# python3 to_datadog.py.*?)```", docs, re.DOTALL)[1]
    (tmp_path / "to_datadog.py").write_text(script, encoding="utf-8")
    done = subprocess.run([sys.executable, str(tmp_path / "to_datadog.py"), str(tmp_path / "january.csv")],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    items = json.loads(done.stdout)
    assert len(items) == 8  # openai's 2 API lines, anthropic's 2 estimates, AWS's 2 lines, xAI's figure, Places
    assert all(value not in ("", None) for item in items for value in item.values())
    assert {(item["ChargePeriodStart"], item["ChargePeriodEnd"]) for item in items} == {
        ("2026-01-05", "2026-01-05"), ("2026-01-06", "2026-01-06"), ("2026-01-07", "2026-01-07")}  # fmt: skip
    assert math.isclose(sum(item["BilledCost"] for item in items), float(BILLED_COST_TOTAL), rel_tol=1e-12)
    estimate = next(item for item in items if item["Tags"]["cost_source"] == "tracked")
    assert estimate["Tags"]["environment"] == "production" and estimate["Tags"]["model"]


# --- the command's errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-01-32", "--to", "2026-01-31", "-o", "x.csv"], "a UTC day YYYY-MM-DD, got '2026-01-32'"),
        (["--from", "2026-01-05", "--to", "yesterday", "-o", "x.csv"], "a UTC day YYYY-MM-DD, got 'yesterday'"),
        (["--from", "2026-01-07", "--to", "2026-01-05", "-o", "x.csv"], "--from 2026-01-07 is after --to 2026-01-05"),
        (["--from", "2026-01-05", "--to", "2026-01-07", "-o", "x.xlsx"], "name it .csv or .parquet, or give --format"),
        (["--from", "2026-01-05", "--to", "2026-01-07", "-o", "x.csv", "--format", "parquet"],
         "--format parquet contradicts the file name"),
        (["--from", "2026-01-05", "--to", "2026-01-07", "-o", "no/such/dir/x.csv"], "does not exist"),
    ],
)  # fmt: skip
def test_bad_arguments_are_clear_errors_and_write_nothing(
    ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "focus", *args, "--ledger", ledger])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ledger.db"]


def test_format_option_names_the_format_of_a_file_without_a_known_suffix(ledger: str, tmp_path: Path) -> None:
    _export(ledger, tmp_path / "focus.dat", "--format", "csv")
    assert len(_csv_rows(tmp_path / "focus.dat")) == 11


def test_a_ledger_that_does_not_exist_is_an_error_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = CliRunner().invoke(main, ["export", "focus", "--from", "2026-01-05", "--to", "2026-01-07", "-o",
                                       str(tmp_path / "x.csv"), "--ledger", f"sqlite://{missing}"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert not missing.exists() and not (tmp_path / "x.csv").exists()


# --- the rows, from lists ----------------------------------------------------------------------------------------


def _row(day: str, provider: str, model: str, amount: str, *, calls: int = 1, unknown: int = 0) -> AggregateRow:
    group = (("day", day), ("provider", provider), ("model", model), ("environment", ""), ("service", "svc"),
             ("team", ""), ("pricing_tier", ""), ("record_source", "span"), ("cost_source", "local"))  # fmt: skip
    return AggregateRow(group=group, amount=Decimal(amount), calls=calls, unpriced_calls=unknown, input_tokens=10,
                        output_tokens=5, cache_read_input_tokens=0, cache_write_input_tokens=0,
                        reasoning_output_tokens=0, unknown_cost_calls=unknown)  # fmt: skip


def test_a_monthly_invoice_counts_for_its_whole_month_and_only_when_the_window_covers_it() -> None:
    invoice = BilledLine("perplexity", date(2026, 2, 1), "invoice", "invoice figure (all models, month)",
                         Decimal("40.00"), period="month")  # fmt: skip
    dashboard = BilledLine("perplexity", date(2026, 2, 3), "dashboard", "dashboard figure", Decimal("1.25"))
    tracked = [_row("2026-02-03", "perplexity", "sonar", "1.20"), _row("2026-02-28", "perplexity", "sonar", "0.80")]

    whole = focus_dataset(tracked, [invoice, dashboard], start_day=date(2026, 2, 1), end_day=date(2026, 2, 28))
    counted = [row for row in whole.rows if row["x_CountedInBilledCost"]]
    assert [(row["x_BillingSource"], row["BilledCost"]) for row in counted] == [("invoice", Decimal("40.00"))]
    assert (counted[0]["ChargePeriodStart"], counted[0]["ChargePeriodEnd"]) == (
        datetime(2026, 2, 1, tzinfo=timezone.utc), datetime(2026, 3, 1, tzinfo=timezone.utc))  # fmt: skip
    assert {row["x_SupersededBy"] for row in whole.rows if not row["x_CountedInBilledCost"]} == {"invoice"}
    assert whole.billed_cost == Decimal("40.00") and whole.notes == []

    part = focus_dataset(tracked, [invoice, dashboard], start_day=date(2026, 2, 1), end_day=date(2026, 2, 14))
    assert "invoice" not in {row["x_BillingSource"] for row in part.rows}
    assert part.notes == ["the invoice figure of perplexity for 2026-02 is left out: the window 2026-02-01..2026-02-14 "
                          "covers only part of that month"]  # fmt: skip
    assert part.billed_cost == Decimal("1.25")  # the dashboard figure of Feb 3; Feb 28 is outside the window


def test_dashboard_figures_kept_as_ledger_records_are_billed_rows_not_tracked_spend() -> None:
    group = (("day", "2026-01-05"), ("provider", "x_ai"), ("model", ""), ("record_source", "manual"),
             ("cost_source", "dashboard"))  # fmt: skip
    legacy = AggregateRow(group=group, amount=Decimal("3.10"), calls=1, unpriced_calls=0,
                          input_tokens=0, output_tokens=0, cache_read_input_tokens=0, cache_write_input_tokens=0,
                          reasoning_output_tokens=0)  # fmt: skip
    dataset = focus_dataset([legacy, _row("2026-01-05", "x_ai", "grok-4", "3.00")], [], start_day=START, end_day=END)
    rows = {row["x_CostSource"]: row for row in dataset.rows}
    assert (rows["billed"]["x_BillingSource"], rows["billed"]["BilledCost"]) == ("dashboard", Decimal("3.10"))
    assert (rows["tracked"]["BilledCost"], rows["tracked"]["x_SupersededBy"]) == (Decimal(0), "dashboard")


def test_csv_decimals_keep_every_digit_and_always_have_a_point() -> None:
    tracked = [_row("2026-01-05", "openai", "gpt-4o", "12"), _row("2026-01-06", "openai", "gpt-4o",
                                                                   "0.000000000000000001234")]  # fmt: skip
    text = csv_text(focus_dataset(tracked, [], start_day=START, end_day=END))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["BilledCost"] for row in rows] == ["12.0", "0.000000000000000001234"]


def test_parquet_refuses_a_value_it_cannot_hold_exactly(tmp_path: Path) -> None:
    tracked = [_row("2026-01-05", "openai", "gpt-4o", "0.000000000000000001234")]  # 21 places: more than 18
    with pytest.raises(ValueError, match=r"BilledCost: a value does not fit Parquet decimal128\(38, 18\) exactly"):
        write_focus(focus_dataset(tracked, [], start_day=START, end_day=END), tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []  # no half file, no temporary left behind
