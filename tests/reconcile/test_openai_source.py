"""The OpenAI billing source through the real `openai` client against the stand-in's Costs and Usage APIs.

Paging to the end, empty days, partial today, exact decimals, retries (429 with Retry-After, 5xx, bounded),
credentials and their secrecy, and the bill of calls made through the stand-in matching what the
instrumentation priced them at.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from otel_ai_cost.pricing.catalog import reset_default_catalog
from otel_ai_cost.reconcile.billed import OTHER, AccountMap, BilledPull, MissingCredentials
from otel_ai_cost.reconcile.openai_costs import OpenAIBillingError, OpenAICosts
from otel_ai_cost.stand_in import Scenario, StandInServer
from otel_ai_cost.stand_in.billing_book import ServedUsage

COSTS = "/v1/organization/costs"
COMPLETIONS = "/v1/organization/usage/completions"
KEY = "sk-admin-test-" + secrets.token_hex(12)
TODAY = datetime.now(timezone.utc).date()
DAY = date(2026, 3, 1)
# gpt-4o-mini, USD per million tokens: input 0.15, cached input 0.075, output 0.60; priority 0.25 / 0.125 / 1.00.


@pytest.fixture
def admin(stand_in: StandInServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=stand_in.openai_base_url, admin_api_key=KEY, api_key="")
    yield client
    client.close()


def source(admin: openai.OpenAI, **options: object) -> OpenAICosts:
    options.setdefault("today", lambda: TODAY)
    return OpenAICosts(client=admin, **options)  # type: ignore[arg-type]


def served(day: date = DAY, model: str = "gpt-4o-mini", **fields: object) -> ServedUsage:
    return ServedUsage(provider="openai", day=day, model=model, **fields)  # type: ignore[arg-type]


def by_line(pull: BilledPull) -> dict[tuple[date, str, str], Decimal]:
    return {(line.day, line.account, line.line): line.amount for line in pull.lines}


def test_every_page_is_read_and_empty_days_bill_nothing(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    start, end = DAY, DAY + timedelta(days=399)  # 400 days: 3 pages of costs (180 a page), 13 of usage (31)
    stand_in.billing.add(
        served(start, input_tokens=1_000_000, account="proj_a"),
        served(start + timedelta(days=200), output_tokens=1_000_000, account="proj_b"),
        served(end, input_tokens=2_000_000, cache_read_input_tokens=1_000_000, account="proj_a"),
    )
    pull = source(admin).pull(start, end)

    assert by_line(pull) == {
        (start, "proj_a", "gpt-4o-mini, input"): Decimal("0.15"),
        (start + timedelta(days=200), "proj_b", "gpt-4o-mini, output"): Decimal("0.60"),
        (end, "proj_a", "gpt-4o-mini, input"): Decimal("0.15"),
        (end, "proj_a", "gpt-4o-mini, cached input"): Decimal("0.075"),
    }
    costs = stand_in.requests_to(COSTS)
    assert len(costs) == 3 and len(stand_in.requests_to(COMPLETIONS)) == 13
    assert pull.requests == 16 and pull.retries == 0
    first = dict(costs[0].query_list)
    assert int(first["start_time"]) == int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp())
    assert int(first["end_time"]) == int(
        datetime.combine(end + timedelta(days=1), datetime.min.time(), timezone.utc).timestamp()
    )
    assert first["limit"] == "180" and first["bucket_width"] == "1d"
    assert sorted(value for key, value in costs[0].query_list if key == "group_by[]") == ["line_item", "project_id"]
    assert "page" not in first and all("page" in request.query for request in costs[1:])
    assert sorted(row.day for row in pull.usage) == [start, start + timedelta(days=200), end]


def test_empty_days_come_back_as_empty_buckets(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    stand_in.billing.add(served(DAY + timedelta(days=1), input_tokens=10))
    start = int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp())
    page = admin.admin.organization.usage.costs(start_time=start, end_time=start + 3 * 86_400, limit=180)
    assert [(b.start_time - start, len(b.results)) for b in page.data] == [(0, 0), (86_400, 1), (172_800, 0)]
    assert page.has_more is False and page.next_page is None
    with pytest.raises(openai.BadRequestError):
        admin.admin.organization.usage.costs(start_time=start, limit=181)
    with pytest.raises(openai.BadRequestError):
        admin.admin.organization.usage.costs(start_time=start, page="page_forged")


def test_embeddings_are_reported_apart_from_completions(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    stand_in.push(Scenario(prompt_tokens=5000))
    client.embeddings.create(model="text-embedding-3-small", input=["coffee", "bagel"])
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    client.close()
    start = int(datetime.combine(TODAY, datetime.min.time(), timezone.utc).timestamp())
    usage = admin.admin.organization.usage
    [embedded] = usage.embeddings(start_time=start, end_time=start + 86_400, group_by=["model"]).data[0].results
    assert (embedded.model, embedded.input_tokens, embedded.num_model_requests) == ("text-embedding-3-small", 5000, 1)
    [completed] = usage.completions(start_time=start, end_time=start + 86_400, group_by=["model"]).data[0].results
    assert completed.model == "gpt-4o-mini"


def test_lines_carry_model_class_tier_project_and_environment(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    stand_in.billing.add(
        served(input_tokens=3000, cache_read_input_tokens=1000, output_tokens=500, account="proj_prod"),
        served(input_tokens=1000, output_tokens=1000, tier="priority", account="proj_dev"),
        served(input_tokens=2000, tier="batch", account="proj_prod"),
    )
    accounts = AccountMap({"openai": {"proj_prod": "production"}})
    pull = source(admin, account_map=accounts).pull(DAY, DAY)

    got = {
        (line.line, line.account): (
            line.model,
            line.token_class,
            line.tier,
            line.amount,
            line.quantity,
            line.environment,
        )
        for line in pull.lines
    }
    assert got == {
        ("gpt-4o-mini, input", "proj_prod"): ("gpt-4o-mini", "input", "", Decimal("0.0003"), 2000, "production"),
        ("gpt-4o-mini, cached input", "proj_prod"): ("gpt-4o-mini", "cache_read", "", Decimal("0.000075"), 1000,
                                                     "production"),
        ("gpt-4o-mini, output", "proj_prod"): ("gpt-4o-mini", "output", "", Decimal("0.0003"), 500, "production"),
        ("priority | gpt-4o-mini, input", "proj_dev"): ("gpt-4o-mini", "input", "priority", Decimal("0.00025"), 1000,
                                                        ""),
        ("priority | gpt-4o-mini, output", "proj_dev"): ("gpt-4o-mini", "output", "priority", Decimal("0.001"), 1000,
                                                         ""),
        ("batch | gpt-4o-mini, input", "proj_prod"): ("gpt-4o-mini", "input", "batch", Decimal("0.00015"), 2000,
                                                      "production"),
    }  # fmt: skip
    assert all(line.parsed and line.final and line.unit == "tokens" for line in pull.lines)
    assert {line.source for line in pull.lines} == {"openai_admin"} and pull.source == "openai_admin"
    assert {line.provider for line in pull.lines} == {"openai"}


def test_usage_rows_count_tokens_per_model_project_and_tier(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    stand_in.billing.add(
        served(input_tokens=3000, cache_read_input_tokens=1000, output_tokens=500, account="proj_a"),
        served(input_tokens=1000, cache_write_5m_input_tokens=200, output_tokens=100, account="proj_a"),
        served(input_tokens=700, output_tokens=70, tier="batch", account="proj_a"),
        served(model="gpt-4.1", input_tokens=50, output_tokens=5, tier="flex"),
        served(model="text-embedding-3-small", input_tokens=9, endpoint="/v1/embeddings"),  # not a completion
    )
    pull = source(admin).pull(DAY, DAY)
    rows = {(row.model, row.account, row.tier): row for row in pull.usage}
    assert set(rows) == {("gpt-4o-mini", "proj_a", ""), ("gpt-4o-mini", "proj_a", "batch"), ("gpt-4.1", "", "flex")}
    standard = rows["gpt-4o-mini", "proj_a", ""]
    assert (standard.input_tokens, standard.cache_read_input_tokens, standard.cache_write_5m_input_tokens) == (
        4000,
        1000,
        200,
    )
    assert (standard.output_tokens, standard.requests, standard.source, standard.final) == (
        600,
        2,
        "openai_admin",
        True,
    )
    assert rows["gpt-4o-mini", "proj_a", "batch"].input_tokens == 700
    assert rows["gpt-4.1", "", "flex"].requests == 1


def test_today_is_partial_and_earlier_days_final(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    yesterday = TODAY - timedelta(days=1)
    stand_in.billing.add(served(yesterday, input_tokens=100), served(TODAY, input_tokens=200))
    pull = OpenAICosts(client=admin).pull(yesterday, TODAY)  # the default clock: UTC today
    assert {line.day: line.final for line in pull.lines} == {yesterday: True, TODAY: False}
    assert {row.day: row.final for row in pull.usage} == {yesterday: True, TODAY: False}


@pytest.fixture
def exact_price(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A model whose one input token costs 0.1234567890123456789 USD (more digits than a float holds)."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "models:\n  - {provider: openai, model: exact-test-model, prices: {input: 123456.7890123456789, output: 1}}\n"
    )
    monkeypatch.setenv("OTEL_AI_COST_PRICES_FILE", str(prices))
    reset_default_catalog()
    yield "exact-test-model"
    monkeypatch.delenv("OTEL_AI_COST_PRICES_FILE")
    reset_default_catalog()


def test_amounts_are_exact_decimals(stand_in: StandInServer, admin: openai.OpenAI, exact_price: str) -> None:
    stand_in.billing.add(served(model=exact_price, input_tokens=1), served(model=exact_price, input_tokens=1))
    start = int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp())
    wire = admin.admin.organization.usage.with_raw_response.costs(
        start_time=start, end_time=start + 86_400, group_by=["line_item"]
    ).text
    assert '"value":0.2469135780246913578,' in wire  # a JSON number, with every digit

    [line] = source(admin).pull(DAY, DAY).lines
    assert line.amount == Decimal("0.2469135780246913578") and str(line.amount) == "0.2469135780246913578"


def test_a_line_item_not_understood_is_kept_as_other(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    # A tier OpenAI may add that we do not know: its lines ("reserved | gpt-4o-mini, input") stay on the bill.
    stand_in.billing.add(served(input_tokens=1_000_000, tier="reserved"), served(input_tokens=1_000_000))
    pull = source(admin).pull(DAY, DAY)
    lines = {line.line: line for line in pull.lines}
    odd = lines["reserved | gpt-4o-mini, input"]
    assert (odd.token_class, odd.parsed, odd.model, odd.amount) == (OTHER, False, "", Decimal("0.15"))
    assert lines["gpt-4o-mini, input"].parsed is True
    assert sum(line.amount for line in pull.lines) == Decimal("0.30")


def test_429_is_retried_after_its_retry_after(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    stand_in.billing.add(served(input_tokens=1_000_000))
    # 0.6 s: longer than the SDK's own first backoff (at most 0.5 s), so waiting it shows Retry-After was read.
    stand_in.push(Scenario(status=429, retry_after_ms=None, headers={"retry-after": "0.6"}), path=COSTS)
    began = time.monotonic()
    pull = source(admin).pull(DAY, DAY)
    assert time.monotonic() - began >= 0.6
    assert by_line(pull) == {(DAY, "", "gpt-4o-mini, input"): Decimal("0.15")}
    assert (pull.retries, pull.requests) == (1, 3)  # costs twice (one a retry), usage once
    assert [r.headers["x-stainless-retry-count"] for r in stand_in.requests_to(COSTS)] == ["0", "1"]


def test_a_server_error_is_retried(stand_in: StandInServer, admin: openai.OpenAI) -> None:
    stand_in.billing.add(served(output_tokens=1_000_000))
    stand_in.push(Scenario(status=500), path=COMPLETIONS)
    stand_in.push(Scenario(status=503), path=COSTS)
    pull = source(admin).pull(DAY, DAY)
    assert by_line(pull) == {(DAY, "", "gpt-4o-mini, output"): Decimal("0.6")}
    assert [row.output_tokens for row in pull.usage] == [1_000_000]
    assert (pull.retries, pull.requests) == (2, 4)


def test_retries_are_bounded_and_the_error_is_clear(
    stand_in: StandInServer, admin: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in.push(*[Scenario(status=429) for _ in range(3)], path=COSTS)
    billing = source(admin, max_retries=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(OpenAIBillingError) as raised:
        billing.pull(DAY, DAY)
    message = str(raised.value)
    assert "costs: HTTP 429 (rate limited, still after 2 retries" in message
    assert len(stand_in.requests_to(COSTS)) == 3 and stand_in.pending == 0
    assert KEY not in message and KEY not in repr(raised.value) and KEY not in caplog.text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no SDK request chained on


def test_the_admin_key_is_never_shown(
    stand_in: StandInServer, admin: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    # OpenAI's 401 message quotes (part of) the key it refused.
    refused = f"Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com."
    stand_in.push(Scenario(status=401, error_message=refused), path=COSTS)
    billing = source(admin)
    with caplog.at_level(logging.DEBUG), pytest.raises(OpenAIBillingError) as raised:
        billing.pull(DAY, DAY)
    assert "HTTP 401 (the admin key was refused; set $OPENAI_ADMIN_KEY" in str(raised.value)
    assert "Incorrect API key provided: sk-<redacted>" in str(raised.value)
    for text in (str(raised.value), repr(raised.value), repr(billing), str(billing), caplog.text):
        assert KEY not in text and KEY[-12:] not in text
    assert stand_in.requests_to(COSTS)[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent, only there


def test_an_unreachable_api_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", admin_api_key=KEY, api_key="")
    with pytest.raises(OpenAIBillingError, match=rf"costs: could not connect \(http://127.0.0.1:{port}\)") as raised:
        OpenAICosts(client=client, max_retries=0).pull(DAY, DAY)
    assert KEY not in str(raised.value)
    client.close()


def test_without_an_admin_key_the_pull_says_what_to_set(
    stand_in: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    monkeypatch.delenv("OPENAI_ADMIN_KEY_FILE", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-not-an-admin-key")
    billing = OpenAICosts(base_url=stand_in.openai_base_url)
    with pytest.raises(MissingCredentials, match=r"\$OPENAI_ADMIN_KEY \(or \$OPENAI_ADMIN_KEY_FILE"):
        billing.pull(DAY, DAY)
    assert stand_in.requests == []


def test_the_admin_key_file_is_read(stand_in: StandInServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "openai-admin-key"
    secret.write_text(f"  {KEY}\n")
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    monkeypatch.setenv("OPENAI_ADMIN_KEY_FILE", str(secret))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-not-an-admin-key")  # never sent to the admin endpoints
    stand_in.billing.add(served(input_tokens=1_000_000))
    billing = OpenAICosts(base_url=stand_in.openai_base_url, today=lambda: TODAY)
    try:
        pull = billing.pull(DAY, DAY)
    finally:
        billing.close()
    assert by_line(pull) == {(DAY, "", "gpt-4o-mini, input"): Decimal("0.15")}
    assert {r.headers["authorization"] for r in stand_in.requests} == {f"Bearer {KEY}"}
    assert KEY not in repr(billing)


def test_calls_served_by_the_stand_in_are_billed_at_what_they_were_tracked_at(
    stand_in: StandInServer, admin: openai.OpenAI, telemetry: object
) -> None:
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0, project="proj_app")
    user = [{"role": "user", "content": "Label this receipt"}]
    stand_in.push(
        Scenario(prompt_tokens=2000, cached_tokens=1024, completion_tokens=80, model="gpt-4o-mini-2024-07-18")
    )
    client.chat.completions.create(model="gpt-4o-mini", messages=user)
    client.chat.completions.create(model="gpt-4o-mini", messages=user, service_tier="priority")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=user, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    stand_in.push(Scenario(prompt_tokens=900, cached_tokens=300, completion_tokens=400, reasoning_tokens=250))
    client.responses.create(model="o4-mini", input="Which merchant?")
    client.embeddings.create(model="text-embedding-3-small", input=["coffee", "bagel"])
    client.close()

    tracked: dict[str, Decimal] = defaultdict(Decimal)
    for span in telemetry.spans():  # type: ignore[attr-defined]
        tracked[span.attributes["gen_ai.response.model"]] += Decimal(span.attributes["ai_cost.amount"])
    pull = source(admin).pull(TODAY, TODAY)
    billed: dict[str, Decimal] = defaultdict(Decimal)
    for line in pull.lines:
        assert line.parsed and line.account == "proj_app"
        billed[line.model] += line.amount

    assert set(tracked) == {"gpt-4o-mini-2024-07-18", "gpt-4o-mini", "o4-mini", "text-embedding-3-small"}
    assert billed == tracked
    classes = {(line.model, line.token_class, line.tier) for line in pull.lines}
    assert ("gpt-4o-mini-2024-07-18", "cache_read", "") in classes and ("gpt-4o-mini", "output", "priority") in classes
    usage = {(row.model, row.tier): row.input_tokens for row in pull.usage}
    assert usage["gpt-4o-mini-2024-07-18", ""] == 2000 and usage["o4-mini", ""] == 900
    assert "text-embedding-3-small" not in {row.model for row in pull.usage}  # embeddings are not completions
