"""`budgets check --notify`: one message per check to each configured channel (Slack, e-mail, generic webhook).

Secrets are `${ENV_VAR}` references in the budgets file, expanded here from the environment at send time.
"""

from __future__ import annotations

import json
import smtplib
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from otel_ai_cost.budgets.check import BudgetStatus, format_table
from otel_ai_cost.budgets.config import BudgetConfig, Channel, env_reference

__all__ = ["NotifyError", "expand", "message_text", "notify", "webhook_payload"]

SOURCE = "otel-ai-cost"


class NotifyError(RuntimeError):
    """A notification could not be sent (the message names the channel)."""


def expand(value: str, environ: Mapping[str, str], where: str) -> str:
    """The value, or the environment variable a `${VAR}` reference names (an error when unset or empty)."""
    name = env_reference(value)
    if name is None:
        return value
    found = environ.get(name, "")
    if not found:
        raise NotifyError(f"{where}: environment variable {name} is not set")
    return found


def message_text(statuses: Sequence[BudgetStatus]) -> str:
    worst = [s for s in statuses if s.alerting]
    title = f"AI spend: {len(worst)} budget(s) past a threshold"
    return f"{title}\n\n{format_table(worst)}"


def webhook_payload(statuses: Sequence[BudgetStatus]) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "budgets": [
            {
                "budget": s.budget.id,
                "environment": s.budget.environment,
                "period": s.budget.period,
                "scope": s.budget.scope,
                "scope_value": s.budget.scope_value,
                "amount": format(s.budget.amount, "f"),
                "spent": None if s.spent is None else format(s.spent, "f"),
                "severity": s.status,
                "threshold": None if s.threshold is None else format(s.threshold.percent, "f"),
            }
            for s in statuses
            if s.alerting
        ],
    }


def notify(
    config: BudgetConfig, statuses: Sequence[BudgetStatus], environ: Mapping[str, str], *, timeout_s: float = 10.0
) -> list[str]:
    """Sends to every channel when some budget is past a threshold; returns what was sent (one line per channel).
    Every channel is tried; failures are raised together afterwards."""
    if not any(s.alerting for s in statuses):
        return []
    sent, errors = [], []
    for channel in config.channels:
        where = f"{config.path}:{channel.line}: {channel.type} channel"
        try:
            sent.append(_send(channel, statuses, environ, where, timeout_s))
        except NotifyError as exc:
            errors.append(str(exc))
        except (OSError, smtplib.SMTPException) as exc:
            errors.append(f"{where}: {exc}")
    if errors:
        raise NotifyError("; ".join(errors))
    return sent


def _send(
    channel: Channel, statuses: Sequence[BudgetStatus], environ: Mapping[str, str], where: str, timeout_s: float
) -> str:
    text = message_text(statuses)
    if channel.type == "slack":
        _post(expand(channel.target, environ, f"{where}.webhook"), {"text": f"```{text}```"}, timeout_s)
        return "slack"
    if channel.type == "webhook":
        _post(expand(channel.target, environ, f"{where}.url"), webhook_payload(statuses), timeout_s)
        return "webhook"
    smtp = channel.smtp
    if smtp is None:
        raise NotifyError(f"{where}: no smtp settings (host, port, from)")
    message = EmailMessage()
    message["Subject"] = text.splitlines()[0]
    message["From"] = smtp.sender
    message["To"] = ", ".join(channel.recipients)
    message.set_content(text)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            password = expand(smtp.password, environ, f"{where}.smtp.password") if smtp.password else ""
            client.login(smtp.username, password)
        client.send_message(message)
    return f"email to {', '.join(channel.recipients)}"


def _post(url: str, payload: dict[str, Any], timeout_s: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        if not 200 <= response.status < 300:
            raise NotifyError(f"the endpoint answered {response.status}")  # never print the URL: a secret
