"""Transparency reports as JSON (stable keys), CSV (section, metric, dimension, value) and
HTML (a Jinja2 template with autoescape and inline SVG charts)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from functools import cache
from typing import Literal

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cleanit.domain.errors import InvalidInput
from cleanit.services.report_charts import bar_chart, line_chart
from cleanit.services.reports import Report, Row, report_to_dict

Format = Literal["json", "csv", "html"]
FORMATS: tuple[Format, ...] = ("json", "csv", "html")
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
CSV_HEADER = ("section", "metric", "dimension", "value")


def to_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, sort_keys=True, ensure_ascii=False)


def to_csv(report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for s in report.sections:
        for r in s.rows:
            w.writerow((s.key, r.metric, r.dimension, "" if r.value is None else r.value))
    return out.getvalue()


def rows_from_csv(text: str) -> list[tuple[str, Row]]:
    """(section, row) pairs back from ``to_csv`` (numbers as int or float, empty as None)."""
    reader = csv.reader(io.StringIO(text))
    if tuple(next(reader, ())) != CSV_HEADER:
        raise InvalidInput("not a report CSV: the header must be " + ",".join(CSV_HEADER))
    out = []
    for section, metric, dimension, value in reader:
        v: int | float | None = None
        if value:
            v = float(value) if any(c in value for c in ".eE") else int(value)
        out.append((section, Row(metric, dimension, v)))
    return out


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cleanit", "templates/reports"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _numbers(pairs: Sequence[tuple[str, int | float | None]]) -> list[tuple[str, float]]:
    return [(k, float(v)) for k, v in pairs if v is not None]


def charts(report: Report) -> list[Markup]:
    """The charts of one report: what was notified and decided, and the monthly trend."""
    out: list[Markup] = []
    keys = {s.key for s in report.sections}
    if "notices" in keys:
        data = _numbers(report.section("notices").breakdown("by_category"))
        out.append(
            bar_chart("Notices by category", f"{len(data)} categories, notices received", data)
        )
    action_section = "decisions" if "decisions" in keys else "actions"
    data = _numbers(report.section(action_section).breakdown("by_action"))
    out.append(bar_chart("Decisions by action", f"{len(data)} kinds of action", data))
    monthly = report.section("monthly")
    series = [
        (name, _numbers(monthly.breakdown(name)))
        for name in ("notices", "decisions")
        if monthly.breakdown(name)
    ]
    out.append(line_chart("Monthly trend", "Notices and decisions per month (UTC)", series))
    return out


def trend_chart(reports: Sequence[Report]) -> Markup:
    """Across published reports, oldest first: total decisions (DSA) or actions (TCO)."""
    points: list[tuple[str, float]] = []
    for r in sorted(reports, key=lambda r: r.period.start):
        key = "decisions" if r.kind == "dsa" else "actions"
        v = r.section(key).value("total")
        points.append((r.period.label, float(v or 0)))
    return line_chart(
        "Trend across published reports",
        "Total decisions per published period",
        [("total", points)],
    )


def to_html(report: Report, *, published: Sequence[Report] = (), public: bool = False) -> str:
    template = _environment().get_template("report.html")
    return template.render(
        report=report,
        charts=charts(report),
        trend=trend_chart(published) if len(published) > 1 else None,
        published=published,
        public=public,
    )


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    raise InvalidInput("format must be json, csv or html", field="format")
