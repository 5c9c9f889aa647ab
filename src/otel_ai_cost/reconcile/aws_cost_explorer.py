"""Amazon Bedrock's bill, from AWS Cost Explorer (`GetCostAndUsage`), as `BilledLine`s.

One request per page: daily granularity, `UnblendedCost` and `UsageQuantity`, grouped by `SERVICE` and
`USAGE_TYPE`, filtered to `RECORD_TYPE = Usage` (credits, refunds and tax are not usage, so they are not compared
with tracked spend). Every `NextPageToken` page is read. Cost Explorer's `TimePeriod.End` is exclusive, so the
days `start_day`..`end_day` are asked as `Start = start_day`, `End = end_day + 1`. Days are UTC, as Cost Explorer's.

Which services are Bedrock: `Amazon Bedrock` (first-party models: Amazon Nova and Titan, Meta Llama, Mistral, ...
and, in newer accounts, Anthropic Claude), and every service whose name ends in `(Amazon Bedrock Edition)`: the
AWS Marketplace services that third-party models such as Anthropic Claude are billed under ("Claude 3 Haiku
(Amazon Bedrock Edition)"). Filtering on `SERVICE = Amazon Bedrock` alone would miss most Claude spend, and Cost
Explorer cannot filter a dimension by a suffix, so every usage service is fetched and classified by name; other
services (EC2, S3, ...) are dropped.

Each group becomes one line: `line` = `"SERVICE / USAGE_TYPE"`, `amount` the exact `UnblendedCost` text, `quantity`
the `UsageQuantity`, `final = not Estimated` (and never for today). The usage type is parsed where its form is
known:

* first-party: `USE1-Claude3Haiku-input-tokens`, `...-output-tokens`, `...-cache-read-input-token-count`,
  `...-cache-write-input-token-count`, optionally followed by a routing or tier suffix (`-cross-region-global`,
  `-batch`, `-flex`, `-priority`); the model is the part between the region prefix and the token class;
* Marketplace: `USW2-MP:USW2_InputTokenCount-Units`, `..._OutputTokenCount_Global-Units`,
  `..._CacheReadInputTokenCount-Units`, `..._input_tokens_standard-Units`, ...; the model is the service name
  without `(Amazon Bedrock Edition)`.

The model is a lower-case slug of the bill's model name, shaped like Anthropic's and Amazon's model ids:
`Claude3Haiku` and `Claude 3 Haiku` both give `claude-3-haiku`, `Claude4.5Sonnet` and `Claude Sonnet 4.5` both give
`claude-sonnet-4-5` (Claude 4 and later put the family first, as their ids do), `NovaLite` gives `nova-lite`,
`Nova2.0Lite` gives `nova-2-lite`.
Cache writes are `cache_write_5m` (Bedrock's default cache lifetime) unless the usage type says `1h`. A `_Global`
or cross-region usage type is priced differently but is the same tier. A usage type of another form (provisioned
throughput, model customization, guardrails, ...) is kept as `other` with `parsed=False`, never dropped.

Credentials are boto3's usual chain (environment, profile, role); the caller needs `ce:GetCostAndUsage`. Every
page is a billed request ($0.01 each). Throttling (`ThrottlingException`, `LimitExceededException`) and 5xx are
retried by botocore's standard retry mode with jittered exponential backoff, honouring `x-amz-retry-after`, at
most `MAX_RETRIES` retries after the first attempt; an error that outlasts them is raised as botocore's
`ClientError`, whose message holds the service's error code and text and never a credential.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from otel_ai_cost.contract import TokenType
from otel_ai_cost.reconcile.billed import OTHER, AccountMap, BilledLine, BilledPull, MissingCredentials

__all__ = ["MAX_RETRIES", "PROVIDER", "AWSCostExplorer", "is_bedrock_service", "parse_usage_type"]

PROVIDER = "aws.bedrock"
SOURCE = "aws_cost_explorer"
# botocore's `max_attempts` counts the retries after the first attempt: 5 attempts in all, backing off at most
# 1, 2, 4 and 8 s (jittered) when throttled.
MAX_RETRIES = 4
BEDROCK_SERVICE = "Amazon Bedrock"
MARKETPLACE_SUFFIX = "(Amazon Bedrock Edition)"

_GROUP_BY = [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
_USAGE_ONLY = {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Usage"]}}


def is_bedrock_service(service: str) -> bool:
    """Whether Cost Explorer's SERVICE value bills Bedrock model use: `Amazon Bedrock`, or a Marketplace
    `... (Amazon Bedrock Edition)` service."""
    service = service.strip()
    return service == BEDROCK_SERVICE or service.endswith(MARKETPLACE_SUFFIX)


class ParsedUsageType(NamedTuple):
    """What a usage type says; `parsed` False when it was not understood (token class `other`)."""

    model: str  # a slug of the bill's model name, "" when none
    token_class: str
    tier: str = ""  # batch, flex, priority; "" = standard
    parsed: bool = True


_UNPARSED = ParsedUsageType("", OTHER, parsed=False)

# First-party: REGION-Model-class[-suffix...]. The region prefix is AWS's billing code (USE1, USW2, EUC1, APS3...).
_NATIVE = re.compile(
    r"^[A-Z]{2,4}\d?-(?P<model>.+?)-(?P<cls>input-tokens|output-tokens|cache-read-input-token-count"
    r"|cache-write-input-token-count|cache-write-1h-input-token-count)(?P<rest>(?:-[a-z0-9-]+)?)$",
    re.IGNORECASE,
)
_NATIVE_CLASSES = {
    "input-tokens": TokenType.INPUT.value,
    "output-tokens": TokenType.OUTPUT.value,
    "cache-read-input-token-count": TokenType.CACHE_READ.value,
    "cache-write-input-token-count": TokenType.CACHE_WRITE_5M.value,
    "cache-write-1h-input-token-count": TokenType.CACHE_WRITE_1H.value,
}
# Marketplace: REGION-MP:REGION_What-Units, What in CamelCase (InputTokenCount_Global) or snake_case
# (input_tokens_global_standard).
_MARKETPLACE = re.compile(r"^[A-Z]{2,4}\d?-MP:[A-Z]{2,4}\d?_(?P<what>[A-Za-z0-9_]+)-Units$")
_TIERS = ("batch", "flex", "priority")


def parse_usage_type(service: str, usage_type: str) -> ParsedUsageType:
    """Model, token class and tier of a Bedrock usage type (see the module docs); unparsed: model "", `other`."""
    service = service.strip()
    if service.endswith(MARKETPLACE_SUFFIX):
        return _parse_marketplace(service, usage_type.strip())
    match = _NATIVE.match(usage_type.strip())
    if match is None:
        return _UNPARSED
    words = [word for word in match["rest"].lower().split("-") if word]
    model_text = match["model"]
    # A tier may also sit before the class (USE1-Model-batch-input-tokens).
    model_tier = re.search(r"-(batch|flex|priority)$", model_text, re.IGNORECASE)
    if model_tier:
        words.append(model_tier[1].lower())
        model_text = model_text[: model_tier.start()]
    tier = next((word for word in words if word in _TIERS), "")
    return ParsedUsageType(model_slug(model_text), _NATIVE_CLASSES[match["cls"].lower()], tier)


def _parse_marketplace(service: str, usage_type: str) -> ParsedUsageType:
    model = model_slug(service[: -len(MARKETPLACE_SUFFIX)])
    match = _MARKETPLACE.match(usage_type)
    if match is None or not model:
        return ParsedUsageType(model, OTHER, parsed=False)
    # InputTokenCount_Global -> input token count global; input_tokens_standard -> input tokens standard
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", match["what"]).lower().split("_")
    tier = next((word for word in words if word in _TIERS), "")
    if "cache" in words and "read" in words:
        token_class = TokenType.CACHE_READ.value
    elif "cache" in words and "write" in words:
        token_class = (TokenType.CACHE_WRITE_1H if "1h" in words else TokenType.CACHE_WRITE_5M).value
    elif "input" in words:
        token_class = TokenType.INPUT.value
    elif "output" in words or "response" in words:
        token_class = TokenType.OUTPUT.value
    else:
        return ParsedUsageType(model, OTHER, tier, parsed=False)
    return ParsedUsageType(model, token_class, tier)


_CLAUDE_FAMILIES = ("opus", "sonnet", "haiku")


def model_slug(name: str) -> str:
    """`Claude3Haiku` / `Claude 3 Haiku` -> `claude-3-haiku`; `Claude4.5Sonnet` -> `claude-sonnet-4-5`."""
    text = re.sub(r"(?<=\d)\.0(?!\d)", "", name.strip())  # Nova2.0Lite -> Nova2Lite, as in amazon.nova-2-lite
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", "-", text)  # NovaLite -> Nova-Lite
    text = re.sub(r"(?<=[a-z])(?=\d)", "-", text)  # Claude3 -> Claude-3 (G1 stays G1)
    text = re.sub(r"(?<=\d)(?=[A-Z][a-z])", "-", text)  # 3Haiku -> 3-Haiku (70B stays 70B)
    words = [word for word in re.split(r"[^a-z0-9]+", text.lower()) if word]
    # Claude 4 and later name the family first (claude-sonnet-4-5); first-party usage types put the version first.
    if len(words) >= 3 and words[0] == "claude" and words[-1] in _CLAUDE_FAMILIES and words[1].isdigit():
        if int(words[1]) >= 4:
            words = [words[0], words[-1], *words[1:-1]]
    return "-".join(words)


class AWSCostExplorer:
    """Billing source for Amazon Bedrock: AWS Cost Explorer's daily cost per service and usage type.

    `client`: a boto3 Cost Explorer client; by default one is made for `us-east-1` (Cost Explorer's endpoint) with
    botocore's standard retry mode and `MAX_RETRIES` retries, at `endpoint_url` when given (tests, proxies).
    `account_map` maps AWS accounts to deployment environments (lines are not grouped by linked account, so their
    account is "" and they are organization-wide unless `""` is mapped). `today`: the current UTC day, or a function
    giving it (default: the clock); lines of today are not final, and days after it are not asked for.
    """

    name = SOURCE
    providers: tuple[str, ...] = (PROVIDER,)

    def __init__(
        self,
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        account_map: AccountMap | None = None,
        today: date | Callable[[], date] | None = None,
    ) -> None:
        self._client = client
        self._endpoint_url = endpoint_url
        self.account_map = account_map or AccountMap()
        self._today = today

    @property
    def client(self) -> Any:
        """The Cost Explorer client, made on first use (so a missing boto3 is reported by the pull)."""
        if self._client is None:
            self._client = _default_client(self._endpoint_url)
        return self._client

    def today(self) -> date:
        if self._today is None:
            return datetime.now(timezone.utc).date()
        return self._today() if callable(self._today) else self._today

    def pull(self, start_day: date, end_day: date) -> BilledPull:
        """Every Bedrock line billed on the UTC days `start_day`..`end_day` (inclusive), all pages read.
        Raises `MissingCredentials` when boto3 finds no AWS credentials."""
        if end_day < start_day:
            raise ValueError(f"end_day {end_day} is before start_day {start_day}")
        today = self.today()
        last = min(end_day, today)  # Cost Explorer has nothing after today
        if last < start_day:
            return BilledPull(source=SOURCE, start_day=start_day, end_day=end_day)
        request: dict[str, Any] = {
            "TimePeriod": {"Start": start_day.isoformat(), "End": (last + timedelta(days=1)).isoformat()},
            "Granularity": "DAILY",
            "Metrics": ["UnblendedCost", "UsageQuantity"],
            "GroupBy": _GROUP_BY,
            "Filter": _USAGE_ONLY,
        }
        lines: dict[tuple[str, ...], BilledLine] = {}
        requests = retries = 0
        while True:
            response = self._call(request)
            requests += 1
            retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            for result in response.get("ResultsByTime", []):
                self._read_result(result, start_day, last, today, lines)
            token = response.get("NextPageToken")
            if not token:
                break
            request = {**request, "NextPageToken": token}
        ordered = sorted(lines.values(), key=lambda line: line.key)
        return BilledPull(SOURCE, start_day, end_day, lines=ordered, requests=requests, retries=retries)

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError

        try:
            response: dict[str, Any] = self.client.get_cost_and_usage(**request)
        except (NoCredentialsError, PartialCredentialsError):
            raise MissingCredentials(
                "no AWS credentials for Cost Explorer: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                "AWS_PROFILE, or run with a role allowed ce:GetCostAndUsage"
            ) from None
        return response

    def _read_result(
        self, result: dict[str, Any], start_day: date, last: date, today: date, lines: dict[tuple[str, ...], Any]
    ) -> None:
        day = date.fromisoformat(result["TimePeriod"]["Start"][:10])
        if not start_day <= day <= last:
            return
        final = not result.get("Estimated", False) and day < today
        for group in result.get("Groups", []):
            keys = [*group.get("Keys", []), "", ""]
            service, usage_type = keys[0], keys[1]
            if not is_bedrock_service(service):
                continue
            metrics = group.get("Metrics", {})
            cost = metrics.get("UnblendedCost", {})
            unit = cost.get("Unit", "USD")
            if unit != "USD":
                raise ValueError(f"Cost Explorer returned {service} / {usage_type} in {unit}, not USD")
            amount = _decimal(cost.get("Amount"), f"the cost of {service} / {usage_type}")
            usage = metrics.get("UsageQuantity", {})
            quantity = _decimal(usage["Amount"], "a usage quantity") if usage.get("Amount") is not None else None
            parsed = parse_usage_type(service, usage_type)
            line = BilledLine(
                provider=PROVIDER,
                day=day,
                source=SOURCE,
                line=f"{service} / {usage_type}",
                amount=amount,
                account="",
                model=parsed.model,
                token_class=parsed.token_class,
                tier=parsed.tier,
                quantity=quantity,
                unit=usage.get("Unit", "") if quantity is not None else "",
                environment=self.account_map.environment(PROVIDER, ""),
                final=final,
                parsed=parsed.parsed,
            )
            previous = lines.get(line.key)
            if previous is not None:  # the same group on two pages: one line of the bill, so its parts add up
                line = _merged(previous, line)
            lines[line.key] = line


def _merged(first: BilledLine, second: BilledLine) -> BilledLine:
    quantity = None if first.quantity is None or second.quantity is None else first.quantity + second.quantity
    return replace(first, amount=first.amount + second.amount, quantity=quantity, final=first.final and second.final)


def _decimal(text: Any, what: str) -> Decimal:
    if not isinstance(text, str):
        raise ValueError(f"Cost Explorer returned no amount text for {what}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"Cost Explorer returned {text!r} for {what}, not a number") from None
    if not value.is_finite():
        raise ValueError(f"Cost Explorer returned {text!r} for {what}, not a number")
    return value


def _default_client(endpoint_url: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ImportError("the AWS Cost Explorer source needs boto3: pip install 'otel-ai-cost[bedrock]'") from None
    config = Config(retries={"mode": "standard", "max_attempts": MAX_RETRIES})
    # A session of its own: credentials are resolved when the source is made, not cached in boto3's global
    # default session from an earlier use.
    session = boto3.session.Session()
    return session.client("ce", region_name="us-east-1", endpoint_url=endpoint_url, config=config)
