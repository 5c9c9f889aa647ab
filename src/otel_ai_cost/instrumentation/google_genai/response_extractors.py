"""Pure functions from `google-genai` SDK objects to facts.

Gemini reports usage in `usage_metadata` (`GenerateContentResponseUsageMetadata`):

- `prompt_token_count` INCLUDES `cached_content_token_count` (the SDK's docstring: "When `cached_content` is set,
  this also includes the number of tokens in the cached content").
- `tool_use_prompt_token_count` (results of server-side tools fed back to the model) is NOT in
  `prompt_token_count`: `total_token_count` is "the sum of `prompt_token_count`, `candidates_token_count`,
  `tool_use_prompt_token_count`, and `thoughts_token_count`". It is billed as input.
- `thoughts_token_count` is NOT in `candidates_token_count`; thinking is billed as output.

So, in the semconv totals our `Usage` holds (and as genai-prices' own Google usage extractor maps it):
input = prompt + tool_use_prompt (cache reads included), cache_read = cached_content,
output = candidates + thoughts, reasoning = thoughts.

Counts are read through `TokenCounts` (pricing/usage.py). The API omits zero counts, so an absent one is 0, except
`prompt_token_count`: every request has a prompt, so usage without one (or with a negative or absurd count, or
cached content beyond the prompt) is malformed, and the call unpriced rather than priced as if it were 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from otel_ai_cost.contract import GenAI
from otel_ai_cost.pricing.usage import TokenCounts, Usage

GEMINI = "gcp.gemini"
VERTEX_AI = "gcp.vertex_ai"

# Vertex AI's `traffic_type` -> our service tiers. Pay-as-you-go is standard; provisioned throughput is billed
# as a subscription, not per token, and is priced here at standard rates (a known limit, see the package doc).
_TRAFFIC_TIERS: dict[str, str] = {
    "ON_DEMAND": "standard",
    "ON_DEMAND_FLEX": "flex",
    "ON_DEMAND_PRIORITY": "priority",
}


def _enum_value(value: Any) -> str | None:
    if value is None:
        return None
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, str) else None


def provider_of(api_client: Any) -> str:
    """`gcp.vertex_ai` for a client configured for Vertex AI (`vertexai=True` or `GOOGLE_GENAI_USE_VERTEXAI`)."""
    return VERTEX_AI if getattr(api_client, "vertexai", False) is True else GEMINI


def server_of(api_client: Any) -> tuple[str | None, int | None]:
    """`server.address` / `server.port` from the client's effective base URL."""
    options = getattr(api_client, "_http_options", None)
    base_url = getattr(options, "base_url", None)
    if not isinstance(base_url, str) or not base_url:
        return None, None
    parts = urlsplit(base_url)
    return parts.hostname or None, parts.port


def usage(metadata: Any) -> Usage | None:
    """Our `Usage` from a response's `usage_metadata` (None when the response carries none)."""
    if metadata is None:
        return None
    counts = TokenCounts()
    prompt = counts.attr(metadata, "prompt_token_count", required=True)
    tool_use = counts.attr(metadata, "tool_use_prompt_token_count")
    cached = counts.attr(metadata, "cached_content_token_count")
    candidates = counts.attr(metadata, "candidates_token_count")
    thoughts = counts.attr(metadata, "thoughts_token_count")
    counts.within("prompt_token_count", prompt, "cached_content_token_count", cached)
    return counts.usage(
        input_tokens=prompt + tool_use,
        output_tokens=candidates + thoughts,
        cache_read_input_tokens=cached,
        reasoning_output_tokens=thoughts,
    )


def finish_reasons(response: Any) -> list[str] | None:
    """Per candidate, lower-cased as the semconv examples spell them (`STOP` -> `stop`)."""
    reasons = []
    for candidate in getattr(response, "candidates", None) or ():
        reason = _enum_value(getattr(candidate, "finish_reason", None))
        if reason:
            reasons.append(reason.lower())
    return reasons or None


def response_model(response: Any) -> str | None:
    value = getattr(response, "model_version", None)
    return value if isinstance(value, str) and value else None


def response_id(response: Any) -> str | None:
    value = getattr(response, "response_id", None)
    return value if isinstance(value, str) and value else None


def _config_value(config: Any, name: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def requested_service_tier(config: Any) -> str | None:
    """The `service_tier` asked for in `GenerateContentConfig` (flex, priority), if any."""
    tier = _enum_value(_config_value(config, "service_tier"))
    return tier if tier and tier != "unspecified" else None


def service_tier(metadata: Any, requested: str | None) -> str | None:
    """The tier the call was billed at: Vertex AI reports it (`traffic_type`); the Gemini API does not, so the
    requested tier stands."""
    traffic = _enum_value(getattr(metadata, "traffic_type", None))
    if traffic is not None and traffic in _TRAFFIC_TIERS:
        return _TRAFFIC_TIERS[traffic]
    return requested


def request_attributes(config: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    max_tokens = _config_value(config, "max_output_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes[GenAI.REQUEST_MAX_TOKENS] = max_tokens
    return attributes


def output_messages(response: Any) -> list[dict[str, Any]] | None:
    """The candidates' text, one assistant message per candidate (only built when content capture is on)."""
    messages = []
    for candidate in getattr(response, "candidates", None) or ():
        parts = getattr(getattr(candidate, "content", None), "parts", None) or ()
        text = "".join(t for p in parts if isinstance(t := getattr(p, "text", None), str) and t)
        messages.append({"role": "assistant", "content": text})
    return messages or None


def error_type(error: BaseException) -> str | None:
    """`google.genai.errors.APIError` carries the HTTP status code: "429", "503"... (None: the class name)."""
    if not type(error).__module__.startswith("google.genai"):
        return None
    code = getattr(error, "code", None)
    if isinstance(code, int) and not isinstance(code, bool) and code > 0:
        return str(code)
    return None
