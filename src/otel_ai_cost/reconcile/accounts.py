"""The accounts file: which deployment environment each billing account belongs to.

A bill is organization-wide; its lines name an account (an OpenAI project, an Anthropic workspace, an AWS linked
account, a GCP project). Mapping an account to an environment lets `reconcile` compare that account's bill with
the environment's tracked calls, and lets the ledger service show those lines to tokens scoped to the
environment. `otel-ai-cost reconcile --accounts FILE` (or `$OTEL_AI_COST_RECONCILE_ACCOUNTS`):

```yaml
accounts:
  openai:                     # gen_ai.provider.name
    proj_abc123: production   # account id: environment
    proj_def456: staging
  anthropic:
    "": production            # the default workspace (no id)
    wrkspc_01: ci
```

Errors read `file:line: key.path: problem`. Accounts not listed stay organization-wide.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from otel_ai_cost.pricing.yaml_nodes import NodeReader, PriceFileError
from otel_ai_cost.reconcile.billed import AccountMap

__all__ = ["ACCOUNTS_ENV", "MAX_ACCOUNTS", "AccountsFileError", "load_accounts", "parse_accounts"]

ACCOUNTS_ENV = "OTEL_AI_COST_RECONCILE_ACCOUNTS"
MAX_ACCOUNTS = 10_000  # entries per file
MAX_NAME_CHARS = 200


class AccountsFileError(PriceFileError):
    """An accounts file that cannot be used; the message reads `file:line: key.path: problem`."""


class _Reader(NodeReader):
    error = AccountsFileError


def load_accounts(path: str | Path) -> AccountMap:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AccountsFileError(f"{path}:0: (file): cannot read: {error}") from None
    return parse_accounts(text, str(path))


def parse_accounts(text: str, filename: str = "<accounts>") -> AccountMap:
    reader = _Reader(filename)
    root = reader.compose(text)
    if reader.is_null(root):
        return AccountMap()
    assert root is not None
    top = reader.mapping(root, "", allowed=("accounts",), required=("accounts",))
    accounts: dict[str, dict[str, str]] = {}
    count = 0
    for provider_node, entries in _pairs(reader, top["accounts"], "accounts"):
        provider = reader.string(provider_node, "accounts")
        path = f"accounts.{provider}"
        if provider in accounts:
            reader.fail(provider_node, path, "duplicate provider")
        accounts[provider] = {}
        for account_node, environment_node in _pairs(reader, entries, path):
            account = reader.scalar_text(account_node, path, "an account id").strip()
            key = f"{path}.{account or '(default)'}"
            if account in accounts[provider]:
                reader.fail(account_node, key, "duplicate account")
            environment = reader.string(environment_node, key)
            for what, value in (("account id", account), ("environment", environment)):
                if len(value) > MAX_NAME_CHARS:
                    reader.fail(account_node, key, f"{what} longer than {MAX_NAME_CHARS} characters")
            accounts[provider][account] = environment
            count += 1
            if count > MAX_ACCOUNTS:
                reader.fail(account_node, key, f"more than {MAX_ACCOUNTS} accounts")
    return AccountMap(accounts)


def _pairs(reader: NodeReader, node: yaml.Node, path: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if reader.is_null(node):
        return []
    if not isinstance(node, yaml.MappingNode):
        reader.fail(node, path, "expected a mapping")
    return list(node.value)
