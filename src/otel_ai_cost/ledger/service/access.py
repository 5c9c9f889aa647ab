"""Who may write and read which environments of the ledger service: the tokens file, and each request's scope.

A tokens file (`otel-ai-cost ledger serve --tokens-file ledger-tokens.yaml`) lists the bearer tokens the service
accepts, each with the environments it may write (records for any other environment are rejected alone, in
`partial_success`) and those it may read (`/v1/usage`, `/ai_usage`, `/metrics`):

```yaml
tokens:
  - name: ci-sender                # shown in rejections and logs (never the token)
    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  # SHA-256 (hex) of the token
    write: [cicd]
    read: [cicd]
  - name: grafana
    sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
    read: ["*"]                    # "*": every environment
```

`sha256` keeps the file free of secrets (`printf %s "$TOKEN" | sha256sum`); `token: <the token>` (at least 16
characters) is accepted instead, for a file kept as secret as the token. Errors read `file:line: key.path: problem`
(the `NodeReader` of the price and budget files). A single `--token-file` / `$OTEL_AI_COST_LEDGER_TOKEN` token, or
no token at all, means every environment.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from heapq import merge
from pathlib import Path

import yaml

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service.otlp import Extracted
from otel_ai_cost.ledger.store import AggregateRow, BilledQuery, LedgerStore, UsageQuery, sum_rows
from otel_ai_cost.pricing.yaml_nodes import NodeReader, PriceFileError
from otel_ai_cost.reconcile.billed import BilledLine
from otel_ai_cost.reconcile.runs import ReconciledDay

ALL = "*"
MIN_TOKEN_CHARS = 16  # a plain `token:` shorter than this is refused: guessable
MAX_TOKENS = 1000  # entries per file: every request compares against each one
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = ("name", "sha256", "token", "write", "read")


class TokensFileError(PriceFileError):
    """A tokens file that cannot be used; the message reads `file:line: key.path: problem`."""


class OutOfScope(PermissionError):
    """A read of an environment the request's token may not read (the service answers 403)."""


@dataclass(frozen=True)
class Scope:
    """The environments one token may write and read; None: every environment."""

    name: str
    write: frozenset[str] | None
    read: frozenset[str] | None

    def may_write(self, environment: str) -> bool:
        return self.write is None or environment in self.write

    def may_read(self, environment: str) -> bool:
        return self.read is None or environment in self.read


UNRESTRICTED = Scope("(every environment)", None, None)


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes  # SHA-256 of the token
    scope: Scope


class TokenTable:
    """The accepted tokens, by their SHA-256. Only digests are kept in memory, and every entry is compared on every
    request (constant time each), so timing tells nothing about which token, or how much of one, matched."""

    def __init__(self, entries: Sequence[TokenEntry]) -> None:
        self.entries = tuple(entries)

    @classmethod
    def single(cls, token: str) -> TokenTable:
        """The one-token mode (`--token-file`, `$OTEL_AI_COST_LEDGER_TOKEN`): every environment."""
        return cls([TokenEntry(_digest(token), Scope("token", None, None))])

    def authenticate(self, authorization: str) -> Scope | None:
        """The scope of an `Authorization` header's bearer token; None when it is missing, wrong or not Bearer."""
        scheme, _, credentials = authorization.partition(" ")
        digest = _digest(credentials.strip())
        found = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.scope
        return found if scheme.lower() == "bearer" else None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def request_scope(tokens: TokenTable | None, authorization: str) -> Scope | None:
    """The request's scope: UNRESTRICTED without authentication, else the token's (None: refuse with 401)."""
    return UNRESTRICTED if tokens is None else tokens.authenticate(authorization)


# --- the tokens file ---------------------------------------------------------------------------------------------
def load_tokens(path: str | Path) -> TokenTable:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TokensFileError(f"{path}:0: (file): cannot read: {error}") from None
    return parse_tokens(text, str(path))


def parse_tokens(text: str, filename: str = "<tokens>") -> TokenTable:
    reader = _Reader(filename)
    root = reader.compose(text)
    if reader.is_null(root):
        raise TokensFileError(f"{filename}:1: (root): empty file; expected a mapping with 'tokens'")
    assert root is not None
    top = reader.mapping(root, "", allowed=("tokens",), required=("tokens",))
    nodes = reader.sequence(top["tokens"], "tokens")
    if not nodes:
        reader.fail(top["tokens"], "tokens", "expected at least one token")
    if len(nodes) > MAX_TOKENS:
        reader.fail(top["tokens"], "tokens", f"{len(nodes)} entries; at most {MAX_TOKENS}")
    entries: list[TokenEntry] = []
    names: dict[str, int] = {}
    digests: dict[bytes, str] = {}
    for index, node in enumerate(nodes):
        path = f"tokens[{index}]"
        entry = _entry(reader, node, path)
        line = node.start_mark.line + 1
        if entry.scope.name in names:
            reader.fail(node, f"{path}.name", f"duplicate name (also on line {names[entry.scope.name]})")
        if entry.digest in digests:
            reader.fail(node, path, f"the same token as {digests[entry.digest]!r}")
        names[entry.scope.name] = line
        digests[entry.digest] = entry.scope.name
        entries.append(entry)
    return TokenTable(entries)


class _Reader(NodeReader):
    """The house NodeReader, raising TokensFileError."""

    error = TokensFileError


def _entry(reader: _Reader, node: yaml.Node, path: str) -> TokenEntry:
    values = reader.mapping(node, path, allowed=_ENTRY_KEYS, required=("name",))
    name = reader.string(values["name"], f"{path}.name")
    if ("sha256" in values) == ("token" in values):
        reader.fail(node, path, "exactly one of 'sha256' (preferred: the file holds no secret) or 'token'")
    if "sha256" in values:
        text = reader.string(values["sha256"], f"{path}.sha256").lower()
        if not _SHA256.match(text):
            reader.fail(values["sha256"], f"{path}.sha256", "expected 64 hex digits (the token's SHA-256)")
        digest = bytes.fromhex(text)
    else:
        token = reader.string(values["token"], f"{path}.token")
        if len(token) < MIN_TOKEN_CHARS:
            reader.fail(values["token"], f"{path}.token", f"shorter than {MIN_TOKEN_CHARS} characters: guessable")
        digest = _digest(token)
    write = _environments(reader, values.get("write"), f"{path}.write")
    read = _environments(reader, values.get("read"), f"{path}.read")
    if write == frozenset() and read == frozenset():
        reader.fail(node, path, "grants nothing: give 'write', 'read' or both")
    return TokenEntry(digest, Scope(name, write, read))


def _environments(reader: _Reader, node: yaml.Node | None, path: str) -> frozenset[str] | None:
    """A list of environment names, or ["*"] (every one: None). Missing or empty: none."""
    if node is None:
        return frozenset()
    names: list[str] = []
    for index, item in enumerate(reader.sequence(node, path)):
        names.append(reader.string(item, f"{path}[{index}]"))
    if ALL in names:
        if len(names) > 1:
            reader.fail(node, path, f"{ALL!r} means every environment: give it alone")
        return None
    return frozenset(names)


# --- enforcement ---------------------------------------------------------------------------------------------------
def restrict_writes(scope: Scope, extracted: Extracted) -> None:
    """Rejects, alone and with the reason, every record for an environment the token may not write (reported in
    `partial_success`); the rest of the batch is written."""
    if scope.write is None:
        return
    kept: list[LedgerRecord] = []
    for record in extracted.records:
        if scope.may_write(record.environment):
            kept.append(record)
        else:
            extracted.reject(
                f"span {record.trace_id}/{record.span_id}: token {scope.name!r} may not write environment "
                f"{record.environment!r}"
            )
    extracted.records = kept


class ScopedReader:
    """A store's `query` and `aggregate` limited to the environments a scope may read: an explicit other
    environment raises OutOfScope; a query without one is answered for the readable environments only."""

    def __init__(self, store: LedgerStore, scope: Scope) -> None:
        self._store = store
        self._scope = scope

    def _environments(self, query: UsageQuery) -> list[str] | None:
        """The environments to ask for one by one; None: the query as it is."""
        if query.environment is not None:
            if not self._scope.may_read(query.environment):
                raise OutOfScope(f"token {self._scope.name!r} may not read environment {query.environment!r}")
            return None
        return None if self._scope.read is None else sorted(self._scope.read)

    def query(self, query: UsageQuery) -> Iterator[LedgerRecord]:
        environments = self._environments(query)
        if environments is None:
            return self._store.query(query)
        parts = [self._store.query(_with_environment(query, env)) for env in environments]
        return merge(*parts, key=lambda record: record.timestamp)  # each part is oldest first: so is the merge

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]:
        environments = self._environments(query)
        if environments is None:
            return self._store.aggregate(query, group_by)
        rows: dict[tuple[tuple[str, str], ...], AggregateRow] = {}
        for env in environments:
            for row in self._store.aggregate(_with_environment(query, env), group_by):
                rows[row.group] = sum_rows([rows[row.group], row], row.group) if row.group in rows else row
        return [rows[group] for group in sorted(rows)]

    # The billed side (`/v1/usage?billed=true`): a bill's lines and verdicts carry the environment their account is
    # mapped to; the organization-wide ones (environment "") only a token that may read every environment sees.
    def billed_lines(self, query: BilledQuery) -> list[BilledLine]:
        return self._store.billed_lines(self._billed(query))

    def reconciled_days(self, query: BilledQuery) -> list[ReconciledDay]:
        return self._store.reconciled_days(self._billed(query))

    def _billed(self, query: BilledQuery) -> BilledQuery:
        if self._scope.read is None:
            return query
        if query.environments is None:
            return replace(query, environments=self._scope.read)
        refused = sorted(query.environments - self._scope.read)
        if refused:
            raise OutOfScope(f"token {self._scope.name!r} may not read environment {refused[0]!r}")
        return query


def _with_environment(query: UsageQuery, environment: str) -> UsageQuery:
    values = {name: getattr(query, name) for name in UsageQuery.__dataclass_fields__}
    values["environment"] = environment
    return UsageQuery(**values)


# --- binding -----------------------------------------------------------------------------------------------------
def open_binding_warning(host: str, authenticated: bool) -> str | None:
    """The warning to print when the service would listen beyond loopback without any token."""
    if authenticated or _is_loopback(host):
        return None
    return (
        f"warning: listening on {host} without a token: anyone who can reach this address can write and read every "
        "environment's spend. Give --tokens-file (or --token-file / $OTEL_AI_COST_LEDGER_TOKEN), and terminate TLS "
        "in front of the service (docs/ledger.md)."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: may resolve to anything
