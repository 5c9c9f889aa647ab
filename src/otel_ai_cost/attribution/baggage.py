"""Attribution carried in W3C Baggage, across code paths and across services.

A service's edge (an HTTP handler, a queue consumer) often knows the team or job a request belongs to, while
the AI call happens deeper, maybe in another service. W3C Baggage carries key/value pairs along with the trace
context: the standard `baggage` propagator (on by default: `OTEL_PROPAGATORS=tracecontext,baggage`) injects
them into outgoing HTTP requests and extracts them on the other side.

Only allow-listed baggage keys are read, and each becomes the same span attribute the matching
`ai_usage_context` keyword does (`team` -> `ai_cost.team`, `job_id` -> `ai_cost.job.id`, any other key
`k` -> `ai_cost.tag.k`). A key may also be listed by its full attribute name (`ai_cost.team`,
`ai_cost.tag.tenant`): that baggage key is then read into that attribute.

- Default allow-list: `team`, `job_id`, `batch_id`, `operation_type`. `user_id` is deliberately left out: user
  ids are personal data, and baggage travels to every downstream service, including third-party APIs. Opt in
  with the environment variable `OTEL_AI_COST_BAGGAGE_KEYS` (comma list, replaces the default), e.g.
  `OTEL_AI_COST_BAGGAGE_KEYS=team,job_id,batch_id,operation_type,user_id`.
- Baggage is untrusted input from upstream: values are trimmed and cut to `MAX_BAGGAGE_VALUE_LENGTH` (256)
  characters, blank values are ignored, and a listed `ai_cost.*` name outside the attribution namespace
  (such as `ai_cost.amount`) is refused.
- Baggage never overrides an `ai_usage_context` value in the same process: the context wins, key by key.

To send attribution downstream, use `ai_usage_context(..., propagate=True)`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from contextvars import Token
from types import MappingProxyType

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context

from otel_ai_cost.contract import Attribution, Env

__all__ = [
    "DEFAULT_BAGGAGE_KEYS",
    "KEYWORD_ATTRIBUTES",
    "MAX_BAGGAGE_VALUE_LENGTH",
    "attribute_name",
    "baggage_attributes",
    "baggage_key_map",
    "set_baggage_keys",
]

_logger = logging.getLogger(__name__)

# The keywords with a dedicated attribute; any other keyword `k` becomes `Attribution.TAG_PREFIX + k`.
KEYWORD_ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {
        "operation_type": Attribution.OPERATION_TYPE,
        "job_id": Attribution.JOB_ID,
        "batch_id": Attribution.BATCH_ID,
        "team": Attribution.TEAM,
        "user_id": Attribution.USER_ID,
    }
)
_NAMED_ATTRIBUTES = frozenset(KEYWORD_ATTRIBUTES.values())
_NAMESPACE = Attribution.OPERATION_TYPE.split(".", 1)[0] + "."  # "ai_cost."

DEFAULT_BAGGAGE_KEYS: tuple[str, ...] = ("team", "job_id", "batch_id", "operation_type")
MAX_BAGGAGE_VALUE_LENGTH = 256

_EMPTY: Mapping[str, str] = MappingProxyType({})


def attribute_name(key: str) -> str:
    """The span attribute an `ai_usage_context` keyword or a baggage key maps to.

    `team` -> `ai_cost.team`, `job_id` -> `ai_cost.job.id`, ...; a full attribution name is kept as is; any
    other key `k` -> `ai_cost.tag.k`.
    """
    if key in _NAMED_ATTRIBUTES or key.startswith(Attribution.TAG_PREFIX):
        return key
    return KEYWORD_ATTRIBUTES.get(key) or Attribution.TAG_PREFIX + key


def baggage_key_map(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The allow-list as `{baggage key: span attribute}`, from `OTEL_AI_COST_BAGGAGE_KEYS` (comma list) or the
    default. A blank variable means the default; refused names are logged once and dropped."""
    environ = os.environ if environ is None else environ
    raw = (environ.get(Env.BAGGAGE_KEYS) or "").strip()
    keys = [key.strip() for key in raw.split(",") if key.strip()] if raw else list(DEFAULT_BAGGAGE_KEYS)
    return _key_map(keys)


def _accepted(key: str) -> bool:
    # A listed `ai_cost.*` name must be an attribution attribute: baggage must not set cost or pricing
    # attributes.
    if key.startswith(_NAMESPACE):
        is_tag = key.startswith(Attribution.TAG_PREFIX) and key != Attribution.TAG_PREFIX
        return key in _NAMED_ATTRIBUTES or is_tag
    return True


def _key_map(keys: Iterable[str]) -> Mapping[str, str]:
    mapping: dict[str, str] = {}
    refused: list[str] = []
    for raw in keys:
        key = raw.strip()
        if not key:
            continue
        if _accepted(key):
            mapping[key] = attribute_name(key)
        else:
            refused.append(key)
    if refused:
        _logger.warning(
            "otel-ai-cost: baggage keys outside the attribution namespace are ignored: %s", ", ".join(refused)
        )
    return MappingProxyType(mapping)


def _from_baggage(entries: Mapping[str, object], key_map: Mapping[str, str]) -> Mapping[str, str]:
    attributes: dict[str, str] = {}
    for key, attribute in key_map.items():
        value = entries.get(key)
        if value is None:
            continue
        text = str(value).strip()[:MAX_BAGGAGE_VALUE_LENGTH]
        if text:
            attributes[attribute] = text
    return MappingProxyType(attributes) if attributes else _EMPTY


def baggage_attributes(entries: Mapping[str, object] | None = None) -> Mapping[str, str]:
    """The attribution read from baggage: allow-listed keys only, values trimmed and length-capped.

    `entries` defaults to the current context's baggage.
    """
    if entries is None:
        entries = otel_baggage.get_all()
    return _from_baggage(entries, _allowlist())


# --- hot path ---
#
# `current_attributes()` runs on every instrumented call. The SDK's `baggage.get_all()` wraps the baggage dict
# in a new proxy on each call, so to cache by identity we read the dict itself under the SDK's baggage context
# key. The dict is never mutated in place (`set_baggage` copies), so its identity stands for its content.
_BAGGAGE_KEY: str | None = getattr(otel_baggage, "_BAGGAGE_KEY", None)
_KEY_MAP: Mapping[str, str] | None = None
# (baggage dict, allow-list, attributes): one entry, replaced as a whole so threads never see a torn update.
_cache: tuple[object, Mapping[str, str], Mapping[str, str]] = (None, _EMPTY, _EMPTY)


def _allowlist() -> Mapping[str, str]:
    global _KEY_MAP
    if _KEY_MAP is None:
        _KEY_MAP = baggage_key_map()
    return _KEY_MAP


def set_baggage_keys(keys: Iterable[str] | None = None) -> None:
    """Replace the baggage allow-list for this process; `None` re-reads `OTEL_AI_COST_BAGGAGE_KEYS`.

    The variable is otherwise read once, on first use.
    """
    global _KEY_MAP, _cache
    _KEY_MAP = baggage_key_map() if keys is None else _key_map(keys)
    _cache = (None, _EMPTY, _EMPTY)


def _raw_baggage() -> object:
    """The current baggage (a dict), or something falsy when there is none."""
    if _BAGGAGE_KEY is not None:
        return otel_context.get_current().get(_BAGGAGE_KEY)
    return otel_baggage.get_all()  # the SDK renamed its key: slower (no identity cache) but still correct


def _current_baggage_attributes(bag: object) -> Mapping[str, str]:
    """Allow-listed attributes of `bag` (as returned by `_raw_baggage`, non-empty), cached by identity."""
    global _cache
    key_map = _allowlist()
    cached_bag, cached_map, cached_attributes = _cache
    if cached_bag is bag and cached_map is key_map:
        return cached_attributes
    attributes = _from_baggage(bag, key_map) if isinstance(bag, Mapping) else _EMPTY
    _cache = (bag, key_map, attributes)
    return attributes


# --- propagation ---


def _attach(attributes: Mapping[str, object]) -> Token[otel_context.Context] | None:
    """Put the allow-listed `attributes` into the current baggage; returns the token to detach, if any."""
    ctx = None
    for key, attribute in _allowlist().items():
        value = attributes.get(attribute)
        if value is not None:
            ctx = otel_baggage.set_baggage(key, str(value), context=ctx)
    return otel_context.attach(ctx) if ctx is not None else None


def _detach(token: Token[otel_context.Context]) -> None:
    otel_context.detach(token)
