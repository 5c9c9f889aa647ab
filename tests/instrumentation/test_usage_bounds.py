"""Numbers beyond the ledger's bounds never reach a price (issue 10, items 4 and 6): `track_request(count=...)` and
whisper's audio seconds (`usage.seconds`). A count or a duration past its bound makes the call `unpriced` with
reason `malformed_usage` (logged once), the host call is unaffected, and the span is still one the ledger stores.

Bounds (`ledger/limits.py`): at most `MAX_WEB_SEARCH_REQUESTS` (10**6) billable requests per call, at most
`MAX_DURATION_MS` (7 days) of audio. The real `openai` client against the local stand-in; `track_request` with
the OTel SDK; the ledger a real SQLite file.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from otel_ai_cost.contract import Cost, PricingReason, PricingStatus
from otel_ai_cost.instrumentation.per_request import configure, reset, track_request
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.ledger.limits import MAX_DURATION_MS, MAX_WEB_SEARCH_REQUESTS
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.pricing.catalog import default_catalog
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.stand_in import Scenario
from otel_ai_cost.telemetry import recorder
from otel_ai_cost.telemetry.errors import internal_error_counts, reset_internal_errors

MAX_AUDIO_SECONDS = int(MAX_DURATION_MS // 1000)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "_warned_malformed", set())  # other tests' warnings are process-wide
    reset_internal_errors()


def _assert_malformed_and_storable(span, tmp_path: Path) -> None:
    attributes = span.attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
    assert attributes[Cost.PRICING_REASON] == PricingReason.MALFORMED_USAGE.value
    assert Cost.AMOUNT not in attributes
    encode_spans([span])  # exportable over OTLP (no integer beyond int64 on the span)
    record = record_from_span(span)
    assert record is not None and record.pricing_status == PricingStatus.UNPRICED.value
    with SQLiteStore(tmp_path / "usage.db") as store:
        assert store.write([record]).written == 1
    assert internal_error_counts() == {}  # bad input from the caller or the provider, not our failure


# -- track_request(count=...) -----------------------------------------------------------------------------------


@pytest.fixture
def places(telemetry):
    configure(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield telemetry
    reset()


def test_a_count_at_the_bound_is_priced(places):
    with track_request("google_places", "place_details", count=MAX_WEB_SEARCH_REQUESTS):
        pass
    attributes = places.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert Decimal(attributes[Cost.AMOUNT]) == Decimal("17000")  # 10**6 x 17 / 1000
    assert attributes[Cost.USAGE_REQUESTS] == MAX_WEB_SEARCH_REQUESTS


@pytest.mark.parametrize("count", [MAX_WEB_SEARCH_REQUESTS + 1, 2**70, -1, 2.5, True], ids=repr)
def test_a_count_that_is_no_billable_count_is_unpriced_malformed(places, tmp_path, caplog, count):
    with caplog.at_level(logging.WARNING), track_request("google_places", "place_details", count=count):
        result = "the host's answer"
    assert result == "the host's answer"
    span = places.span()
    _assert_malformed_and_storable(span, tmp_path)
    assert Cost.USAGE_REQUESTS not in span.attributes
    assert places.points("ai_cost.spend") == []
    [warning] = [r.getMessage() for r in caplog.records if "not a token count" in r.getMessage()]
    assert "count=" in warning


def test_a_bad_count_is_warned_about_once(places, caplog):
    with caplog.at_level(logging.WARNING):
        for count in (10**7, 10**8, 10**9):
            with track_request("google_places", "place_details") as request:
                request.count = count  # set inside the block
    warnings = [r.getMessage() for r in caplog.records if "count=" in r.getMessage()]
    assert len(warnings) == 1
    assert [s.attributes[Cost.PRICING_REASON] for s in places.spans()] == [PricingReason.MALFORMED_USAGE.value] * 3


# -- whisper-1: usage.seconds -----------------------------------------------------------------------------------


@pytest.fixture
def client(stand_in, telemetry) -> openai.OpenAI:
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)


def _transcribe(client: openai.OpenAI, stand_in, seconds: object) -> str:
    stand_in.push(Scenario(text="hello there", usage_extra={"type": "duration", "seconds": seconds}))
    return client.audio.transcriptions.create(model="whisper-1", file=("memo.wav", io.BytesIO(b"RIFF"))).text


def test_audio_seconds_at_the_bound_are_priced(client, stand_in, telemetry):
    _transcribe(client, stand_in, MAX_AUDIO_SECONDS)
    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert Decimal(attributes[Cost.AMOUNT]) == Decimal("60.48")  # 168 hours x 0.36


@pytest.mark.parametrize("seconds", [MAX_AUDIO_SECONDS + 1, 10**15, 1e300], ids=repr)
def test_audio_seconds_beyond_the_bound_are_unpriced_malformed(client, stand_in, telemetry, tmp_path, caplog, seconds):
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert _transcribe(client, stand_in, seconds) == "hello there"  # the host's answer, untouched
    for span in telemetry.spans():
        _assert_malformed_and_storable(span, tmp_path)
        assert Cost.USAGE_AUDIO_INPUT_SECONDS not in span.attributes
    assert telemetry.points("ai_cost.spend") == []
    assert len([r for r in caplog.records if "seconds=" in r.getMessage()]) == 1


# -- the catalog: a malformed usage is never priced, whoever asks -----------------------------------------------


@pytest.mark.parametrize(
    "usage",
    [Usage(requests=MAX_WEB_SEARCH_REQUESTS + 1), Usage(input_audio_seconds=Decimal(10**12)), Usage(malformed="x=1")],
    ids=["requests", "seconds", "marked"],
)
def test_the_catalog_never_prices_a_malformed_usage_as_zero(usage: Usage):
    quote = default_catalog().quote("openai", "whisper-1", usage, at=datetime(2026, 6, 1, tzinfo=timezone.utc))
    assert quote.status is PricingStatus.UNPRICED and quote.amount is None
    assert quote.reason is PricingReason.MALFORMED_USAGE
