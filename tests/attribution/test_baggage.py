"""Attribution carried by W3C Baggage: allow-list, limits, precedence and propagation between services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from opentelemetry import baggage, context
from opentelemetry.propagate import extract, inject

import otel_ai_cost.attribution.baggage as baggage_module
from otel_ai_cost.attribution import (
    DEFAULT_BAGGAGE_KEYS,
    MAX_BAGGAGE_VALUE_LENGTH,
    ai_usage_context,
    baggage_attributes,
    baggage_key_map,
    current_attributes,
    set_baggage_keys,
)
from otel_ai_cost.contract import Attribution, Env


@contextmanager
def in_baggage(**entries: str) -> Iterator[None]:
    ctx = context.get_current()
    for key, value in entries.items():
        ctx = baggage.set_baggage(key, value, context=ctx)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def attached(ctx: context.Context) -> Iterator[None]:
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def test_default_allow_list_excludes_user_ids() -> None:
    assert DEFAULT_BAGGAGE_KEYS == ("team", "job_id", "batch_id", "operation_type")
    with in_baggage(team="payments", job_id="j-1", batch_id="b-1", operation_type="etl", user_id="u-1", x="y"):
        assert dict(current_attributes()) == {
            Attribution.TEAM: "payments",
            Attribution.JOB_ID: "j-1",
            Attribution.BATCH_ID: "b-1",
            Attribution.OPERATION_TYPE: "etl",
        }
    assert dict(current_attributes()) == {}


def test_non_listed_baggage_is_ignored() -> None:
    with in_baggage(session="s-1", user_id="u-1"):
        assert dict(current_attributes()) == {}


def test_context_wins_over_baggage_key_by_key() -> None:
    with in_baggage(team="from-baggage", job_id="baggage-job"), ai_usage_context(job_id="context-job"):
        assert dict(current_attributes()) == {
            Attribution.TEAM: "from-baggage",
            Attribution.JOB_ID: "context-job",
        }
        assert current_attributes() is current_attributes()  # merged once, then cached


def test_changed_baggage_is_seen() -> None:
    with ai_usage_context(batch_id="b"):
        with in_baggage(team="first"):
            assert current_attributes()[Attribution.TEAM] == "first"
        with in_baggage(team="second"):
            assert current_attributes()[Attribution.TEAM] == "second"
        assert dict(current_attributes()) == {Attribution.BATCH_ID: "b"}


def test_values_are_trimmed_capped_and_blank_ignored() -> None:
    with in_baggage(team="  payments ", job_id="x" * 10_000, batch_id="   "):
        attributes = current_attributes()
    assert attributes[Attribution.TEAM] == "payments"
    assert attributes[Attribution.JOB_ID] == "x" * MAX_BAGGAGE_VALUE_LENGTH
    assert Attribution.BATCH_ID not in attributes


def test_allow_list_from_environment(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(Env.BAGGAGE_KEYS, " team , user_id,tenant,ai_cost.job.id,ai_cost.amount,ai_cost.tag.region")
    with caplog.at_level(logging.WARNING):
        set_baggage_keys()
    assert "ai_cost.amount" in caplog.text  # baggage may not set cost attributes
    with (
        in_baggage(
            team="t",
            user_id="u",
            tenant="acme",
            job_id="short-name-not-listed",
            **{"ai_cost.job.id": "j-full"},
        ),
        in_baggage(**{"ai_cost.amount": "0", "ai_cost.tag.region": "eu"}),
    ):
        assert dict(current_attributes()) == {
            Attribution.TEAM: "t",
            Attribution.USER_ID: "u",
            Attribution.TAG_PREFIX + "tenant": "acme",
            Attribution.JOB_ID: "j-full",
            Attribution.TAG_PREFIX + "region": "eu",
        }


def test_baggage_key_map_is_pure() -> None:
    assert dict(baggage_key_map({})) == {
        "team": Attribution.TEAM,
        "job_id": Attribution.JOB_ID,
        "batch_id": Attribution.BATCH_ID,
        "operation_type": Attribution.OPERATION_TYPE,
    }
    assert dict(baggage_key_map({Env.BAGGAGE_KEYS: "ai_cost.team"})) == {"ai_cost.team": Attribution.TEAM}
    assert dict(baggage_key_map({Env.BAGGAGE_KEYS: "  "})) == dict(baggage_key_map({}))


def test_programmatic_allow_list() -> None:
    set_baggage_keys(["user_id"])
    with in_baggage(team="t", user_id="u"):
        assert dict(current_attributes()) == {Attribution.USER_ID: "u"}


def _service_a_outgoing_headers(**attribution: object) -> dict[str, str]:
    headers: dict[str, str] = {}
    with ai_usage_context(**attribution, propagate=True):  # type: ignore[arg-type]
        inject(headers)
    return headers


def _service_b_attribution(headers: Mapping[str, str], **own: object) -> dict[str, object]:
    with attached(extract(headers)), ai_usage_context(**own):  # type: ignore[arg-type]
        return dict(current_attributes())


def test_propagation_across_services_through_the_w3c_propagator() -> None:
    headers = _service_a_outgoing_headers(team="payments", job_id="job 1/2", user_id="u-1", receipt_count=3)
    assert "baggage" in headers
    assert "u-1" not in headers["baggage"]  # user ids are not allow-listed by default
    assert "receipt_count" not in headers["baggage"]  # tags neither
    assert _service_b_attribution(headers, operation_type="ocr") == {
        Attribution.TEAM: "payments",
        Attribution.JOB_ID: "job 1/2",
        Attribution.OPERATION_TYPE: "ocr",
    }


def test_propagation_is_opt_in_and_scoped() -> None:
    headers: dict[str, str] = {}
    with ai_usage_context(team="payments"):
        inject(headers)
    assert "baggage" not in headers

    with ai_usage_context(team="payments", propagate=True):
        pass
    after: dict[str, str] = {}
    inject(after)
    assert "baggage" not in after  # the baggage left with the block


def test_propagate_from_a_decorated_async_function() -> None:
    @ai_usage_context(job_id="async-job", propagate=True)
    async def call_downstream() -> dict[str, str]:
        headers: dict[str, str] = {}
        await asyncio.sleep(0)
        inject(headers)
        return headers

    headers = asyncio.run(call_downstream())
    assert _service_b_attribution(headers) == {Attribution.JOB_ID: "async-job"}


def test_incoming_baggage_without_a_context_is_attributed() -> None:
    incoming = {"baggage": "team=search,job_id=reindex-7,user_id=u-9"}
    assert _service_b_attribution(incoming) == {Attribution.TEAM: "search", Attribution.JOB_ID: "reindex-7"}


def test_baggage_attributes_of_an_explicit_mapping() -> None:
    assert dict(baggage_attributes({"team": "t", "user_id": "u"})) == {Attribution.TEAM: "t"}
    assert dict(baggage_attributes()) == {}


def test_still_correct_if_the_sdk_renames_its_private_baggage_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baggage_module, "_BAGGAGE_KEY", None)
    with in_baggage(team="payments"), ai_usage_context(job_id="j"):
        assert dict(current_attributes()) == {Attribution.TEAM: "payments", Attribution.JOB_ID: "j"}
