"""Small server-side SVG charts for the HTML report: no charting library, no JavaScript, nothing to fetch.

Each chart is one `<svg>` element to inline in a page. It scales to its container (`viewBox`, `width="100%"`) and
draws with the page's own fonts. Every data point is an element of its own that carries its figure exactly:

- `data-amount`: the amount as the Decimal's own text (`0.000027`), never passed through a float;
- `data-cost="unknown"` instead, on a point none of whose calls has a known cost (it is not $0);
- a `<title>` child: the tooltip a reader sees on hover, with the exact amount;
- whatever other `data-*` attributes the caller gives (the day, the environment, the model).

Positions and lengths are floats (pixels); the text of an amount never is. Every text and attribute is escaped:
model and team names come from telemetry and may contain markup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape

__all__ = [
    "ANOMALY_COLOR",
    "PALETTE",
    "Bar",
    "BurnPoint",
    "Marker",
    "Segment",
    "burn_gauge",
    "burn_line",
    "horizontal_bars",
    "nice_ticks",
    "series_colors",
    "stacked_bars",
    "tick_label",
]

# Observable's 10 categorical colours: distinct for most colour vision, readable on white and in print.
PALETTE = (
    "#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0",
)  # fmt: skip
ANOMALY_COLOR = "#b3261e"
LIMIT_COLOR = "#b3261e"
TEXT_COLOR = "#1f2328"
MUTED_COLOR = "#59636e"
GRID_COLOR = "#d8dee4"
HIGHLIGHT_COLOR = "#eaf1fb"  # the report's own days, behind the bars (the other days are the anomaly baseline)
FONT_SIZE = 12
HALO = 'paint-order="stroke" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"'  # text readable over lines
CHAR_WIDTH = 7.0  # about one character at FONT_SIZE in a sans-serif font: enough to lay out legends and labels
_ATTR_NAME = re.compile(r"^data-[a-z0-9-]+$|^(class|id|role)$")


@dataclass(frozen=True)
class Segment:
    """One piece of a stacked bar: `series` (an environment) on the bar of `x` (a day). `amount` None: cost
    unknown (drawn with no height)."""

    x: str
    series: str
    amount: Decimal | None
    title: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    flagged: bool = False  # outlined as anomalous


@dataclass(frozen=True)
class Marker:
    """An anomaly marker above the bar of `x`; `label` is drawn in it (`!`, or how many anomalies it stands for)."""

    x: str
    title: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    label: str = "!"


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: `amount` None when no call of it has a known cost (drawn as an outline, not as $0)."""

    label: str
    amount: Decimal | None
    title: str
    value_label: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    marker: str | None = None  # the title of an anomaly marker beside the bar


@dataclass(frozen=True)
class BurnPoint:
    """A budget's cumulative spend up to the day `x`."""

    x: str
    amount: Decimal
    title: str
    attrs: Mapping[str, str] = field(default_factory=dict)


def series_colors(names: Sequence[str]) -> dict[str, str]:
    """A colour per name, in order (the palette repeats after ten)."""
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}


def nice_ticks(top: Decimal, count: int = 4) -> list[Decimal]:
    """Axis ticks from 0 to at least `top`, on a 1-2-2.5-5 step (exact decimals: `0, 0.00002, 0.00004`)."""
    if top <= 0:
        return [Decimal(0), Decimal(1)]
    raw = top / count
    exponent = raw.adjusted()  # raw = d.ddd x 10^exponent
    step = Decimal(10) ** exponent
    for multiple in (1, 2, Decimal("2.5"), 5, 10):
        if step * multiple >= raw:
            step = step * multiple
            break
    steps = int((top / step).to_integral_value(rounding="ROUND_CEILING"))
    return [step * index for index in range(steps + 1)]


def tick_label(value: Decimal) -> str:
    """A tick's text: the exact value, without exponent or trailing zeros (`0`, `20`, `1,500`, `0.00002`)."""
    return format(value.normalize(), ",f")


def _esc(text: str) -> str:
    return escape(text, quote=True)


def _attrs(attrs: Mapping[str, str]) -> str:
    out = []
    for name, value in attrs.items():
        if not _ATTR_NAME.match(name):  # names are ours; a value is escaped whatever it holds
            raise ValueError(f"not an attribute this module writes: {name!r}")
        out.append(f' {name}="{_esc(value)}"')
    return "".join(out)


def _amount_attrs(amount: Decimal | None) -> dict[str, str]:
    return {"data-cost": "unknown"} if amount is None else {"data-amount": format(amount, "f")}


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis: the full text stays in the tooltip."""
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _n(value: float) -> str:
    """A coordinate: two decimals at most (the file stays small, the drawing the same)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _svg_open(width: float, height: float, title: str, desc: str, css_id: str, css_class: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{_esc(css_id)}" class="chart {_esc(css_class)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="100%" role="img" '
        f'aria-labelledby="{_esc(css_id)}-title {_esc(css_id)}-desc" font-size="{FONT_SIZE}" fill="{TEXT_COLOR}">'
        f'<title id="{_esc(css_id)}-title">{_esc(title)}</title><desc id="{_esc(css_id)}-desc">{_esc(desc)}</desc>'
    )


def _y_axis(ticks: Sequence[Decimal], top: Decimal, left: float, right: float, y_top: float, height: float) -> str:
    parts = ['<g class="axis y-axis">']
    for tick in ticks:
        y = y_top + height - float(tick / top) * height
        parts.append(
            f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID_COLOR}"/>'
            f'<text x="{_n(left - 6)}" y="{_n(y + 4)}" text-anchor="end" fill="{MUTED_COLOR}">'
            f"{_esc(tick_label(tick))}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _x_labels(labels: Sequence[tuple[float, str]], y: float, band: float) -> str:
    every = max(1, math.ceil(44 / max(band, 1)))  # a label needs about 44 px
    parts = ['<g class="axis x-axis">']
    for index, (x, text) in enumerate(labels):
        if (len(labels) - 1 - index) % every == 0:  # counted from the last: the report's own day is labelled
            parts.append(f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="middle" fill="{MUTED_COLOR}">{_esc(text)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _legend(items: Sequence[tuple[str, str, str]], x0: float, y0: float, width: float) -> tuple[str, float]:
    """Legend entries (label, colour, style) in rows that wrap within `width`; returns the SVG and its height."""
    parts = ['<g class="legend">']
    x, y = x0, y0
    for label, color, style in items:
        shown = _clip(label, 28)
        item_width = 18 + len(shown) * CHAR_WIDTH + 16
        if x > x0 and x + item_width > x0 + width:
            x, y = x0, y + 20
        if style == "band":
            swatch = f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="12" fill="{color}" stroke="{GRID_COLOR}"/>'
        elif style == "marker":
            swatch = f'<circle cx="{_n(x + 6)}" cy="{_n(y + 6)}" r="6" fill="{color}"/>' + _bang(x + 6, y + 6)
        else:
            swatch = f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="12" rx="2" fill="{color}"/>'
        parts.append(
            f'<g class="legend-item" data-label="{_esc(label)}"><title>{_esc(label)}</title>{swatch}'
            f'<text x="{_n(x + 18)}" y="{_n(y + 10.5)}">{_esc(shown)}</text></g>'
        )
        x += item_width
    parts.append("</g>")
    return "".join(parts), (y - y0) + 20


def _bang(cx: float, cy: float, label: str = "!") -> str:
    return (
        f'<text x="{_n(cx)}" y="{_n(cy + 4)}" text-anchor="middle" font-size="11" font-weight="700" '
        f'fill="#ffffff">{_esc(label)}</text>'
    )


def stacked_bars(
    segments: Sequence[Segment],
    *,
    x_order: Sequence[str],
    x_labels: Mapping[str, str],
    series_order: Sequence[str],
    colors: Mapping[str, str],
    markers: Sequence[Marker] = (),
    highlight: Collection[str] = (),
    highlight_label: str = "report period",
    title: str,
    desc: str,
    css_id: str,
    width: float = 560,
) -> str:
    """Bars per `x` (days, in `x_order`) stacked by series (environments, bottom first), a y axis in USD, a legend,
    the `highlight`ed x values on a shaded band and anomaly `markers` above their bars."""
    left, right, top_margin, plot_height = 64.0, 12.0, 30.0, 200.0
    plot_width = width - left - right
    band = plot_width / max(len(x_order), 1)
    bar_width = min(band * 0.72, 44.0)
    totals: dict[str, Decimal] = {x: Decimal(0) for x in x_order}
    for segment in segments:
        if segment.amount is not None and segment.x in totals:
            totals[segment.x] += segment.amount
    ticks = nice_ticks(max(totals.values(), default=Decimal(0)))
    top = ticks[-1]
    bottom = top_margin + plot_height

    def y_of(amount: Decimal) -> float:
        return bottom - float(amount / top) * plot_height

    center = {x: left + band * (index + 0.5) for index, x in enumerate(x_order)}
    body = []
    shaded = [x for x in x_order if x in highlight]
    if shaded and len(shaded) < len(x_order):
        first, last = center[shaded[0]] - band / 2, center[shaded[-1]] + band / 2
        body.append(
            f'<rect class="highlight" x="{_n(first)}" y="{_n(top_margin)}" width="{_n(last - first)}" '
            f'height="{_n(plot_height)}" fill="{HIGHLIGHT_COLOR}"/>'
        )
    body.append(_y_axis(ticks, top, left, width - right, top_margin, plot_height))
    rank = {name: index for index, name in enumerate(series_order)}
    stack_top: dict[str, Decimal] = {x: Decimal(0) for x in x_order}
    lifted: dict[str, float] = {}  # pixels of cost-unknown boxes on a stack
    body.append('<g class="points">')
    for segment in sorted(segments, key=lambda s: (rank.get(s.series, len(rank)), s.series)):
        if segment.x not in center:
            continue
        base = stack_top[segment.x]
        amount = segment.amount if segment.amount is not None else Decimal(0)
        stack_top[segment.x] = base + amount
        y_low, y_high = y_of(base) - lifted.get(segment.x, 0.0), y_of(base + amount) - lifted.get(segment.x, 0.0)
        height = y_low - y_high
        if amount > 0 and height < 1:  # a tiny amount stays visible
            y_high, height = y_low - 1, 1.0
        fill = colors.get(segment.series, PALETTE[-1])
        outline = f' stroke="{ANOMALY_COLOR}" stroke-width="2"' if segment.flagged else ""
        if segment.amount is None:  # cost unknown: a dashed box of no amount on the stack, seen and never a $0 bar
            y_high, height = y_low - 6, 6.0
            lifted[segment.x] = lifted.get(segment.x, 0.0) + 6
            outline = f' stroke="{fill}" stroke-width="1.5" stroke-dasharray="2 1.5"'
            fill = "#ffffff"
        attrs = {
            "class": "point segment" + (" anomalous" if segment.flagged else ""),
            **segment.attrs,
            **_amount_attrs(segment.amount),
        }
        body.append(
            f'<rect{_attrs(attrs)} x="{_n(center[segment.x] - bar_width / 2)}" y="{_n(y_high)}" '
            f'width="{_n(bar_width)}" height="{_n(max(height, 0))}" fill="{fill}"'
            f"{outline}><title>{_esc(segment.title)}</title></rect>"
        )
    body.append("</g>")
    placed: dict[str, int] = {}
    body.append('<g class="markers">')
    for marker in markers:
        if marker.x not in center:
            continue
        index = placed.get(marker.x, 0)
        placed[marker.x] = index + 1
        cy = max(y_of(stack_top[marker.x]) - lifted.get(marker.x, 0.0) - 11 - 17 * index, 8.0)
        attrs = {"class": "anomaly-marker", **marker.attrs}
        body.append(
            f"<g{_attrs(attrs)}><title>{_esc(marker.title)}</title>"
            f'<circle cx="{_n(center[marker.x])}" cy="{_n(cy)}" r="7" fill="{ANOMALY_COLOR}"/>'
            f"{_bang(center[marker.x], cy, marker.label)}</g>"
        )
    body.append("</g>")
    body.append(
        f'<line x1="{_n(left)}" x2="{_n(width - right)}" y1="{_n(bottom)}" y2="{_n(bottom)}" stroke="#8c959f"/>'
    )
    body.append(_x_labels([(center[x], x_labels.get(x, x)) for x in x_order], bottom + 16, band))
    items = [(name, colors.get(name, PALETTE[-1]), "swatch") for name in series_order]
    if shaded and len(shaded) < len(x_order):
        items.append((highlight_label, HIGHLIGHT_COLOR, "band"))
    if markers:
        items.append(("anomaly", ANOMALY_COLOR, "marker"))
    legend, legend_height = _legend(items, left, bottom + 32, plot_width)
    height = bottom + 32 + legend_height + 4
    return _svg_open(width, height, title, desc, css_id, "stacked-bars") + "".join(body) + legend + "</svg>"


def horizontal_bars(
    bars: Sequence[Bar],
    *,
    title: str,
    desc: str,
    css_id: str,
    color: str = PALETTE[0],
    width: float = 560,
) -> str:
    """One bar per item (models), longest for the largest amount, its label on the left and its amount at its end.
    A bar with no known cost is a dashed outline labelled by its `value_label` ("cost unknown")."""
    label_width, value_width, row, bar_height, top_margin = 190.0, 130.0, 30.0, 18.0, 6.0
    left = label_width
    plot_width = width - label_width - value_width
    largest = max((bar.amount for bar in bars if bar.amount is not None), default=Decimal(0))
    body = []
    for index, bar in enumerate(bars):
        y = top_margin + index * row
        mid = y + row / 2
        if bar.amount is None:
            length = 0.0
            shape = (
                f'<rect x="{_n(left)}" y="{_n(mid - bar_height / 2)}" width="36" height="{_n(bar_height)}" '
                f'fill="none" stroke="{MUTED_COLOR}" stroke-dasharray="3 2"/>'
            )
            end = left + 36
        else:
            length = float(bar.amount / largest) * plot_width if largest > 0 else 0.0
            if bar.amount > 0 and length < 1:
                length = 1.0
            shape = (
                f'<rect x="{_n(left)}" y="{_n(mid - bar_height / 2)}" width="{_n(length)}" height="{_n(bar_height)}" '
                f'rx="2" fill="{color}"/>'
            )
            end = left + length
        attrs = {"class": "point bar" + (" anomalous" if bar.marker else ""), **bar.attrs, **_amount_attrs(bar.amount)}
        marker = ""
        if bar.marker:
            marker = (
                f'<g class="anomaly-marker"><title>{_esc(bar.marker)}</title>'
                f'<circle cx="{_n(left - 12)}" cy="{_n(mid)}" r="7" fill="{ANOMALY_COLOR}"/>{_bang(left - 12, mid)}</g>'
            )
        label_room = int((label_width - (26 if bar.marker else 8)) / CHAR_WIDTH)
        body.append(
            f"<g{_attrs(attrs)}><title>{_esc(bar.title)}</title>"
            f'<text class="label" x="{_n(left - (26 if bar.marker else 8))}" y="{_n(mid + 4)}" text-anchor="end">'
            f"{_esc(_clip(bar.label, label_room))}</text>{shape}"
            f'<text class="value" x="{_n(end + 6)}" y="{_n(mid + 4)}">{_esc(bar.value_label)}</text>{marker}</g>'
        )
    height = top_margin * 2 + max(len(bars), 1) * row
    return _svg_open(width, height, title, desc, css_id, "horizontal-bars") + "".join(body) + "</svg>"


def burn_line(
    points: Sequence[BurnPoint],
    *,
    x_order: Sequence[str],
    x_labels: Mapping[str, str],
    limit: Decimal,
    limit_label: str,
    limit_title: str,
    pace: bool,
    color: str,
    title: str,
    desc: str,
    css_id: str,
    bars: bool = False,
    width: float = 560,
) -> str:
    """A budget's spend per day (`points`, over the period's days `x_order`) against its limit line: a line of the
    cumulative spend of a monthly budget (`pace` adds the even pace from 0 on the first day to the limit on the
    last), or `bars` of each day's own spend for a daily budget (each day is a period of its own)."""
    left, right, top_margin, plot_height = 64.0, 12.0, 14.0, 150.0
    plot_width = width - left - right
    band = plot_width / max(len(x_order), 1)
    ticks = nice_ticks(max([limit, *(point.amount for point in points)]) * Decimal("1.05"))
    top = ticks[-1]
    bottom = top_margin + plot_height
    center = {x: left + band * (index + 0.5) for index, x in enumerate(x_order)}

    def y_of(amount: Decimal) -> float:
        return bottom - float(amount / top) * plot_height

    body = [_y_axis(ticks, top, left, width - right, top_margin, plot_height)]
    if pace and x_order:
        body.append(
            f'<line class="pace-line" x1="{_n(center[x_order[0]] - band / 2)}" y1="{_n(bottom)}" '
            f'x2="{_n(center[x_order[-1]] + band / 2)}" y2="{_n(y_of(limit))}" stroke="{MUTED_COLOR}" '
            f'stroke-dasharray="2 3"><title>even pace to the limit</title></line>'
        )
    y_limit = y_of(limit)
    limit_line = (
        f'<g class="limit-line" data-amount="{_esc(format(limit, "f"))}"><title>{_esc(limit_title)}</title>'
        f'<line x1="{_n(left)}" x2="{_n(width - right)}" y1="{_n(y_limit)}" y2="{_n(y_limit)}" stroke="{LIMIT_COLOR}" '
        f'stroke-width="1.5" stroke-dasharray="6 4"/>'
        f'<text x="{_n(left + 4 if bars else width - right - 4)}" y="{_n(y_limit - 5)}" '
        f'text-anchor="{"start" if bars else "end"}" fill="{LIMIT_COLOR}" {HALO}>{_esc(limit_label)}</text></g>'
    )
    if not bars:
        body.append(limit_line)
    shown = [point for point in points if point.x in center]
    if shown and not bars:
        coords = " ".join(f"{_n(center[p.x])},{_n(y_of(p.amount))}" for p in shown)
        body.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
    body.append('<g class="points">')
    for point in shown:
        over = point.amount > limit
        attrs = {"class": "point burn-point" + (" over-limit" if over else ""), **point.attrs}
        attrs.update(_amount_attrs(point.amount))
        fill = LIMIT_COLOR if over else color
        if bars:
            bar_width = min(band * 0.6, 40.0)
            y = y_of(point.amount)
            height = max(bottom - y, 1.0 if point.amount > 0 else 0.0)
            body.append(
                f'<rect{_attrs(attrs)} x="{_n(center[point.x] - bar_width / 2)}" y="{_n(bottom - height)}" '
                f'width="{_n(bar_width)}" height="{_n(height)}" rx="2" fill="{fill}">'
                f"<title>{_esc(point.title)}</title></rect>"
            )
            continue
        body.append(
            f'<circle{_attrs(attrs)} cx="{_n(center[point.x])}" cy="{_n(y_of(point.amount))}" r="3.5" '
            f'fill="{fill}"><title>{_esc(point.title)}</title></circle>'
        )
    body.append("</g>")
    if bars:  # over the bars, where it is seen
        body.append(limit_line)
    body.append(
        f'<line x1="{_n(left)}" x2="{_n(width - right)}" y1="{_n(bottom)}" y2="{_n(bottom)}" stroke="#8c959f"/>'
    )
    body.append(_x_labels([(center[x], x_labels.get(x, x)) for x in x_order], bottom + 16, band))
    height = bottom + 26
    kind = "burn-bars" if bars else "burn-line"
    return _svg_open(width, height, title, desc, css_id, kind) + "".join(body) + "</svg>"


def burn_gauge(
    point: BurnPoint,
    *,
    limit: Decimal,
    limit_label: str,
    limit_title: str,
    color: str,
    title: str,
    desc: str,
    css_id: str,
    width: float = 560,
) -> str:
    """A budget of one day so far: one bar of its spend against its limit line."""
    left, right, top_margin, bar_height = 64.0, 24.0, 24.0, 22.0
    plot_width = width - left - right
    ticks = nice_ticks(max(limit, point.amount) * Decimal("1.05"))
    top = ticks[-1]

    def x_of(amount: Decimal) -> float:
        return left + float(amount / top) * plot_width

    bottom = top_margin + bar_height
    body = ['<g class="axis x-axis">']
    for tick in ticks:
        body.append(
            f'<line x1="{_n(x_of(tick))}" x2="{_n(x_of(tick))}" y1="{_n(top_margin - 4)}" y2="{_n(bottom + 4)}" '
            f'stroke="{GRID_COLOR}"/><text x="{_n(x_of(tick))}" y="{_n(bottom + 18)}" text-anchor="middle" '
            f'fill="{MUTED_COLOR}">{_esc(tick_label(tick))}</text>'
        )
    body.append("</g>")
    over = point.amount > limit
    attrs = {
        "class": "point burn-point" + (" over-limit" if over else ""),
        **point.attrs,
        **_amount_attrs(point.amount),
    }
    body.append(
        f'<g class="points"><rect{_attrs(attrs)} x="{_n(left)}" y="{_n(top_margin)}" '
        f'width="{_n(max(x_of(point.amount) - left, 1 if point.amount > 0 else 0))}" height="{_n(bar_height)}" '
        f'rx="2" fill="{LIMIT_COLOR if over else color}"><title>{_esc(point.title)}</title></rect></g>'
    )
    x_limit = x_of(limit)
    anchor = "end" if x_limit > left + plot_width * 0.7 else "middle"
    body.append(
        f'<g class="limit-line" data-amount="{_esc(format(limit, "f"))}"><title>{_esc(limit_title)}</title>'
        f'<line x1="{_n(x_limit)}" x2="{_n(x_limit)}" y1="{_n(top_margin - 6)}" y2="{_n(bottom + 6)}" '
        f'stroke="{LIMIT_COLOR}" stroke-width="2" stroke-dasharray="4 3"/>'
        f'<text x="{_n(x_limit)}" y="{_n(top_margin - 10)}" text-anchor="{anchor}" fill="{LIMIT_COLOR}" {HALO}>'
        f"{_esc(limit_label)}</text></g>"
    )
    height = bottom + 26
    return _svg_open(width, height, title, desc, css_id, "burn-gauge") + "".join(body) + "</svg>"
