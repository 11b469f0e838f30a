"""Inline SVG charts for the HTML reports, drawn in Python: no JavaScript, no external
service. Every fragment is built with ``Markup(template).format(...)``, which escapes each
argument, so a label can never inject markup. Each chart carries a <title> and <desc> for
screen readers; the page also shows the numbers in a table."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count

from markupsafe import Markup

WIDTH = 640
BAR_HEIGHT = 22
LABEL_WIDTH = 260
COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1")
_ids = count(1)


def _open(title: str, desc: str, height: int) -> Markup:
    # Unique ids per chart so several charts on one page keep their own aria references.
    n = next(_ids)
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" aria-labelledby="chart{n}-t chart{n}-d">'
        '<title id="chart{n}-t">{title}</title><desc id="chart{n}-d">{desc}</desc>'
    ).format(w=WIDTH, h=height, n=n, title=title, desc=desc)


_CLOSE = Markup("</svg>")


def bar_chart(title: str, desc: str, data: Sequence[tuple[str, float]]) -> Markup:
    """Horizontal bars, one per (label, value)."""
    height = max(1, len(data)) * (BAR_HEIGHT + 6) + 10
    top = max((v for _, v in data), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 70
    parts = [_open(title, desc, height)]
    bar = Markup(
        '<text x="{lx}" y="{ty}" text-anchor="end" font-size="12">{label}</text>'
        '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}">'
        "<title>{label}: {value}</title></rect>"
        '<text x="{vx}" y="{ty}" font-size="12">{value}</text>'
    )
    for i, (label, value) in enumerate(data):
        y = 5 + i * (BAR_HEIGHT + 6)
        w = round(span * value / top, 1)
        parts.append(
            bar.format(
                lx=LABEL_WIDTH - 6,
                ty=y + 15,
                label=label,
                x=LABEL_WIDTH,
                y=y,
                w=w,
                h=BAR_HEIGHT,
                fill=COLOURS[0],
                value=_num(value),
                vx=LABEL_WIDTH + w + 4,
            )
        )
    if not data:
        parts.append(Markup('<text x="10" y="20" font-size="12">No data</text>'))
    parts.append(_CLOSE)
    return Markup("").join(parts)


def line_chart(
    title: str, desc: str, series: Sequence[tuple[str, Sequence[tuple[str, float]]]]
) -> Markup:
    """One polyline per (name, [(x label, value)]), over the union of x labels in order."""
    height, left, bottom, pad = 240, 50, 40, 15
    xs = sorted({x for _, pts in series for x, _ in pts})
    top = max((v for _, pts in series for _, v in pts), default=0) or 1
    plot_w, plot_h = WIDTH - left - 20, height - bottom - pad
    step = plot_w / max(1, len(xs) - 1)
    parts = [
        _open(title, desc, height),
        Markup(
            '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/>'
            '<text x="{tx}" y="{ty}" text-anchor="end" font-size="11">{top}</text>'
        ).format(l=left, b=pad + plot_h, r=left + plot_w, tx=left - 6, ty=pad + 10, top=_num(top)),
    ]
    for i, x in enumerate(xs):
        parts.append(
            Markup(
                '<text x="{x}" y="{y}" text-anchor="middle" font-size="10">{label}</text>'
            ).format(x=round(left + i * step, 1), y=height - 20, label=x)
        )
    for k, (name, pts) in enumerate(series):
        values = dict(pts)
        coords = " ".join(
            f"{round(left + i * step, 1)},{round(pad + plot_h * (1 - values.get(x, 0) / top), 1)}"
            for i, x in enumerate(xs)
        )
        parts.append(
            Markup(
                '<polyline points="{coords}" fill="none" stroke="{c}" stroke-width="2">'
                "<title>{name}</title></polyline>"
                '<text x="{x}" y="{y}" font-size="11" fill="{c}">{name}</text>'
            ).format(
                coords=coords,
                c=COLOURS[k % len(COLOURS)],
                name=name,
                x=left + 10 + 140 * k,
                y=height - 4,
            )
        )
    if not xs:
        parts.append(Markup('<text x="60" y="40" font-size="12">No data</text>'))
    parts.append(_CLOSE)
    return Markup("").join(parts)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"
