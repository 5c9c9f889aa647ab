"""The AWS Cost Explorer billing source through the real boto3 "ce" client.

Billing data: moto's server on a loopback port, whose `GetCostAndUsage` answers with the results queued through
`/moto-api/static/ce/cost-and-usage-results` (one queued result per distinct request, so a second page, which
carries `NextPageToken`, takes the second result). Each test uses its own moto account (`x-moto-account-id`), so
queued results never leak between tests.

Throttling: moto cannot throttle, so the retry tests use a small local server speaking Cost Explorer's JSON
protocol (`x-amz-json-1.1`) that answers with errors first.
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.retries.standard
import pytest
from botocore.exceptions import ClientError
from moto.ce.models import ce_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

from otel_ai_cost.reconcile.aws_cost_explorer import MAX_RETRIES, AWSCostExplorer
from otel_ai_cost.reconcile.billed import OTHER, AccountMap, BilledLine, MissingCredentials

ACCESS_KEY = "AKIATESTONLY0000KEY1"
SECRET_KEY = "test-secret-never-shown-9f8e7d6c5b4a"
_accounts = itertools.count(210000000001)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LoopbackMoto(ThreadedMotoServer):
    """moto's server on 127.0.0.1, a kernel-chosen port, without an access-log line per request."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, app, threaded=True, request_handler=_Quiet)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[LoopbackMoto]:
    server = LoopbackMoto()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials from the environment; no AWS config file, no instance metadata, no real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/otel-ai-cost-tests/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/otel-ai-cost-tests/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


class MotoAccount:
    """One moto account of the server: queues Cost Explorer results, makes sources that call as it."""

    def __init__(self, server: LoopbackMoto) -> None:
        self.server = server
        self.id = str(next(_accounts))

    def queue(self, *results: dict[str, Any]) -> None:
        body = json.dumps({"account_id": self.id, "results": list(results)}).encode()
        request = urllib.request.Request(
            f"{self.server.url}/moto-api/static/ce/cost-and-usage-results",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201

    def source(self, **kwargs: Any) -> AWSCostExplorer:
        source = AWSCostExplorer(endpoint_url=self.server.url, **kwargs)

        def as_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = self.id

        source.client.meta.events.register("before-sign.ce.GetCostAndUsage", as_account)
        return source

    def requests_received(self) -> list[dict[str, Any]]:
        """The GetCostAndUsage request bodies moto answered (it keys its results by the raw body)."""
        return [json.loads(body) for body in ce_backends[self.id]["aws"].cost_usage_results]


@pytest.fixture
def account(moto_server: LoopbackMoto) -> MotoAccount:
    return MotoAccount(moto_server)


def group(service: str, usage_type: str, cost: str, quantity: str, unit: str = "N/A") -> dict[str, Any]:
    return {
        "Keys": [service, usage_type],
        "Metrics": {
            "UnblendedCost": {"Amount": cost, "Unit": "USD"},
            "UsageQuantity": {"Amount": quantity, "Unit": unit},
        },
    }


def day_result(day: str, end: str, groups: list[dict[str, Any]], *, estimated: bool) -> dict[str, Any]:
    return {"TimePeriod": {"Start": day, "End": end}, "Total": {}, "Groups": groups, "Estimated": estimated}


HAIKU_MP = "Claude 3 Haiku (Amazon Bedrock Edition)"
SONNET_MP = "Claude Sonnet 4.5 (Amazon Bedrock Edition)"

PAGE_1 = {
    "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
    "ResultsByTime": [
        day_result(
            "2026-03-01",
            "2026-03-02",
            [
                group("Amazon Bedrock", "USE1-NovaLite-input-tokens", "0.0101516483", "168.1"),
                group("Amazon Elastic Compute Cloud - Compute", "USE1-BoxUsage:t3.micro", "2.4960000000", "24"),
                group(HAIKU_MP, "USW2-MP:USW2_InputTokenCount-Units", "1.2345678901234567", "4938.271"),
                group(HAIKU_MP, "USW2-MP:USW2_OutputTokenCount-Units", "0.61", "488"),
                group("Amazon Bedrock", "USE1-ProvisionedThroughput-Claude3Haiku", "39.60", "1"),
            ],
            estimated=False,
        )
    ],
    "NextPageToken": "page-2-token",
    "DimensionValueAttributes": [],
}
PAGE_2 = {
    "GroupDefinitions": PAGE_1["GroupDefinitions"],
    "ResultsByTime": [
        day_result(
            "2026-03-02",
            "2026-03-03",
            [
                group(SONNET_MP, "USE1-MP:USE1_CacheReadInputTokenCount_Global-Units", "0.0003", "1"),
                group("Amazon Simple Storage Service", "USE1-TimedStorage-ByteHrs", "0.0000012", "3"),
                group("Amazon Bedrock", "USE1-Claude3Haiku-cache-write-input-token-count", "0.30", "1000"),
            ],
            estimated=True,
        )
    ],
    "DimensionValueAttributes": [],
}


def test_reads_every_page_and_keeps_only_bedrock_lines_with_their_exact_amounts(account: MotoAccount) -> None:
    account.queue(PAGE_1, PAGE_2)
    source = account.source(today=date(2026, 3, 10), account_map=AccountMap({"aws.bedrock": {"": "production"}}))

    pull = source.pull(date(2026, 3, 1), date(2026, 3, 2))

    assert (pull.source, pull.start_day, pull.end_day, pull.requests, pull.retries) == (
        "aws_cost_explorer", date(2026, 3, 1), date(2026, 3, 2), 2, 0,
    )  # fmt: skip
    by_line = {(line.day.isoformat(), line.line): line for line in pull.lines}
    assert set(by_line) == {
        ("2026-03-01", "Amazon Bedrock / USE1-NovaLite-input-tokens"),
        ("2026-03-01", f"{HAIKU_MP} / USW2-MP:USW2_InputTokenCount-Units"),
        ("2026-03-01", f"{HAIKU_MP} / USW2-MP:USW2_OutputTokenCount-Units"),
        ("2026-03-01", "Amazon Bedrock / USE1-ProvisionedThroughput-Claude3Haiku"),
        ("2026-03-02", f"{SONNET_MP} / USE1-MP:USE1_CacheReadInputTokenCount_Global-Units"),
        ("2026-03-02", "Amazon Bedrock / USE1-Claude3Haiku-cache-write-input-token-count"),
    }  # EC2 and S3 are not Bedrock: dropped
    haiku_input = by_line[("2026-03-01", f"{HAIKU_MP} / USW2-MP:USW2_InputTokenCount-Units")]
    assert haiku_input == BilledLine(
        provider="aws.bedrock",
        day=date(2026, 3, 1),
        source="aws_cost_explorer",
        line=f"{HAIKU_MP} / USW2-MP:USW2_InputTokenCount-Units",
        amount=Decimal("1.2345678901234567"),  # every digit of the text: no float on the way
        account="",
        model="claude-3-haiku",
        token_class="input",
        tier="",
        quantity=Decimal("4938.271"),
        unit="N/A",
        environment="production",
        final=True,
        parsed=True,
    )
    nova = by_line[("2026-03-01", "Amazon Bedrock / USE1-NovaLite-input-tokens")]
    assert (nova.model, nova.token_class, nova.amount, nova.final) == (
        "nova-lite",
        "input",
        Decimal("0.0101516483"),
        True,
    )
    output = by_line[("2026-03-01", f"{HAIKU_MP} / USW2-MP:USW2_OutputTokenCount-Units")]
    assert (output.model, output.token_class, output.amount) == ("claude-3-haiku", "output", Decimal("0.61"))
    provisioned = by_line[("2026-03-01", "Amazon Bedrock / USE1-ProvisionedThroughput-Claude3Haiku")]
    assert (provisioned.token_class, provisioned.parsed, provisioned.amount) == (OTHER, False, Decimal("39.60"))

    # Estimated rows may still change: not final.
    cache_read = by_line[("2026-03-02", f"{SONNET_MP} / USE1-MP:USE1_CacheReadInputTokenCount_Global-Units")]
    assert (cache_read.model, cache_read.token_class, cache_read.final) == ("claude-sonnet-4-5", "cache_read", False)
    cache_write = by_line[("2026-03-02", "Amazon Bedrock / USE1-Claude3Haiku-cache-write-input-token-count")]
    assert (cache_write.model, cache_write.token_class, cache_write.final) == (
        "claude-3-haiku",
        "cache_write_5m",
        False,
    )
    assert sum((line.amount for line in pull.lines), Decimal(0)) == Decimal("41.7550195384234567")

    first, second = account.requests_received()
    assert first == {
        "TimePeriod": {"Start": "2026-03-01", "End": "2026-03-03"},  # End is exclusive: the day after end_day
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "UsageQuantity"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
        "Filter": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Usage"]}},
    }
    assert second == {**first, "NextPageToken": "page-2-token"}


def test_today_is_not_final_and_days_after_it_are_not_asked_for(account: MotoAccount) -> None:
    today = day_result(
        "2026-03-02", "2026-03-03", [group("Amazon Bedrock", "USE1-NovaLite-output-tokens", "0.25", "1")],
        estimated=False,
    )  # fmt: skip
    account.queue({"ResultsByTime": [today], "DimensionValueAttributes": []})

    pull = account.source(today=lambda: date(2026, 3, 2)).pull(date(2026, 3, 1), date(2026, 3, 6))

    assert [(line.day, line.amount, line.final) for line in pull.lines] == [(date(2026, 3, 2), Decimal("0.25"), False)]
    assert (pull.start_day, pull.end_day) == (date(2026, 3, 1), date(2026, 3, 6))  # the window replaced
    (request,) = account.requests_received()
    assert request["TimePeriod"] == {"Start": "2026-03-01", "End": "2026-03-03"}


def test_a_period_without_bedrock_spend_gives_no_lines(account: MotoAccount) -> None:
    pull = account.source(today=date(2026, 3, 10)).pull(date(2026, 3, 1), date(2026, 3, 1))

    assert (list(pull.lines), pull.requests) == ([], 1)


def test_no_credentials_is_missing_credentials_naming_the_variables(
    account: MotoAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(MissingCredentials, match="AWS_ACCESS_KEY_ID"):
        AWSCostExplorer(endpoint_url=account.server.url, today=date(2026, 3, 10)).pull(
            date(2026, 3, 1), date(2026, 3, 1)
        )


# -- throttling: a local server speaking Cost Explorer's JSON protocol -----------------------------------------------

ONE_LINE_PAGE = {"ResultsByTime": [day_result("2026-03-01", "2026-03-02", [
    group("Amazon Bedrock", "USE1-NovaLite-input-tokens", "0.0000001", "1")], estimated=False)]}  # fmt: skip


class ScriptedCostExplorer:
    """Answers GetCostAndUsage with `script` (status, error code or None, body) in turn, then the last forever."""

    def __init__(self, script: list[tuple[int, str | None]]) -> None:
        self.script = script
        self.attempts: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.attempts.append({name.lower(): value for name, value in self.headers.items()})
                status, code = outer.script[min(len(outer.attempts), len(outer.script)) - 1]
                if code is None:
                    body = json.dumps(ONE_LINE_PAGE).encode()
                else:
                    body = json.dumps(
                        {"__type": f"com.amazon.awsinsightsindexservice#{code}", "message": "Rate exceeded"}
                    ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", f"req-{len(outer.attempts)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ScriptedCostExplorer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def backoff_delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays botocore's standard retry computes, recorded; the sleep itself shortened to keep the suite fast."""
    delays: list[float] = []
    original = botocore.retries.standard.ExponentialBackoff.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        delays.append(original(self, context))
        return 0.001

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", delay_amount)
    return delays


def test_throttling_and_server_errors_are_retried_with_backoff_then_the_pull_succeeds(
    backoff_delays: list[float],
) -> None:
    script = [(400, "ThrottlingException"), (400, "LimitExceededException"), (503, "ServiceUnavailable"), (200, None)]
    with ScriptedCostExplorer(script) as server:
        pull = AWSCostExplorer(endpoint_url=server.url, today=date(2026, 3, 10)).pull(
            date(2026, 3, 1), date(2026, 3, 1)
        )

    assert len(server.attempts) == 4
    assert all(
        attempt["x-amz-target"] == "AWSInsightsIndexService.GetCostAndUsage"
        and attempt["content-type"] == "application/x-amz-json-1.1"
        for attempt in server.attempts
    )
    assert (pull.requests, pull.retries) == (1, 3)
    assert [line.amount for line in pull.lines] == [Decimal("0.0000001")]
    assert len(backoff_delays) == 3 and all(0 <= delay <= 20 for delay in backoff_delays)


def test_retries_are_bounded_and_the_error_never_shows_a_credential(backoff_delays: list[float]) -> None:
    with ScriptedCostExplorer([(400, "ThrottlingException")]) as server:
        source = AWSCostExplorer(endpoint_url=server.url, today=date(2026, 3, 10))
        with pytest.raises(ClientError) as raised:
            source.pull(date(2026, 3, 1), date(2026, 3, 1))

    assert len(server.attempts) == 1 + MAX_RETRIES
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    # The requests were signed with the key, but it is in no error text.
    assert ACCESS_KEY in server.attempts[0]["authorization"]
    shown = f"{raised.value}\n{raised.value!r}\n{raised.value.response}"
    assert SECRET_KEY not in shown and ACCESS_KEY not in shown


@pytest.mark.parametrize(
    ("service", "usage_type", "expected"),
    [
        ("Amazon Bedrock", "USE1-Claude3Haiku-output-tokens", ("claude-3-haiku", "output", "")),
        ("Amazon Bedrock", "USW2-Claude4.5Sonnet-cache-read-input-token-count",
         ("claude-sonnet-4-5", "cache_read", "")),
        ("Amazon Bedrock", "USE1-Claude4Sonnet-input-tokens-cross-region-global", ("claude-sonnet-4", "input", "")),
        ("Amazon Bedrock", "USE1-Nova2.0Lite-cache-write-input-token-count", ("nova-2-lite", "cache_write_5m", "")),
        ("Amazon Bedrock", "USE1-NovaLite-output-tokens-batch", ("nova-lite", "output", "batch")),
        (SONNET_MP, "USE1-MP:USE1_OutputTokenCount_Global-Units", ("claude-sonnet-4-5", "output", "")),
        (SONNET_MP, "USE1-MP:USE1_CacheWriteInputTokenCount-Units", ("claude-sonnet-4-5", "cache_write_5m", "")),
        (SONNET_MP, "USW2-MP:USW2_input_tokens_batch-Units", ("claude-sonnet-4-5", "input", "batch")),
        ("Claude Opus 4.1 (Amazon Bedrock Edition)", "USW2-MP:USW2_output_tokens_global_standard-Units",
         ("claude-opus-4-1", "output", "")),
    ],
)  # fmt: skip
def test_usage_types_are_read_into_model_token_class_and_tier(
    service: str, usage_type: str, expected: tuple[str, str, str], account: MotoAccount
) -> None:
    result = day_result("2026-03-01", "2026-03-02", [group(service, usage_type, "1.5", "2")], estimated=False)
    account.queue({"ResultsByTime": [result], "DimensionValueAttributes": []})

    (line,) = account.source(today=date(2026, 3, 10)).pull(date(2026, 3, 1), date(2026, 3, 1)).lines

    assert (line.model, line.token_class, line.tier, line.parsed) == (*expected, True)
