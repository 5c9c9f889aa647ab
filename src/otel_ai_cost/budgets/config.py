"""The budgets file (`config/budgets.yaml`), validated as it is read.

```yaml
timezone: UTC                      # optional; calendar days and months (only UTC: the ledger's totals are UTC)
budgets:
  daily:                           # USD per UTC day, per environment (the seeds' shape)
    production: 100.00
    cicd: 50.00
  monthly:                         # USD per UTC month, per environment
    production: 2500
  scoped:                          # optional narrower budgets: exactly one of provider, team, operation_type
    - {environment: production, period: month, provider: openai, amount: 1500}
    - {environment: cicd, period: day, team: platform, amount: 20}
    - {environment: production, period: day, operation_type: batch_processing, amount: 60}
  alerts:
    thresholds:                    # default: 80 warning, 95 critical, 100 exceeded
      - {percent: 80, severity: warning}
      - {percent: 95, severity: critical}
      - {percent: 100, severity: exceeded}
    channels:                      # secrets only as ${ENV_VAR} references
      - {type: slack, webhook: "${SLACK_WEBHOOK_URL}"}
      - type: email
        recipients: [devops@example.com]
        smtp: {host: smtp.example.com, port: 587, from: ai-cost@example.com, username: alerts,
               password: "${SMTP_PASSWORD}", starttls: true}
      - {type: webhook, url: "${ALERT_WEBHOOK_URL}"}
  enforce:                         # optional usage quotas: checked in-process before each call is sent
    - {environment: cicd, period: job, amount: 5, mode: block}          # each job: at most $5 in all
    - {environment: production, period: day, team: search, amount: 80, mode: block}
    - {environment: production, period: day, user_id: "*", amount: 2, mode: warn}  # each user apart
    - name: prod-monthly-stop      # optional; default: the limit's id, e.g. production/month
      environment: production
      period: month
      amount: 2400
      mode: block
      refresh_seconds: 5           # optional (default 1): how stale the other processes' spend may be
```

**Usage quotas (`enforce:`).** Each limit caps the spend of one environment (`environment`, required), narrowed to
at most one of `team`, `user_id`, `job_id` or `operation_type` (a value, or `"*"` for each value apart), over a
`period`: `day` or `month` (UTC), or `job` (each job's whole total, or the one job named by `job_id`; nothing
else narrows it). `mode: block` raises `otel_ai_cost.BudgetExceeded` before a call is sent; `mode: warn` logs once
and counts. Names are unique (two limits of the same scope need a `name` each). `budgets render` and `budgets
check` ignore them: they are enforced by the instrumentation itself (`budgets/quota.py`, docs/operations.md).

Errors read `file:line: key.path: problem` (the `NodeReader` of the price files); unknown keys are errors.
A budget is at most `MAX_BUDGET` USD, a threshold at most 1,000 %, both in plain decimal notation (no `1e400`,
no quoted `"1_000"`).

**Which file.** `find_budgets_file`: `--budgets PATH`, else `$OTEL_AI_COST_BUDGETS`, else `config/budgets.yaml`
in the working directory or the nearest directory above it (a checkout's own, from any of its subdirectories);
the commands say on standard error which file they read, and fail naming all three when there is none.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import yaml

from otel_ai_cost.contract import Env
from otel_ai_cost.ledger.service.metrics import PERIOD_DAY, PERIOD_MONTH
from otel_ai_cost.pricing.yaml_nodes import NodeReader, PriceFileError

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_REFRESH_SECONDS",
    "DEFAULT_THRESHOLDS",
    "EACH",
    "MAX_BUDGET",
    "PERIODS",
    "QUOTA_MODES",
    "QUOTA_PERIODS",
    "QUOTA_SCOPES",
    "SCOPES",
    "SEVERITIES",
    "Budget",
    "BudgetConfig",
    "BudgetConfigError",
    "Channel",
    "QuotaLimit",
    "SmtpSettings",
    "Threshold",
    "find_budgets_file",
    "load_budgets",
    "parse_budgets",
]

PERIODS = (PERIOD_DAY, PERIOD_MONTH)
SCOPE_ENVIRONMENT = "environment"
SCOPE_PROVIDER = "provider"
SCOPE_TEAM = "team"
SCOPE_OPERATION_TYPE = "operation_type"
SCOPES = (SCOPE_ENVIRONMENT, SCOPE_PROVIDER, SCOPE_TEAM, SCOPE_OPERATION_TYPE)
SEVERITY_WARNING = "warning"
SEVERITY_CRITICAL = "critical"
SEVERITY_EXCEEDED = "exceeded"
SEVERITIES = (SEVERITY_WARNING, SEVERITY_CRITICAL, SEVERITY_EXCEEDED)
CHANNEL_TYPES = ("slack", "email", "webhook")
TIMEZONES = ("UTC",)
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_NAME = re.compile(r"^[A-Za-z0-9_.:/-]+$")  # safe inside a PromQL string and an Alertmanager label
MAX_BUDGET = Decimal(1_000_000_000)  # USD per period: far above any budget, within every sum and gauge
MAX_THRESHOLD_PERCENT = Decimal(1000)
DEFAULT_FILE = Path("config") / "budgets.yaml"  # looked for in the working directory and above
# Usage quotas (`budgets.enforce`)
SCOPE_USER = "user_id"
SCOPE_JOB = "job_id"
QUOTA_SCOPES = (SCOPE_ENVIRONMENT, SCOPE_TEAM, SCOPE_USER, SCOPE_JOB, SCOPE_OPERATION_TYPE)
PERIOD_JOB = "job"  # a job's whole total, whatever its age
QUOTA_PERIODS = (PERIOD_DAY, PERIOD_MONTH, PERIOD_JOB)
MODE_BLOCK = "block"
MODE_WARN = "warn"
QUOTA_MODES = (MODE_BLOCK, MODE_WARN)
EACH = "*"  # a scope value meaning: each value apart (each user, each job)
DEFAULT_REFRESH_SECONDS = Decimal(1)
MAX_REFRESH_SECONDS = Decimal(3600)
MAX_SCOPE_VALUE_CHARS = 256


class BudgetConfigError(PriceFileError):
    """A budgets file that cannot be used; the message reads `file:line: key.path: problem`."""


@dataclass(frozen=True)
class Threshold:
    percent: Decimal
    severity: str

    @property
    def ratio(self) -> Decimal:
        return self.percent / 100


DEFAULT_THRESHOLDS = (
    Threshold(Decimal(80), SEVERITY_WARNING),
    Threshold(Decimal(95), SEVERITY_CRITICAL),
    Threshold(Decimal(100), SEVERITY_EXCEEDED),
)


@dataclass(frozen=True)
class Budget:
    """One budget: `amount` USD per `period` for `environment`, optionally narrowed to one provider, team or
    operation type (`scope`, `scope_value`)."""

    environment: str
    period: str  # day | month
    amount: Decimal
    scope: str = SCOPE_ENVIRONMENT
    scope_value: str | None = None
    line: int = 0

    @property
    def id(self) -> str:
        """The `budget` label: unique per budget, e.g. `production/day` or `production/month/provider=openai`."""
        base = f"{self.environment}/{self.period}"
        return base if self.scope == SCOPE_ENVIRONMENT else f"{base}/{self.scope}={self.scope_value}"


@dataclass(frozen=True)
class QuotaLimit:
    """One usage quota (`budgets.enforce`): at most `amount` USD per `period` (day, month, or each job's whole
    total) for `environment`, optionally narrowed to one team, user, job or operation type (`scope`,
    `scope_value`; `EACH` for each value apart). `mode` is `block` or `warn`."""

    name: str
    environment: str
    period: str  # day | month | job
    amount: Decimal
    mode: str  # block | warn
    scope: str = SCOPE_ENVIRONMENT
    scope_value: str | None = None
    refresh_seconds: Decimal = DEFAULT_REFRESH_SECONDS
    line: int = 0

    @property
    def id(self) -> str:
        """The default name: `cicd/job`, `production/day/team=search`, `production/day/user_id=*`."""
        base = f"{self.environment}/{self.period}"
        if self.scope == SCOPE_ENVIRONMENT or (self.period == PERIOD_JOB and self.scope_value == EACH):
            return base
        return f"{base}/{self.scope}={self.scope_value}"

    @property
    def blocks(self) -> bool:
        return self.mode == MODE_BLOCK


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None  # a ${ENV_VAR} reference
    starttls: bool = False


@dataclass(frozen=True)
class Channel:
    type: str  # slack | email | webhook
    target: str = ""  # slack webhook / webhook url (may be a ${ENV_VAR} reference)
    recipients: tuple[str, ...] = ()
    smtp: SmtpSettings | None = None
    line: int = 0


@dataclass(frozen=True)
class BudgetConfig:
    path: str
    timezone: str
    budgets: tuple[Budget, ...]
    thresholds: tuple[Threshold, ...]
    channels: tuple[Channel, ...]
    limits: tuple[QuotaLimit, ...] = ()  # `budgets.enforce`: usage quotas, enforced in-process

    def environments(self) -> tuple[str, ...]:
        return tuple(sorted({budget.environment for budget in self.budgets}))


def find_budgets_file(
    explicit: str | None,
    *,
    given_as: str = "--budgets",
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Path, str]:
    """(the budgets file to read, where its name came from): `explicit` (given as `given_as`), else
    `$OTEL_AI_COST_BUDGETS`, else the nearest `config/budgets.yaml` from `cwd` up. Raises `BudgetConfigError`
    when there is none."""
    if explicit:
        return Path(explicit), f"from {given_as}"
    named = (os.environ if environ is None else environ).get(Env.BUDGETS, "").strip()
    if named:
        return Path(named), f"from {Env.BUDGETS}"
    start = (cwd or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        candidate = directory / DEFAULT_FILE
        if candidate.is_file():
            where = "in the working directory" if directory == start else "found above the working directory"
            return candidate, where
    raise BudgetConfigError(
        f"no budgets file: pass --budgets PATH, set {Env.BUDGETS}, or create {DEFAULT_FILE} "
        f"(no {DEFAULT_FILE} in {start} or above)"
    )


def load_budgets(path: str | Path) -> BudgetConfig:
    """Read and validate a budgets file; raises `BudgetConfigError` naming the file, line and key."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetConfigError(f"{name}:0: (file): cannot read: {exc}") from None
    return parse_budgets(text, filename=name)


def parse_budgets(text: str, *, filename: str = "budgets.yaml") -> BudgetConfig:
    """Validate budgets-file text; see the module docstring for the schema."""
    try:
        return _Parser(NodeReader(filename)).config(text)
    except BudgetConfigError:
        raise
    except PriceFileError as exc:  # NodeReader's own error type: same message, our class
        raise BudgetConfigError(str(exc), exc.problems) from None


class _Parser:
    def __init__(self, reader: NodeReader) -> None:
        self.r = reader

    def config(self, text: str) -> BudgetConfig:
        root = self.r.compose(text)
        if root is None or self.r.is_null(root):
            raise BudgetConfigError(f"{self.r.filename}:1: (root): the file is empty; expected a 'budgets' mapping")
        top = self.r.mapping(root, "", allowed=("timezone", "budgets"), required=("budgets",))
        timezone = "UTC"
        if "timezone" in top:
            timezone = self.r.choice(top["timezone"], "timezone", TIMEZONES)
        section = self.r.mapping(top["budgets"], "budgets", allowed=("daily", "monthly", "scoped", "alerts", "enforce"))
        budgets: list[Budget] = []
        for key, period in (("daily", PERIOD_DAY), ("monthly", PERIOD_MONTH)):
            if key in section:
                budgets += self.per_environment(section[key], f"budgets.{key}", period)
        if "scoped" in section:
            path = "budgets.scoped"
            for i, node in enumerate(self.r.sequence(section["scoped"], path)):
                with self.r.recording():  # every bad entry is reported, after the whole file is read
                    budgets.append(self.scoped(node, f"{path}[{i}]"))
        seen: dict[str, Budget] = {}
        for budget in budgets:
            if budget.id in seen:
                raise BudgetConfigError(
                    f"{self.r.filename}:{budget.line}: budgets: budget {budget.id!r} is defined twice "
                    f"(first on line {seen[budget.id].line})"
                )
            seen[budget.id] = budget
        thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
        channels: tuple[Channel, ...] = ()
        if "alerts" in section:
            with self.r.recording():
                thresholds, channels = self.alerts(section["alerts"], "budgets.alerts")
        limits: list[QuotaLimit] = []
        if "enforce" in section:
            path = "budgets.enforce"
            for i, node in enumerate(self.r.sequence(section["enforce"], path)):
                with self.r.recording():
                    limits.append(self.limit(node, f"{path}[{i}]"))
            named: dict[str, QuotaLimit] = {}
            for limit in limits:
                if limit.name in named:
                    self.r.problems.append(
                        f"{self.r.filename}:{limit.line}: {path}: limit {limit.name!r} is defined twice (first on "
                        f"line {named[limit.name].line}); give one of them a 'name'"
                    )
                named.setdefault(limit.name, limit)
        self.r.raise_problems()  # every problem of the file at once
        if not budgets and not limits:
            self.r.fail(top["budgets"], "budgets", "no budget defined (daily, monthly, scoped or enforce)")
        return BudgetConfig(self.r.filename, timezone, tuple(budgets), thresholds, channels, tuple(limits))

    def limit(self, node: yaml.Node, path: str) -> QuotaLimit:
        narrowing = (SCOPE_TEAM, SCOPE_USER, SCOPE_JOB, SCOPE_OPERATION_TYPE)
        fields = self.r.mapping(
            node,
            path,
            allowed=("name", "environment", "period", "amount", "mode", "refresh_seconds", *narrowing),
            required=("environment", "period", "amount", "mode"),
        )
        period = self.r.choice(fields["period"], f"{path}.period", QUOTA_PERIODS)
        given = [key for key in narrowing if key in fields]
        if len(given) > 1:
            self.r.fail(node, path, f"a limit takes at most one of {', '.join(narrowing)} (got {', '.join(given)})")
        scope, value = SCOPE_ENVIRONMENT, None
        if given:
            scope = given[0]
            value = self.scope_value(fields[scope], f"{path}.{scope}")
        if period == PERIOD_JOB:
            if scope not in (SCOPE_ENVIRONMENT, SCOPE_JOB):
                problem = "a limit of period 'job' caps each job (or the one job_id names): no team, user or operation"
                self.r.fail(fields[scope], f"{path}.{scope}", problem)
            scope, value = SCOPE_JOB, value or EACH
        refresh = DEFAULT_REFRESH_SECONDS
        if "refresh_seconds" in fields:
            refresh = self.r.number(fields["refresh_seconds"], f"{path}.refresh_seconds", maximum=MAX_REFRESH_SECONDS)
        limit = QuotaLimit(
            name="",
            environment=self.name(fields["environment"], f"{path}.environment"),
            period=period,
            amount=self.amount(fields["amount"], f"{path}.amount"),
            mode=self.r.choice(fields["mode"], f"{path}.mode", QUOTA_MODES),
            scope=scope,
            scope_value=value,
            refresh_seconds=refresh,
            line=_line(node),
        )
        name = self.name(fields["name"], f"{path}.name") if "name" in fields else limit.id
        return replace(limit, name=name)

    def scope_value(self, node: yaml.Node, path: str) -> str:
        """A team, user, job or operation type as the calls' attribution gives it (user ids may be e-mail
        addresses), or `*` (each one apart)."""
        text = self.r.string(node, path)
        if not text or len(text) > MAX_SCOPE_VALUE_CHARS or not text.isprintable() or text != text.strip():
            expected = f"a value of at most {MAX_SCOPE_VALUE_CHARS} printable characters, or '{EACH}' for each one"
            self.r.fail(node, path, f"expected {expected}, got {text!r}")
        return text

    def per_environment(self, node: yaml.Node, path: str, period: str) -> list[Budget]:
        if not isinstance(node, yaml.MappingNode):
            self.r.fail(node, path, "expected a mapping of environment: amount")
        out = []
        for key_node, value_node in node.value:
            with self.r.recording():  # every bad budget is reported, after the whole file is read
                environment = self.name(key_node, path)
                amount = self.amount(value_node, f"{path}.{environment}")
                out.append(Budget(environment, period, amount, line=_line(key_node)))
        return out

    def scoped(self, node: yaml.Node, path: str) -> Budget:
        narrowing = (SCOPE_PROVIDER, SCOPE_TEAM, SCOPE_OPERATION_TYPE)
        fields = self.r.mapping(
            node,
            path,
            allowed=("environment", "period", "amount", *narrowing),
            required=("environment", "period", "amount"),
        )
        given = [key for key in narrowing if key in fields]
        if len(given) != 1:
            self.r.fail(node, path, f"a scoped budget needs exactly one of {', '.join(narrowing)} (got {len(given)})")
        scope = given[0]
        return Budget(
            environment=self.name(fields["environment"], f"{path}.environment"),
            period=self.r.choice(fields["period"], f"{path}.period", PERIODS),
            amount=self.amount(fields["amount"], f"{path}.amount"),
            scope=scope,
            scope_value=self.name(fields[scope], f"{path}.{scope}"),
            line=_line(node),
        )

    def alerts(self, node: yaml.Node, path: str) -> tuple[tuple[Threshold, ...], tuple[Channel, ...]]:
        fields = self.r.mapping(node, path, allowed=("thresholds", "channels"))
        thresholds = DEFAULT_THRESHOLDS
        if "thresholds" in fields:
            t_path = f"{path}.thresholds"
            items = self.r.sequence(fields["thresholds"], t_path)
            if not items:
                self.r.fail(fields["thresholds"], t_path, "expected at least one threshold")
            read: list[tuple[int, Threshold]] = []
            for i, node in enumerate(items):
                with self.r.recording():
                    read.append((i, self.threshold(node, f"{t_path}[{i}]")))
            for (_, a), (i, b) in itertools.pairwise(read):
                if b.percent <= a.percent:
                    self.r.fail(items[i], f"{t_path}[{i}].percent", "thresholds must increase")
            thresholds = tuple(threshold for _, threshold in read)
        channels: tuple[Channel, ...] = ()
        if "channels" in fields:
            c_path = f"{path}.channels"
            items = self.r.sequence(fields["channels"], c_path)
            read_channels: list[Channel] = []
            for i, node in enumerate(items):
                with self.r.recording():
                    read_channels.append(self.channel(node, f"{c_path}[{i}]"))
            channels = tuple(read_channels)
        return thresholds, channels

    def threshold(self, node: yaml.Node, path: str) -> Threshold:
        fields = self.r.mapping(node, path, allowed=("percent", "severity"), required=("percent", "severity"))
        percent = self.r.number(fields["percent"], f"{path}.percent", maximum=MAX_THRESHOLD_PERCENT)
        if percent <= 0:
            self.r.fail(fields["percent"], f"{path}.percent", f"expected a percentage in (0, 1000], got {percent}")
        return Threshold(percent, self.r.choice(fields["severity"], f"{path}.severity", SEVERITIES))

    def channel(self, node: yaml.Node, path: str) -> Channel:
        if not isinstance(node, yaml.MappingNode):
            self.r.fail(node, path, "expected a mapping with a 'type'")
        kind_node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "type"), None)
        if kind_node is None:
            self.r.fail(node, path, "missing required key 'type'")
        kind = self.r.choice(kind_node, f"{path}.type", CHANNEL_TYPES)
        if kind == "slack":
            fields = self.r.mapping(node, path, allowed=("type", "webhook"), required=("webhook",))
            return Channel(kind, target=self.secret(fields["webhook"], f"{path}.webhook"), line=_line(node))
        if kind == "webhook":
            fields = self.r.mapping(node, path, allowed=("type", "url"), required=("url",))
            url = self.r.string(fields["url"], f"{path}.url")
            if not _ENV_REF.match(url) and not url.startswith(("http://", "https://")):
                self.r.fail(fields["url"], f"{path}.url", f"expected an http(s) URL or a ${{ENV_VAR}}, got {url!r}")
            return Channel(kind, target=url, line=_line(node))
        fields = self.r.mapping(node, path, allowed=("type", "recipients", "smtp"), required=("recipients",))
        r_path = f"{path}.recipients"
        recipients = tuple(
            self.email(n, f"{r_path}[{i}]") for i, n in enumerate(self.r.sequence(fields["recipients"], r_path))
        )
        if not recipients:
            self.r.fail(fields["recipients"], r_path, "expected at least one recipient")
        smtp = self.smtp(fields["smtp"], f"{path}.smtp") if "smtp" in fields else None
        return Channel(kind, recipients=recipients, smtp=smtp, line=_line(node))

    def smtp(self, node: yaml.Node, path: str) -> SmtpSettings:
        fields = self.r.mapping(
            node, path, allowed=("host", "port", "from", "username", "password", "starttls"), required=("host", "from")
        )
        port = 25
        if "port" in fields:
            port = self.r.positive_int(fields["port"], f"{path}.port", maximum=65535)
        return SmtpSettings(
            host=self.r.string(fields["host"], f"{path}.host"),
            port=port,
            sender=self.email(fields["from"], f"{path}.from"),
            username=self.r.string(fields["username"], f"{path}.username") if "username" in fields else None,
            password=self.secret(fields["password"], f"{path}.password") if "password" in fields else None,
            starttls=self.r.boolean(fields["starttls"], f"{path}.starttls") if "starttls" in fields else False,
        )

    def secret(self, node: yaml.Node, path: str) -> str:
        text = self.r.string(node, path)
        if not _ENV_REF.match(text):
            self.r.fail(node, path, "a secret must be an ${ENV_VAR} reference, never written in the file")
        return text

    def email(self, node: yaml.Node, path: str) -> str:
        text = self.r.string(node, path)
        if "@" not in text or " " in text:
            self.r.fail(node, path, f"expected an e-mail address, got {text!r}")
        return text

    def name(self, node: yaml.Node, path: str) -> str:
        text = self.r.string(node, path)
        if not _NAME.match(text):
            self.r.fail(node, path, f"expected a name of letters, digits and _.:/-, got {text!r}")
        return text

    def amount(self, node: yaml.Node, path: str) -> Decimal:
        value = self.r.number(node, path, maximum=MAX_BUDGET)
        if value <= 0:
            self.r.fail(node, path, f"expected a positive amount in USD, got {node.value!r}")
        return value


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def env_reference(text: str) -> str | None:
    """The variable name of a `${VAR}` reference, else None."""
    match = _ENV_REF.match(text)
    return match.group(1) if match else None
