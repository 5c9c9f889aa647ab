"""Strict attribution: in an environment that requires it, a call without an operation type is recorded as
`(unattributed)`, counted, and its call site named, once per site, in a warning. The call is never refused.

`OTEL_AI_COST_REQUIRE_CONTEXT` lists the strict environments (comma list; default `production`; empty: none). A
call there whose attribution has no `ai_cost.operation_type` gets `ai_cost.operation_type=(unattributed)` and the
caller's line (`code.file.path`, `code.line.number`, `code.function.name`) on its span, its metric point and its
ledger record (`operation_type`, `call_site`), so the daily report can list the top unattributed call sites.

Cost: an attributed call, or any call in an environment that is not strict, pays one boolean test. An unattributed
call pays a walk up its stack to the first frame outside this package and the SDKs, and a dictionary lookup: the
site's attributes are built, and its warning logged, once per site (at most `MAX_SITES` sites are remembered).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from types import FrameType, MappingProxyType
from typing import Any

from otel_ai_cost.contract import REQUIRE_CONTEXT_DEFAULT, UNATTRIBUTED, UNATTRIBUTED_CALLS, Attribution, Code, Env

__all__ = ["MAX_SITES", "CallSite", "require_context", "unattributed_attribution"]

logger = logging.getLogger("otel_ai_cost.attribution")

MAX_SITES = 1000
_MAX_PATH_CHARS = 1000  # the ledger's `call_site` holds up to 2048 characters (`limits.MAX_URL_CHARS`)
# Top-level packages whose frames are never the caller: ours, the SDKs and their HTTP stacks, and the standard
# library's plumbing between an `await` or a decorator and the user's line.
_INTERNAL = frozenset(
    {
        "otel_ai_cost", "openai", "anthropic", "httpx", "httpx2", "httpcore", "h11", "wrapt", "google", "botocore",
        "boto3", "aiobotocore", "googlemaps", "requests", "urllib3", "functools", "contextlib", "asyncio",
        "concurrent", "threading", "contextvars",
    }
)  # fmt: skip


def require_context(environment: str, environ: Mapping[str, str]) -> bool:
    """Whether calls in `environment` must carry an operation type (`OTEL_AI_COST_REQUIRE_CONTEXT`)."""
    raw = environ.get(Env.REQUIRE_CONTEXT)
    if raw is None:
        raw = REQUIRE_CONTEXT_DEFAULT
    return environment in {part.strip() for part in raw.split(",") if part.strip()}


class CallSite:
    """One line of the caller's code that made unattributed calls, with what its calls carry."""

    __slots__ = ("_code", "_merged", "attributes", "file_path", "function", "line", "logged", "module")

    def __init__(self, module: str, file_path: str, line: int, function: str, code: object = None) -> None:
        self._code = code  # kept alive: its id is the key of the site
        self.module = module
        self.file_path = file_path
        self.line = line
        self.function = function
        self.logged = False
        self.attributes: Mapping[str, Any] = MappingProxyType(
            {
                Attribution.OPERATION_TYPE: UNATTRIBUTED,
                Code.FILE_PATH: file_path,
                Code.LINE_NUMBER: line,
                Code.FUNCTION_NAME: function,
            }
        )
        self._merged: tuple[object, Mapping[str, Any]] = (None, self.attributes)

    def attribution(self, base: Mapping[str, Any]) -> Mapping[str, Any]:
        """The call's attribution: its own (team, job, tags...) with the site's over it; the mapping is reused
        while the base is the same object (outside any context: always), so metric labels are computed once."""
        if not base:
            return self.attributes
        cached, merged = self._merged
        if cached is not base:
            merged = MappingProxyType({**base, **self.attributes})
            self._merged = (base, merged)
        return merged


# Sites by (id of the code object, bytecode offset of the call): cheap to hash, and a site keeps its code object
# alive, so the id is never reused. The first time an offset is seen, its line is looked up by (code id, line),
# so two calls on one line are one site, logged once.
_sites: dict[tuple[int, int], CallSite] = {}
_by_line: dict[tuple[int, int], CallSite] = {}
_internal: dict[str, bool] = {}  # module name -> whether its frames are ours or an SDK's (modules are few)
_full_warned = False


def _is_internal(name: str) -> bool:
    verdict = _internal.get(name)
    if verdict is None:
        verdict = name.partition(".")[0] in _INTERNAL
        if len(_internal) < 4 * MAX_SITES:
            _internal[name] = verdict
    return verdict


def _caller() -> FrameType | None:
    frame = sys._getframe(1)
    while frame is not None:
        if not _is_internal(frame.f_globals.get("__name__") or ""):
            return frame
        frame = frame.f_back
    return None


def _site_of(frame: FrameType | None) -> CallSite:
    if frame is None:
        return _UNKNOWN
    code = frame.f_code
    key = (id(code), frame.f_lasti)
    site = _sites.get(key)
    if site is not None:
        return site
    line = frame.f_lineno
    site = _by_line.get((key[0], line))
    if site is not None:
        if len(_sites) < MAX_SITES:
            _sites[key] = site
        return site
    module = frame.f_globals.get("__name__") or "?"
    path = code.co_filename
    if len(path) > _MAX_PATH_CHARS:  # the ledger bounds `call_site`: keep the end, the part that names the file
        path = "..." + path[-_MAX_PATH_CHARS:]
    function = f"{module}.{getattr(code, 'co_qualname', code.co_name)}"[:_MAX_PATH_CHARS]
    site = CallSite(module, path, line, function, code)
    global _full_warned
    if len(_by_line) < MAX_SITES:
        _by_line[(key[0], line)] = site  # a race can log a site twice, never more often: no lock on this path
        if len(_sites) < MAX_SITES:
            _sites[key] = site
        return site
    if not _full_warned:
        _full_warned = True
        logger.warning(
            "otel-ai-cost: more than %d call sites made unattributed calls; further sites are recorded and counted "
            "but not logged",
            MAX_SITES,
        )
    site.logged = True  # not remembered, so not logged either: the log stays bounded
    return site


_UNKNOWN = CallSite("?", "?", 0, "?")
_UNKNOWN.logged = True


def unattributed_attribution(base: Mapping[str, Any], environment: str) -> Mapping[str, Any]:
    """The attribution of a call made without an operation type in a strict environment; logs the call site the
    first time it is seen."""
    site = _site_of(_caller())
    if not site.logged:
        site.logged = True
        logger.warning(
            "otel-ai-cost: AI call without an operation type in the %r environment, which requires one (%s): "
            "recorded as ai_cost.operation_type=%s. Call site: module %s, line %d (%s, in %s). Wrap it in "
            "`with ai_usage_context(operation_type=...)`; further calls from this line are counted in %s, not logged.",
            environment,
            Env.REQUIRE_CONTEXT,
            UNATTRIBUTED,
            site.module,
            site.line,
            site.file_path,
            site.function,
            UNATTRIBUTED_CALLS.name,
        )
    return site.attribution(base)
