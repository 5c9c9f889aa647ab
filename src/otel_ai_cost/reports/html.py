"""The daily report as one self-contained HTML page: `otel-ai-cost report daily --format html -o report.html`.

The page needs nothing but itself: its CSS is inlined, its charts are SVG drawn here (`reports.svg`), it runs no
JavaScript, and its Content-Security-Policy forbids loading anything (no fonts, images, scripts or styles from
elsewhere), so it opens the same offline, from a CI artifact or an e-mail attachment. It reads on a laptop screen
(it never scrolls sideways at 1366 px) and prints (a print style sheet: A4 landscape, white background, no chart
split across pages).

What it shows:
- the totals: cost, calls, calls of unknown cost, anomalies;
- the anomalies, listed, and marked on the charts;
- spend per day by environment (stacked bars; the report's own days shaded, the days before them are the
  trailing 7-day baseline of the anomalies);
- spend by model (horizontal bars);
- each budget's burn against its limit line: a monthly budget's cumulative spend per day (with the even pace to
  its limit), a daily budget's spend of each day as bars (one bar for a one-day report);
- tables by environment, service, operation type (count, cost, average), model, team and job; the calls of
  unknown cost; the savings.

Amounts are exact, never rounded, aligned on the decimal point within a column as in the console tables. An amount
that leaves out calls of unknown cost is a lower bound (`≥ 12.50`); a group none of whose calls has a known cost
shows `cost unknown`, never $0. Averages are a division: exact when it ends, else rounded half-even to 12
decimal places (as on the console). Every data point
of a chart carries its exact amount in `data-amount` and in its tooltip. Every name is escaped: model and team
names come from telemetry.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from html import escape

from otel_ai_cost.budgets.config import DEFAULT_THRESHOLDS
from otel_ai_cost.reports import svg
from otel_ai_cost.reports.console import ANOMALY_LABELS, SAVING_LABELS
from otel_ai_cost.reports.daily import REASON_PARTIAL_OR_NO_USAGE, REASON_UNPRICED, average_of
from otel_ai_cost.reports.model import NONE, Anomaly, BudgetBurn, DailyReport, Line
from otel_ai_cost.reports.tables import HEADERS, money_cells

__all__ = ["render_html"]

COST_UNKNOWN = "cost unknown"
MAX_MODEL_BARS = 12  # more models than this: the rest are summed into one bar
UNKNOWN_REASONS: Mapping[str, str] = {
    REASON_UNPRICED: "no price",
    REASON_PARTIAL_OR_NO_USAGE: "partial stream or no usage",
}
# What a saving is for (the other keys of its subject are figures, which its message gives).
SAVING_SUBJECT = frozenset(
    {"environment", "service", "provider", "model", "operation_type", "team", "job_id", "pricing_tier", "candidate"}
)
STATUS_COLORS: Mapping[str, str] = {"ok": "#3ca951", "warning": "#bf8700", "critical": "#d1242f", "exceeded": "#b3261e"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _amount_value(line_amount: Decimal, calls: int, unknown: int) -> Decimal | None:
    """The amount to show: None when no call of the group has a known cost (shown `cost unknown`, not 0)."""
    return None if calls > 0 and unknown >= calls else line_amount


def _money_text(amount: Decimal) -> str:
    return money_cells([amount])[0]


def _money_span(amount: Decimal, calls: int, unknown: int, *, css_id: str = "") -> str:
    """One amount as a person reads it, with its exact value in `data-amount`."""
    id_attr = f' id="{_e(css_id)}"' if css_id else ""
    value = _amount_value(amount, calls, unknown)
    if value is None:
        return (
            f'<span{id_attr} class="money unknown" data-cost="unknown" data-unknown-cost-calls="{unknown}">'
            f"{COST_UNKNOWN}</span>"
        )
    prefix = "≥ " if unknown else ""
    title = f' title="a lower bound: {unknown:,} calls of unknown cost are not in it"' if unknown else ""
    return (
        f'<span{id_attr} class="money{" lower-bound" if unknown else ""}" data-amount="{_e(format(amount, "f"))}" '
        f'data-unknown-cost-calls="{unknown}"{title}>{prefix}{_e(_money_text(amount))}</span>'
    )


def _plain(amount: Decimal) -> str:
    """Text for a tooltip: exact, with its unit."""
    return f"{_money_text(amount)} USD"


def _line_title(prefix: str, amount: Decimal, calls: int, unknown: int) -> str:
    value = _amount_value(amount, calls, unknown)
    text = f"{prefix}: {COST_UNKNOWN}" if value is None else f"{prefix}: {'≥ ' if unknown else ''}{_plain(value)}"
    text += f" · {calls:,} calls"
    if unknown:
        text += f" · {unknown:,} of unknown cost"
    return text


def _money_column(values: Sequence[Decimal | None], unknown: Sequence[int], name: str) -> list[str]:
    """Table cells of one money column, aligned on the decimal point (the same decimals throughout)."""
    texts = money_cells(values)
    cells = []
    for value, text, missing in zip(values, texts, unknown, strict=True):
        if value is None:
            cells.append(f'<td class="num money unknown" data-col="{name}" data-cost="unknown">{COST_UNKNOWN}</td>')
            continue
        prefix = "≥ " if missing else ""
        cells.append(
            f'<td class="num money{" lower-bound" if missing else ""}" data-col="{name}" '
            f'data-amount="{_e(format(value, "f"))}">{prefix}{_e(text)}</td>'
        )
    return cells


def _name_cell(name: str, swatch: str | None = None) -> str:
    dot = f'<span class="swatch" style="background:{_e(swatch)}"></span>' if swatch else ""
    if not name:
        return f'<td class="name none">{dot}{NONE}</td>'
    return f'<td class="name">{dot}{_e(name)}</td>'


def _lines_table(
    css_id: str,
    key: str,
    lines: Sequence[Line],
    *,
    total: Line | None = None,
    swatches: Mapping[str, str] | None = None,
    averages: bool = False,
) -> str:
    """A table of groups: name, calls, cost, (average,) calls of unknown cost; `total` as a last row."""
    if not lines:
        return f'<p class="empty" id="{_e(css_id)}">No calls.</p>'
    every = [*lines, *([total] if total is not None else [])]
    unknown = [line.unknown_cost_calls for line in every]
    amounts = _money_column(
        [_amount_value(ln.amount, ln.calls, ln.unknown_cost_calls) for ln in every], unknown, "amount"
    )
    avgs = _money_column([average_of(line) for line in every], [0] * len(every), "average") if averages else []
    head = [f'<th class="name">{_e(HEADERS.get(key, key))}</th>', f'<th class="num">{HEADERS["calls"]}</th>']
    head.append(f'<th class="num">{HEADERS["amount"]}</th>')
    if averages:
        head.append(f'<th class="num">{HEADERS["average"]}</th>')
    head.append(f'<th class="num">{HEADERS["unknown_cost_calls"]}</th>')
    rows = []
    for index, line in enumerate(every):
        is_total = total is not None and index == len(every) - 1
        name_cell = (
            '<th class="name" scope="row">total</th>'
            if is_total
            else _name_cell(line.name, (swatches or {}).get(line.shown_name))
        )
        cells = [name_cell, f'<td class="num" data-col="calls">{line.calls:,}</td>', amounts[index]]
        if averages:
            cells.append(avgs[index] if line.calls else '<td class="num"></td>')
        cells.append(f'<td class="num" data-col="unknown_cost_calls">{line.unknown_cost_calls or ""}</td>')
        row_attrs = ' class="total"' if is_total else f' data-name="{_e(line.name)}"'
        rows.append(f"<tr{row_attrs}>{''.join(cells)}</tr>")
    body = "".join(rows[: len(lines)])
    foot = f"<tfoot>{rows[-1]}</tfoot>" if total is not None else ""
    return (
        f'<div class="table-wrap"><table id="{_e(css_id)}"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{body}</tbody>{foot}</table></div>"
    )


def _subject_text(subject: Mapping[str, str], keys: frozenset[str] | None = None) -> str:
    """`environment cicd · model gpt-4o`: the subject's attribution (`keys`: only those, e.g. no figures)."""
    return " · ".join(
        f"{HEADERS.get(key, key)} {value or NONE}" for key, value in subject.items() if keys is None or key in keys
    )


def _anomaly_title(anomaly: Anomaly) -> str:
    return f"{ANOMALY_LABELS.get(anomaly.kind, anomaly.kind)} on {anomaly.day.isoformat()}: {anomaly.message}"


def _anomalies(report: DailyReport) -> str:
    if not report.anomalies:
        return '<p class="empty" id="anomalies">No anomalies.</p>'
    items = []
    for anomaly in report.anomalies:
        figures = []
        if anomaly.amount is not None and (anomaly.amount > 0 or anomaly.baseline is not None):
            # an amount of 0 on an unpriced or new model is calls of unknown cost: the message says so, not "$0"
            figures.append(
                f'spent <span class="money" data-amount="{_e(format(anomaly.amount, "f"))}">'
                f"{_e(_money_text(anomaly.amount))}</span> USD"
            )
        if anomaly.baseline is not None:
            figures.append(
                f'against a 7-day average of <span class="money baseline" '
                f'data-amount="{_e(format(anomaly.baseline, "f"))}">{_e(_money_text(anomaly.baseline))}'
                f"</span> USD"
            )
        if anomaly.factor is not None:
            figures.append(
                f'(<span class="factor" data-factor="{_e(format(anomaly.factor, "f"))}">'
                f"{anomaly.factor:.1f}&times;</span>)"
            )
        attrs = "".join(
            f' data-{_e(key.replace("_", "-"))}="{_e(value)}"'
            for key, value in anomaly.subject.items()
            if key.replace("_", "").isalnum()
        )
        items.append(
            f'<li class="anomaly" data-kind="{_e(anomaly.kind)}" data-day="{anomaly.day.isoformat()}"{attrs}>'
            f'<span class="badge anomaly-kind">{_e(ANOMALY_LABELS.get(anomaly.kind, anomaly.kind))}</span> '
            f'<time datetime="{anomaly.day.isoformat()}">{anomaly.day.isoformat()}</time> '
            f'<span class="subject">{_e(_subject_text(anomaly.subject))}</span>'
            f'<div class="message">{_e(anomaly.message)}</div>'
            + (f'<div class="figures">{" ".join(figures)}</div>' if figures else "")
            + "</li>"
        )
    return f'<ol class="anomalies" id="anomalies">{"".join(items)}</ol>'


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _environment_order(report: DailyReport) -> list[str]:
    sums: dict[str, Decimal] = {}
    for spend in report.daily:
        name = spend.environment or NONE
        sums[name] = sums.get(name, Decimal(0)) + spend.amount
    return sorted(sums, key=lambda name: (-sums[name], name))


def _daily_chart(report: DailyReport, start: date, colors: Mapping[str, str]) -> str:
    if not report.daily:
        return '<p class="empty">No spend recorded in these days.</p>'
    first = min(min(spend.day for spend in report.daily), start)
    last = max(max(spend.day for spend in report.daily), report.date)
    days = _days(first, last)
    flagged = {
        (a.day, a.subject.get("environment", "") or NONE) for a in report.anomalies if "environment" in a.subject
    }
    segments = []
    for spend in report.daily:
        name = spend.environment or NONE
        segments.append(
            svg.Segment(
                x=spend.day.isoformat(),
                series=name,
                amount=_amount_value(spend.amount, spend.calls, spend.unknown_cost_calls),
                title=_line_title(
                    f"{name} on {spend.day.isoformat()}", spend.amount, spend.calls, spend.unknown_cost_calls
                ),
                attrs={
                    "data-day": spend.day.isoformat(),
                    "data-environment": name,
                    "data-calls": str(spend.calls),
                    "data-unknown-cost-calls": str(spend.unknown_cost_calls),
                },
                flagged=(spend.day, name) in flagged,
            )
        )
    by_day: dict[date, list[Anomaly]] = {}
    for anomaly in report.anomalies:
        by_day.setdefault(anomaly.day, []).append(anomaly)
    markers = [  # one marker per day, its tooltip listing the day's anomalies (a day can have several)
        svg.Marker(
            x=day.isoformat(),
            title="\n".join(_anomaly_title(anomaly) for anomaly in found),
            attrs={
                "data-day": day.isoformat(),
                "data-count": str(len(found)),
                "data-kinds": " ".join(anomaly.kind for anomaly in found),
                "data-environments": " ".join(
                    dict.fromkeys(a.subject["environment"] or NONE for a in found if "environment" in a.subject)
                ),
            },
            label="!" if len(found) == 1 else str(len(found)),
        )
        for day, found in sorted(by_day.items())
    ]
    return svg.stacked_bars(
        segments,
        x_order=[day.isoformat() for day in days],
        x_labels={day.isoformat(): day.strftime("%m-%d") for day in days},
        series_order=list(colors),
        colors=colors,
        markers=markers,
        highlight={day.isoformat() for day in _days(start, report.date)},
        title="Spend per day by environment (USD)",
        desc=f"Stacked bars, one per UTC day from {days[0].isoformat()} to {days[-1].isoformat()}, one colour per "
        "environment; red markers are anomalies.",
        css_id="chart-daily",
        width=960,
    )


def _model_chart(report: DailyReport) -> str:
    lines = list(report.by_model)
    if not lines:
        return '<p class="empty">No calls.</p>'
    if len(lines) > MAX_MODEL_BARS:
        rest = lines[MAX_MODEL_BARS - 1 :]
        other = Line(
            name=f"{len(rest)} other models",
            amount=sum((line.amount for line in rest), Decimal(0)),
            calls=sum(line.calls for line in rest),
            unknown_cost_calls=sum(line.unknown_cost_calls for line in rest),
        )
        lines = [*lines[: MAX_MODEL_BARS - 1], other]
    new_models = {a.subject.get("model", ""): a for a in report.anomalies if a.kind == "new_model"}
    bars = []
    for line in lines:
        amount = _amount_value(line.amount, line.calls, line.unknown_cost_calls)
        value_label = (
            COST_UNKNOWN if amount is None else ("≥ " if line.unknown_cost_calls else "") + _money_text(amount)
        )
        anomaly = new_models.get(line.name)
        bars.append(
            svg.Bar(
                label=line.shown_name,
                amount=amount,
                title=_line_title(line.shown_name, line.amount, line.calls, line.unknown_cost_calls),
                value_label=value_label,
                attrs={
                    "data-model": line.name,
                    "data-calls": str(line.calls),
                    "data-unknown-cost-calls": str(line.unknown_cost_calls),
                },
                marker=_anomaly_title(anomaly) if anomaly is not None else None,
            )
        )
    return svg.horizontal_bars(
        bars,
        title="Spend by model (USD)",
        desc="One bar per model, the largest first; a dashed outline is a model whose calls have no known cost.",
        css_id="chart-models",
    )


def _status(burn: BudgetBurn) -> str:
    ratio = burn.ratio
    status = "ok"
    for threshold in DEFAULT_THRESHOLDS:
        if ratio is not None and ratio >= threshold.ratio:
            status = threshold.severity
    return status


def _budget(burn: BudgetBurn, index: int) -> str:
    status = _status(burn)
    ratio = burn.ratio
    percent = "" if ratio is None else f"{ratio * 100:.1f}%"
    spent = _money_span(burn.spent, 1, 0)  # a budget's spend is a figure even when some calls have no known cost
    if burn.unknown_cost_calls:
        spent = (
            f'<span class="lower-bound-note" title="{burn.unknown_cost_calls:,} calls of unknown cost are not '
            f'in it">≥ </span>{spent}'
        )
    limit_text = _plain(burn.limit)
    limit_title = f"{burn.name}: limit {limit_text} per {'month' if _monthly(burn) else 'day'}"
    color = STATUS_COLORS["ok"] if status == "ok" else svg.PALETTE[0]
    css_id = f"chart-budget-{index}"
    desc = f"Cumulative spend of budget {burn.name} against its limit of {limit_text}."
    points = list(burn.points)
    if points and (len(points) > 1 or _monthly(burn)):
        last = max(day for day, _ in points)
        if _monthly(burn):
            first = last.replace(day=1)
            days = _days(first, last.replace(day=calendar.monthrange(last.year, last.month)[1]))
        else:
            days = _days(min(day for day, _ in points), last)
        chart = svg.burn_line(
            [
                svg.BurnPoint(
                    x=day.isoformat(),
                    amount=amount,
                    title=f"{burn.name} {'up to' if _monthly(burn) else 'on'} {day.isoformat()}: {_plain(amount)} "
                    f"of {limit_text}",
                    attrs={"data-day": day.isoformat()},
                )
                for day, amount in points
            ],
            x_order=[day.isoformat() for day in days],
            x_labels={day.isoformat(): day.strftime("%m-%d") for day in days},
            limit=burn.limit,
            limit_label=f"limit {_money_text(burn.limit)}",
            limit_title=limit_title,
            pace=_monthly(burn),
            bars=not _monthly(burn),
            color=color,
            title=f"Budget {burn.name}",
            desc=desc,
            css_id=css_id,
        )
    else:
        day = points[-1][0].isoformat() if points else ""
        chart = svg.burn_gauge(
            svg.BurnPoint(
                x=day,
                amount=burn.spent,
                title=f"{burn.name}: {_plain(burn.spent)} of {limit_text}",
                attrs={"data-day": day} if day else {},
            ),
            limit=burn.limit,
            limit_label=f"limit {_money_text(burn.limit)}",
            limit_title=limit_title,
            color=color,
            title=f"Budget {burn.name}",
            desc=desc,
            css_id=css_id,
        )
    return (
        f'<figure class="budget" data-budget="{_e(burn.name)}" data-status="{status}" data-period="{_e(burn.period)}">'
        f'<figcaption><span class="budget-name">{_e(burn.name)}</span> '
        f'<span class="badge status-{status}">{status}</span> '
        f'<span class="budget-figures">{spent} of '
        f'<span class="money limit" data-amount="{_e(format(burn.limit, "f"))}">'
        f"{_e(_money_text(burn.limit))}</span> USD per {'month' if _monthly(burn) else 'day'}"
        f"{f' · <span class=percent>{percent}</span> used' if percent else ''}</span></figcaption>"
        f"{chart}</figure>"
    )


def _monthly(burn: BudgetBurn) -> bool:
    return burn.period in ("month", "monthly")


def _budgets(report: DailyReport) -> str:
    if not report.budgets:
        return '<p class="empty">No budgets (see config/budgets.yaml).</p>'
    return "".join(_budget(burn, index) for index, burn in enumerate(report.budgets))


def _unknown(report: DailyReport) -> str:
    if not report.unknown:
        return '<p class="empty" id="unknown-cost">Every call has a known cost.</p>'
    rows = "".join(
        f'<tr data-provider="{_e(item.provider)}" data-model="{_e(item.model)}">{_name_cell(item.provider)}'
        f'{_name_cell(item.model)}<td class="num" data-col="calls">{item.calls:,}</td>'
        f'<td class="reason">{_e(UNKNOWN_REASONS.get(item.reason, item.reason))}</td>'
        f'<td class="unknown">{COST_UNKNOWN}</td></tr>'
        for item in report.unknown
    )
    return (
        '<div class="table-wrap"><table id="unknown-cost"><thead><tr>'
        f'<th class="name">{HEADERS["provider"]}</th><th class="name">{HEADERS["model"]}</th>'
        f'<th class="num">{HEADERS["calls"]}</th><th>why</th><th>{HEADERS["amount"]}</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _savings(report: DailyReport) -> str:
    if not report.savings:
        return '<p class="empty" id="savings">No savings found.</p>'
    cells = _money_column([saving.amount for saving in report.savings], [0] * len(report.savings), "amount")
    rows = []
    for saving, cell in zip(report.savings, cells, strict=True):
        if saving.estimate:  # shown as an estimate: the same token mix on another model, not advice
            cell = cell.replace('class="num money', 'class="num money estimate', 1).replace('">', '">≈ ', 1)
        rows.append(
            f'<tr data-kind="{_e(saving.kind)}"><td>{_e(SAVING_LABELS.get(saving.kind, saving.kind))}</td>'
            f'<td class="name">{_e(_subject_text(saving.subject, SAVING_SUBJECT)) or NONE}</td>{cell}'
            f'<td class="message">{_e(saving.message)}{" (an estimate)" if saving.estimate else ""}</td></tr>'
        )
    return (
        '<div class="table-wrap"><table id="savings"><thead><tr><th>saving</th><th class="name">for</th>'
        f'<th class="num">would save USD</th><th>how</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _card(label: str, value: str, note: str = "", css_class: str = "") -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    return (
        f'<div class="card {css_class}"><div class="label">{label}</div><div class="value">{value}</div>'
        f"{note_html}</div>"
    )


def _cards(report: DailyReport) -> str:
    total = report.total
    note = ""
    if total.unknown_cost_calls:
        note = f"a lower bound: {total.unknown_cost_calls:,} calls of unknown cost are not in it"
    anomalies = len(report.anomalies)
    return (
        '<div class="cards">'
        + "".join(
            [
                _card(
                    "Total cost (USD)",
                    _money_span(total.amount, total.calls, total.unknown_cost_calls, css_id="total-cost"),
                    note,
                    "total",
                ),
                _card("Calls", f'<span id="total-calls" data-count="{total.calls}">{total.calls:,}</span>'),
                _card(
                    "Calls of unknown cost",
                    f'<span id="total-unknown-cost-calls" data-count='
                    f'"{total.unknown_cost_calls}">{total.unknown_cost_calls:,}</span>',
                    "shown as “cost unknown”, never $0" if total.unknown_cost_calls else "",
                ),
                _card(
                    "Anomalies",
                    f'<span id="anomaly-count" data-count="{anomalies}">{anomalies}</span>',
                    "",
                    "alert" if anomalies else "",
                ),
            ]
        )
        + "</div>"
    )


def _period(report: DailyReport, start: date) -> str:
    if report.days <= 1:
        return report.date.isoformat()
    return f"{start.isoformat()} to {report.date.isoformat()} ({report.days} days)"


def _panel(css_id: str, title: str, body: str, css_class: str = "") -> str:
    return f'<section class="panel {css_class}" id="{css_id}"><h2>{title}</h2>{body}</section>'


def render_html(report: DailyReport) -> str:
    """The report as one HTML document (a string), needing no network and no JavaScript."""
    start = report.date - timedelta(days=max(report.days, 1) - 1)
    colors = svg.series_colors(_environment_order(report))
    period = _period(report, start)
    scope = f"environment {_e(report.environment)}" if report.environment else "all environments"
    generated = report.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    ledger = f' · ledger <code class="ledger">{_e(report.ledger)}</code>' if report.ledger else ""
    tables = "".join(
        [
            _panel(
                "by-environment",
                "By environment",
                _lines_table(
                    "table-environment", "environment", report.by_environment, total=report.total, swatches=colors
                ),
            ),
            _panel(
                "by-service",
                "By service",
                _lines_table("table-service", "service", report.by_service, total=report.total),
            ),
            _panel(
                "top-operations",
                "Top operations",
                _lines_table("table-operations", "operation_type", report.top_operations, averages=True),
            ),
            _panel("by-model", "By model", _lines_table("table-model", "model", report.by_model, averages=True)),
            _panel("by-team", "By team", _lines_table("table-team", "team", report.by_team)),
            _panel("by-job", "By job", _lines_table("table-job", "job_id", report.by_job)),
            *(
                [
                    _panel(
                        "unattributed-sites",
                        "Top unattributed call sites",
                        _lines_table("table-unattributed-sites", "call_site", report.unattributed_sites),
                    )
                ]
                if report.unattributed_sites
                else []
            ),
        ]
    )
    body = (
        f'<header><h1>AI usage report <span class="period">{_e(period)}</span></h1>'
        f'<p class="meta">{scope} · UTC days · generated {_e(generated)}{ledger}</p></header>'
        f"{_cards(report)}"
        + _panel("anomalies-section", "Anomalies", _anomalies(report), "anomalies-panel" if report.anomalies else "")
        + _panel("daily", "Spend per day by environment", _daily_chart(report, start, colors), "wide")
        + '<div class="grid">'
        + _panel("models", "Spend by model", _model_chart(report))
        + _panel("budgets", "Budget burn", _budgets(report))
        + "</div>"
        + f'<div class="grid">{tables}</div>'
        + _panel("unknown", "Calls of unknown cost", _unknown(report), "wide")
        + _panel("savings-section", "Savings", _savings(report), "wide")
        + f"<footer>otel-ai-cost · {_e(period)} · {scope} · generated {_e(generated)}{ledger}</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may load or run: the page is all there is, and a hostile name could never become a script.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        '<meta name="generator" content="otel-ai-cost">'
        f"<title>AI usage report {_e(period)}</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


CSS = """
:root { color-scheme: light; --text: #1f2328; --muted: #59636e; --line: #d0d7de; --panel: #ffffff;
  --bg: #f6f8fa; --alert: #b3261e; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; }
h1 .period { font-weight: 400; color: var(--muted); }
h2 { font-size: 15px; margin: 0 0 10px; font-weight: 650; }
.meta, footer { color: var(--muted); margin: 0 0 16px; overflow-wrap: anywhere; }
footer { margin: 20px 0 0; font-size: 12px; }
code { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 12px; margin-bottom: 16px; }
.card, .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; min-width: 0; }
.card { padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.card .note { color: var(--muted); font-size: 12px; }
.card.alert .value { color: var(--alert); }
.panel { padding: 14px 16px; margin-bottom: 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); gap: 0 16px; }
svg.chart { display: block; width: 100%; height: auto; overflow: visible; }
svg.chart text { font-family: inherit; }
.empty { color: var(--muted); margin: 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; text-align: left; }
thead th { color: var(--muted); font-weight: 600; font-size: 12px; border-bottom: 1px solid var(--line); }
th.num, td.num { text-align: right; white-space: nowrap; }
td.name, td.message { overflow-wrap: anywhere; }
td.none, .none { color: var(--muted); font-style: italic; }
tfoot tr, tr.total { font-weight: 650; }
tfoot th, tfoot td { border-top: 1px solid var(--line); border-bottom: none; }
.unknown { color: var(--alert); font-style: italic; }
.lower-bound, .lower-bound-note { color: #7d4e00; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px; font-weight: 600;
  background: #eaeef2; color: var(--text); }
.anomaly-kind { background: var(--alert); color: #fff; }
.status-ok { background: #dafbe1; color: #116329; }
.status-warning { background: #fff1c2; color: #7d4e00; }
.status-critical, .status-exceeded { background: #ffebe9; color: var(--alert); }
.anomalies { margin: 0; padding-left: 22px; }
.anomalies li { margin: 0 0 8px; }
.anomalies .subject { color: var(--muted); overflow-wrap: anywhere; }
.anomalies .message { overflow-wrap: anywhere; }
.anomalies .figures { color: var(--muted); font-variant-numeric: tabular-nums; }
.anomalies-panel { border-left: 4px solid var(--alert); }
figure.budget { margin: 0 0 14px; }
figure.budget figcaption { margin-bottom: 4px; overflow-wrap: anywhere; }
.budget-name { font-weight: 650; }
.budget-figures { color: var(--muted); font-variant-numeric: tabular-nums; }
@media (max-width: 700px) { main { padding: 12px; } .card .value { font-size: 20px; } }
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { background: #fff; font-size: 11px; }
  main { max-width: none; padding: 0; }
  .card, .panel { border-color: #bbb; break-inside: avoid; page-break-inside: avoid; }
  .anomalies-panel { border-left-color: var(--alert); }
  .panel.wide { break-inside: auto; page-break-inside: auto; }
  figure.budget, svg.chart, tr { break-inside: avoid; page-break-inside: avoid; }
  .grid { grid-template-columns: 1fr 1fr; }
  .table-wrap { overflow: visible; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""
