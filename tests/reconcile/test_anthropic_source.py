"""The Anthropic billing source through the real `anthropic` client, against the stand-in's Admin API reports.

Prices (USD per million tokens, the shipped catalog): claude-haiku-4-5 input 1.00, output 5.00, cache read 0.10,
5-minute cache write 1.25, 1-hour cache write 2.00; claude-sonnet-4-5 input 3.00, output 15.00, and above 200k
input tokens 6.00 / 22.50 for the whole call; web search $10 per 1000.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import anthropic
import pytest

from otel_ai_cost.ledger.billed_bounds import validate_pull
from otel_ai_cost.reconcile.anthropic_costs import AnthropicBillingError, AnthropicCostReport
from otel_ai_cost.reconcile.billed import OTHER, AccountMap, MissingCredentials
from otel_ai_cost.stand_in import Answer, Scenario, StandInServer
from otel_ai_cost.stand_in import server as server_module
from otel_ai_cost.stand_in.anthropic_api import base_headers
from otel_ai_cost.stand_in.anthropic_billing import COST_PATH, COST_REPORT_PATH, USAGE_PATH, USAGE_REPORT_PATH
from otel_ai_cost.stand_in.billing_book import ServedUsage, today

ADMIN_KEY = "sk-ant-admin01-stand-in-secret-7c1f"
HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5"
MSGS = [{"role": "user", "content": "Label this receipt"}]
TODAY = today()


def day(offset: int) -> date:
    return TODAY - timedelta(days=offset)


def served(offset: int, model: str = HAIKU, **fields: object) -> ServedUsage:
    return ServedUsage(provider="anthropic", day=day(offset), model=model, **fields)  # type: ignore[arg-type]


@pytest.fixture
def admin(stand_in: StandInServer):
    client = anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key=ADMIN_KEY)
    yield client
    client.close()


def source(admin: anthropic.Anthropic, **options: object) -> AnthropicCostReport:
    return AnthropicCostReport(client=admin, **options)  # type: ignore[arg-type]


def by_token_class(lines) -> dict[tuple[date, str, str], Decimal]:
    return {(line.day, line.model, line.token_class): line.amount for line in lines}


# --- money ----------------------------------------------------------------------------------------------


def test_every_page_is_read_and_cents_convert_exactly(stand_in, admin):
    # 1,234,500 haiku input tokens = $1.2345, which the report says as "123.45" (cents).
    stand_in.billing.add(served(6, input_tokens=1_234_500))
    stand_in.billing.add(*(served(offset, account=f"wrkspc_{n}", input_tokens=1000, output_tokens=100)
                           for offset in (1, 2, 4) for n in range(3)))  # fmt: skip
    raw = list(admin.beta.organization.analytics.cost.list(
        starting_at=f"{day(6)}T00:00:00Z", ending_at=f"{day(5)}T00:00:00Z", time_bucket_width="1d",
        group_by=["model", "cost_type", "token_type"]))  # fmt: skip
    assert [row.cost.amount for row in raw] == ["123.45"]

    pull = source(admin, page_size=2).pull(day(6), day(0))

    assert (pull.source, pull.start_day, pull.end_day) == ("anthropic_admin", day(6), day(0))
    validate_pull(pull)  # the ledger can store it as it is: one row a key, inside its days, within bounds
    assert by_token_class(pull.lines)[(day(6), HAIKU, "input")] == Decimal("1.2345")
    # 9 workspace-days, each an input line ($0.001) and an output line ($0.0005); empty days have none.
    assert {line.day for line in pull.lines} == {day(6), day(4), day(2), day(1)}
    assert len(pull.lines) == 1 + 9 * 2
    assert sum(line.amount for line in pull.lines) == Decimal("1.2345") + 9 * Decimal("0.0015")
    assert {line.account for line in pull.lines} == {"", "wrkspc_0", "wrkspc_1", "wrkspc_2"}
    assert len({(line.day, line.account, line.line) for line in pull.lines}) == len(pull.lines)
    # 10 cost groups at 2 a page, 10 usage groups at 2 a page: every page was asked for.
    pages = [r for r in stand_in.requests_to(COST_PATH) if r.query.get("limit") == "2"]
    assert len(pages) == 5 and len(stand_in.requests_to(USAGE_PATH)) == 5
    assert pull.requests == 10 and pull.retries == 0
    first = pages[0]
    assert first.query["starting_at"] == f"{day(6)}T00:00:00Z"
    assert first.query["ending_at"] == f"{day(-1)}T00:00:00Z"
    assert [v for k, v in first.query_list if k == "group_by[]"] == [
        "workspace_id", "model", "service_tier", "context_window", "inference_geo", "cost_type", "token_type",
    ]  # fmt: skip


def test_lines_name_model_token_class_tier_and_workspace_environment(stand_in, admin):
    stand_in.billing.add(
        served(2, account="wrkspc_prod", input_tokens=3100, cache_read_input_tokens=2000,
               cache_write_5m_input_tokens=400, cache_write_1h_input_tokens=600, output_tokens=300),
        served(2, SONNET, input_tokens=1000, output_tokens=1000, tier="batch", web_search_requests=3),
    )  # fmt: skip
    accounts = AccountMap({"anthropic": {"wrkspc_prod": "production"}})

    pull = source(admin, account_map=accounts).pull(day(2), day(2))

    lines = {(line.account, line.model, line.token_class): line for line in pull.lines}
    assert {key: line.amount for key, line in lines.items()} == {
        ("wrkspc_prod", HAIKU, "input"): Decimal("0.0001"),
        ("wrkspc_prod", HAIKU, "cache_read"): Decimal("0.0002"),
        ("wrkspc_prod", HAIKU, "cache_write_5m"): Decimal("0.0005"),
        ("wrkspc_prod", HAIKU, "cache_write_1h"): Decimal("0.0012"),
        ("wrkspc_prod", HAIKU, "output"): Decimal("0.0015"),
        ("", SONNET, "input"): Decimal("0.0015"),  # batch: half price
        ("", SONNET, "output"): Decimal("0.0075"),
        ("", SONNET, "web_search"): Decimal("0.03"),
    }
    assert {line.environment for line in pull.lines if line.account == "wrkspc_prod"} == {"production"}
    assert {line.tier for line in pull.lines if line.model == SONNET} == {"batch"}
    write_1h = lines[("wrkspc_prod", HAIKU, "cache_write_1h")]
    assert write_1h.line == (
        "tokens, model=claude-haiku-4-5, token_type=cache_creation.ephemeral_1h_input_tokens, "
        "service_tier=standard, context_window=0-200k"
    )
    assert all(line.parsed and line.provider == "anthropic" and line.source == "anthropic_admin"
               for line in pull.lines)  # fmt: skip


def test_today_is_partial_and_earlier_days_final(stand_in, admin):
    stand_in.billing.add(served(1, input_tokens=1000), served(0, input_tokens=1000))
    pull = source(admin, today=lambda: TODAY).pull(day(1), day(0))
    assert {(line.day, line.final) for line in pull.lines} == {(day(1), True), (day(0), False)}
    assert {(entry.day, entry.final) for entry in pull.usage} == {(day(1), True), (day(0), False)}


def test_a_range_longer_than_31_days_is_read_in_windows(stand_in, admin):
    stand_in.billing.add(served(39, input_tokens=1000), served(0, input_tokens=2000))
    pull = source(admin).pull(day(39), day(0))
    assert by_token_class(pull.lines) == {(day(39), HAIKU, "input"): Decimal("0.001"),
                                          (day(0), HAIKU, "input"): Decimal("0.002")}  # fmt: skip
    windows = [(r.query["starting_at"], r.query["ending_at"]) for r in stand_in.requests_to(COST_PATH)]
    assert windows == [(f"{day(39)}T00:00:00Z", f"{day(8)}T00:00:00Z"), (f"{day(8)}T00:00:00Z", f"{day(-1)}T00:00:00Z")]


def test_unknown_cost_types_are_kept_as_other(stand_in, admin, monkeypatch):
    def group(**fields: object) -> dict[str, object]:
        return {"workspace_id": None, "model": None, "service_tier": None, "cost_type": None, "token_type": None,
                **fields}  # fmt: skip

    rows = [
        (group(cost_type="web_search", model=HAIKU), "250"),
        (group(cost_type="code_execution"), "5.5"),
        (group(cost_type="session_usage"), "1.25"),
        (group(cost_type="tokens", model=HAIKU, token_type="cache_creation.ephemeral_24h_input_tokens"), "0.5"),
    ]

    def canned(request, book):
        data = [{"starting_at": f"{day(3)}T00:00:00Z", "ending_at": f"{day(2)}T00:00:00Z", "group": g,
                 "cost": {"amount": amount, "currency": "USD", "list_amount": amount, "requests": None}}
                for g, amount in rows]  # fmt: skip
        return Answer(headers=base_headers(), body={"data": data, "has_more": False, "next_page": None})

    monkeypatch.setitem(server_module.BILLING_ROUTES, COST_PATH, ("anthropic", canned))

    pull = source(admin).pull(day(3), day(3))

    lines = {line.line: line for line in pull.lines}
    assert {(x.token_class, x.parsed, x.amount) for x in lines.values()} == {
        ("web_search", True, Decimal("2.50")),
        ("code_execution", True, Decimal("0.055")),
        (OTHER, False, Decimal("0.0125")),
        (OTHER, False, Decimal("0.005")),
    }
    assert lines["session_usage"].model == ""
    assert "tokens, model=claude-haiku-4-5, token_type=cache_creation.ephemeral_24h_input_tokens" in lines


def test_an_amount_that_is_not_a_number_of_cents_fails_loudly(stand_in, admin, monkeypatch):
    def canned(request, book):
        row = {"starting_at": f"{day(1)}T00:00:00Z", "ending_at": f"{day(0)}T00:00:00Z",
               "group": {"cost_type": "tokens", "token_type": "output_tokens", "model": HAIKU},
               "cost": {"amount": "NaN", "currency": "USD", "list_amount": "NaN"}}  # fmt: skip
        return Answer(headers=base_headers(), body={"data": [row], "has_more": False, "next_page": None})

    monkeypatch.setitem(server_module.BILLING_ROUTES, COST_PATH, ("anthropic", canned))
    with pytest.raises(AnthropicBillingError, match="not a decimal number of cents"):
        source(admin).pull(day(1), day(1))


def test_a_page_that_repeats_its_cursor_is_an_error_not_an_endless_loop(stand_in, admin, monkeypatch):
    def canned(request, book):
        body = {"data": [], "has_more": True, "next_page": "page_same"}
        return Answer(headers=base_headers(), body=body)

    monkeypatch.setitem(server_module.BILLING_ROUTES, COST_PATH, ("anthropic", canned))
    with pytest.raises(AnthropicBillingError, match="repeats a cursor"):
        source(admin).pull(day(1), day(1))
    assert len(stand_in.requests_to(COST_PATH)) == 2


# --- usage ----------------------------------------------------------------------------------------------


def test_usage_counts_cache_tokens_in_input_and_sets_workbench_usage_apart(stand_in, admin):
    stand_in.billing.add(
        served(1, input_tokens=3100, cache_read_input_tokens=2000, cache_write_5m_input_tokens=400,
               cache_write_1h_input_tokens=600, output_tokens=300, api_key_id="apikey_a"),
        served(1, input_tokens=1000, output_tokens=10, api_key_id="apikey_b"),
        served(1, input_tokens=500, output_tokens=50, api_key_id=None),  # Workbench
    )  # fmt: skip

    pull = source(admin).pull(day(1), day(1))

    rows = {entry.provider_side: entry for entry in pull.usage}
    assert set(rows) == {False, True} and len(pull.usage) == 2
    ours = rows[False]
    assert (ours.model, ours.account, ours.tier, ours.day) == (HAIKU, "", "standard", day(1))
    # The report says 1100 uncached (100 + 1000); the cache reads and writes (3000) are added back.
    counts = (ours.input_tokens, ours.cache_read_input_tokens, ours.cache_write_5m_input_tokens,
              ours.cache_write_1h_input_tokens, ours.output_tokens, ours.requests)  # fmt: skip
    assert counts == (4100, 2000, 400, 600, 310, 2)
    workbench = rows[True]
    assert (workbench.input_tokens, workbench.output_tokens, workbench.requests) == (500, 50, 1)
    assert all(entry.source == "anthropic_admin" for entry in pull.usage)


def test_priority_tier_usage_is_a_note_not_a_line(stand_in, admin):
    stand_in.billing.add(
        served(2, SONNET, input_tokens=12_000, output_tokens=345, tier="priority"),
        served(2, HAIKU, input_tokens=1000),
    )

    pull = source(admin).pull(day(2), day(2))

    assert {line.model for line in pull.lines} == {HAIKU}
    assert [(u.model, u.tier, u.input_tokens, u.output_tokens) for u in pull.usage if u.model == SONNET] == [
        (SONNET, "priority", 12_000, 345)
    ]
    assert len(pull.notes) == 1
    note = pull.notes[0]
    assert day(2).isoformat() in note and SONNET in note and "12,345" in note and "Priority Tier" in note


# --- retries and errors ---------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_after_the_wait_it_asks(stand_in, admin, caplog):
    stand_in.billing.add(served(1, input_tokens=1000))
    stand_in.push(Scenario(status=429, retry_after_ms=None, headers={"retry-after": "0.01"}), path=COST_PATH)
    stand_in.push(Scenario(status=503, retry_after_ms=20), path=USAGE_PATH)

    with caplog.at_level(logging.INFO, logger="anthropic"):
        pull = source(admin).pull(day(1), day(1))

    assert by_token_class(pull.lines) == {(day(1), HAIKU, "input"): Decimal("0.001")}
    assert len(pull.usage) == 1
    assert (pull.requests, pull.retries) == (4, 2)
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying request")]
    assert waits == [f"Retrying request to {COST_PATH} in 0.010000 seconds",
                     f"Retrying request to {USAGE_PATH} in 0.020000 seconds"]  # fmt: skip


def test_retries_are_bounded_and_the_error_never_shows_the_key(stand_in, monkeypatch, caplog):
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ADMIN_KEY)
    stand_in.push(*(Scenario(status=429) for _ in range(10)), path=COST_PATH)
    report = AnthropicCostReport(base_url=stand_in.anthropic_base_url, max_retries=3)

    with caplog.at_level(logging.DEBUG), pytest.raises(AnthropicBillingError) as raised:
        report.pull(day(1), day(1))

    message = str(raised.value)
    assert message.startswith("Anthropic cost report: HTTP 429, rate_limit_error: ")
    assert len(stand_in.requests_to(COST_PATH)) == 4  # one try and 3 retries, then it gives up
    assert stand_in.requests_to(COST_PATH)[0].headers["authorization"] == f"Bearer {ADMIN_KEY}"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    for text in (message, repr(raised.value), repr(report), caplog.text):
        assert ADMIN_KEY not in text


def test_missing_admin_key_is_reported_without_calling_the_api(stand_in, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_ADMIN_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_ADMIN_KEY_FILE", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api-not-an-admin-key")  # an inference key is not used instead
    with pytest.raises(MissingCredentials, match=r"\$ANTHROPIC_ADMIN_KEY \(or \$ANTHROPIC_ADMIN_KEY_FILE"):
        AnthropicCostReport(base_url=stand_in.anthropic_base_url).pull(day(1), day(1))
    assert stand_in.requests == []


def test_admin_key_file_is_read(stand_in, monkeypatch, tmp_path):
    secret = tmp_path / "anthropic-admin-key"
    secret.write_text(f"  {ADMIN_KEY}\n", encoding="utf-8")
    monkeypatch.delenv("ANTHROPIC_ADMIN_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY_FILE", str(secret))
    stand_in.billing.add(served(1, input_tokens=1000))

    pull = AnthropicCostReport(base_url=stand_in.anthropic_base_url).pull(day(1), day(1))

    assert [line.amount for line in pull.lines] == [Decimal("0.001")]
    assert {r.headers["authorization"] for r in stand_in.requests} == {f"Bearer {ADMIN_KEY}"}


# --- the stand-in bills what it served, at the catalog's prices -----------------------------------------


def test_served_calls_are_billed_at_the_price_the_instrumentation_gave_them(stand_in, admin, telemetry):
    client = anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="sk-ant-api-test", max_retries=0)
    stand_in.push(
        Scenario(input_tokens=100, cache_read_input_tokens=2000, cache_write_5m_input_tokens=400,
                 cache_write_1h_input_tokens=600, output_tokens=300),
        Scenario(input_tokens=60, cache_write_1h_input_tokens=500, output_tokens=90),  # streamed
        Scenario(input_tokens=1000, output_tokens=2000, thinking_tokens=1500, web_search_requests=3),
        Scenario(input_tokens=250_000, output_tokens=1000),  # long context: the whole call at the higher rates
        Scenario(input_tokens=1200, output_tokens=400, service_tier="batch"),
        path="/v1/messages",
    )  # fmt: skip
    client.messages.create(model=HAIKU, max_tokens=500, messages=MSGS)
    list(client.messages.create(model=HAIKU, max_tokens=500, messages=MSGS, stream=True))
    client.messages.create(model=SONNET, max_tokens=3000, messages=MSGS)
    client.messages.create(model=SONNET, max_tokens=3000, messages=MSGS)
    client.messages.create(model=HAIKU, max_tokens=500, messages=MSGS)
    client.messages.count_tokens(model=HAIKU, messages=MSGS)  # free: not on the bill

    tracked: dict[str, Decimal] = defaultdict(Decimal)
    tracked_input: dict[str, int] = defaultdict(int)
    for span in telemetry.spans():
        tracked[span.attributes["gen_ai.response.model"]] += Decimal(span.attributes["ai_cost.amount"])
        tracked_input[span.attributes["gen_ai.response.model"]] += span.attributes["gen_ai.usage.input_tokens"]

    pull = source(admin).pull(TODAY, TODAY)
    validate_pull(pull)

    billed: dict[str, Decimal] = defaultdict(Decimal)
    for line in pull.lines:
        billed[line.model] += line.amount
    assert billed == tracked
    # 100*1 + 2000*0.1 + 400*1.25 + 600*2 + 300*5 + 60*1 + 500*2 + 90*5 + (1200*1 + 400*5)/2 = 6610 per 1M
    assert billed[HAIKU] == Decimal("0.00661")
    assert {line.token_class for line in pull.lines if line.model == HAIKU} >= {"cache_write_5m", "cache_write_1h"}
    assert any("context_window=200k-1M" in line.line for line in pull.lines if line.model == SONNET)
    billed_input: dict[str, int] = defaultdict(int)
    for entry in pull.usage:
        billed_input[entry.model] += entry.input_tokens
    assert billed_input == tracked_input
    assert sum(entry.requests or 0 for entry in pull.usage) == 5


def test_served_usage_reads_stream_tier_and_skips_failed_streams(stand_in):
    client = anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="sk-ant-api-test", max_retries=0)
    stand_in.push(
        Scenario(input_tokens=10, output_tokens=20, service_tier="priority"),
        Scenario(input_tokens=10, output_tokens=20, stream_error_after=1),
        path="/v1/messages",
    )
    list(client.messages.create(model=HAIKU, max_tokens=50, messages=MSGS, stream=True))
    with pytest.raises(anthropic.APIStatusError):
        list(client.messages.create(model=HAIKU, max_tokens=50, messages=MSGS, stream=True))

    [entry] = stand_in.billing.usage("anthropic")
    assert (entry.model, entry.tier, entry.input_tokens, entry.output_tokens) == (HAIKU, "priority", 10, 20)
    assert (entry.day, entry.api_key_id) == (TODAY, "key_stand_in")


def test_legacy_reports_answer_daily_buckets_with_empty_days(stand_in, admin):
    stand_in.billing.add(served(3, input_tokens=1_234_500), served(1, SONNET, input_tokens=1000, output_tokens=10))
    analytics = admin.beta.organization.analytics
    window = {"starting_at": f"{day(4)}T00:00:00Z", "ending_at": f"{day(0)}T00:00:00Z"}

    buckets = list(analytics.cost_report.list(**window, group_by=["model", "token_type"], limit=2))

    assert [b.starting_at.date() for b in buckets] == [day(4), day(3), day(2), day(1)]
    assert len(stand_in.requests_to(COST_REPORT_PATH)) == 2
    results = {b.starting_at.date(): [(r.model, r.token_type, r.amount) for r in b.results] for b in buckets}
    assert results[day(4)] == [] and results[day(2)] == []
    assert results[day(3)] == [(HAIKU, "uncached_input_tokens", "123.45")]
    assert sorted(results[day(1)]) == [(SONNET, "output_tokens", "0.015"), (SONNET, "uncached_input_tokens", "0.3")]
    usage = list(analytics.usage_report.list(**window))
    assert [sum(r.uncached_input_tokens for r in b.results) for b in usage] == [0, 1_234_500, 0, 1000]
    assert len(stand_in.requests_to(USAGE_REPORT_PATH)) == 1


def test_a_bad_query_is_a_400_that_is_not_retried(stand_in, admin):
    with pytest.raises(anthropic.BadRequestError, match="at most 31 days"):
        list(admin.beta.organization.analytics.cost.list(
            starting_at=f"{day(40)}T00:00:00Z", ending_at=f"{day(0)}T00:00:00Z", time_bucket_width="1d"))  # fmt: skip
    assert len(stand_in.requests_to(COST_PATH)) == 1
