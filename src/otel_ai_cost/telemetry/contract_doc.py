"""Renders docs/telemetry.md from the contract module, so the docs cannot drift from the code."""

from __future__ import annotations

from enum import Enum

from otel_ai_cost import contract as c

_SPAN_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    (
        c.GenAI.OPERATION_NAME,
        "string",
        ", ".join(f"`{op.value}`" for op in c.Operation) + "; or the operation given to `track_request` "
        "(semconv, required)",
    ),
    (c.GenAI.PROVIDER_NAME, "string", "`openai`, `anthropic`, `aws.bedrock`, `x_ai`, ... (semconv, required)"),
    (c.GenAI.REQUEST_MODEL, "string", "model the caller asked for"),
    (c.GenAI.REQUEST_STREAM, "boolean", "true on streamed calls"),
    (c.GenAI.REQUEST_MAX_TOKENS, "int", "max output tokens requested"),
    (c.GenAI.RESPONSE_MODEL, "string", "model that answered (often a dated id); priced first"),
    (c.GenAI.RESPONSE_ID, "string", "provider's response id"),
    (c.GenAI.RESPONSE_FINISH_REASONS, "string[]", "why generation stopped"),
    (c.GenAI.RESPONSE_TIME_TO_FIRST_CHUNK, "double (s)", "streams: time to the first chunk"),
    (c.GenAI.USAGE_INPUT_TOKENS, "int", "all input tokens, cache reads and cache writes included"),
    (c.GenAI.USAGE_OUTPUT_TOKENS, "int", "all output tokens, reasoning included"),
    (c.GenAI.USAGE_CACHE_READ_INPUT_TOKENS, "int", "input tokens read from the cache (subset of input)"),
    (c.GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS, "int", "input tokens written to the cache (subset of input)"),
    (c.GenAI.USAGE_REASONING_OUTPUT_TOKENS, "int", "reasoning/thinking tokens (subset of output)"),
    (c.GenAI.OPENAI_REQUEST_SERVICE_TIER, "string", "OpenAI: service tier requested"),
    (c.GenAI.OPENAI_RESPONSE_SERVICE_TIER, "string", "OpenAI: service tier that served the call"),
    (c.GenAI.ANTHROPIC_REQUEST_ID, "string", "Anthropic: the `request-id` of a call that is not streamed"),
    (c.GenAI.INPUT_MESSAGES, "string (JSON)", f"only with `{c.Env.CAPTURE_MESSAGE_CONTENT}=true`"),
    (c.GenAI.OUTPUT_MESSAGES, "string (JSON)", f"only with `{c.Env.CAPTURE_MESSAGE_CONTENT}=true`"),
    (c.Server.ADDRESS, "string", "API host"),
    (c.Server.PORT, "int", "API port, when not the scheme's default"),
    (c.ERROR_TYPE, "string", "exception class name (e.g. `RateLimitError`, `APITimeoutError`) on failure"),
    (c.Cost.AMOUNT, "string (decimal)", "exact cost, e.g. `0.00123450`; a string because a double would round"),
    (c.Cost.CURRENCY, "string", f"`{c.CURRENCY}`"),
    (c.Cost.SOURCE, "string", "`local` (priced from the catalog) or `provider` (reported in the response)"),
    (
        c.Cost.COMPUTED_AMOUNT,
        "string (decimal)",
        "with source `provider`: the catalog's own figure for the call, so the difference shows",
    ),
    (
        c.Cost.FEE_WEB_SEARCH_AMOUNT,
        "string (decimal)",
        "part of the catalog's figure that is server-side web search calls (OpenAI, Anthropic), when non-zero",
    ),
    (
        c.Cost.FEE_REQUEST_AMOUNT,
        "string (decimal)",
        "part of the catalog's figure that is a per-request fee (Perplexity, Google Places SKUs), when non-zero",
    ),
    (c.Cost.PRICING_STATUS, "string", "`priced`, `unpriced` (no price known: no amount, never $0), `no_usage`"),
    (
        c.Quota.BLOCKED,
        "string",
        "the `enforce` limit that refused the call before it was sent (`error.type` `BudgetExceeded`)",
    ),
    (c.Quota.WARNED, "string", "the `warn` limit the call went over (it was sent)"),
    (
        c.Cost.PRICING_REASON,
        "string",
        "with `unpriced`: why (" + ", ".join(f"`{r.value}`" for r in c.PricingReason) + "); `malformed_usage`: "
        "a token count that is not one (a null total, text, a fraction, a negative or absurd number), logged once "
        "per provider and field",
    ),
    (c.Cost.PRICING_VERSION, "string", "catalog version that priced the call"),
    (c.Cost.PRICING_TIER, "string", "`standard`, `batch`, `flex` or `priority`, from the response's service tier"),
    (c.Cost.USAGE_CACHE_CREATION_5M_INPUT_TOKENS, "int", "cache writes with a 5-minute TTL"),
    (c.Cost.USAGE_CACHE_CREATION_1H_INPUT_TOKENS, "int", "cache writes with a 1-hour TTL"),
    (c.Cost.USAGE_WEB_SEARCH_REQUESTS, "int", "server-side web searches (priced per request)"),
    (c.Cost.USAGE_IMAGE_INPUT_TOKENS, "int", "image tokens among the input (image generation and edits)"),
    (c.Cost.USAGE_AUDIO_INPUT_TOKENS, "int", "audio tokens among the input (audio chat, transcription)"),
    (c.Cost.USAGE_IMAGE_OUTPUT_TOKENS, "int", "image tokens among the output (generated images)"),
    (c.Cost.USAGE_AUDIO_OUTPUT_TOKENS, "int", "audio tokens among the output (spoken answers)"),
    (c.Cost.USAGE_AUDIO_INPUT_SECONDS, "double", "seconds of input audio billed by duration (whisper-1 transcription)"),
    (c.Cost.USAGE_REQUESTS, "int", "`track_request`: billable requests the block made (`count=`), priced per request"),
    (c.Cost.USAGE_PARTIAL, "boolean", "true when a stream ended before its usage arrived"),
    (c.Attribution.OPERATION_TYPE, "string", "`ai_usage_context(operation_type=...)` or baggage `operation_type`"),
    (c.Attribution.JOB_ID, "string", "`job_id` (span only, never a metric label)"),
    (c.Attribution.BATCH_ID, "string", "`batch_id` (span only)"),
    (c.Attribution.TEAM, "string", "`team`"),
    (c.Attribution.USER_ID, "string", "`user_id` (span only)"),
    (c.Attribution.TAG_PREFIX + "<key>", "string", "any other keyword of `ai_usage_context` (span only)"),
    (
        c.ApiKey.FINGERPRINT,
        "string",
        "first 8 hex digits of HMAC-SHA256 of the SDK client's API key (never the key; secret "
        f"`{c.Env.KEY_FINGERPRINT_SECRET}`, else a fixed project-wide default); absent when the client has no key",
    ),
    (
        c.Code.FILE_PATH,
        "string",
        f"with `{c.Attribution.OPERATION_TYPE}` `{c.UNATTRIBUTED}` (strict environments, `{c.Env.REQUIRE_CONTEXT}`): "
        "the caller's source file",
    ),
    (c.Code.LINE_NUMBER, "int", f"with `{c.UNATTRIBUTED}`: the caller's line"),
    (c.Code.FUNCTION_NAME, "string", f"with `{c.UNATTRIBUTED}`: the caller's function, module-qualified"),
    (
        c.Test.CASE_NAME,
        "string",
        "the pytest node id of the test that made the call (`pytest --ai-cost`; also the tag "
        f"`{c.Attribution.TAG_PREFIX}{c.Test.CASE_NAME}`; span only)",
    ),
)

_RESOURCE: tuple[tuple[str, str], ...] = (
    (c.Resource.SERVICE_NAME, "`OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`"),
    (c.Resource.SERVICE_VERSION, f"`OTEL_RESOURCE_ATTRIBUTES`, else `{c.Env.APP_VERSION}`"),
    (
        c.Attribution.USER_ID,
        f"`OTEL_RESOURCE_ATTRIBUTES`, else `{c.Env.USER_ID}` (a call's own `user_id` wins; never a metric label)",
    ),
    (
        c.Resource.DEPLOYMENT_ENVIRONMENT_NAME,
        f"`OTEL_RESOURCE_ATTRIBUTES`, else `{c.Env.ENVIRONMENT_FALLBACK}`, else `cicd` in CI, else `development`",
    ),
    (c.Resource.CICD_PIPELINE_NAME, "CI detector"),
    (c.Resource.CICD_PIPELINE_RUN_ID, "CI detector"),
    (c.Resource.CICD_PIPELINE_RUN_URL_FULL, "CI detector"),
    (c.Resource.CICD_PIPELINE_TASK_NAME, "CI detector"),
    (c.Resource.VCS_REPOSITORY_URL_FULL, "CI detector (credentials stripped)"),
    (c.Resource.VCS_REF_HEAD_REVISION, "CI detector"),
    (c.Resource.VCS_REF_HEAD_NAME, "CI detector"),
    (c.Resource.VCS_CHANGE_ID, "CI detector (pull/merge request number)"),
    (
        c.Resource.CICD_PIPELINE_RUN_ACTOR,
        "CI detector: `GITHUB_ACTOR` (ours: semconv names no actor; never a metric label)",
    ),
)


def _values(enum: type[Enum]) -> str:
    return ", ".join(f"`{m.value}`" for m in enum)


def render() -> str:
    out = [
        "# Telemetry contract",
        "",
        "<!-- Generated by `otel-ai-cost docs telemetry` from `src/otel_ai_cost/contract.py`; do not edit. -->",
        "",
        f"Instrumentation scope `{c.INSTRUMENTATION_SCOPE}`, schema `{c.SCHEMA_URL}`. GenAI names follow the "
        "OpenTelemetry semantic conventions v1.41; names under `ai_cost.*` are ours (no released convention "
        "covers cost or attribution).",
        "",
        "## Span",
        "",
        "One span per logical call (SDK retries included), kind `CLIENT`, named "
        "`{gen_ai.operation.name} {gen_ai.request.model}`.",
        "",
        "| attribute | type | meaning |",
        "|---|---|---|",
        *(f"| `{name}` | {kind} | {meaning} |" for name, kind, meaning in _SPAN_ATTRIBUTES),
        "",
        "## Resource",
        "",
        "Filled by the `ai_cost` resource detector (`OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=ai_cost`). When the SDK "
        "resource lacks them, the instrumentation puts the detected values on its spans instead.",
        "",
        "| attribute | source |",
        "|---|---|",
        *(f"| `{name}` | {source} |" for name, source in _RESOURCE),
        "",
        "## Metrics",
        "",
        "| metric | instrument | unit | Prometheus name | labels | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for m in c.METRICS:
        labels = ", ".join(f"`{label}`" for label in (*m.labels, *m.extra_labels))
        out.append(f"| `{m.name}` | {m.instrument} | `{m.unit}` | `{m.prometheus_name}` | {labels} | {m.description} |")
    out += [
        "",
        f"Histogram buckets: tokens {list(c.TOKEN_BUCKETS)}; duration (s) {list(c.DURATION_BUCKETS)}.",
        "",
        f"The `ai_cost.*` counters' labels are an allow-list, `{c.Env.METRIC_LABELS}` (default: "
        + ", ".join(f"`{x}`" for x in c.METRIC_LABELS_DEFAULT)
        + "). These never become labels, whatever the allow-list says: "
        + ", ".join(f"`{x}`" for x in sorted(c.METRIC_LABELS_FORBIDDEN))
        + f", and any `{c.Attribution.TAG_PREFIX}*`.",
        "",
        f"Every label's values are bounded, per meter provider: the first {c.METRIC_LABEL_LIMIT_DEFAULT} distinct "
        f"values of a label (`{c.Env.METRIC_LABEL_LIMIT}` to change) keep their own series, any later one is "
        f"recorded as `{c.METRIC_LABEL_OTHER}`; `{c.Env.METRIC_LABEL_VALUES_PREFIX}<LABEL>` (the label's name "
        "upper-cased, `_` for every other character, e.g. "
        f"`{c.Env.METRIC_LABEL_VALUES_PREFIX}GEN_AI_REQUEST_MODEL=gpt-4o,gpt-4o-mini`) gives one label a fixed "
        f"allow-list instead. An empty value (no team) is always kept. Totals summed over a label's series stay "
        "exact; the SDK's own cardinality cap (2,000 series per instrument, which would merge unrelated series into "
        "one overflow point) is never reached by one label alone. Spans keep every value.",
        "",
        "Exemplars on `ai_cost.spend` (and the histograms) carry the trace and span id of a call of that series.",
        "",
        "## Ledger service metrics",
        "",
        "`otel-ai-cost ledger serve` exposes these on `/metrics`, named the Prometheus way. The spend gauges are exact "
        "period-to-date figures (UTC day and month) from the ledger's running totals: budget alerts use them.",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
        *(
            f"| `{m.name}` | {m.kind} | {', '.join(f'`{label}`' for label in m.labels)} | {m.help} |"
            for m in c.LEDGER_METRICS
        ),
        "",
        "## Enumerations",
        "",
        f"- `{c.GenAI.TOKEN_TYPE}` on `ai_cost.tokens`: {_values(c.TokenType)} (mutually exclusive pricing "
        "classes; on `gen_ai.client.token.usage` it is `input`/`output` as semconv defines).",
        f"- `{c.OUTCOME_LABEL}`: {_values(c.Outcome)}",
        f"- `{c.Cost.PRICING_STATUS}`: {_values(c.PricingStatus)}",
        f"- `{c.Cost.PRICING_REASON}`: {_values(c.PricingReason)}",
        f"- `{c.GenAI.OPERATION_NAME}`: {_values(c.Operation)}",
        f"- `{c.Cost.SOURCE}`: {_values(c.CostSource)}",
        "",
        "## Environment variables",
        "",
        "| variable | meaning |",
        "|---|---|",
        f"| `{c.Env.PRICES_FILE}` | YAML price overrides merged over the shipped catalog |",
        f"| `{c.Env.METRIC_LABELS}` | comma list replacing the default metric-label allow-list |",
        f"| `{c.Env.METRIC_LABEL_LIMIT}` | distinct values kept per metric label, the rest `{c.METRIC_LABEL_OTHER}` "
        f"(default {c.METRIC_LABEL_LIMIT_DEFAULT}) |",
        f"| `{c.Env.METRIC_LABEL_VALUES_PREFIX}<LABEL>` | comma allow-list of one label's values, the rest "
        f"`{c.METRIC_LABEL_OTHER}` |",
        f"| `{c.Env.BAGGAGE_KEYS}` | comma list of W3C baggage keys read into attribution |",
        f"| `{c.Env.INJECT_STREAM_USAGE}` | `false` stops asking OpenAI streams for their usage chunk |",
        f"| `{c.Env.PROVIDER_HOSTS}` | `host[:port][/path]=provider,...`: the provider behind an OpenAI-compatible "
        "base URL (gateways), before the public hosts |",
        f"| `{c.Env.MODEL_ALIASES}` | `alias=model,...`: price a name that is no model id (an Azure deployment, a "
        "gateway's model group) as that model |",
        f"| `{c.Env.ENVIRONMENT_FALLBACK}` | deployment environment when `OTEL_RESOURCE_ATTRIBUTES` has none |",
        f"| `{c.Env.CAPTURE_MESSAGE_CONTENT}` | `true` records prompts and completions (off by default) |",
        f"| `{c.Env.LEDGER}` | ledger store URL: `sqlite:///path/usage.db` (default: "
        "`~/.local/share/otel-ai-cost/usage.db`), `dynamodb://TABLE?region=...`, or `none` |",
        f"| `{c.Env.LEDGER_TOKEN}` | bearer token the ledger service requires (`otel-ai-cost ledger serve`) |",
        f"| `{c.Env.BUDGETS}` | the budgets file of `otel-ai-cost budgets check`/`render` when `--budgets` is not "
        "given (default: `config/budgets.yaml` in the working directory or the nearest directory above) |",
        f"| `{c.Env.ANTHROPIC_SDK_SPANS}` | `keep` keeps the anthropic SDK's own span of each call we record, as a "
        "child of ours (default: ours alone, one span per call) |",
        f"| `{c.Env.API_ENVIRONMENTS}` | the environments the `/ai_usage` Lambda (`otel_ai_cost.api.lambda_handler`) "
        "may read: a comma list, or `*` (unset: every environment) |",
        f"| `{c.Env.TRACK_AI_USAGE}` | legacy tracker's switch: `false` makes `instrument()` and the entry points do "
        "nothing |",
        f"| `{c.Env.TRACK_TO_FILE}` | legacy: `true` also appends each call to `{c.Env.USAGE_FILE}` as a "
        "`usage.jsonl` line |",
        f"| `{c.Env.USAGE_FILE}` | the file of `{c.Env.TRACK_TO_FILE}=true` (default: `/tmp/ai_usage.jsonl`) |",
        f"| `{c.Env.DYNAMODB_TABLE_NAME}` | legacy: the DynamoDB ledger table when `{c.Env.LEDGER}` is unset |",
        f"| `{c.Env.USER_ID}` | legacy: the process's `{c.Attribution.USER_ID}` |",
        f"| `{c.Env.APP_VERSION}` | legacy: `{c.Resource.SERVICE_VERSION}` |",
        f"| `{c.Env.REQUIRE_CONTEXT}` | comma list of environments where a call without an operation type is "
        f"recorded as `{c.UNATTRIBUTED}`, counted and its call site logged once (default "
        f"`{c.REQUIRE_CONTEXT_DEFAULT}`; empty: none) |",
        f"| `{c.Env.KEY_FINGERPRINT_SECRET}` | the HMAC key of `{c.ApiKey.FINGERPRINT}` (default: a fixed, public, "
        "project-wide value, so fingerprints agree everywhere) |",
        "| " + ", ".join(f"`{name}`" for name in _OTEL_VARIABLES) + " | OpenTelemetry's own: `otel-ai-cost doctor` "
        "reads them to show the exporters, endpoints and resource a process would run with |",
        "",
    ]
    return "\n".join(out)


# OpenTelemetry's variables in `contract.Env` (the doctor reads them; the SDK and `opentelemetry-instrument` own them).
_OTEL_VARIABLES = tuple(v for k, v in vars(c.Env).items() if k.startswith(("OTEL_", "OTLP_")) and isinstance(v, str))
