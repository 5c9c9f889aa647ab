"""`ai_cost.api_key.fingerprint`: the span and the ledger record say which key paid, by the first 8 hex digits of
HMAC-SHA256(secret, key), and never the key or any prefix of it (span, record, log). Real openai and anthropic
clients against the stand-in; the expected fingerprints are computed here with hmac, not with our code."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import anthropic
import openai
import pytest

import otel_ai_cost
from otel_ai_cost.contract import KEY_FINGERPRINT_DEFAULT_SECRET
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

HI = [{"role": "user", "content": "hi"}]
KEY = "sk-proj-Zq8rT3xW9vLm2Np5Kd7Hs4Fg"
ANTHROPIC_KEY = "sk-ant-api03-Yb6Jc1Qe0Rt8Uw3Io5Pa9Sd2"


def expected(key: str, secret: str = KEY_FINGERPRINT_DEFAULT_SECRET) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()[:8]


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "usage.db"
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{path}")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("OTEL_AI_COST_KEY_FINGERPRINT_SECRET", raising=False)
    return path


@pytest.fixture
def telemetry(ledger, request):
    return request.getfixturevalue("telemetry")  # instrumented after the ledger is configured


def records(path: Path) -> list:
    with SQLiteStore(path) as store:
        return sorted(store.query(UsageQuery()), key=lambda r: r.timestamp)


def texts(value: object) -> list[str]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (str(k), *texts(v))]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in texts(v)]
    return [str(value)]


def test_openai_and_anthropic_calls_carry_their_keys_fingerprint_and_never_the_key(telemetry, ledger, stand_in, caplog):
    caplog.set_level(logging.DEBUG)
    with (
        openai.OpenAI(base_url=stand_in.openai_base_url, api_key=KEY, max_retries=0) as oa,
        anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0) as ant,
    ):
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
        stream = oa.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
        list(stream)
        ant.messages.create(model="claude-sonnet-4-20250514", max_tokens=10, messages=HI)
    assert telemetry.tracer_provider.force_flush()

    spans = telemetry.spans()
    fingerprints = [s.attributes["ai_cost.api_key.fingerprint"] for s in spans]
    assert fingerprints == [expected(KEY), expected(KEY), expected(ANTHROPIC_KEY)]
    assert expected(KEY) != expected(ANTHROPIC_KEY)
    stored = records(ledger)
    assert [r.api_key_fingerprint for r in stored] == fingerprints
    assert [record_from_span(s) for s in spans] == stored  # the collector's path gives the same record

    # Nothing anywhere holds the key or a prefix of it longer than its generic "sk-..." start.
    seen = [t for s in spans for t in texts(dict(s.attributes))]
    seen += [t for r in stored for t in texts(r.to_dict())]
    seen += [r.getMessage() for r in caplog.records]
    for key in (KEY, ANTHROPIC_KEY):
        secret_part = key[len("sk-ant-api03-") :] if key.startswith("sk-ant") else key[len("sk-proj-") :]
        assert not [t for t in seen if secret_part[:4] in t], key
    # ... nor any metric label.
    for name in ("ai_cost.requests", "ai_cost.spend", "ai_cost.tokens"):
        assert all("ai_cost.api_key.fingerprint" not in p.attributes for p in telemetry.points(name))


def test_a_rotated_key_on_the_same_client_gets_its_own_fingerprint(telemetry, stand_in):
    with openai.OpenAI(base_url=stand_in.openai_base_url, api_key=KEY, max_retries=0) as oa:
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
        oa.api_key = "sk-proj-rotated-key-0000"
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert [s.attributes["ai_cost.api_key.fingerprint"] for s in telemetry.spans()] == [
        expected(KEY),
        expected("sk-proj-rotated-key-0000"),
    ]


def test_no_key_no_fingerprint(telemetry, ledger, stand_in):
    """An Anthropic client authenticated by an OAuth token has no API key: no fingerprint (never a made-up one)."""
    with anthropic.Anthropic(base_url=stand_in.anthropic_base_url, auth_token="oauth-tok", max_retries=0) as ant:
        assert ant.api_key is None
        ant.messages.create(model="claude-sonnet-4-20250514", max_tokens=10, messages=HI)
    assert telemetry.tracer_provider.force_flush()
    assert "ai_cost.api_key.fingerprint" not in telemetry.span().attributes
    [record] = records(ledger)
    assert record.api_key_fingerprint == ""


def test_the_secret_variable_changes_every_fingerprint(ledger, monkeypatch, stand_in):
    monkeypatch.setenv("OTEL_AI_COST_KEY_FINGERPRINT_SECRET", "our-own-secret")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otel_ai_cost.instrument(tracer_provider=provider)
    try:
        with openai.OpenAI(base_url=stand_in.openai_base_url, api_key=KEY, max_retries=0) as oa:
            oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    finally:
        otel_ai_cost.uninstrument()
        provider.shutdown()
    [span] = memory.get_finished_spans()
    assert span.attributes["ai_cost.api_key.fingerprint"] == expected(KEY, "our-own-secret") != expected(KEY)


def test_the_fingerprint_can_never_be_made_a_metric_label(ledger, monkeypatch, request, stand_in):
    monkeypatch.setenv("OTEL_AI_COST_METRIC_LABELS", "gen_ai.provider.name,ai_cost.api_key.fingerprint")
    telemetry = request.getfixturevalue("telemetry")
    with openai.OpenAI(base_url=stand_in.openai_base_url, api_key=KEY, max_retries=0) as oa:
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    [point] = telemetry.points("ai_cost.requests")
    assert "ai_cost.api_key.fingerprint" not in point.attributes
    assert point.attributes["gen_ai.provider.name"] == "openai"
