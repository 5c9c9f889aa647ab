"""Which provider an `openai` client really talks to, from its base URL.

The `openai` SDK is used for many OpenAI-compatible APIs; labelling them all `openai` gives wrong labels and wrong
prices. Unknown hosts (a local gateway, a test server) are taken to be OpenAI.
"""

from __future__ import annotations

from functools import lru_cache

# host suffix -> gen_ai.provider.name (semconv well-known values)
_HOSTS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "openai"),
    (".openai.azure.com", "azure.ai.openai"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
)


@lru_cache(maxsize=256)
def provider_for_host(host: str) -> str:
    host = host.lower()
    for suffix, provider in _HOSTS:
        if host == suffix.lstrip(".") or host.endswith(suffix):
            return provider
    return "openai"
