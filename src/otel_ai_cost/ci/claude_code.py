"""Claude Code in CI: the execution file of `anthropics/claude-code-action` as ledger records.

`otel-ai-cost import claude-code --file "${{ steps.claude.outputs.execution_file }}"` (`cli/import_claude_code.py`)
calls `records_from_execution_file` and writes what it returns. This module only reads: the file, the GitHub
Actions variables in `environ`, and the event payload file `GITHUB_EVENT_PATH` names.

**The file's shape**, as read in the action's public source (github.com/anthropics/claude-code-action, at
commit 24dcd50, 2026-08), not guessed:

- `base-action/src/execution-file.ts`: the file is `$RUNNER_TEMP/claude-execution-output.json`, named by the step
  output `execution_file` (`action.yml`, `outputs.execution_file`), written as `JSON.stringify(messages, null, 2)`:
  a JSON array of every message the Claude Agent SDK's `query()` yielded (`base-action/src/run-claude-sdk.ts`; it
  is written on failure too, then possibly without a result). Before the SDK path (removed in #849), the CLI path
  of `base-action/src/run-claude.ts` ran `claude --verbose --output-format stream-json` and gathered its lines with
  `jq -s`: the same messages in the same array. A file of those lines as printed (JSON Lines), or one object (what
  `claude -p --output-format json` prints: the result message alone), is read too.
- The messages (`run-claude-sdk.ts`, `base-action/test/run-claude-sdk.test.ts`): first
  `{"type": "system", "subtype": "init", "session_id", "model"}`, then `assistant` and `user` messages (the
  conversation: never read here), and last `{"type": "result", ...}`, after which the action stops reading. The
  result message carries `subtype` (`success`, `error_max_turns`, `error_during_execution`, ...), `is_error`,
  `duration_ms`, `duration_api_ms`, `num_turns`, `session_id`, `total_cost_usd`, `usage` (the Messages API's
  snake_case counts summed over the run: `input_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`,
  `output_tokens`, `cache_creation.ephemeral_5m_input_tokens`/`_1h_`, `server_tool_use.web_search_requests`) and
  `modelUsage`: per model `inputTokens`, `outputTokens`, `cacheReadInputTokens`, `cacheCreationInputTokens`,
  `webSearchRequests`, `costUSD`, `contextWindow`, `maxOutputTokens` (the test's fixture, with 96,209 input
  tokens beside 1,135,701 cache reads: `inputTokens` excludes the cache, as the Messages API's `input_tokens` does).
- `src/entrypoints/update-comment-link.ts` reads the cost the same way (the last element, `type == "result"`,
  `total_cost_usd`, `duration_ms`); `test/fixtures/sample-turns.json` is a file of an older version whose result
  has only `total_cost_usd` and `duration_ms`, which is read too (one record, the model from the init message).
- Claude Code's documentation, "Track cost and usage" (code.claude.com/docs/en/agent-sdk/cost-tracking):
  `total_cost_usd` and `costUSD` are client-side estimates from a price table bundled with Claude Code; per-model
  figures are in `modelUsage`; a failed run's result still carries its cost.

**The records.** One per model of `modelUsage` (Claude Code may use a small model beside the main one), else one
for the run. The amount is that model's `costUSD` read exactly from the file's text (never through a float),
`cost_source=provider` (the file states the cost); our catalog's figure for the same tokens is kept beside it as
`computed_amount` (`otel-ai-cost reconcile` compares both with the bill). A run whose file states no cost is priced
from the catalog (`cost_source=local`), and is `unpriced` (cost unknown, never $0) when the catalog cannot.
Tokens follow the ledger's convention (input totals include cache reads and writes). Cache writes are split by TTL
from the result's `usage.cache_creation` when the run used one model; with several models and 1-hour writes the
split per model is unknown, so the writes are counted as 5-minute ones and no catalog figure is claimed.

Attribution: `operation_type=code_review`, `operation=invoke_agent`, `record_source=import`, the CI attributes of
the run (`attribution.ci.github_actions`: workflow, run id and URL, job, repository, commit, branch) and the pull
request as `vcs_change_id`: from `GITHUB_REF` (`refs/pull/N/merge`), else the event payload (`pull_request.number`,
an `issue_comment` on a pull request's `issue.number`, a `workflow_run`'s first pull request), unless given.
`duration_ms` is the run's wall-clock time (on each model's record); the time is the run's start: the file's
modification time (the action writes it as the run ends) less that duration, unless `at` says when it ended.
Tags: `claude_code.session_id`, `claude_code.num_turns`, `claude_code.subtype`. No prompt, answer, tool input or
output, and no variable but the GitHub Actions ones listed above is ever read into a record.

**Identity.** Deterministic, from the repository, `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT` and the file's session id
(else its result's `uuid`, else the result's content): the trace id, one per run of Claude Code; and the model: the
span id. Importing the same file twice, or a copy of it (an artifact downloaded later), changes nothing. A re-run
attempt is new spend and gets new records; a resumed session in another run too (each run reports its own cost).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from otel_ai_cost.attribution.ci import github_actions
from otel_ai_cost.contract import CostSource, Outcome, PricingStatus, RecordSource, Resource
from otel_ai_cost.decimal_text import parse_decimal
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.record import LedgerRecord

__all__ = [
    "DEFAULT_OPERATION_TYPE",
    "DEFAULT_SERVICE",
    "ExecutionFileError",
    "ExecutionSummary",
    "provider_from_environ",
    "pull_request_number",
    "read_execution_summary",
    "records_from_execution_file",
]

DEFAULT_SERVICE = "claude-code-action"
DEFAULT_OPERATION_TYPE = "code_review"
OPERATION = "invoke_agent"  # the GenAI semantic conventions' name for running an agent
ANTHROPIC, BEDROCK, VERTEX = "anthropic", "aws.bedrock", "gcp.vertex_ai"
MAX_FILE_BYTES = 256 * 1024 * 1024  # a long session's file is megabytes; past this it is not an execution file
_TAG_SESSION, _TAG_TURNS, _TAG_SUBTYPE = "claude_code.session_id", "claude_code.num_turns", "claude_code.subtype"


class ExecutionFileError(ValueError):
    """The file is not a Claude Code execution file that states what the run used; the message says why.
    Nothing of it was recorded."""


@dataclass(frozen=True)
class _ModelUse:
    model: str
    uncached_input: int
    output: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    web_search: int
    cost: Decimal | None  # what the file states, None when it states nothing for this model
    split_known: bool = True  # False: 1-hour cache writes exist but not which model made them


@dataclass(frozen=True)
class ExecutionSummary:
    """What the result message of one Claude Code run says, before it becomes records."""

    session_id: str  # "" in a file without one
    identity: str  # the session id, else what tells this run's result from another's (its uuid, else its content)
    subtype: str
    is_error: bool
    duration_ms: float
    num_turns: int | None
    total_cost: Decimal | None
    uses: tuple[_ModelUse, ...]


def read_execution_summary(path: str | Path) -> ExecutionSummary:
    """The run's result (see the module documentation); `ExecutionFileError` when the file has none."""
    messages = _messages(Path(path))
    result = next((m for m in reversed(messages) if m.get("type") == "result"), None)
    if result is None:
        raise ExecutionFileError(
            f"{path}: no result message: the run ended before Claude Code reported its usage (the action writes "
            "the file on failure too); its cost is unknown, and nothing was recorded"
        )
    init = next((m for m in messages if m.get("type") == "system" and m.get("subtype") == "init"), {})
    session = _text(result.get("session_id")) or _text(init.get("session_id"))
    identity = session or _text(result.get("uuid")) or hashlib.sha256(_canonical(result)).hexdigest()
    total = _cost(result.get("total_cost_usd"), f"{path}: total_cost_usd")
    uses = _model_uses(result, messages, init, total, path)
    return ExecutionSummary(
        session_id=session,
        identity=identity,
        subtype=_text(result.get("subtype")),
        is_error=result.get("is_error") is True,
        duration_ms=_duration(result.get("duration_ms")),
        num_turns=_count(result.get("num_turns"), f"{path}: num_turns", optional=True),
        total_cost=total,
        uses=uses,
    )


def records_from_execution_file(
    path: str | Path,
    environ: Mapping[str, str],
    *,
    environment: str | None = None,
    change_id: str | None = None,
    provider: str | None = None,
    service: str = DEFAULT_SERVICE,
    operation_type: str = DEFAULT_OPERATION_TYPE,
    at: datetime | None = None,
) -> list[LedgerRecord]:
    """The ledger records of one Claude Code run (see the module documentation), checked against the ledger's
    bounds. `environment` defaults to the deployment environment of `environ` (`cicd` in CI), `change_id` to the
    pull request of the run, `provider` to `provider_from_environ(environ)`, `at` (when the run ended) to the
    file's modification time. Raises `ExecutionFileError`."""
    summary = read_execution_summary(path)
    ended = at if at is not None else datetime.fromtimestamp(Path(path).stat().st_mtime, tz=timezone.utc)
    if ended.tzinfo is None:
        raise ExecutionFileError("`at` must be timezone-aware")
    started = ended.astimezone(timezone.utc) - timedelta(milliseconds=summary.duration_ms)
    ci = github_actions(environ)
    pull = change_id or ci.get(Resource.VCS_CHANGE_ID) or pull_request_number(environ)
    trace_id = _trace_id(environ, summary)
    chosen_provider = provider or provider_from_environ(environ)
    tags = {_TAG_SESSION: summary.session_id, _TAG_SUBTYPE: summary.subtype}
    if summary.num_turns is not None:
        tags[_TAG_TURNS] = str(summary.num_turns)
    records = []
    for use in summary.uses:
        record = _record(
            use,
            summary,
            trace_id=trace_id,
            span_id=hashlib.sha256(f"{trace_id}|{use.model}".encode()).hexdigest()[:16],
            timestamp=started,
            environment=environment or _environment(environ),
            service=service,
            provider=chosen_provider,
            operation_type=operation_type,
            tags={k: v for k, v in tags.items() if v},
            ci=ci,
            change_id=pull or "",
        )
        try:
            limits.check_record(record)
        except ValueError as exc:
            raise ExecutionFileError(f"{path}: {exc}") from None
        records.append(record)
    return records


def provider_from_environ(environ: Mapping[str, str]) -> str:
    """Where Claude Code sent its requests: Bedrock or Vertex AI when Claude Code's own switches
    (`CLAUDE_CODE_USE_BEDROCK`, `CLAUDE_CODE_USE_VERTEX`) are set in this step, else the Anthropic API."""
    if (environ.get("CLAUDE_CODE_USE_BEDROCK") or "").strip().lower() in {"1", "true"}:
        return BEDROCK
    if (environ.get("CLAUDE_CODE_USE_VERTEX") or "").strip().lower() in {"1", "true"}:
        return VERTEX
    return ANTHROPIC


def pull_request_number(environ: Mapping[str, str]) -> str | None:
    """The pull request of this GitHub Actions run from its event payload (`GITHUB_EVENT_PATH`): a
    `pull_request*` event's number, an `issue_comment` on a pull request (how `@claude` mentions start the
    action), or a `workflow_run`'s first pull request. None when the event concerns none or cannot be read."""
    event_path = (environ.get("GITHUB_EVENT_PATH") or "").strip()
    if not event_path:
        return None
    try:
        payload = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    candidates: list[Any] = [_get(payload, "pull_request", "number")]
    issue = payload.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request"):
        candidates.append(issue.get("number"))
    pulls = _get(payload, "workflow_run", "pull_requests")
    if isinstance(pulls, list) and pulls and isinstance(pulls[0], dict):
        candidates.append(pulls[0].get("number"))
    for number in candidates:
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return str(number)
    return None


# -- reading -------------------------------------------------------------------------------------------------


def _messages(path: Path) -> list[dict[str, Any]]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ExecutionFileError(f"{path}: {size:,} bytes, more than an execution file ({MAX_FILE_BYTES:,})")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExecutionFileError(f"{path}: no such file (the action's `execution_file` output names it)") from None
    except UnicodeDecodeError:
        raise ExecutionFileError(f"{path}: not UTF-8 text, so not a Claude Code execution file") from None
    except OSError as exc:
        raise ExecutionFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data: Any = _loads(text)
    except ValueError:
        data = _json_lines(text, path)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise ExecutionFileError(f"{path}: expected a JSON array of Claude Code messages")
    return data


def _json_lines(text: str, path: Path) -> list[Any]:
    """Stream-json as printed: one message per line. A line that is not JSON is an error naming its number only
    (its text is part of the conversation, which never reaches a message)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append(_loads(line))
            except ValueError:
                raise ExecutionFileError(
                    f"{path}:{number}: not JSON: neither a JSON array (the action's file) nor JSON Lines "
                    "(claude --output-format stream-json)"
                ) from None
    return out


def _loads(text: str) -> Any:
    # Numbers exactly as written: a cost of 0.1 is Decimal("0.1"), never the binary float nearest to it.
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _model_uses(
    result: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]],
    init: Mapping[str, Any],
    total: Decimal | None,
    path: str | Path,
) -> tuple[_ModelUse, ...]:
    usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    split = usage.get("cache_creation") if isinstance(usage.get("cache_creation"), dict) else {}
    write_1h_total = _count(split.get("ephemeral_1h_input_tokens"), f"{path}: usage.cache_creation", optional=True)
    per_model = result.get("modelUsage")
    if isinstance(per_model, dict) and per_model:
        uses = []
        unknown_basis = False
        for model, entry in sorted(per_model.items()):
            where = f"{path}: modelUsage[{model!r}]"
            if not isinstance(entry, dict):
                raise ExecutionFileError(f"{where}: expected an object")
            writes = _count(entry.get("cacheCreationInputTokens"), f"{where}.cacheCreationInputTokens")
            write_1h = 0
            split_known = not write_1h_total
            if write_1h_total and len(per_model) == 1 and write_1h_total <= writes:
                write_1h, split_known = write_1h_total, True
            # A model Claude Code could not price has no figure of its own (newer versions say `costBasis`
            # "unknown"): its cost is unknown here, never the 0 it may show, and so is the run's total.
            unknown_basis = unknown_basis or entry.get("costBasis") == "unknown"
            stated = None if entry.get("costBasis") == "unknown" else _cost(entry.get("costUSD"), f"{where}.costUSD")
            uses.append(
                _ModelUse(
                    model=str(model),
                    uncached_input=_count(entry.get("inputTokens"), f"{where}.inputTokens"),
                    output=_count(entry.get("outputTokens"), f"{where}.outputTokens"),
                    cache_read=_count(entry.get("cacheReadInputTokens"), f"{where}.cacheReadInputTokens"),
                    cache_write_5m=writes - write_1h,
                    cache_write_1h=write_1h,
                    web_search=_count(entry.get("webSearchRequests"), f"{where}.webSearchRequests"),
                    cost=stated,
                    split_known=split_known,
                )
            )
        if len(uses) == 1 and uses[0].cost is None and total is not None and not unknown_basis:
            uses[0] = _replace_cost(uses[0], total)
        return tuple(uses)
    # An older file: the run's totals only (and perhaps only its cost), for the model the run started with.
    writes = _count(usage.get("cache_creation_input_tokens"), f"{path}: usage.cache_creation_input_tokens")
    write_1h = min(write_1h_total or 0, writes)
    search = usage.get("server_tool_use") if isinstance(usage.get("server_tool_use"), dict) else {}
    use = _ModelUse(
        model=_text(init.get("model")) or _assistant_model(messages),
        uncached_input=_count(usage.get("input_tokens"), f"{path}: usage.input_tokens"),
        output=_count(usage.get("output_tokens"), f"{path}: usage.output_tokens"),
        cache_read=_count(usage.get("cache_read_input_tokens"), f"{path}: usage.cache_read_input_tokens"),
        cache_write_5m=writes - write_1h,
        cache_write_1h=write_1h,
        web_search=_count(search.get("web_search_requests"), f"{path}: usage.server_tool_use.web_search_requests"),
        cost=total,
    )
    if use.cost is None and not (use.uncached_input or use.output or use.cache_read or writes):
        raise ExecutionFileError(
            f"{path}: the result message states neither a cost (total_cost_usd, modelUsage) nor token usage; "
            "nothing was recorded"
        )
    return (use,)


def _replace_cost(use: _ModelUse, cost: Decimal) -> _ModelUse:
    return _ModelUse(use.model, use.uncached_input, use.output, use.cache_read, use.cache_write_5m,
                     use.cache_write_1h, use.web_search, cost, use.split_known)  # fmt: skip


def _assistant_model(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        inner = message.get("message")
        if message.get("type") == "assistant" and isinstance(inner, dict) and _text(inner.get("model")):
            return _text(inner.get("model"))
    return ""


def _get(data: Mapping[str, Any], *keys: str) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _count(value: Any, where: str, *, optional: bool = False) -> Any:
    """A token count as the file states it (absent or null: 0, or None when `optional`)."""
    if value is None:
        return None if optional else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExecutionFileError(f"{where} must be a non-negative integer, got {_shown(value)}")
    return value


def _cost(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ExecutionFileError(f"{where} must be a number, got {_shown(value)}")
    try:
        return parse_decimal(value, maximum=limits.MAX_AMOUNT_USD, what=where)
    except ValueError as exc:
        raise ExecutionFileError(str(exc)) from None


def _duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return 0.0
    try:
        milliseconds = float(value)
    except (InvalidOperation, OverflowError):
        return 0.0
    return milliseconds if 0 <= milliseconds <= limits.MAX_DURATION_MS else 0.0


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- records -------------------------------------------------------------------------------------------------


def _trace_id(environ: Mapping[str, str], summary: ExecutionSummary) -> str:
    run = (environ.get("GITHUB_RUN_ID") or "").strip()
    attempt = (environ.get("GITHUB_RUN_ATTEMPT") or "").strip() or "1"
    repository = (environ.get("GITHUB_REPOSITORY") or "").strip()
    basis = f"claude-code|{repository}|{run}|{attempt}|{summary.identity}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _environment(environ: Mapping[str, str]) -> str:
    from otel_ai_cost.attribution import detect_environment

    return detect_environment(environ)


def _record(
    use: _ModelUse,
    summary: ExecutionSummary,
    *,
    trace_id: str,
    span_id: str,
    timestamp: datetime,
    environment: str,
    service: str,
    provider: str,
    operation_type: str,
    tags: Mapping[str, str],
    ci: Mapping[str, str],
    change_id: str,
) -> LedgerRecord:
    from otel_ai_cost.pricing.catalog import default_catalog
    from otel_ai_cost.pricing.usage import Usage

    usage = Usage(
        input_tokens=use.uncached_input + use.cache_read + use.cache_write_5m + use.cache_write_1h,
        output_tokens=use.output,
        cache_read_input_tokens=use.cache_read,
        cache_write_5m_input_tokens=use.cache_write_5m,
        cache_write_1h_input_tokens=use.cache_write_1h,
        web_search_requests=use.web_search,
    )
    quote = default_catalog().quote(provider, use.model, usage, at=timestamp, warn=False) if use.model else None
    priced = quote is not None and quote.status == PricingStatus.PRICED and use.split_known
    if use.cost is not None:
        amount, cost_source, status = use.cost, CostSource.PROVIDER.value, PricingStatus.PRICED.value
        computed = quote.amount if priced and quote is not None else None
    elif priced and quote is not None:
        amount, cost_source, status, computed = quote.amount, CostSource.LOCAL.value, PricingStatus.PRICED.value, None
    else:
        amount, cost_source, status, computed = None, CostSource.LOCAL.value, PricingStatus.UNPRICED.value, None
    failed = summary.is_error or (summary.subtype not in ("", "success"))
    return LedgerRecord(
        trace_id=trace_id,
        span_id=span_id,
        timestamp=timestamp,
        environment=environment,
        service=service,
        provider=provider,
        request_model=use.model,
        response_model=use.model,
        operation=OPERATION,
        operation_type=operation_type,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cache_write_5m_input_tokens=usage.cache_write_5m_input_tokens,
        cache_write_1h_input_tokens=usage.cache_write_1h_input_tokens,
        web_search_requests=usage.web_search_requests,
        amount=amount,
        computed_amount=computed,
        cost_source=cost_source,
        pricing_status=status,
        pricing_version=quote.version if quote is not None else "",
        pricing_tier=quote.tier if quote is not None else "",
        duration_ms=summary.duration_ms,
        outcome=Outcome.ERROR.value if failed else Outcome.SUCCESS.value,
        error_type=summary.subtype if failed else "",
        tags=dict(tags),
        cicd_pipeline_name=ci.get(Resource.CICD_PIPELINE_NAME, ""),
        cicd_run_id=ci.get(Resource.CICD_PIPELINE_RUN_ID, ""),
        cicd_run_url=ci.get(Resource.CICD_PIPELINE_RUN_URL_FULL, ""),
        cicd_task_name=ci.get(Resource.CICD_PIPELINE_TASK_NAME, ""),
        vcs_repository_url=ci.get(Resource.VCS_REPOSITORY_URL_FULL, ""),
        vcs_revision=ci.get(Resource.VCS_REF_HEAD_REVISION, ""),
        vcs_ref_name=ci.get(Resource.VCS_REF_HEAD_NAME, ""),
        vcs_change_id=change_id,
        record_source=RecordSource.IMPORT.value,
    )
